"""The v1 wire schema: topics, fixed fields, states, and the strict validator.

:func:`validate` checks a payload (a decoded JSON object, or a freshly built
payload that may still hold NaN) against its topic's schema and raises
:class:`MessageError` naming the first offending field. The public names are
re-exported by :mod:`emomon.realtime.messages`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from emomon.errors import EmomonError
from emomon.realtime.states import STATES

#: Default endpoint: bound by the publisher, connected to by subscribers.
DEFAULT_ADDRESS = "tcp://127.0.0.1:5556"
PREDICTION_TOPIC = "emomon.prediction.v1"
STATUS_TOPIC = "emomon.status.v1"
TOPICS: tuple[str, ...] = (PREDICTION_TOPIC, STATUS_TOPIC)
VERSION = 1
#: Fixed keys of a prediction payload; every other key is a task.
PREDICTION_FIELDS: tuple[str, ...] = (
    "v",
    "seq",
    "stream",
    "t_lsl",
    "t_pub",
    "window_s",
    "quality",
    "latency_ms",
    "model",
)
#: Keys of a status payload, in order.
STATUS_FIELDS: tuple[str, ...] = (
    "v",
    "seq",
    "stream",
    "t_pub",
    "state",
    "samples",
    "dropped",
    "buffer_lag_s",
    "uptime_s",
    "predictions",
    "last_error",
)
#: Payloads larger than this are rejected before JSON decoding.
MAX_PAYLOAD_BYTES = 1 << 20
_MAX_SEQ = 2**63 - 1
_MAX_NAME = 256
_MAX_EXTRA_DEPTH = 16  # nesting allowed in fields this version does not know


class MessageError(EmomonError):
    """A message is malformed: wrong frames, unknown topic, bad JSON or schema."""

    def __init__(self, reason: str) -> None:
        one_line = " ".join(str(reason).split())
        super().__init__(one_line)


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, (list, dict)):
        text = f"a JSON {'array' if isinstance(value, list) else 'object'}"
        return text + (f" of {len(value)}" if value else " (empty)")
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a reason must never fail
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(topic: str) -> str:
    return "prediction" if topic == PREDICTION_TOPIC else "status"


def _require(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise MessageError(f"{where} lacks field {key!r}")
    return obj[key]


def _check_int(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageError(f"{where} must be an integer, got {_short(value)}")
    if not 0 <= value <= _MAX_SEQ:
        raise MessageError(f"{where} must be in [0, 2**63), got {_short(value)}")


def _check_number(value: Any, where: str, *, unit: bool = False) -> None:
    """A number or null; NaN/inf are tolerated (a built payload, written as null)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MessageError(f"{where} must be a number or null, got {_short(value)}")
    if unit and math.isfinite(value) and not 0.0 <= value <= 1.0:
        raise MessageError(f"{where} must be a probability in [0, 1], got {value!r}")


def _check_str(value: Any, where: str, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str):
        kind = "a string or null" if nullable else "a string"
        raise MessageError(f"{where} must be {kind}, got {_short(value)}")


def _check_name(value: Any, where: str) -> None:
    _check_str(value, where)
    if not 0 < len(value) <= _MAX_NAME:
        raise MessageError(f"{where} must have 1 to {_MAX_NAME} characters")


def _check_extras(obj: Mapping[str, Any], known: Any, where: str) -> None:
    """Fields a v1 reader does not know are allowed, but not deeply nested."""
    for key, value in obj.items():
        if key in known or not isinstance(value, (list, dict)):
            continue
        stack = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if depth > _MAX_EXTRA_DEPTH:
                raise MessageError(
                    f"{where} field {_short(key)} is nested deeper than "
                    f"{_MAX_EXTRA_DEPTH} levels"
                )
            children = item.values() if isinstance(item, dict) else item
            stack.extend(
                (c, depth + 1) for c in children if isinstance(c, (list, dict))
            )


