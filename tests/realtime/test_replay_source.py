"""``ReplaySource``: a recording handed to the live pipeline in process (no LSL).

Unpaced it must deliver the session exactly (float64, nominal stamps) and end;
paced it must keep the absolute schedule; through ``run_stream`` it must give
the offline features and probabilities of every window, and through the command
line (``emomon stream --source replay``) end by itself with every window
published.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pylsl
import pytest

from emomon.cli import main as cli_main
from emomon.contract import ModelContract
from emomon.datasets import get_reader
from emomon.dsp.features import compute_features
from emomon.errors import ConfigError
from emomon.realtime.model import load_model
from emomon.realtime.pipeline import PipelineSettings, map_channels
from emomon.realtime.publish import Publisher, PublisherSettings
from emomon.realtime.replay import ReplaySession
from emomon.realtime.sources import ReplaySource
from emomon.realtime.stream import StreamSettings, run_stream
from emomon.realtime.subscribe import Subscriber

from .helpers import (
    LOOPBACK,
    SF,
    TASKS,
    Collect,
    free_tcp_port,
    predictions,
    receive_until,
    statuses,
)
from .models import offline_probabilities


def _read_all(src: ReplaySource, max_reads: int = 100_000):
    data, stamps = [], []
    for _ in range(max_reads):
        chunk = src.read()
        if chunk.n_times:
            data.append(chunk.data)
            stamps.append(chunk.timestamps)
        if src.state == "stopped":
            break
    return np.hstack(data), np.concatenate(stamps)


def test_unpaced_reads_deliver_the_session_exactly_then_end(synthetic_trials):
    session = ReplaySession.from_trials(synthetic_trials)
    with ReplaySource(session, chunk=37) as src:
        assert src.realtime is False
        assert src.state == "connected"
        assert src.ch_names == session.ch_names
        assert src.sfreq == SF
        data, ts = _read_all(src)
        assert src.state == "stopped"
        assert src.read().n_times == 0
    np.testing.assert_array_equal(data, session.eeg)  # float64, not rounded
    assert data.dtype == np.float64
    assert data.flags.c_contiguous
    expected = src.t0 + np.arange(session.n_times) / SF
    np.testing.assert_allclose(ts, expected, rtol=0, atol=1e-9)
    assert src.samples_received == session.n_times


def test_loop_continues_samples_and_stamps(synthetic_trials):
    session = ReplaySession.from_trials(synthetic_trials)
    n = session.n_times
    with ReplaySource(session, loop=True, chunk=1000) as src:
        data, ts = [], []
        for _ in range(math.ceil(2.5 * n / 1000)):
            c = src.read()
            data.append(c.data)
            ts.append(c.timestamps)
        assert src.state == "connected"
    data, ts = np.hstack(data), np.concatenate(ts)
    assert data.shape[1] >= 2 * n
    np.testing.assert_array_equal(data[:, n : 2 * n], session.eeg)
    np.testing.assert_allclose(np.diff(ts), 1 / SF, rtol=0, atol=1e-9)


def test_paced_reads_keep_the_absolute_schedule(synthetic_trials):
    speed = 16.0
    rate = SF * speed
    with ReplaySource(synthetic_trials, speed=speed) as src:
        assert src.realtime is True
        assert src.metadata == {"replay/speed": speed}
        assert src.time_scale == speed
        got = 0
        deadline = time.monotonic() + 10.0
        for _ in range(10_000):
            if got >= 2 * SF or time.monotonic() > deadline:
                break
            c = src.read(timeout_s=0.05)
            now = pylsl.local_clock()
            if c.n_times:
                # nothing is handed out before it is due, nothing due is held back
                assert c.timestamps[-1] <= now
                assert src.t0 + (got + c.n_times) / rate > now - 0.05
                got += c.n_times
        assert got >= 2 * SF
    assert src.state == "stopped"


def test_bad_settings_are_refused(synthetic_trials):
    with pytest.raises(ConfigError, match="speed"):
        ReplaySource(synthetic_trials, speed=0.0)
    with pytest.raises(ConfigError, match="chunk"):
        ReplaySource(synthetic_trials, chunk=0)


@pytest.mark.integration
def test_run_stream_over_a_replay_source_equals_offline(synthetic_trials, deap_model):
    """Every window of the recording, as the offline pass computes it; the run
    ends by itself when the recording does."""
    session = ReplaySession.from_trials(synthetic_trials)
    contract = ModelContract.from_onnx(deap_model)
    got = Collect()
    with (
        Publisher(PublisherSettings(address=LOOPBACK)) as pub,
        ReplaySource(session) as src,
    ):
        stats = run_stream(
            src,
            load_model(deap_model),
            sinks=[pub, got],
            # a bound; the end of the recording comes first
            settings=StreamSettings(duration_s=60.0),
        )
    preds = [p for p, _ in got.preds]
    rows = map_channels(contract.ch_names, session.ch_names)
    off = compute_features(session.eeg[rows], sfreq=SF, spec=contract.spec, hop_s=0.25)
    assert stats.samples == session.n_times
    assert stats.dropped == 0
    assert len(preds) == len(off) == stats.predictions > 80
    t_off = src.t0 + (off.ends - 1) / SF
    np.testing.assert_allclose([p.t_lsl for p in preds], t_off, rtol=0, atol=1e-9)
    feats = np.stack([p.features for p in preds])
    assert np.abs(feats - off.values).max() < 1e-6
    ref = offline_probabilities(deap_model, off.values)
    for task in TASKS:
        got = np.stack([p.probs[task] for p in preds])
        assert np.abs(got - ref[task]).max() < 1e-5, task


@pytest.mark.integration
def test_max_predictions_is_exact_when_one_chunk_closes_many_windows(
    synthetic_trials, deap_model
):
    """Chunks of 1000 samples close about 30 windows each: the bound must cut
    inside a chunk, not after it (a run with ``max_predictions=n`` publishes n)."""
    n = 5
    published = Collect()  # what goes on the wire
    with ReplaySource(synthetic_trials, chunk=1000) as src:
        stats = run_stream(
            src, load_model(deap_model), sinks=[published],
            settings=StreamSettings(max_predictions=n, duration_s=30.0,
                                    pipeline=PipelineSettings(hop_s=1 / 32)),
        )  # fmt: skip
    assert stats.predictions == n == len(stats.latencies_ms)
    assert [m["seq"] for _, m in published.preds] == list(range(n))


@pytest.mark.integration
def test_cli_stream_source_replay_ends_with_the_recording(tmp_path, deap_model, capsys):
    data = tmp_path / "deap"
    assert cli_main(["datasets", "synth", "--out", str(data), "--subjects", "1",
                     "--videos", "2", "--trial-s", "10"]) == 0  # fmt: skip
    session = ReplaySession.from_trials(get_reader("deap", data).read_subject("s01"))
    spec = ModelContract.from_onnx(deap_model).spec
    n_windows = len(compute_features(session.eeg, sfreq=SF, spec=spec, hop_s=0.25))
    common = ["stream", "--source", "replay", "--dataset", "deap", "--data-dir",
              str(data), "--subject", "1", "--model", str(deap_model),
              "--quiet"]  # fmt: skip
    # unpaced: as fast as it runs, every window, then exit 0 on its own
    capsys.readouterr()
    rc = cli_main([*common, "--address", f"tcp://127.0.0.1:{free_tcp_port()}"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert (f"stopped: {session.n_times} samples, 0 dropped, {n_windows} "
            "predictions (0 flagged)") in err  # fmt: skip
    # paced at 8x (about 3 s): a subscriber gets consecutive seq up to the last
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    with Subscriber(address) as sub:
        assert cli_main([*common, "--speed", "8", "--address", address]) == 0
        msgs = receive_until(
            sub,
            lambda m: any(s["state"] == "stopped" for s in statuses(m)),
            timeout_s=10.0,
        )
    seqs = [p["seq"] for p in predictions(msgs)]
    assert seqs
    assert seqs == list(range(seqs[0], n_windows))
    assert all(p["stream"] == "emomon-replay" for p in predictions(msgs))


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        ([], ("give either --dataset", "--file")),
        (["--file", "{tmp}/rec.edf"], ("rec.edf", "file not found")),
        (["--dataset", "deap", "--data-dir", "{tmp}/none"], ("none",)),
    ],
)
def test_cli_replay_source_bad_input_exits_2(tmp_path, deap_model, capsys, extra,
                                             needles):  # fmt: skip
    argv = ["stream", "--source", "replay", "--model", str(deap_model), "--quiet",
            *[a.replace("{tmp}", str(tmp_path)) for a in extra]]  # fmt: skip
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emomon: error: ")
    assert "\n" not in err
    for needle in needles:
        assert needle in err
