"""Wire format (DESIGN.md section 10): builders, encoder and the strict parser."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emomon.errors import EmomonError
from emomon.realtime.messages import (
    PREDICTION_FIELDS,
    PREDICTION_TOPIC,
    STATES,
    STATUS_FIELDS,
    STATUS_TOPIC,
    TOPICS,
    Message,
    MessageError,
    PredictionMessage,
    Quality,
    StatusMessage,
    TaskOutput,
    encode,
    parse,
    prediction_message,
    status_message,
    validate,
)

QUALITY_OK = {"ok": True, "bad_channels": [], "dropped": 0}


_PREDICTION_KW = dict(
    seq=41,
    stream="Muse-1234",
    t_lsl=18233.52,
    t_pub=1718000000.25,
    window_s=2.0,
    tasks={"valence": (0.71, "high"), "arousal": (0.35, "low")},
    quality=QUALITY_OK,
    latency_ms=1.3,
    model="3f9a2c1d7e4b",
)
_STATUS_KW = dict(
    seq=7,
    stream="Muse-1234",
    state="connected",
    samples=89600,
    dropped=0,
    buffer_lag_s=0.004,
    uptime_s=700.0,
    predictions=2796,
    t_pub=1718000000.0,
)


def _prediction(**over):
    return prediction_message(**{**_PREDICTION_KW, **over})


def _status(**over):
    return status_message(**{**_STATUS_KW, **over})


def _frames(topic: str, payload) -> list[bytes]:
    """Frames with a payload written by plain json (no sanitising)."""
    return [topic.encode(), json.dumps(payload).encode()]


# -- building and round trip -----------------------------------------------------
def test_prediction_payload_is_exactly_the_design_md_schema():
    p = _prediction()
    assert list(p) == [
        "v",
        "seq",
        "stream",
        "t_lsl",
        "t_pub",
        "window_s",
        "valence",
        "arousal",
        "quality",
        "latency_ms",
        "model",
    ]
    assert p["v"] == 1
    assert p["valence"] == {"p_high": 0.71, "label": "high"}
    assert p["arousal"] == {"p_high": 0.35, "label": "low"}
    assert set(p["quality"]) == {"ok", "bad_channels", "dropped"}
    assert set(PREDICTION_FIELDS) | {"valence", "arousal"} == set(p)


def test_status_payload_keys():
    s = _status(last_error="stream lost")
    assert list(s) == list(STATUS_FIELDS)
    assert s["state"] == "connected"
    assert s["last_error"] == "stream lost"


@pytest.mark.parametrize("state", STATES)
def test_status_round_trip_every_state(state):
    s = _status(state=state)
    msg = parse(encode(STATUS_TOPIC, s))
    assert msg == Message(STATUS_TOPIC, s)
    assert msg.kind == "status"
    assert msg.seq == 7
    assert msg.tasks == {}


def test_prediction_round_trip():
    p = _prediction()
    frames = encode(PREDICTION_TOPIC, p)
    assert frames[0] == b"emomon.prediction.v1"
    assert b" " not in frames[1]  # compact
    msg = parse(frames)
    assert msg.topic == PREDICTION_TOPIC
    assert msg.payload == p
    assert msg.kind == "prediction"
    assert msg.seq == 41
    assert msg.stream == "Muse-1234"
    assert set(msg.tasks) == {"valence", "arousal"}


def test_multiclass_task_round_trip():
    probs = {"negative": 0.1, "neutral": 0.2, "positive": 0.7}
    p = _prediction(tasks={"class": (probs, "positive")})
    assert p["class"] == {"probs": probs, "label": "positive"}
    assert parse(encode(PREDICTION_TOPIC, p)).payload == p


def test_nan_and_inf_become_null():
    p = _prediction(
        t_lsl=math.nan,
        latency_ms=math.inf,
        tasks={
            "valence": (math.nan, None),
            "class": ({"a": -math.inf, "b": 0.5}, "b"),
        },
        quality={"ok": False, "bad_channels": ["Fp1"], "dropped": 3},
    )
    raw = encode(PREDICTION_TOPIC, p)[1]
    assert b"NaN" not in raw
    assert b"Infinity" not in raw
    got = parse([PREDICTION_TOPIC.encode(), raw]).payload
    assert got["t_lsl"] is None
    assert got["latency_ms"] is None
    assert got["valence"] == {"p_high": None, "label": None}
    assert got["class"]["probs"] == {"a": None, "b": 0.5}
    assert got["quality"] == {"ok": False, "bad_channels": ["Fp1"], "dropped": 3}


def test_numpy_values_are_accepted_and_encoded_as_python():
    p = _prediction(
        seq=np.int64(3),
        t_lsl=np.float64(1.5),
        tasks={"valence": (np.float32(0.25), "low")},
        quality={"ok": np.bool_(True), "bad_channels": np.array([]), "dropped": 0},
    )
    got = parse(encode(PREDICTION_TOPIC, p)).payload
    assert got["seq"] == 3
    assert got["valence"]["p_high"] == 0.25
    assert got["quality"] == QUALITY_OK


@pytest.mark.parametrize(
    ("over", "exc"),
    [
        ({"tasks": {}}, ValueError),
        ({"tasks": {"seq": (0.5, "high")}}, ValueError),
        ({"tasks": {"valence": (1.5, "high")}}, ValueError),
        ({"tasks": {"valence": 0.5}}, TypeError),
        ({"tasks": {"class": ({"a": 0.5}, "b")}}, ValueError),
        ({"seq": True}, TypeError),
        ({"seq": -1}, ValueError),
        ({"stream": ""}, ValueError),
        ({"quality": {"ok": True}}, ValueError),
        ({"t_lsl": "now"}, TypeError),
    ],
)
def test_prediction_builder_rejects_bad_arguments(over, exc):
    with pytest.raises(exc):
        _prediction(**over)


def test_status_builder_rejects_unknown_state():
    with pytest.raises(ValueError, match="state"):
        _status(state="running")


# -- strict parsing ---------------------------------------------------------------
P = PREDICTION_TOPIC.encode()
S = STATUS_TOPIC.encode()
_GOOD_P = json.loads(encode(PREDICTION_TOPIC, _prediction())[1])
_GOOD_S = json.loads(encode(STATUS_TOPIC, _status())[1])


_DELETE = object()


def _edit(base: dict, **changes) -> bytes:
    d = json.loads(json.dumps(base))
    for key, value in changes.items():
        if value is _DELETE:
            del d[key]
        else:
            d[key] = value
    return json.dumps(d).encode()


MALFORMED = [
    ("not a list", None, "list of 2 frames"),
    ("bytes not list", b"abc", "list of 2 frames"),
    ("no frames", [], "2 frames"),
    ("one frame", [P], "2 frames"),
    ("three frames", [P, b"{}", b"{}"], "2 frames"),
    ("str frame", [PREDICTION_TOPIC, b"{}"], "must be bytes"),
    ("int frame", [P, 3], "must be bytes"),
    ("unknown topic", [b"emomon.prediction.v2", b"{}"], "unknown topic"),
    ("topic prefix", [b"emomon.prediction", b"{}"], "unknown topic"),
    ("empty payload", [P, b""], "not valid JSON"),
    ("not utf-8", [P, b'{"v":1,"stream":"\xff"}'], "not UTF-8"),
    ("invalid json", [P, b'{"v":1,'], "not valid JSON"),
    ("json array", [P, b"[1,2]"], "JSON object"),
    ("json NaN", [S, _edit(_GOOD_S, uptime_s=math.nan)], "NaN"),
    ("json Infinity", [S, b'{"v":1,"uptime_s":Infinity}'], "Infinity"),
    ("huge float", [S, b'{"v":1,"uptime_s":1e999}'], "out of range"),
    ("duplicate key", [S, b'{"v":1,"v":1}'], "duplicate key"),
    ("deep nesting", [S, b"[" * 50_000 + b"]" * 50_000], "not valid JSON"),
    ("lone surrogate", [S, b'{"stream":"\\ud800"}'], "surrogate"),
    ("too large", [S, b" " * (2 << 20)], "exceeds"),
    ("missing v", [S, _edit(_GOOD_S, v=_DELETE)], "'v'"),
    ("v is 2", [S, _edit(_GOOD_S, v=2)], "unsupported version"),
    ("v is bool", [S, _edit(_GOOD_S, v=True)], "version"),
    ("v is str", [P, _edit(_GOOD_P, v="1")], "version"),
    ("missing seq", [P, _edit(_GOOD_P, seq=_DELETE)], "seq"),
    ("seq float", [P, _edit(_GOOD_P, seq=1.0)], "seq"),
    ("seq negative", [P, _edit(_GOOD_P, seq=-1)], "seq"),
    ("seq huge", [P, _edit(_GOOD_P, seq=2**70)], "seq"),
    ("stream int", [P, _edit(_GOOD_P, stream=5)], "stream"),
    ("stream empty", [P, _edit(_GOOD_P, stream="")], "stream"),
    ("t_lsl str", [P, _edit(_GOOD_P, t_lsl="1.0")], "t_lsl"),
    ("t_pub bool", [P, _edit(_GOOD_P, t_pub=False)], "t_pub"),
    ("missing window", [P, _edit(_GOOD_P, window_s=_DELETE)], "window_s"),
    ("missing quality", [P, _edit(_GOOD_P, quality=_DELETE)], "quality"),
    ("quality list", [P, _edit(_GOOD_P, quality=[])], "quality"),
    ("quality ok int", [P, _edit(_GOOD_P, quality={**QUALITY_OK, "ok": 1})], "ok"),
    (
        "bad_channels str",
        [P, _edit(_GOOD_P, quality={**QUALITY_OK, "bad_channels": "Fp1"})],
        "bad_channels",
    ),
    (
        "quality dropped",
        [P, _edit(_GOOD_P, quality={**QUALITY_OK, "dropped": -2})],
        "dropped",
    ),
    ("latency str", [P, _edit(_GOOD_P, latency_ms="1 ms")], "latency_ms"),
    ("model null", [P, _edit(_GOOD_P, model=None)], "model"),
    ("no task", [P, _edit(_GOOD_P, valence=_DELETE, arousal=_DELETE)], "no task"),
    ("task number", [P, _edit(_GOOD_P, valence=0.7)], "valence"),
    ("task no label", [P, _edit(_GOOD_P, valence={"p_high": 0.7})], "label"),
    (
        "task both",
        [P, _edit(_GOOD_P, valence={"p_high": 0.7, "probs": {}, "label": "x"})],
        "exactly one",
    ),
    ("p_high > 1", [P, _edit(_GOOD_P, valence={"p_high": 2, "label": "h"})], "[0, 1]"),
    (
        "p_high str",
        [P, _edit(_GOOD_P, valence={"p_high": "0.7", "label": "h"})],
        "p_high",
    ),
    ("label int", [P, _edit(_GOOD_P, valence={"p_high": 0.7, "label": 1})], "label"),
    ("probs empty", [P, _edit(_GOOD_P, valence={"probs": {}, "label": None})], "probs"),
    (
        "label not a class",
        [P, _edit(_GOOD_P, valence={"probs": {"a": 1.0}, "label": "b"})],
        "not one of its classes",
    ),
    ("state unknown", [S, _edit(_GOOD_S, state="running")], "state"),
    ("state int", [S, _edit(_GOOD_S, state=1)], "state"),
    ("samples float", [S, _edit(_GOOD_S, samples=1.5)], "samples"),
    ("dropped missing", [S, _edit(_GOOD_S, dropped=_DELETE)], "dropped"),
    ("predictions bool", [S, _edit(_GOOD_S, predictions=True)], "predictions"),
    ("lag str", [S, _edit(_GOOD_S, buffer_lag_s="0")], "buffer_lag_s"),
    ("last_error int", [S, _edit(_GOOD_S, last_error=3)], "last_error"),
    ("status as prediction", [P, json.dumps(_GOOD_S).encode()], "prediction"),
    (
        "seq nested 500",
        [P, _edit(_GOOD_P, seq=json.loads("[" * 500 + "]" * 500))],
        "seq",
    ),
    ("seq nested 990", [P, b'{"v":1,"seq":' + b"[" * 990 + b"]" * 990 + b"}"], ""),
    ("extra nested", [S, _edit(_GOOD_S, x=json.loads("[" * 20 + "]" * 20))], "deeper"),
    (
        "quality extra nested",
        [
            P,
            _edit(
                _GOOD_P,
                quality={**QUALITY_OK, "x": [[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]},
            ),
        ],
        "deeper",
    ),
    (
        "task extra nested",
        [
            P,
            _edit(
                _GOOD_P,
                valence={
                    "p_high": 0.5,
                    "label": "x",
                    "y": json.loads("[" * 17 + "]" * 17),
                },
            ),
        ],
        "deeper",
    ),
]


@pytest.mark.parametrize(
    ("frames", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_parse_rejects_malformed(frames, reason):
    with pytest.raises(MessageError) as info:
        parse(frames)
    text = str(info.value)
    assert reason in text
    assert "\n" not in text
    assert len(text) < 300
    assert isinstance(info.value, EmomonError)


def test_parse_accepts_buffer_types_and_forward_compatible_extras():
    payload = json.loads(json.dumps(_GOOD_S))
    payload["source"] = "lsl"  # a later, additive field
    data = json.dumps(payload).encode()
    for frames in (
        [S, data],
        (bytearray(S), memoryview(data)),
    ):
        assert parse(frames).payload == payload


def test_validate_rejects_unknown_topic():
    with pytest.raises(MessageError, match="unknown topic"):
        validate("emomon.other.v1", {})


# -- fuzzing: nothing but MessageError escapes ------------------------------------
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)
topics = st.one_of(
    st.sampled_from([t.encode() for t in TOPICS]), st.binary(max_size=24)
)
field_names = st.sampled_from(
    sorted(set(PREDICTION_FIELDS) | set(STATUS_FIELDS) | {"valence", "arousal"})
)


@st.composite
def mutated_payloads(draw) -> list[bytes]:
    """A valid message with one or more fields deleted or replaced."""
    topic = draw(st.sampled_from(TOPICS))
    base = json.loads(json.dumps(_GOOD_P if topic == PREDICTION_TOPIC else _GOOD_S))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(field_names)
        if draw(st.booleans()):
            base.pop(key, None)
        else:
            base[key] = draw(json_values)
    text = json.dumps(base, allow_nan=True)
    return [topic.encode(), text.encode()]


frame_lists = st.one_of(
    st.lists(st.binary(max_size=64), max_size=4),
    st.tuples(topics, st.binary(max_size=256)).map(list),
    st.tuples(topics, json_values.map(lambda v: json.dumps(v).encode())).map(list),
    mutated_payloads(),
    st.lists(
        st.one_of(st.none(), st.integers(), st.text(max_size=8), st.binary()),
        max_size=3,
    ),
    st.one_of(st.none(), st.integers(), st.text(max_size=8), st.binary(max_size=8)),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(frame_lists)
def test_parse_fuzz_only_message_error_escapes(frames):
    try:
        msg = parse(frames)
    except MessageError as exc:
        error: str | None = str(exc)
    else:
        error = None
    if error is not None:
        assert "\n" not in error
        return
    # Whatever is accepted survives its own re-encoding unchanged.
    assert isinstance(msg, Message)
    assert msg.topic in TOPICS
    assert parse(encode(msg.topic, msg.payload)) == msg


def test_parse_fuzz_sees_valid_messages_too():
    """The mutation strategy is not vacuous: an untouched base message parses."""
    assert parse(_frames(PREDICTION_TOPIC, _GOOD_P)).payload == _GOOD_P
    assert parse(_frames(STATUS_TOPIC, _GOOD_S)).payload == _GOOD_S


# -- typed messages and the captured v1 wire ---------------------------------------
#: Frames captured at commit 70c53bf, before messages became dataclasses: a
#: run_stream session over a synthetic recording with NaN and flat stretches
#: (predictions ok and flagged, status connected/stopped) and builder payloads
#: for cases one run does not show (a 3-class task, nulls, non-ASCII names,
#: reconnecting and starting states).
CAPTURED = Path(__file__).parent / "data" / "wire_v1_70c53bf.jsonl"


def _captured() -> list[tuple[str, bytes, str]]:
    """(topic, payload bytes, origin) per captured message."""
    rows = [json.loads(line) for line in CAPTURED.read_text("utf-8").splitlines()]
    return [(r["topic"], r["payload"].encode("utf-8"), r["origin"]) for r in rows]


def test_captured_v1_messages_decode_to_typed_and_encode_byte_for_byte():
    rows = _captured()
    kinds = {(t, json.loads(p).get("state")) for t, p, _ in rows}
    assert len(rows) > 90
    assert (STATUS_TOPIC, "stopped") in kinds
    flagged = 0
    for topic, payload, origin in rows:
        msg = parse([topic.encode("ascii"), payload])
        cls = PredictionMessage if topic == PREDICTION_TOPIC else StatusMessage
        typed = cls.from_json(payload)
        assert typed == (msg.prediction or msg.status)
        assert typed.to_json() == payload  # the same bytes on the wire
        assert typed.frames() == [topic.encode("ascii"), payload]
        assert encode(topic, typed.to_dict()) == [topic.encode("ascii"), payload]
        if topic == PREDICTION_TOPIC and origin == "run_stream":
            flagged += not typed.quality.ok
            if not typed.quality.ok:  # a flagged window carries no estimate
                assert all(t.label is None for t in typed.tasks.values())
    assert flagged >= 3


def test_typed_prediction_from_model_probabilities():
    classes = ["negative", "neutral", "positive"]
    msg = PredictionMessage(
        seq=0,
        stream="SEED-1",
        t_lsl=1234.5,
        t_pub=1718000000.25,
        window_s=2.0,
        tasks={
            "class": TaskOutput.from_probs(classes, np.array([0.1, 0.2, 0.7])),
            "valence": TaskOutput.from_probs(["low", "high"], np.array([0.3, 0.7])),
            "arousal": TaskOutput.from_probs(["low", "high"], None),
        },
        quality=Quality(ok=True),
        latency_ms=1.25,
        model="sha256-0123456789ab",
    )
    validate(PREDICTION_TOPIC, msg.to_dict())
    assert msg.tasks["class"].label == "positive"
    assert not msg.tasks["class"].binary
    assert msg.tasks["class"].probability("neutral") == 0.2
    assert msg.tasks["valence"].probability() == 0.7
    assert msg.tasks["valence"].to_dict() == {"p_high": 0.7, "label": "high"}
    assert msg.tasks["arousal"].to_dict() == {"p_high": None, "label": None}
    assert PredictionMessage.from_json(msg.to_json()) == msg
    with pytest.raises(MessageError, match="prediction lacks field 't_lsl'"):
        PredictionMessage.from_json(b'{"v":1,"seq":0,"stream":"s","t_pub":1}')


def test_a_flagged_window_of_a_multiclass_model_is_a_valid_message():
    """No estimate for a flagged window: every class is named with a null
    probability (an empty ``probs`` breaks the schema, and made ``emomon
    stream`` with a 3-class model stop at its first flagged window)."""
    classes = ["negative", "neutral", "positive"]
    task = TaskOutput.from_probs(classes, None)
    assert task.to_dict() == {
        "probs": {"negative": None, "neutral": None, "positive": None},
        "label": None,
    }
    assert not task.binary
    assert task.probability("neutral") is None
    msg = PredictionMessage(
        seq=3,
        stream="SEED-1",
        t_lsl=1234.5,
        t_pub=1718000000.25,
        window_s=2.0,
        tasks={"class": task},
        quality=Quality(ok=False, bad_channels=("Fz",), reasons={"Fz": "flat"}),
        latency_ms=1.25,
        model="sha256-0123456789ab",
    )
    validate(PREDICTION_TOPIC, msg.to_dict())
    assert PredictionMessage.from_json(msg.to_json()) == msg


def test_typed_builders_keep_the_dict_builders_checks():
    assert PredictionMessage.build(**_PREDICTION_KW).to_dict() == _prediction()
    assert StatusMessage.build(**_STATUS_KW).to_dict() == _status()
    with pytest.raises(ValueError, match="state"):
        StatusMessage.build(**{**_STATUS_KW, "state": "running"})
    extra = {**_status(), "source": "lsl"}  # an additive field is kept
    assert StatusMessage.from_dict(extra).to_dict() == extra
