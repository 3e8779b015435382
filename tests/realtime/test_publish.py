"""Publisher and subscriber over real ZeroMQ sockets on 127.0.0.1 (random ports).

No sleeps as synchronisation: the XPUB subscription notification tells when a
subscriber is connected, and every wait polls against a deadline.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import queue
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

import emomon.cli.listen
from emomon.cli import add_verb
from emomon.cli.listen import run as cmd_listen
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.errors import EmomonError
from emomon.realtime.messages import (
    PREDICTION_TOPIC,
    STATUS_TOPIC,
    PredictionMessage,
    parse,
    status_message,
)
from emomon.realtime.model import load_model
from emomon.realtime.publish import (
    LSLPredictionOutlet,
    Publisher,
    PublisherSettings,
    StatusTimer,
    is_loopback_address,
)
from emomon.realtime.replay import ReplaySession, ReplaySettings
from emomon.realtime.subscribe import Subscriber

from .helpers import (
    MAX_ITERATIONS,
    SF,
    fake_prediction,
    open_inlet,
    session_eeg,
    unique,
)

REPO = Path(__file__).resolve().parents[2]
ANY_PORT = "tcp://127.0.0.1:*"


def prediction(seq: int, stream: str = "test") -> dict:
    return fake_prediction(seq, stream, t_pub=1718000000.0 + seq)


def status(seq: int, state: str = "connected", stream: str = "test") -> dict:
    return status_message(
        seq=seq,
        stream=stream,
        state=state,
        samples=128 * seq,
        dropped=0,
        buffer_lag_s=0.004,
        uptime_s=float(seq),
        predictions=4 * seq,
    )


def wait_until(cond: Callable[[], bool], step: Callable[[], object], timeout_s=5.0):
    """Run ``step`` until ``cond`` holds; bounded in time and iterations."""
    deadline = time.monotonic() + timeout_s
    for _ in range(100_000):
        if cond():
            return
        if time.monotonic() > deadline:
            break
        step()
    raise AssertionError(f"condition not met within {timeout_s} s")


def wait_subscribed(pub: Publisher, n_events: int, timeout_s: float = 5.0) -> None:
    """Until the publisher has seen ``n_events`` subscriptions in total."""
    wait_until(
        lambda: pub.stats.subscribe_events >= n_events,
        lambda: pub.poll_subscriptions(timeout_s=0.05),
        timeout_s,
    )


def recv_n(sub: Subscriber, n: int, timeout_s: float = 5.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        msg = sub.recv(timeout_s=0.1)
        if msg is not None:
            got.append(msg)
    return got


@pytest.fixture
def publisher() -> Iterator[Callable[..., Publisher]]:
    made: list[Publisher] = []

    def make(**kw) -> Publisher:
        pub = Publisher(PublisherSettings(**{"address": ANY_PORT, **kw}))
        made.append(pub)
        return pub

    yield make
    for pub in made:
        pub.close()


@pytest.fixture
def subscriber() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(address: str, **kw) -> Subscriber:
        sub = Subscriber(address, **kw)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()


# -- settings (no sockets) -----------------------------------------------------
@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("tcp://127.0.0.1:5556", True),
        ("tcp://127.0.0.1:*", True),
        ("tcp://127.3.2.1:5556", True),
        ("tcp://localhost:5556", True),
        ("tcp://[::1]:5556", True),
        ("ipc:///tmp/emomon.sock", True),
        ("inproc://emomon", True),
        ("tcp://*:5556", False),
        ("tcp://0.0.0.0:5556", False),
        ("tcp://[::]:5556", False),
        ("tcp://192.168.1.20:5556", False),
        ("tcp://eth0:5556", False),
        ("ws://127.0.0.1:5556", False),
        ("127.0.0.1:5556", False),
    ],
)
def test_is_loopback_address(address, local):
    assert is_loopback_address(address) is local


@pytest.mark.parametrize(
    "address",
    ["tcp://*:5556", "tcp://0.0.0.0:*", "tcp://eth0:5556", "tcp://10.0.0.2:1"],
)
def test_non_loopback_bind_needs_allow_remote(address):
    with pytest.raises(EmomonError, match="allow_remote"):
        PublisherSettings(address=address)
    assert PublisherSettings(address=address, allow_remote=True).allow_remote


@pytest.mark.parametrize(
    "kw", [{"address": "127.0.0.1:5556"}, {"sndhwm": -1}, {"heartbeat_s": 0}]
)
def test_settings_reject_bad_values(kw):
    with pytest.raises(EmomonError):
        PublisherSettings(**kw)


def test_status_timer_fixed_schedule_without_burst():
    timer = StatusTimer(1.0, clock=lambda: 0.0)
    beats = [t for t in (0.0, 0.5, 0.99, 1.0, 1.5, 2.01, 7.3, 7.4, 8.3) if timer.due(t)]
    # On schedule at 0, 1, 2; after the stall one beat at 7.3, then 8.3.
    assert beats == [0.0, 1.0, 2.01, 7.3, 8.3]
    timer.reset()
    assert timer.due(8.4)


# -- sockets -------------------------------------------------------------------
@pytest.mark.integration
def test_bind_failure_is_a_clear_error(publisher):
    first = publisher()
    with pytest.raises(EmomonError, match="cannot bind"):
        publisher(address=first.endpoint)


@pytest.mark.integration
def test_predictions_arrive_in_order_with_consecutive_seq(publisher, subscriber):
    pub = publisher()
    assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", pub.endpoint)
    sub = subscriber(pub.endpoint, topics=(PREDICTION_TOPIC,))
    wait_subscribed(pub, 1)
    assert pub.has_subscribers(PREDICTION_TOPIC)
    assert not pub.has_subscribers(STATUS_TOPIC)
    for seq in range(100):
        assert pub.publish_prediction(prediction(seq)) is True
    got = list(sub.messages(count=100, duration_s=5.0))
    assert [m.seq for m in got] == list(range(100))
    assert list(sub.messages(idle_s=0.05)) == []  # iteration ends when idle
    assert got[0].payload == json.loads(json.dumps(prediction(0)))
    assert sub.missed == {PREDICTION_TOPIC: 0}
    assert sub.received == {PREDICTION_TOPIC: 100}
    assert pub.stats.sent == 100
    assert pub.dropped == 0


@pytest.mark.integration
def test_late_joiner_gets_latest_status_at_once(publisher, subscriber):
    pub = publisher()
    early = subscriber(pub.endpoint)
    wait_subscribed(pub, 2)  # two topics
    built: list[int] = []

    def build() -> dict:
        built.append(len(built))
        return status(len(built) - 1)

    assert pub.maybe_heartbeat(build, now=0.0)  # the first heartbeat is due at once
    first = recv_n(early, 1)
    assert [m.payload["seq"] for m in first] == [0]
    assert first[0].kind == "status"
    for seq in range(5):
        pub.publish_prediction(prediction(seq))
    assert len(recv_n(early, 5)) == 5

    late = subscriber(pub.endpoint, topics=(STATUS_TOPIC,))
    t0 = time.monotonic()
    got = None
    while got is None and time.monotonic() - t0 < 1.0:
        # The pipeline loop: heartbeat not due for a second, so nothing is built.
        assert not pub.maybe_heartbeat(build, now=0.5)
        got = late.recv(timeout_s=0.01)
    assert got is not None, "late joiner saw no status within 1 s"
    assert time.monotonic() - t0 < 1.0
    assert got.kind == "status"
    assert got.seq == 0
    assert got.payload["state"] == "connected"
    assert len(built) == 1  # the re-sent message, not a new heartbeat
    assert pub.stats.resent_status == 1

    # The re-send also reached the early subscriber, which drops the duplicate.
    wait_until(
        lambda: early.duplicates[STATUS_TOPIC] == 1,
        lambda: early.recv(timeout_s=0.05),
    )
    assert early.received[STATUS_TOPIC] == 1
    assert early.missed[STATUS_TOPIC] == 0

    # The next heartbeat arrives on schedule for everyone.
    assert pub.maybe_heartbeat(build, now=1.0)
    assert [m.seq for m in recv_n(late, 1)] == [1]


@pytest.mark.integration
def test_status_of_every_stream_is_resent_and_unsubscribe_is_seen(
    publisher, subscriber
):
    pub = publisher()
    pub.publish_status(status(3, stream="a"))
    pub.publish_status(status(8, "reconnecting", stream="b"))
    sub = subscriber(pub.endpoint, topics=(STATUS_TOPIC,))
    got: list = []
    wait_until(
        lambda: len(got) == 2,
        lambda: (pub.poll_subscriptions(0.01), got.extend(recv_n(sub, 1, 0.05))),
    )
    assert sorted((m.stream, m.seq) for m in got) == [("a", 3), ("b", 8)]
    sub.close()
    wait_until(
        lambda: pub.stats.active_subscriptions == 0,
        lambda: pub.poll_subscriptions(0.05),
    )
    # one per subscription: the status topic and the meta topic it always adds
    assert pub.stats.unsubscribe_events == 2


@pytest.mark.integration
def test_gap_duplicate_and_restart_detection(publisher, subscriber):
    pub = publisher()
    sub = subscriber(pub.endpoint)
    wait_subscribed(pub, 2)
    seqs = [0, 1, 2, 5, 6, 6, 10, 0, 1]  # 2 + 3 missed, 1 duplicate, 1 restart
    for seq in seqs:
        pub.publish_prediction(prediction(seq))
    got = recv_n(sub, len(seqs) - 1)
    assert [m.seq for m in got] == [0, 1, 2, 5, 6, 10, 0, 1]
    assert sub.missed[PREDICTION_TOPIC] == 5
    assert sub.duplicates[PREDICTION_TOPIC] == 1
    assert sub.restarts == 1
    # Streams are numbered independently: another stream is not a gap.
    pub.publish_prediction(prediction(0, stream="other"))
    assert [m.stream for m in recv_n(sub, 1)] == ["other"]
    assert sub.missed[PREDICTION_TOPIC] == 5


@pytest.mark.integration
def test_subscriber_skips_malformed_messages(subscriber):
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.XPUB)
    raw.linger = 0
    try:
        port = raw.bind_to_random_port("tcp://127.0.0.1")
        sub = subscriber(f"tcp://127.0.0.1:{port}", topics=(PREDICTION_TOPIC,))
        assert raw.poll(5000), "no subscription"
        raw.recv()
        raw.send_multipart([PREDICTION_TOPIC.encode(), b"{not json"])
        raw.send_multipart([PREDICTION_TOPIC.encode(), b"{}", b"extra"])
        raw.send_multipart(
            [PREDICTION_TOPIC.encode(), json.dumps(prediction(0)).encode()]
        )
        got = recv_n(sub, 1)
        assert [m.seq for m in got] == [0]
        assert sub.invalid == 2
        assert "2 frames" in sub.last_error
    finally:
        raw.close(0)


def _dead_subscriber(endpoint: str, rcvbuf: int) -> zmq.Socket:
    """A SUB that never reads, with a 1-message queue and a small TCP buffer.

    A tiny ``rcvbuf`` fills fastest, but reading it back later is slow (TCP with
    a window of a few hundred bytes); 64 KiB keeps a later drain quick.
    """
    s = zmq.Context.instance().socket(zmq.SUB)
    s.linger = 0
    s.rcvhwm = 1
    s.setsockopt(zmq.RCVBUF, rcvbuf)
    s.subscribe(PREDICTION_TOPIC.encode())
    s.connect(endpoint)
    return s


def _drain_seqs(sock: zmq.Socket, timeout_s: float = 2.0) -> list[int]:
    seqs: list[int] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and sock.poll(100):
        for _ in range(10_000):
            try:
                seqs.append(parse(sock.recv_multipart(zmq.NOBLOCK)).seq)
            except zmq.Again:
                break
    return seqs


N_FLOOD = 20_000


def assert_never_blocked(durations: list[float]) -> None:
    """Per-call publish times of a flood show no blocking.

    A blocking send would not return at all (the dead subscriber never reads), so
    the bounds only need to be far above the ~30 us a call costs: generous for a
    loaded 2-core CI machine, and still far below a 250 ms hop.
    """
    assert len(durations) == N_FLOOD
    total, worst = sum(durations), max(durations)
    median = sorted(durations)[N_FLOOD // 2]
    assert median < 1e-3, f"median publish call took {median * 1e6:.0f} us"
    assert worst < 0.5, f"slowest publish call took {worst:.3f} s"
    assert total < 5.0, f"publishing {N_FLOOD} messages took {total:.2f} s"


@pytest.mark.integration
def test_dead_subscriber_never_blocks_and_costs_only_itself(publisher, subscriber):
    pub = publisher(sndbuf=4096)
    dead = _dead_subscriber(pub.endpoint, rcvbuf=65536)
    try:
        live = subscriber(pub.endpoint, topics=(PREDICTION_TOPIC,))
        wait_subscribed(pub, 2)
        payloads = [prediction(seq) for seq in range(N_FLOOD)]
        durations: list[float] = []
        for start in range(0, N_FLOOD, 100):
            for payload in payloads[start : start + 100]:
                t = time.perf_counter()
                assert pub.publish_prediction(payload)
                durations.append(time.perf_counter() - t)
            got = recv_n(live, 100)  # the reading subscriber keeps up
            assert [m.seq for m in got] == list(range(start, start + 100))
        assert_never_blocked(durations)
        # Lossy per subscriber: nothing refused, the live one missed nothing ...
        assert pub.dropped == 0
        assert pub.stats.sent == N_FLOOD
        assert live.received[PREDICTION_TOPIC] == N_FLOOD
        assert live.missed[PREDICTION_TOPIC] == 0
        # ... and the dead one lost most messages: once it reads again, the next
        # message reveals the gap.
        seqs = _drain_seqs(dead)
        assert 0 < len(seqs) < N_FLOOD // 2
        deadline = time.monotonic() + 5.0
        extra = N_FLOOD
        while seqs[-1] < N_FLOOD and time.monotonic() < deadline:
            pub.publish_prediction(prediction(extra))
            extra += 1
            seqs += _drain_seqs(dead, timeout_s=0.2)
        assert seqs == sorted(seqs)
        assert seqs[-1] >= N_FLOOD
        assert seqs[-1] + 1 - len(seqs) > N_FLOOD // 2  # missed
    finally:
        dead.close(0)


@pytest.mark.integration
def test_nodrop_refuses_instead_of_blocking_and_counts_drops(publisher, subscriber):
    pub = publisher(sndhwm=100, sndbuf=4096, nodrop=True)
    dead = _dead_subscriber(pub.endpoint, rcvbuf=1024)
    try:
        live = subscriber(pub.endpoint, topics=(PREDICTION_TOPIC,))
        wait_subscribed(pub, 2)
        payloads = [prediction(seq) for seq in range(N_FLOOD)]
        results, durations = [], []
        for payload in payloads:
            t = time.perf_counter()
            results.append(pub.publish_prediction(payload))
            durations.append(time.perf_counter() - t)
        assert_never_blocked(durations)
        sent = sum(results)
        assert pub.dropped == N_FLOOD - sent > N_FLOOD // 2
        assert pub.stats.sent == sent > 0
        # Whatever was sent went to everyone: the live subscriber gets all of it.
        got = recv_n(live, sent)
        assert len(got) == sent
        assert [m.seq for m in got] == [s for s, ok in enumerate(results) if ok]
        assert live.missed[PREDICTION_TOPIC] == got[-1].seq - got[0].seq + 1 - sent
    finally:
        dead.close(0)


@pytest.mark.integration
def test_close_is_idempotent_and_publish_after_close_fails(publisher):
    pub = publisher()
    with pub:
        pass
    assert pub.closed
    pub.close()
    with pytest.raises(RuntimeError, match="closed"):
        pub.publish_prediction(prediction(0))


@pytest.mark.integration
def test_invalid_payload_is_refused_before_sending(publisher):
    pub = publisher()
    bad = prediction(0)
    del bad["quality"]
    with pytest.raises(ValueError, match="quality"):
        pub.publish_prediction(bad)
    assert pub.stats.sent == 0


# -- LSL outlet ----------------------------------------------------------------
@pytest.mark.integration
def test_lsl_prediction_outlet_streams_p_high_per_task():
    pylsl = pytest.importorskip("pylsl")
    stream = f"emomon-test-{uuid.uuid4().hex[:8]}"
    tasks = {"valence": ["low", "high"], "class": ["negative", "neutral", "positive"]}
    with LSLPredictionOutlet(stream, tasks, hop_s=0.25, model="abc") as outlet:
        assert outlet.name == f"{stream}-emotion"
        assert outlet.channel_names == [
            "valence.p_high",
            "class.p_negative",
            "class.p_neutral",
            "class.p_positive",
        ]
        found = pylsl.resolve_byprop("name", outlet.name, timeout=5.0)
        assert len(found) == 1
        info = found[0]
        assert info.type() == "Emotion"
        assert info.channel_count() == 4
        assert info.nominal_srate() == 4.0  # one prediction per 0.25 s hop
        inlet = pylsl.StreamInlet(info)
        try:
            inlet.open_stream(timeout=5.0)
            assert inlet.info(timeout=5.0).nominal_srate() == 4.0
            payload = PredictionMessage.build(
                seq=0,
                stream=stream,
                t_lsl=pylsl.local_clock(),
                window_s=2.0,
                tasks={
                    "valence": (None, None),
                    "class": (
                        {"negative": 0.25, "neutral": 0.25, "positive": 0.5},
                        "positive",
                    ),
                },
                quality={"ok": False, "bad_channels": ["Fp1"], "dropped": 0},
                latency_ms=1.0,
                model="abc",
            )
            outlet.push(payload)
            sample, stamp = inlet.pull_sample(timeout=5.0)
            assert sample is not None
            assert math.isnan(sample[0])
            assert sample[1:] == [0.25, 0.25, 0.5]
            assert stamp == pytest.approx(payload.t_lsl, abs=1e-6)
            desc = inlet.info(timeout=5.0).desc()
            first = desc.child("channels").child("channel")
            assert first.child_value("label") == "valence.p_high"
        finally:
            inlet.close_stream()
            del inlet


def test_lsl_prediction_outlet_needs_a_hop():
    with pytest.raises(EmomonError, match="hop_s must be > 0"):
        LSLPredictionOutlet("x", {"valence": ["low", "high"]}, hop_s=0.0)


@pytest.mark.integration
def test_lsl_outlet_sends_one_sample_per_hop_flagged_windows_too(
    live_rig, synthetic_trials, deap_model
):
    """Through the live loop: the outlet declares 1 / hop and gets a sample for
    every window, a flagged one (NaN burst) as NaN, stamped with its ``t_lsl``
    one hop apart (in the replay's time: hop / speed)."""
    eeg = session_eeg(synthetic_trials)
    eeg[3, 600:612] = np.nan  # flags the windows that hold samples 600..611
    session = ReplaySession(eeg=eeg, sfreq=SF, ch_names=DEAP_CHANNELS, events=(),
                            subject="s01", dataset="synthetic", n_trials=2)  # fmt: skip
    name = unique("emomon-outlet")
    model = load_model(deap_model)
    n_pred, speed = 24, 8.0
    outlet = LSLPredictionOutlet(name, model.contract.tasks, hop_s=0.25)
    try:
        inlet = open_inlet(f"name='{name}-emotion' and type='Emotion'")
        assert inlet.info(timeout=5.0).nominal_srate() == 4.0
        settings = ReplaySettings(name=name, speed=speed, markers=False,
                                  wait_for_consumers_s=5.0)  # fmt: skip
        _, _, run = live_rig().replay_and_stream(
            session, settings, model, sinks=[outlet], max_predictions=n_pred,
            duration_s=20.0,
        )  # fmt: skip
        run.join(30.0)
        got: list[tuple[list[float], float]] = []
        deadline = time.monotonic() + 5.0
        for _ in range(MAX_ITERATIONS):
            if len(got) >= n_pred or time.monotonic() > deadline:
                break
            sample, stamp = inlet.pull_sample(timeout=0.05)
            if sample is not None:
                got.append((sample, stamp))
        assert inlet.pull_sample(timeout=0.2)[0] is None  # nothing more
    finally:
        outlet.close()
    assert len(got) == len(run.preds) == n_pred
    flagged = [not payload["quality"]["ok"] for _, payload in run.preds]
    assert 0 < sum(flagged) < n_pred
    for (sample, stamp), (window, payload) in zip(got, run.preds, strict=True):
        assert stamp == window.t_lsl
        if payload["quality"]["ok"]:
            expected = [payload[t]["p_high"] for t in ("valence", "arousal")]
            assert sample == pytest.approx(expected, abs=1e-6)  # float32
        else:
            assert all(math.isnan(v) for v in sample)
    stamps = np.array([stamp for _, stamp in got])
    np.testing.assert_allclose(np.diff(stamps), 0.25 / speed, rtol=0, atol=1e-9)


# -- the listen verb -----------------------------------------------------------
class _BackgroundPublisher:
    """A publisher in its own thread: a status heartbeat and a prediction every
    20 ms, until stopped (at most 10 s)."""

    def __init__(self) -> None:
        self._endpoint: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with Publisher(PublisherSettings(address=ANY_PORT)) as pub:
            self._endpoint.put(pub.endpoint)
            for seq in range(500):
                if self._stop.wait(0.02):
                    break
                pub.maybe_heartbeat(lambda seq=seq: status(seq))
                pub.publish_prediction(prediction(seq))

    def __enter__(self) -> str:
        self._thread.start()
        return self._endpoint.get(timeout=5)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _listen_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="emomon")
    add_verb(p.add_subparsers(dest="command"), emomon.cli.listen)
    return p.parse_args(["listen", *argv])


