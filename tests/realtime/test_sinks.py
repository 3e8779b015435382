"""Sinks of the live loop: a slow sink costs drops, never latency; a failing one
stops the stream with its error; a queued sink delivers everything it kept."""

from __future__ import annotations

import threading

import pytest

from emomon.errors import EmomonError
from emomon.realtime.messages import StatusMessage
from emomon.realtime.model import load_model
from emomon.realtime.sinks import QueuedSink, Sink, StatusLine
from emomon.realtime.sources import ReplaySource
from emomon.realtime.stream import StreamSettings, run_stream

from .helpers import Collect


class _Stuck(Sink):
    """Blocks on its first prediction until released: a disk that stalls."""

    queue_size = 5

    def __init__(self) -> None:
        self.release = threading.Event()
        self.delivered = 0

    def on_chunk(self, chunk) -> None:
        self.delivered += 1

    def on_status(self, message) -> None:
        self.delivered += 1

    def on_prediction(self, message, window) -> None:
        self.release.wait(10.0)
        self.delivered += 1


class _Releasing(Collect):
    """In the loop's thread: releases the stuck sink once the loop has handed
    out ``n`` predictions, so the loop can only get there without waiting."""

    def __init__(self, stuck: _Stuck, n: int) -> None:
        super().__init__()
        self.stuck, self.n = stuck, n

    def on_prediction(self, message, window) -> None:
        super().on_prediction(message, window)
        if len(self.preds) == self.n:
            self.stuck.release.set()


class _Failing(Sink):
    def __init__(self, after: int) -> None:
        self.after, self.seen = after, 0

    def on_prediction(self, message, window) -> None:
        self.seen += 1
        if self.seen > self.after:
            raise EmomonError("disk full: the recording stopped")


def test_a_stalled_sink_drops_and_counts_while_the_others_get_everything(
    synthetic_trials, deap_model
):
    stuck = _Stuck()
    fast = _Releasing(stuck, 40)
    with ReplaySource(synthetic_trials) as src:
        stats = run_stream(
            src,
            load_model(deap_model),
            sinks=[stuck, fast],
            settings=StreamSettings(max_predictions=40),
        )
    assert stats.predictions == len(fast.preds) == 40
    # what the loop handed each sink: chunks, predictions, status messages
    offered = len(fast.chunks) + 40 + len(fast.statuses)
    drops = stats.sink_drops["_Stuck"]
    # while it stalled, 5 messages waited in its queue (delivered at the end)
    # and every other one was dropped and counted: nothing lost silently
    assert stuck.delivered + drops == offered
    assert drops >= 40 - 1 - 5  # predictions at least
    assert stats.sink_drops["_Releasing"] == 0


def test_a_failing_queued_sink_stops_the_stream_with_its_error(
    synthetic_trials, deap_model
):
    failing = _Failing(after=3)
    with (
        ReplaySource(synthetic_trials) as src,
        pytest.raises(EmomonError, match="disk full"),
    ):
        run_stream(
            src,
            load_model(deap_model),
            sinks=[failing],
            settings=StreamSettings(max_predictions=200),
        )
    assert failing.seen == 4


def test_close_delivers_what_is_queued_and_leaves_the_sink_open():
    got = Collect()
    queued = QueuedSink(got, maxsize=100)
    for _ in range(50):
        queued.on_status(object())  # type: ignore[arg-type]
    queued.close()
    assert len(got.statuses) == 50
    assert queued.dropped == 0
    queued.on_status(object())  # type: ignore[arg-type]
    assert queued.dropped == 1  # after close: counted, not delivered


# -- the console's status line ---------------------------------------------------------
def _status(seq: int, state: str, last_error: str | None = None) -> StatusMessage:
    return StatusMessage.build(seq=seq, stream="amp", state=state, samples=128 * seq,
                               dropped=0, buffer_lag_s=0.0, uptime_s=float(seq),
                               predictions=4 * seq, last_error=last_error)  # fmt: skip


def test_status_line_announces_a_lost_input_once_and_its_return():
    lost = "LSL stream 'amp' (source_id 'x') lost: it broke off; reconnecting"
    states = ["connecting", "connected", "connected", "reconnecting", "reconnecting",
              "reconnecting", "connected", "reconnecting", "stopped"]  # fmt: skip
    lines: list[str] = []
    events: list[str] = []
    quiet: list[str] = []
    line = StatusLine(lines.append, announce=events.append)
    quiet_line = StatusLine(None, announce=quiet.append)  # --quiet: events only
    for seq, state in enumerate(states):
        msg = _status(seq, state, lost if state == "reconnecting" else None)
        line.on_status(msg)
        quiet_line.on_status(msg)
    assert events == [lost, "amp: connected again", lost]
    assert quiet == events
    assert len(lines) == len(states)
    assert [ln.split()[1] for ln in lines] == states
    # a source that gives no reason: the line says what happened anyway
    bare: list[str] = []
    line = StatusLine(None, announce=bare.append)
    for seq, state in enumerate(["connected", "reconnecting", "reconnecting"]):
        line.on_status(_status(seq, state))
    assert bare == ["amp: input lost; reconnecting"]