def _check_task(name: str, obj: Any) -> None:
    where = f"prediction task {_short(name)}"
    if not 0 < len(name) <= _MAX_NAME:
        raise MessageError(f"{where}: task names have 1 to {_MAX_NAME} characters")
    if not isinstance(obj, dict):
        raise MessageError(
            f"{where} must be an object with p_high or probs and label, "
            f"got {_short(obj)}"
        )
    label = _require(obj, "label", where)
    _check_extras(obj, ("label", "p_high", "probs"), where)
    _check_str(label, f"{where} label", nullable=True)
    has_p, has_probs = "p_high" in obj, "probs" in obj
    if has_p == has_probs:
        raise MessageError(f"{where} must have exactly one of 'p_high' and 'probs'")
    if has_p:
        _check_number(obj["p_high"], f"{where} p_high", unit=True)
        return
    probs = obj["probs"]
    if not isinstance(probs, dict) or not probs:
        raise MessageError(
            f"{where} probs must be a non-empty object class -> probability"
        )
    for cls, p in probs.items():
        _check_number(p, f"{where} probs[{_short(cls)}]", unit=True)
    if label is not None and label not in probs:
        raise MessageError(f"{where} label {_short(label)} is not one of its classes")


def _check_quality(obj: Any) -> None:
    where = "prediction quality"
    if not isinstance(obj, dict):
        raise MessageError(f"{where} must be an object, got {_short(obj)}")
    ok = _require(obj, "ok", where)
    if not isinstance(ok, bool):
        raise MessageError(f"{where} ok must be true or false, got {_short(ok)}")
    bad = _require(obj, "bad_channels", where)
    if not isinstance(bad, list) or not all(isinstance(c, str) for c in bad):
        raise MessageError(
            f"{where} bad_channels must be a list of channel names, got {_short(bad)}"
        )
    _check_int(_require(obj, "dropped", where), f"{where} dropped")
    _check_extras(obj, ("ok", "bad_channels", "dropped"), where)


def _check_version(obj: Mapping[str, Any], where: str) -> None:
    v = _require(obj, "v", where)
    if isinstance(v, bool) or not isinstance(v, int):
        raise MessageError(f"{where} version 'v' must be an integer, got {_short(v)}")
    if v != VERSION:
        raise MessageError(
            f"{where} has unsupported version v={v} (this emomon reads v{VERSION})"
        )


def validate(topic: str, payload: Any) -> None:
    """Check a payload against its topic's schema.

    Parameters
    ----------
    topic : str
        :data:`PREDICTION_TOPIC` or :data:`STATUS_TOPIC`.
    payload : dict
        The payload (decoded JSON, or a freshly built payload that may still hold
        NaN, which :func:`encode` writes as null).

    Raises
    ------
    MessageError
        Naming the first offending field.
    """
    if topic not in TOPICS:
        raise MessageError(f"unknown topic {_short(topic)}")
    where = _where(topic)
    if not isinstance(payload, dict):
        raise MessageError(f"{where} payload must be an object, got {_short(payload)}")
    _check_version(payload, where)
    _check_int(_require(payload, "seq", where), f"{where} seq")
    _check_name(_require(payload, "stream", where), f"{where} stream")
    _check_number(_require(payload, "t_pub", where), f"{where} t_pub")
    if topic == PREDICTION_TOPIC:
        _check_number(_require(payload, "t_lsl", where), "prediction t_lsl")
        _check_number(_require(payload, "window_s", where), "prediction window_s")
        _check_quality(_require(payload, "quality", where))
        _check_number(_require(payload, "latency_ms", where), "prediction latency_ms")
        _check_str(_require(payload, "model", where), "prediction model")
        n_tasks = 0
        for key, value in payload.items():
            if key not in PREDICTION_FIELDS:
                _check_task(key, value)
                n_tasks += 1
        if n_tasks == 0:
            raise MessageError("prediction has no task (valence, arousal, ...)")
        return
    state = _require(payload, "state", where)
    if not isinstance(state, str) or state not in STATES:
        raise MessageError(
            f"status state must be one of {', '.join(STATES)}, got {_short(state)}"
        )
    for key in ("samples", "dropped", "predictions"):
        _check_int(_require(payload, key, where), f"status {key}")
    for key in ("buffer_lag_s", "uptime_s"):
        _check_number(_require(payload, key, where), f"status {key}")
    _check_str(
        _require(payload, "last_error", where), "status last_error", nullable=True
    )
    _check_extras(payload, STATUS_FIELDS, where)
