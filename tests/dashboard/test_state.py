"""The dashboard's state and fan-out on their own: bounded backlog, a page
opened mid-stream, stop and resume, silence, slow tabs (no sockets)."""

from __future__ import annotations

import json
from typing import Any

from emomon.dashboard.fanout import RESYNC, Tabs
from emomon.dashboard.state import DashboardState, Update
from emomon.realtime.messages import (
    META_TOPIC,
    PREDICTION_TOPIC,
    STATUS_TOPIC,
    Message,
    encode,
    parse,
    status_message,
)
from emomon.realtime.meta import describe
from tests.realtime.helpers import fake_prediction

from .conftest import run_async

T0 = 1_718_000_000.0
BAD = {"ok": False, "bad_channels": ["Fz"], "dropped": 0, "reasons": {"Fz": "flat"}}


def _msg(topic: str, payload: dict[str, Any]) -> Message:
    """The message as the Subscriber hands it over (encoded, parsed)."""
    return parse(encode(topic, payload))


def _pred(seq: int, stream: str = "s1", **over: Any) -> Message:
    return _msg(PREDICTION_TOPIC, fake_prediction(seq, stream, t_pub=T0 + seq * 0.25,
                                                  **over))  # fmt: skip


def _status(seq: int, state: str, stream: str = "s1") -> Message:
    payload = status_message(
        seq=seq, stream=stream, state=state, samples=0, dropped=0,
        buffer_lag_s=0.0, uptime_s=1.0, predictions=0, t_pub=T0 + seq,
    )  # fmt: skip
    return _msg(STATUS_TOPIC, payload)


def _meta(stream: str = "s1", tasks: dict | None = None) -> Message:
    meta = describe(
        stream=stream, model="m", ch_names=["Fz", "Cz", "EXG1"],
        tasks=tasks or {"valence": ["low", "high"], "arousal": ["low", "high"]},
        sfreq=128.0, model_sfreq=128.0, window_s=2.0, hop_s=0.25,
    )  # fmt: skip
    return _msg(META_TOPIC, meta.to_dict())


def _feed(state: DashboardState, msgs: list[Message], t: float = T0) -> list[Update]:
    out: list[Update] = []
    for i, m in enumerate(msgs):
        out += state.ingest(m, t + i * 0.25)
    return out


def test_a_page_opened_mid_stream_gets_the_history_at_once():
    state = DashboardState()
    updates = _feed(
        state,
        [_meta(), _status(0, "connected"), *[_pred(i) for i in range(40)]],
    )
    assert [u.kind for u in updates[:2]] == ["meta", "status"]
    assert all(u.kind == "points" for u in updates[2:])
    (snap,) = state.snapshot(T0 + 10.5)
    assert snap["stream"] == "s1"
    assert snap["meta"]["ch_names"] == ["Fz", "Cz", "EXG1"]
    assert snap["meta"]["pos_2d"][2] is None  # no 10-05 position: off the map
    assert snap["status"]["state"] == "connected"
    assert [p["seq"] for p in snap["points"]] == list(range(40))
    assert snap["points"][0]["p"] == {"valence": 0.71, "arousal": 0.35}
    assert snap["stats"]["state"] == "connected"
    assert snap["stats"]["received"] == 40
    assert snap["stats"]["age_s"] == 0.25  # the last message came at T0 + 10.25
    # JSON at the boundary: the hello text parses back to the same snapshot
    hello = Update("hello", {"streams": state.snapshot(T0 + 10.5)})
    assert json.loads(hello.text)["streams"][0]["points"] == snap["points"]


def test_the_backlog_is_bounded_by_count_and_by_age():
    state = DashboardState(history_s=5.0, max_points=12)
    _feed(state, [_pred(i) for i in range(30)])  # 7.5 s of arrivals
    (snap,) = state.snapshot(T0 + 7.5)
    assert [p["seq"] for p in snap["points"]] == list(range(18, 30))  # count
    state = DashboardState(history_s=2.0, max_points=1000)
    _feed(state, [_pred(i) for i in range(30)])
    view = state.streams["s1"]
    assert [p.seq for p in view.points] == list(range(21, 30))  # within 2 s
    state.tick(T0 + 60.0)  # a quiet stream ages out entirely
    assert len(view.points) == 0
    assert view.received == 30  # the counters stay


