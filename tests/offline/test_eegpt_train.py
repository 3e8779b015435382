"""``emomon train --model eegpt``: the probe trains, exports with its input spec."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from emomon.cli import main
from emomon.contract import ModelContract
from emomon.models.eegpt import channel_ids
from emomon.offline.evaluate import contamination_notes

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).parents[2] / "configs" / "eegpt_synthetic.toml"


def test_trained_probe_carries_the_pretraining_input_spec(
    eegpt_model: Path, eegpt_checkpoint: Path
) -> None:
    import torch

    c = ModelContract.from_onnx(eegpt_model)
    assert c.model == "eegpt"
    assert c.input_kind == "eeg"
    assert c.input_shape == (32, 1024)  # fixed channels and 4 s at 256 Hz
    (inp,) = ort.InferenceSession(eegpt_model).get_inputs()
    assert inp.shape[1:] == [32, 1024]
    assert c.sfreq == 256.0
    assert c.spec.window_s == 4.0
    assert c.spec.car
    # no z-score: the graph reads the pipeline's microvolts as they are
    assert not c.norm_mean.any()
    assert (c.norm_std == 1.0).all()
    enc = c.info["encoder"]
    assert enc["input_units"].startswith("uV (scaled to mV")
    assert (enc["embed_dim"], enc["depth"], enc["embed_num"]) == (32, 2, 2)
    assert "contaminated" not in c.info  # synthetic data
    # only the probe trained: the encoder's weights in the graph are the
    # checkpoint's, bit for bit
    sd = torch.load(eegpt_checkpoint, weights_only=True)["state_dict"]
    table = sd["target_encoder.chan_embed.weight"].numpy()
    ids = channel_ids(c.ch_names)
    inits = [
        onnx.numpy_helper.to_array(i) for i in onnx.load(eegpt_model).graph.initializer
    ]
    # the exporter may fold the lookup of the fixed channels into a constant
    assert any(np.array_equal(g, table) or np.array_equal(g, table[ids]) for g in inits)
    report = json.loads((eegpt_model.parent / "report.json").read_text())
    notes = report["results"]["lovo"]["notes"]
    assert not any("CONTAMINATED" in n for n in notes)


def _refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``emomon`` with ``argv``: exit 2 and one line on stderr, returned."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    return err


def test_data_the_encoder_was_not_pretrained_on_is_refused(
    eegpt_checkpoint: Path,
    eegpt_train_args: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hp = json.dumps({"checkpoint": str(eegpt_checkpoint), "num_heads": 4})
    # the default synthetic set is 128 Hz
    argv = ["train", "--model", "eegpt", "--hparams", hp, "--out", str(tmp_path / "r")]
    err = _refusal([*argv, *eegpt_train_args], capsys)
    assert "256 Hz" in err
    assert "128 Hz" in err


def test_a_checkpoint_in_another_layout_is_refused(
    eegpt_train_args: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import torch

    bad = tmp_path / "plain.pt"
    torch.save({"chan_embed.weight": torch.zeros(62, 8)}, bad)  # a bare state dict
    hp = json.dumps({"checkpoint": str(bad), "num_heads": 4})
    argv = ["train", "--config", str(CONFIG), "--hparams", hp]
    err = _refusal([*argv, "--out", str(tmp_path / "r"), *eegpt_train_args], capsys)
    assert str(bad) in err
    assert "'state_dict' holds 'target_encoder.*' tensors" in err


def test_seed_family_results_say_they_are_contaminated() -> None:
    for dataset in ("seed", "seed4", "seed5"):
        (note,) = contamination_notes("eegpt", dataset)
        assert note.startswith("CONTAMINATED")
        assert dataset in note
    assert contamination_notes("eegpt", "deap") == []
    assert contamination_notes("cnn_transformer", "seed") == []


def test_channels_outside_the_dictionary_are_refused_by_name(
    eegpt_checkpoint: Path,
    eegpt_train_args: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Muse's TP9 and TP10 are not among the encoder's 62 channels."""
    hp = json.dumps({"checkpoint": str(eegpt_checkpoint), "num_heads": 4})
    argv = ["train", "--config", str(CONFIG), "--hparams", hp, "--montage", "muse"]
    err = _refusal([*argv, "--out", str(tmp_path / "r"), *eegpt_train_args], capsys)
    assert "TP9, TP10 not in the EEGPT encoder's 62-channel dictionary" in err
