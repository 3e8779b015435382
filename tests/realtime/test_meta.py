"""``emomon.meta.v1``: the stream description, its positions, its schema, and late
joiners receiving it over real ZeroMQ (directly and through ``emomon broker``)
and in ``emomon listen``."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from emomon.dsp.layout import DEAP_CHANNELS
from emomon.realtime.broker import Broker
from emomon.realtime.messages import (
    META_TOPIC,
    PREDICTION_TOPIC,
    STATUS_TOPIC,
    MessageError,
    MetaMessage,
    parse,
    validate,
)
from emomon.realtime.meta import describe, scalp_2d
from emomon.realtime.model import load_model
from emomon.realtime.publish import Publisher, PublisherSettings
from emomon.realtime.sources import ReplaySource
from emomon.realtime.stream import StreamSettings, run_stream
from emomon.realtime.subscribe import Subscriber

from .helpers import MAX_ITERATIONS, fake_prediction, read_line, statuses, unique

ANY_PORT = "tcp://127.0.0.1:*"


def _meta(stream: str = "s", names=DEAP_CHANNELS) -> MetaMessage:
    return describe(
        stream=stream,
        model="sha256-abc",
        ch_names=names,
        tasks={"valence": ["low", "high"], "arousal": ["low", "high"]},
        sfreq=250.0,
        model_sfreq=128.0,
        window_s=2.0,
        hop_s=0.25,
    )


def _until(cond, step, *, timeout_s: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if cond():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        step()
    raise AssertionError(f"too many iterations waiting for {what}")


# -- the description -----------------------------------------------------------------
def test_positions_and_scalp_map_of_the_deap_montage():
    msg = _meta()
    assert msg.ch_names == DEAP_CHANNELS
    assert all(p is not None for p in msg.pos_3d)
    pos = dict(zip(msg.ch_names, msg.pos_2d, strict=True))
    x, y = np.array(pos["Cz"])
    assert abs(x) < 0.05
    assert abs(y) < 0.05  # the vertex at the centre
    assert pos["Fz"][1] > 0.3 > -0.3 > pos["Pz"][1]  # nose up
    assert pos["C3"][0] < -0.3 < 0.3 < pos["C4"][0]  # right ear right
    for name in ("T7", "T8", "Oz"):  # the 10-20 circumference on the unit circle
        assert 0.9 < np.hypot(*pos[name]) < 1.1, name
    # mirror images of the left and right hemispheres
    np.testing.assert_allclose(
        np.array(pos["F3"]) * [-1, 1], np.array(pos["F4"]), atol=0.02
    )


def test_unknown_channel_has_no_position():
    msg = _meta(names=("Fp1", "EXG3", "O2"))
    assert msg.pos_3d[1] is None
    assert msg.pos_2d[1] is None
    assert msg.pos_2d[0] is not None
    validate(META_TOPIC, msg.to_dict())
    assert np.isnan(scalp_2d(np.full((1, 3), np.nan))).all()


def test_meta_round_trips_byte_for_byte():
    msg = _meta()
    frames = msg.frames()
    assert frames[0] == META_TOPIC.encode()
    parsed = parse(frames)
    assert parsed.kind == "meta"
    assert parsed.meta == msg
    assert MetaMessage.from_json(msg.to_json()).to_json() == msg.to_json()
    assert parsed.prediction is None
    assert parsed.status is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda p: p.pop("ch_names"), "lacks field 'ch_names'"),
        (lambda p: p.update(ch_names=[]), "non-empty list"),
        (lambda p: p.update(ch_names=["Fp1", "Fp1"]), "must not repeat"),
        (lambda p: p["pos_3d"].pop(), "one position"),
        (lambda p: p["pos_2d"].__setitem__(0, [1.0]), r"pos_2d\[0\]"),
        (lambda p: p["pos_3d"].__setitem__(2, [0, 0, float("nan")]), "finite"),
        (lambda p: p.update(sfreq=0), "sfreq must be a number > 0"),
        (lambda p: p.update(tasks={}), "tasks must be a non-empty"),
        (lambda p: p.update(tasks={"valence": "lh"}), "list of class names"),
    ],
)
def test_schema_refuses_malformed_meta(change, match):
    payload = json.loads(json.dumps(_meta().to_dict()))
    change(payload)
    with pytest.raises(MessageError, match=match):
        validate(META_TOPIC, payload)


# -- late joiners ----------------------------------------------------------------------
@pytest.mark.integration
def test_a_late_subscriber_gets_the_description_once():
    with Publisher(PublisherSettings(address=ANY_PORT)) as pub:
        early = Subscriber(pub.endpoint, topics=(META_TOPIC,))
        try:
            _until(
                lambda: pub.stats.subscribe_events >= 1,
                lambda: pub.poll_subscriptions(0.05),
                what="the early subscription",
            )
            msg = _meta("eeg-1")
            pub.publish_meta(msg)
            got = early.recv(timeout_s=5.0)
            assert got is not None
            assert got.meta == msg
            # a subscriber of predictions only, joining later, knows the stream
            late = Subscriber(pub.endpoint, topics=(PREDICTION_TOPIC,))
            try:
                _until(
                    lambda: "eeg-1" in late.meta,
                    lambda: (pub.poll_subscriptions(0.02), late.recv(timeout_s=0.02)),
                    what="the re-sent description",
                )
                assert late.meta["eeg-1"] == msg
                assert pub.stats.resent_meta >= 1
                assert late.received[PREDICTION_TOPIC] == 0  # not handed over
            finally:
                late.close()
            # the early subscriber received the re-send as a duplicate
            _until(
                lambda: early.duplicates[META_TOPIC] >= 1,
                lambda: early.recv(timeout_s=0.05),
                what="the duplicate",
            )
            assert early.received[META_TOPIC] == 1
        finally:
            early.close()


@pytest.mark.integration
def test_late_subscribers_get_the_description_through_the_broker():
    """Through ``emomon broker`` (its backend passes every subscription on), two
    subscribers joining one after the other both get it."""
    with Broker(ANY_PORT, ANY_PORT) as broker:
        pub = Publisher(
            PublisherSettings(address=broker.frontend_endpoint, connect=True)
        )
        subs = []
        try:
            msg = _meta("eeg-b")
            pub.publish_meta(msg)  # maybe before anyone listens: kept
            for _ in range(2):
                sub = Subscriber(broker.backend_endpoint, topics=(STATUS_TOPIC,))
                subs.append(sub)
                _until(
                    lambda s=sub: "eeg-b" in s.meta,
                    lambda s=sub: (
                        pub.poll_subscriptions(0.02),
                        s.recv(timeout_s=0.02),
                    ),
                    what="the description through the broker",
                )
                assert sub.meta["eeg-b"] == msg
        finally:
            for s in subs:
                s.close()
            pub.close()


@pytest.mark.integration
def test_the_live_loop_describes_its_stream_first(
    live_rig, deap_model, synthetic_trials
):
    rig = live_rig(topics=(META_TOPIC, STATUS_TOPIC, PREDICTION_TOPIC))
    rig.subscribed()
    name = unique("emomon-meta")
    model = load_model(deap_model)
    with ReplaySource(synthetic_trials, name=name) as src:
        run_stream(
            src,
            model,
            sinks=[rig.pub],
            settings=StreamSettings(max_predictions=4, duration_s=20.0),
        )
    msgs = rig.receive_until(
        lambda m: any(s["state"] == "stopped" for s in statuses(m)), timeout_s=10.0
    )
    assert msgs[0].kind == "meta"  # before the first status
    meta = msgs[0].meta
    assert meta.stream == name
    assert meta.ch_names == model.contract.ch_names
    assert meta.model == model.digest
    assert meta.sfreq == meta.model_sfreq == 128.0
    assert meta.hop_s == 0.25
    assert meta.window_s == 2.0
    assert dict(meta.tasks) == {t: tuple(c) for t, c in model.contract.tasks.items()}
    assert sum(m.kind == "meta" for m in msgs) == 1
    # a subscriber that connects after the run gets it too
    late = Subscriber(rig.pub.endpoint)
    try:
        _until(
            lambda: name in late.meta,
            lambda: (rig.pub.poll_subscriptions(0.02), late.recv(timeout_s=0.02)),
            what="the description after the run",
        )
        assert late.meta[name] == meta
    finally:
        late.close()


@pytest.mark.integration
def test_listen_prints_the_description(emomon_cli):
    with Publisher(PublisherSettings(address=ANY_PORT)) as pub:
        pub.publish_meta(_meta("eeg-cli"))
        listen = emomon_cli.start(
            "listen", "--address", pub.endpoint, "--count", "1", "--duration", "20"
        )
        _until(
            lambda: pub.stats.resent_meta >= 1,
            lambda: pub.poll_subscriptions(0.05),
            timeout_s=15.0,
            what="listen's subscription",
        )
        line = read_line(listen.stdout, "meta", timeout_s=10.0)
        assert line.startswith("meta    eeg-cli  32 channels (Fp1 AF3")
        assert "32 with positions" in line
        assert "250 Hz (model 128 Hz)" in line
        pub.publish_prediction(fake_prediction(0, "eeg-cli"))
        out, err = emomon_cli.finish(listen, 15.0)
    assert listen.returncode == 0, err
    assert "1 message(s)" in err  # the description is not counted