def test_listen_parser_defaults_and_topic_aliases():
    args = _listen_args([])
    assert args.address == "tcp://127.0.0.1:5556"
    assert args.topics is None
    assert not args.json
    assert args.count is None
    assert args.duration is None
    assert not args.latest
    assert _listen_args(["--latest"]).latest
    assert args.func is cmd_listen
    args = _listen_args(["--topic", "status", "--topic", PREDICTION_TOPIC])
    assert args.topics == [STATUS_TOPIC, PREDICTION_TOPIC]
    with pytest.raises(SystemExit):
        _listen_args(["--topic", "weather"])
    with pytest.raises(SystemExit):
        _listen_args(["--count", "0"])


@pytest.mark.integration
def test_listen_json_prints_count_lines():
    out = io.StringIO()
    with _BackgroundPublisher() as endpoint:
        args = _listen_args(
            ["--address", endpoint, "--count", "3", "--json", "--duration", "10"]
        )
        assert args.func(args, out=out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    for line in lines:
        payload = json.loads(line)
        assert payload["v"] == 1
        assert payload["stream"] == "test"


@pytest.mark.integration
def test_listen_plain_prints_prediction_lines_and_state_once():
    out = io.StringIO()
    with _BackgroundPublisher() as endpoint:
        args = _listen_args(["--address", endpoint, "--count", "6", "--duration", "10"])
        assert cmd_listen(args, out=out) == 0
    lines = out.getvalue().splitlines()
    pred = [ln for ln in lines if not ln.startswith("status")]
    stat = [ln for ln in lines if ln.startswith("status")]
    assert len(stat) == 1
    assert "test  connected  samples" in stat[0]
    assert pred, lines
    line_re = r"\s*\d+  \d+\.\d{3}  valence 0\.71 high  arousal 0\.35 low  ok  1\.3 ms"
    for line in pred:
        assert re.fullmatch(line_re, line), line


@pytest.mark.integration
def test_listen_duration_bound_with_nothing_published(capsys):
    args = _listen_args(["--address", "tcp://127.0.0.1:1", "--duration", "0.3"])
    t = time.monotonic()
    assert cmd_listen(args) == 0
    assert time.monotonic() - t < 3.0
    err = capsys.readouterr().err
    assert "nothing received" in err


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_listen_process_exits_0_on_signal(publisher, sig):
    pub = publisher()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emomon.cli", "listen", "--address", pub.endpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        wait_subscribed(pub, 2, timeout_s=20)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        first = ""
        deadline = time.monotonic() + 5
        seq = 0
        while not first and time.monotonic() < deadline:
            pub.publish_prediction(prediction(seq))
            seq += 1
            if sel.select(timeout=0.05):
                first = proc.stdout.readline()
        assert "valence 0.71 high" in first
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "message(s)" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


# -- a consumer slower than the publisher: --latest --------------------------------
@pytest.mark.integration
def test_latest_hands_over_the_newest_message_of_each_topic_and_stream(
    publisher, subscriber
):
    pub = publisher()
    latest = subscriber(pub.endpoint, latest=True)
    plain = subscriber(pub.endpoint)  # tells when everything has arrived
    wait_subscribed(pub, 4)
    n = 60
    for seq in range(n):
        pub.publish_prediction(prediction(seq, "a"))
        pub.publish_prediction(prediction(seq, "b"))
    pub.publish_status(status(0, stream="a"))
    assert len(recv_n(plain, 2 * n + 1)) == 2 * n + 1
    got = []
    for _ in range(MAX_ITERATIONS):
        msg = latest.recv(timeout_s=0.5)
        if msg is None:
            break
        got.append(msg)
    # the newest of each (topic, stream) always arrives; older ones are passed
    # over (counted), never lost
    newest = {(m.topic, m.stream): m.seq for m in got}
    assert newest == {
        (PREDICTION_TOPIC, "a"): n - 1,
        (PREDICTION_TOPIC, "b"): n - 1,
        (STATUS_TOPIC, "a"): 0,
    }
    for key in newest:
        seqs = [m.seq for m in got if (m.topic, m.stream) == key]
        assert seqs == sorted(set(seqs))
    assert (
        latest.received == plain.received == {PREDICTION_TOPIC: 2 * n, STATUS_TOPIC: 1}
    )
    assert latest.missed == {PREDICTION_TOPIC: 0, STATUS_TOPIC: 0}
    assert sum(latest.skipped.values()) == 2 * n + 1 - len(got)
    assert len(got) < 2 * n // 3  # most were passed over


class _FastPublisher:
    """Predictions as fast as a 1 ms wait between them lets (about a thousand
    a second), in a thread, until stopped (at most 20 s); :attr:`seq` is the
    last one sent."""

    def __init__(self) -> None:
        self.seq = -1
        self._endpoint: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with Publisher(PublisherSettings(address=ANY_PORT)) as pub:
            self._endpoint.put(pub.endpoint)
            deadline = time.monotonic() + 20.0
            for seq in range(100_000):
                if self._stop.wait(0.001) or time.monotonic() > deadline:
                    break
                pub.publish_prediction(prediction(seq))
                self.seq = seq

    def __enter__(self) -> _FastPublisher:
        self._thread.start()
        self.endpoint = self._endpoint.get(timeout=5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _SlowApp(io.StringIO):
    """Where ``emomon listen --json`` prints: an app that takes 50 ms per line.
    Notes how many messages behind the publisher each printed one is."""

    def __init__(self, source: _FastPublisher) -> None:
        super().__init__()
        self.source = source
        self.lags: list[int] = []
        self._busy = threading.Event()  # never set: the app's work, not a sync

    def flush(self) -> None:
        for line in self.getvalue().splitlines():
            self.lags.append(self.source.seq - json.loads(line)["seq"])
            self._busy.wait(0.05)
        self.seek(0)
        self.truncate()


@pytest.mark.integration
def test_listen_latest_keeps_a_slow_reader_up_to_date(capsys):
    """Without ``--latest`` a reader slower than the publisher falls ever
    further behind (it reads the queue in order); with it, every line is the
    newest message, at most one line's work behind."""
    lags = {}
    for latest in (False, True):
        with _FastPublisher() as source:
            app = _SlowApp(source)
            args = _listen_args(["--address", source.endpoint, "--json", "--count",
                                 "20", "--duration", "15", "--topic", "prediction",
                                 *(["--latest"] if latest else [])])  # fmt: skip
            assert cmd_listen(args, out=app) == 0
        lags[latest] = app.lags
        err = capsys.readouterr().err
        assert "20 message(s), 0 missed" in err
        assert ("passed over for newer ones" in err) == latest
    behind, fresh = lags[False], lags[True]
    assert len(behind) == len(fresh) == 20
    why = f"messages behind, plain: {behind}; --latest: {fresh}"
    assert behind[-1] > behind[10] > behind[0], why  # ever further behind
    assert behind[-1] >= 100, why
    assert max(fresh) * 4 < behind[-1], why
    assert max(fresh[10:]) <= max(fresh[:10]) + 50, why  # does not grow


def _readme_python_block(containing: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"README: {len(found)} python blocks with {containing!r}"
    return found[0]


@pytest.mark.integration
def test_readme_pyzmq_drain_keeps_the_newest_per_topic(publisher):
    """The README's plain-pyzmq ``newest`` (what ``--latest`` does), run on a
    real SUB socket."""
    namespace: dict = {}
    exec(compile(_readme_python_block("def newest("), "README.md", "exec"), namespace)
    newest = namespace["newest"]
    pub = publisher()
    sock = zmq.Context.instance().socket(zmq.SUB)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"emomon.")
        sock.connect(pub.endpoint)
        wait_subscribed(pub, 1)
        for seq in range(50):
            pub.publish_prediction(prediction(seq))
        pub.publish_status(status(0))
        merged: dict = {}
        calls = 0
        for _ in range(MAX_ITERATIONS):
            if not sock.poll(500):
                break
            merged.update(newest(sock))
            calls += 1
    finally:
        sock.close(linger=0)
    assert set(merged) == {PREDICTION_TOPIC.encode(), STATUS_TOPIC.encode()}
    assert parse(merged[PREDICTION_TOPIC.encode()]).seq == 49
    assert parse(merged[STATUS_TOPIC.encode()]).seq == 0
    assert calls < 10  # each call drained what was waiting
