"""``emomon.load_model(path)``: one read of the file; ``predict`` runs a recording
through the live pipeline and equals what ``emomon stream`` publishes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import emomon
from emomon.cli import main as cli_main
from emomon.contract import ModelContract, model_digest
from emomon.datasets import get_reader
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.errors import EmomonError, ModelError
from emomon.realtime.replay import ReplaySession

from .helpers import free_tcp_port, session_eeg
from .models import make_model


@pytest.fixture(scope="module")
def deap_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("api-deap")
    assert cli_main(["datasets", "synth", "--out", str(d), "--subjects", "1",
                     "--videos", "2", "--trial-s", "10"]) == 0  # fmt: skip
    return d


@pytest.fixture(scope="module")
def session(deap_dir) -> ReplaySession:
    """The recording ``emomon stream --source replay --subject 1`` serves."""
    return ReplaySession.from_trials(get_reader("deap", deap_dir).read_subject("s01"))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, session) -> Path:
    path = tmp_path_factory.mktemp("api-model") / "model.onnx"
    return make_model(path, ch_names=DEAP_CHANNELS, sfreq=128.0, eeg=session.eeg)


@pytest.mark.integration
def test_predict_equals_what_emomon_stream_publishes(
    tmp_path, deap_dir, session, model_path, capsys
):
    """Window by window: the stream's published probabilities (recorded byte
    for byte by ``--record``) and ``predict`` on the same samples."""
    eeg = session.eeg.copy()
    eeg[5, 900:940] = np.nan  # a dropout: the same windows are flagged
    rec = tmp_path / "live.fif"
    # stream the recording as-is: emomon stream --source replay reads the files
    rc = cli_main(["stream", "--source", "replay", "--dataset", "deap",
                   "--data-dir", str(deap_dir), "--subject", "1", "--model",
                   str(model_path), "--quiet", "--record", str(rec), "--address",
                   f"tcp://127.0.0.1:{free_tcp_port()}"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    lines = rec.with_name("live.predictions.jsonl").read_text("utf-8").splitlines()
    published = [json.loads(line) for line in lines]

    model = emomon.load_model(model_path)
    out = model.predict(session.eeg, sfreq=128.0, ch_names=session.ch_names)
    assert len(out) == len(published) > 80
    assert out.classes == {"valence": ("low", "high"), "arousal": ("low", "high")}
    t_pub = np.array([p["t_lsl"] for p in published])
    # the same windows: ends a hop apart from the same first one
    np.testing.assert_allclose(t_pub - t_pub[0], out.t_end - out.t_end[0], atol=1e-9)
    np.testing.assert_array_equal(out.end_index, np.round(out.t_end * 128.0))
    assert out.ok.all()
    assert all(p["quality"]["ok"] for p in published)
    for task in ("valence", "arousal"):
        p_high = np.array([p[task]["p_high"] for p in published])
        assert np.abs(out.p_high(task) - p_high).max() < 1e-5, task
        labels = [p[task]["label"] for p in published]
        assert labels == ["high" if v > 0.5 else "low" for v in out.p_high(task)]
    assert out.features.shape == (len(out), 32, 8)

    # flagged windows come back as NaN rows with their quality
    bad = model.predict(eeg, sfreq=128.0, ch_names=session.ch_names)
    flagged = ~bad.ok
    assert flagged.any()
    assert not flagged.all()
    assert np.isnan(bad.probs["valence"][flagged]).all()
    assert all(
        DEAP_CHANNELS[5] in q.bad_channels for q in np.array(bad.quality)[flagged]
    )


def test_predict_resamples_and_names_what_is_wrong(model_path, session):
    model = emomon.load_model(model_path)
    # 256 Hz input: resampled to the model's 128 Hz, windows a hop apart
    x = np.repeat(session.eeg[:, : 128 * 12], 2, axis=1)
    out = model.predict(x, sfreq=256.0, ch_names=session.ch_names)
    assert len(out) > 20
    np.testing.assert_allclose(np.diff(out.t_end), 0.25, atol=1.5 / 128)
    assert np.all(out.end_index < x.shape[1])
    assert np.all(np.diff(out.end_index) > 0)
    with pytest.raises(EmomonError, match="eeg must be .* one row per name"):
        model.predict(x[:3], sfreq=256.0, ch_names=session.ch_names)
    with pytest.raises(EmomonError, match="lacks model channel"):
        model.predict(x[:31], sfreq=256.0, ch_names=session.ch_names[:31])
    out.classes["valence"] = ("a", "b", "c")
    with pytest.raises(EmomonError, match="p_high is for binary tasks"):
        out.p_high("valence")


def test_session_helper_matches_the_replay(session, deap_dir):
    trials = get_reader("deap", deap_dir).read_subject("s01")
    np.testing.assert_array_equal(session_eeg(trials), session.eeg)


def test_load_model_reads_once_and_refuses_what_is_not_a_model(tmp_path, model_path):
    model = emomon.load_model(model_path)
    assert model.digest == model_digest(model_path)
    assert model.contract.to_json() == ModelContract.from_onnx(model_path).to_json()
    assert model.output_names == ["valence", "arousal"]
    assert model.session.get_session_options().intra_op_num_threads == 1
    (tmp_path / "bad.onnx").write_text("not protobuf")
    for path, needle in [
        (tmp_path / "gone.onnx", "does not exist"),
        (tmp_path, "is a directory"),
        (tmp_path / "bad.onnx", "not a readable ONNX model"),
    ]:
        with pytest.raises(ModelError, match=needle):
            emomon.load_model(path)


def test_emomon_info_states_the_input_layout(model_path, capsys):
    assert cli_main(["info", str(model_path)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("input layout"))
    assert "input[b, f * 32 + c]" in line
    assert "feature-major" in line
