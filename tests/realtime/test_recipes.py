"""The README's command-line recipes, read from README.md and run as written.

Each command of a recipe runs with its arguments as the README gives them; the
files it names go to the test's directory, and options that keep parallel test
runs apart (a unique LSL stream name, a free ZeroMQ port) are appended, which
argparse lets win over the README's. Where the README says "Ctrl-C", the test
sends SIGINT.
"""

from __future__ import annotations

import json
import shlex
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emomon.cli import build_parser
from emomon.realtime.record import read_recording
from emomon.realtime.replay import ReplaySettings
from emomon.realtime.subscribe import Subscriber

from .helpers import (
    REPO,
    free_tcp_port,
    predictions,
    read_line,
    receive_until,
    signal_quality,
    unique,
)


def readme_commands(heading: str) -> list[list[str]]:
    """The commands of the first ``sh`` block under ``heading`` in README.md,
    each split as a shell does (comments dropped, a trailing ``&`` kept)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(ln, comments=True) for ln in block.splitlines() if ln.strip()]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()]


#: What must be identical between a window scored live and re-scored (the
#: quality's sample age aside: a latency).
SCORED = ("seq", "window_s", "valence", "arousal", "quality", "model")


@pytest.mark.integration
def test_record_replay_rescore_scores_every_window_identically(
    tmp_path, live_rig, emomon_cli, synthetic_trials, deap_model
):
    """ "Recording a session": record a live stream, serve the recording again
    with ``emomon replay``, re-score it with ``emomon stream --record``; the
    re-score's predictions are the recording's, window for window."""
    record, serve, rescore = readme_commands("### Recording a session")
    assert [c[:2] for c in (record, serve, rescore)] == [
        ["emomon", "stream"], ["emomon", "replay"], ["emomon", "stream"],
    ]  # fmt: skip
    assert serve[-1] == "&", "the replay runs in the background"
    serve = serve[:-1]
    # the recipe's pieces fit: the re-score reads the stream the replay serves
    served = build_parser().parse_args(serve[1:]).name  # given, or the default
    assert build_parser().parse_args(rescore[1:]).name == served
    files = {
        "model.onnx": deap_model,
        "session.fif": tmp_path / "session.fif",
        "rescored.fif": tmp_path / "rescored.fif",
    }
    for argv in (record, serve, rescore):
        named = [a for a in argv if a.endswith((".onnx", ".fif"))]
        assert set(named) <= set(files), f"README names files the test lacks: {named}"

    def here(argv: list[str], *isolation: str) -> list[str]:
        return [str(files.get(a, a)) for a in argv[1:]] + list(isolation)

    live, name = unique("emomon-headset"), unique("emomon-served")
    address = {i: f"tcp://127.0.0.1:{free_tcp_port()}" for i in (1, 2)}

    # 1. record: a live "headset" (a looping replay in this process), Ctrl-C
    live_rig().replay(
        synthetic_trials, ReplaySettings(name=live, speed=4.0, loop=True, markers=False)
    )
    with Subscriber(address[1]) as sub:
        proc = emomon_cli.start(*here(record, "--name", live, "--address", address[1]))
        msgs = receive_until(sub, lambda m: len(predictions(m)) >= 8, timeout_s=40.0)
        assert len(predictions(msgs)) >= 8, proc.poll()
        proc.send_signal(signal.SIGINT)
        _, err = emomon_cli.finish(proc, 20.0)
    assert proc.returncode == 0, err
    recorded = _jsonl(tmp_path / "session.predictions.jsonl")
    assert len(recorded) >= 8

    # 2. serve it again, then 3. re-score it (Ctrl-C once the replay has ended)
    with Subscriber(address[2]) as sub:
        replay = emomon_cli.start(*here(serve, "--name", name))
        assert read_line(replay.stdout, "replay: waiting", timeout_s=40.0), (
            replay.poll()
        )
        proc = emomon_cli.start(*here(rescore, "--name", name, "--address", address[2]))
        r_out, r_err = emomon_cli.finish(replay, 60.0)
        assert replay.returncode == 0, r_err
        assert "replay: connected after" in r_out
        assert "replay: end of recording" in r_err
        receive_until(
            sub,
            lambda m: any(p["seq"] >= len(recorded) - 1 for p in predictions(m)),
            timeout_s=20.0,
        )
        proc.send_signal(signal.SIGINT)
        _, err = emomon_cli.finish(proc, 20.0)
    assert proc.returncode == 0, err

    rescored = _jsonl(tmp_path / "rescored.predictions.jsonl")
    assert all(p["quality"]["ok"] for p in recorded)

    def scored(p: dict[str, Any]) -> dict[str, Any]:
        return {**{k: p[k] for k in SCORED}, "quality": signal_quality(p)}

    assert [scored(p) for p in rescored] == [scored(p) for p in recorded]
    # served sample for sample, from the first one
    again = read_recording(tmp_path / "rescored.fif").raw.get_data()
    first = read_recording(tmp_path / "session.fif").raw.get_data()
    np.testing.assert_array_equal(again, first)
