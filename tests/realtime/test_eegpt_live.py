"""EEGPT live: ``emomon stream --source replay`` with the probe that ``emomon
train`` exported (tests/conftest.py ``eegpt_model``) gives, window by window,
the probabilities of one offline pass over the same samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emomon.cli import main as cli_main
from emomon.contract import ModelContract
from emomon.datasets import get_reader
from emomon.dsp.features import compute_features
from emomon.realtime.pipeline import map_channels
from emomon.realtime.replay import ReplaySession

from .helpers import free_tcp_port
from .models import offline_probabilities

#: The recording the replay serves: one synthetic subject at the model's 256 Hz.
SYNTH = {"n_subjects": 1, "n_videos": 2, "trial_s": 8, "sfreq": 256}
HOP = 1.0


@pytest.mark.integration
def test_replay_stream_equals_offline_pass(eegpt_model: Path, tmp_path: Path) -> None:
    contract = ModelContract.from_onnx(eegpt_model)
    rec = tmp_path / "live.fif"
    opts = [a for k, v in SYNTH.items() for a in ("-o", f"{k}={v}")]
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    argv = ["stream", "--source", "replay", "--dataset", "synthetic", *opts,
            "--model", str(eegpt_model), "--hop", str(HOP), "--quiet",
            "--record", str(rec), "--address", address]  # fmt: skip
    assert cli_main(argv) == 0
    lines = rec.with_name("live.predictions.jsonl").read_text("utf-8").splitlines()
    published = [json.loads(line) for line in lines]

    reader = get_reader("synthetic", None, **SYNTH)
    session = ReplaySession.from_trials(reader.read_subject(reader.subjects()[0]))
    assert session.sfreq == contract.sfreq == 256.0  # no resampling on either side
    rows = map_channels(contract.ch_names, session.ch_names)
    off = compute_features(
        session.eeg[rows], sfreq=256.0, spec=contract.spec, hop_s=HOP
    )
    assert off.values.shape[1:] == (32, 1024)
    assert len(published) == len(off) > 8
    t_pub = np.array([p["t_lsl"] for p in published])
    np.testing.assert_allclose(
        t_pub - t_pub[0], (off.ends - off.ends[0]) / 256.0, atol=1e-9
    )
    ref = offline_probabilities(eegpt_model, off.values)
    for task in ("valence", "arousal"):
        p_high = np.array([p[task]["p_high"] for p in published])
        assert np.abs(p_high - ref[task][:, 1]).max() < 1e-5, task


def test_a_hop_shorter_than_the_model_sustains_is_refused() -> None:
    from emomon.errors import EmomonError
    from emomon.realtime.model import check_hop, min_hop_s

    assert min_hop_s(0.001) == 0.05  # never below one step
    assert min_hop_s(0.4) == 0.6  # 1.5x the cost, in 0.05 s steps
    assert min_hop_s(0.41) == 0.65
    check_hop(0.6, cost_s=0.4)
    with pytest.raises(EmomonError) as err:
        check_hop(0.25, cost_s=0.4, source="m.onnx")
    assert err.value.render({"hop_s": "--hop"}) == (
        "--hop 0.25 s is shorter than m.onnx sustains here: one window takes "
        "400 ms, so the shortest hop is 0.6 s; use --hop 0.6 or more"
    )


@pytest.mark.integration
def test_stream_measures_the_encoder_and_refuses_a_short_hop(
    eegpt_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Measured on this machine at start-up, before any source is opened."""
    argv = ["stream", "--source", "lsl", "--name", "emomon-eegpt-never-there",
            "--timeout", "30", "--model", str(eegpt_model), "--quiet",
            "--hop", "0.01"]  # fmt: skip
    capsys.readouterr()
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("emomon: error: --hop 0.01 s is shorter than")
    assert "shortest hop is" in err
