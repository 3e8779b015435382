"""What ``emomon stream`` and ``emomon replay`` print: emomon's lines only.

liblsl logs lines of its own on stderr (two INFO lines when it starts, ``ERR|
Stream transmission broke off`` when a sender stops). The commands turn that
log down through a copy of the lab's liblsl configuration
(:func:`~emomon.realtime.lslconfig.quiet_liblsl`), so these tests run the
commands as subprocesses with a lab-like configuration of their own that sets
no log level (the test session's sets one, which would be honoured), and check
that the lab's settings still apply: a sender in another ``SessionID`` stays
invisible.
"""

from __future__ import annotations

import re
import signal

import pytest

from .helpers import (
    LIBLSL_LOG_MARKS,
    free_tcp_port,
    lsl_user_config,
    read_line,
    unique,
)

#: ``emomon replay`` of a synthetic subject (32 DEAP channels at 128 Hz, what
#: ``deap_model`` takes), no data files needed.
SYNTHETIC = ("replay", "--dataset", "synthetic", "-o", "n_subjects=1",
             "-o", "n_videos=1", "-o", "trial_s=10")  # fmt: skip


def _no_liblsl_lines(*texts: str) -> None:
    for text in texts:
        found = [m for m in LIBLSL_LOG_MARKS if m in text]
        assert not found, f"liblsl's log on the console ({found}):\n{text}"


def _lines(err: str) -> list[str]:
    """Console lines, the status line's rewrites (after ``\\r``) each one."""
    return [ln for ln in re.split(r"[\r\n]", err) if ln.strip()]


@pytest.mark.integration
def test_stream_and_replay_show_no_liblsl_lines_and_a_lost_sender_once(
    tmp_path, emomon_cli, deap_model
):
    """The sender (``emomon replay``) stops while ``emomon stream`` reads it:
    neither prints a liblsl line, and the stream reports the loss once, in one
    line of its own, while its status line goes on saying ``reconnecting``."""
    env = {"LSLAPICFG": str(lsl_user_config(tmp_path / "lab.cfg", unique("lab")))}
    name = unique("emomon-console")
    stream = emomon_cli.start("stream", "--source", "lsl", "--name", name, "--model",
                              str(deap_model), "--address",
                              f"tcp://127.0.0.1:{free_tcp_port()}", "--timeout",
                              "20", "--duration", "8", env=env)  # fmt: skip
    replay = emomon_cli.start(*SYNTHETIC, "--name", name, "--speed", "4",
                              "--duration", "2", "--no-markers",
                              "--wait-for-consumer", "20", env=env)  # fmt: skip
    r_out, r_err = emomon_cli.finish(replay, 40.0)
    s_out, s_err = emomon_cli.finish(stream, 40.0)
    assert replay.returncode == 0, r_err
    assert stream.returncode == 0, s_err
    _no_liblsl_lines(r_out, r_err, s_out, s_err)
    assert "replay: duration reached after 2.0 s" in r_err

    lines = _lines(s_err)
    assert lines[0].startswith(f"waiting up to 20 s for LSL stream name='{name}'")
    assert lines[1].startswith(f"emomon stream: {name} (32 ch @ 128 Hz)"), s_err
    events = [ln for ln in lines[2:] if ln.startswith("emomon stream: ")]
    assert len(events) == 1, s_err
    assert f"LSL stream '{name}'" in events[0]
    assert "lost" in events[0]
    # reported once although the loss lasted several status lines
    assert sum(ln.startswith(f"{name} reconnecting") for ln in lines) >= 2, s_err
    assert lines[-1].startswith("stopped: "), s_err


@pytest.mark.integration
def test_stream_keeps_the_labs_session_id(tmp_path, emomon_cli, deap_model):
    """With ``LSLAPICFG`` naming a lab file of session A, ``emomon stream``
    does not see a sender of session B (its own configuration), which another
    stream of session B does see; a sender of session A is found. Nothing of
    liblsl's log is printed on the way."""
    cfg = {
        s: {"LSLAPICFG": str(lsl_user_config(tmp_path / f"{s}.cfg", unique(s)))}
        for s in ("A", "B")
    }
    name = unique("emomon-session")
    outputs: list[str] = []

    def serve(session: str):
        proc = emomon_cli.start(*SYNTHETIC, "--name", name, "--loop",
                                "--no-markers", env=cfg[session])  # fmt: skip
        assert read_line(proc.stdout, "replay: ", timeout_s=30.0), proc.poll()
        return proc

    def stream(session: str, *extra: str) -> tuple[int, str]:
        proc = emomon_cli.start("stream", "--source", "lsl", "--name", name,
                                "--model", str(deap_model), "--address",
                                f"tcp://127.0.0.1:{free_tcp_port()}", "--quiet",
                                *extra, env=cfg[session])  # fmt: skip
        out, err = emomon_cli.finish(proc, 40.0)
        outputs.extend((out, err))
        return proc.returncode, err

    def stop(proc) -> None:
        proc.send_signal(signal.SIGINT)
        out, err = emomon_cli.finish(proc, 15.0)
        assert proc.returncode == 0, err
        outputs.extend((out, err))

    sender_b = serve("B")
    rc, err = stream("A", "--timeout", "2")
    assert rc == 2, err
    assert "emomon: error: no LSL stream matching" in err
    assert f"name='{name}'" in err
    rc, err = stream("B", "--timeout", "20", "--duration", "1")  # it is there
    assert rc == 0, err
    assert f"emomon stream: {name} (32 ch @ 128 Hz)" in err

    sender_a = serve("A")
    rc, err = stream("A", "--timeout", "20", "--duration", "1")
    assert rc == 0, err
    assert f"emomon stream: {name} (32 ch @ 128 Hz)" in err
    stop(sender_a)
    stop(sender_b)
    _no_liblsl_lines(*outputs)