def test_flagged_windows_are_nulls_not_zeros_binary_and_multiclass():
    state = DashboardState()
    classes = {"class": ["negative", "neutral", "positive"]}
    good = {"class": ({"negative": 0.1, "neutral": 0.2, "positive": 0.7}, "positive")}
    bad = {"class": ({"negative": None, "neutral": None, "positive": None}, None)}
    _feed(
        state,
        [
            _meta("seed", classes),
            _pred(0, "seed", tasks=good),
            _pred(1, "seed", tasks=bad, quality=BAD),
            _pred(2, "s1", tasks={"valence": (None, None), "arousal": (None, None)},
                  quality=BAD),
        ],
    )  # fmt: skip
    seed, s1 = state.snapshot(T0 + 1)
    assert seed["points"][0]["p"] == {
        "class": {"negative": 0.1, "neutral": 0.2, "positive": 0.7}
    }
    assert seed["points"][1]["ok"] is False
    assert seed["points"][1]["p"] == {
        "class": {"negative": None, "neutral": None, "positive": None}
    }
    assert seed["points"][1]["q"] == {"Fz": "flat"}
    assert s1["points"][0]["p"] == {"valence": None, "arousal": None}
    assert seed["stats"]["flagged"] == 1


def test_a_stopped_stream_keeps_its_trace_and_a_new_run_resumes_it():
    state = DashboardState()
    _feed(state, [_status(0, "connected"), *[_pred(i) for i in range(10)]])
    (update,) = state.ingest(_status(1, "stopped"), T0 + 5)
    assert update.kind == "status"
    assert update.body["stats"]["state"] == "stopped"
    assert state.tick(T0 + 60) == []  # stopped is not silent
    (snap,) = state.snapshot(T0 + 6)
    assert snap["stats"]["state"] == "stopped"
    assert len(snap["points"]) == 10  # the trace is kept
    # the stream returns: a new run numbers from 0 again
    state.ingest(_status(0, "connected"), T0 + 20)
    state.ingest(_pred(0), T0 + 20.25)
    state.ingest(_pred(1), T0 + 20.5)
    view = state.streams["s1"]
    assert view.state == "connected"
    assert [p.seq for p in view.points] == [*range(10), 0, 1]
    assert view.restarts == 1
    assert view.missed == 0


def test_missed_messages_and_silence():
    state = DashboardState(silent_after_s=3.0)
    state.ingest(_status(0, "connected"), T0)
    for seq in (0, 1, 4, 5, 9):
        state.ingest(_pred(seq), T0 + seq * 0.25)
    view = state.streams["s1"]
    assert view.missed == 5
    assert state.tick(T0 + 4.0) == []
    assert state.tick(T0 + 5.5) == ["s1"]  # quiet for more than 3 s
    assert view.state == "silent"
    assert state.tick(T0 + 6.0) == []  # said once
    state.ingest(_pred(10), T0 + 7)
    assert view.state == "connected"  # predictions flow again


def test_source_states_map_to_the_badge():
    state = DashboardState()
    for seq, (wire, shown) in enumerate(
        [("starting", "connecting"), ("connecting", "connecting"),
         ("connected", "connected"), ("reconnecting", "reconnecting"),
         ("stopped", "stopped")]
    ):  # fmt: skip
        state.ingest(_status(seq, wire), T0 + seq)
        assert state.streams["s1"].state == shown


# -- fan-out ---------------------------------------------------------------------------
def test_a_slow_tab_loses_its_queue_to_a_resync_and_delays_nobody():
    async def scenario() -> None:
        tabs = Tabs(maxsize=4)
        fast, slow = tabs.add(), tabs.add()
        assert await fast.take() == RESYNC  # a new tab starts with a snapshot
        assert await slow.take() == RESYNC
        got: list[int] = []
        for i in range(10):
            tabs.broadcast(Update("points", {"n": i}))  # never waits
            batch = await fast.take()
            got += [u.body["n"] for u in batch]
        assert got == list(range(10))  # the reading tab has every update
        assert fast.dropped == 0
        # the other never read: 4 queued, the 5th overflowed -> snapshot instead
        assert slow.dropped == 5
        assert slow.resyncs == 1
        assert slow.pending() == 0
        assert await slow.take() == RESYNC
        tabs.broadcast(Update("points", {"n": 10}))
        assert [u.body["n"] for u in await slow.take()] == [10]
        assert tabs.dropped == 5
        tabs.remove(slow)
        assert len(tabs) == 1
        assert tabs.dropped == 5  # a closed tab's losses still count
        assert await slow.take() == []  # a closed tab's writer wakes and ends

    run_async(scenario, timeout_s=10)
