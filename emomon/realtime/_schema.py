"""The v1 wire schema: topics, fixed fields, validator and checked builders.

:func:`validate` checks a payload (a decoded JSON object, or a freshly built
payload that may still hold NaN) against its topic's schema and raises
:class:`MessageError` naming the first offending field;
:func:`prediction_message` and :func:`status_message` build payloads from loose
values (numpy scalars, tuples) and refuse what breaks the schema. The public
names are re-exported by :mod:`emomon.realtime.messages`.
"""

from __future__ import annotations

import math
import operator
import re
import time
from collections.abc import Mapping
from typing import Any

from emomon.errors import EmomonError
from emomon.realtime.states import STATES

#: Default endpoint: bound by the publisher, connected to by subscribers.
DEFAULT_ADDRESS = "tcp://127.0.0.1:5556"
#: Default endpoints of ``emomon broker``: publishers connect to the frontend,
#: subscribers to the backend.
DEFAULT_FRONTEND = "tcp://127.0.0.1:5559"
DEFAULT_BACKEND = "tcp://127.0.0.1:5560"
PREDICTION_TOPIC = "emomon.prediction.v1"
STATUS_TOPIC = "emomon.status.v1"
META_TOPIC = "emomon.meta.v1"
TOPICS: tuple[str, ...] = (PREDICTION_TOPIC, STATUS_TOPIC, META_TOPIC)
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
#: Keys of a meta payload, in order.
META_FIELDS: tuple[str, ...] = (
    "v",
    "seq",
    "stream",
    "t_pub",
    "model",
    "sfreq",
    "model_sfreq",
    "window_s",
    "hop_s",
    "tasks",
    "ch_names",
    "pos_3d",
    "pos_2d",
    "positions",
)
#: Reasons of ``quality.reasons``, in priority order (see
#: :mod:`emomon.realtime.quality`, which holds the rules).
QUALITY_REASONS: tuple[str, ...] = (
    "nonfinite",
    "railed",
    "flat",
    "noisy",
    "line_noise",
    "interpolated",
    "no_data",
)
_REASON_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
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
    if topic == META_TOPIC:
        return "meta"
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
    """Check a number or null; NaN/inf are tolerated (a built payload: null on wire)."""
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
    if "sample_age_ms" in obj:  # optional, added within v1
        _check_number(obj["sample_age_ms"], f"{where} sample_age_ms")
    if "reasons" in obj:  # optional, added within v1
        _check_reasons(obj["reasons"], bad, where)
    _check_extras(
        obj, ("ok", "bad_channels", "dropped", "reasons", "sample_age_ms"), where
    )


def _check_reasons(reasons: Any, bad: list[str], where: str) -> None:
    """``quality.reasons``: channel -> reason word, naming every bad channel.

    Reason words outside :data:`QUALITY_REASONS` pass (lower-case words, so a
    reason added later within v1 does not break this reader); a bad channel
    without a reason does not.
    """
    if not isinstance(reasons, dict):
        raise MessageError(
            f"{where} reasons must be an object channel -> reason, got "
            f"{_short(reasons)}"
        )
    for ch, why in reasons.items():
        if not isinstance(ch, str) or not 0 < len(ch) <= _MAX_NAME:
            raise MessageError(
                f"{where} reasons: channel names are strings of 1 to "
                f"{_MAX_NAME} characters"
            )
        if not isinstance(why, str) or not _REASON_RE.fullmatch(why):
            raise MessageError(
                f"{where} reasons[{_short(ch)}] must be a reason such as "
                f"{', '.join(map(repr, QUALITY_REASONS[:4]))}, got {_short(why)}"
            )
    missing = [c for c in bad if c not in reasons]
    if missing:
        raise MessageError(
            f"{where} reasons lacks bad channel(s) {_short(', '.join(missing))}"
        )


def _check_points(value: Any, n: int, dim: int, where: str) -> None:
    """Check a list of ``n`` points of ``dim`` finite numbers (each may be null)."""
    if not isinstance(value, list) or len(value) != n:
        raise MessageError(
            f"{where} must be a list of one position (or null) per channel, {n} "
            f"in all, got {_short(value)}"
        )
    for i, p in enumerate(value):
        if p is None:
            continue
        if (
            not isinstance(p, list)
            or len(p) != dim
            or not all(
                isinstance(c, (int, float))
                and not isinstance(c, bool)
                and math.isfinite(c)
                for c in p
            )
        ):
            raise MessageError(
                f"{where}[{i}] must be {dim} finite numbers or null, got {_short(p)}"
            )


def _check_meta(payload: Mapping[str, Any]) -> None:
    where = "meta"
    _check_str(_require(payload, "model", where), "meta model")
    for key in ("sfreq", "model_sfreq", "window_s", "hop_s"):
        value = _require(payload, key, where)
        _check_number(value, f"meta {key}")
        if value is None or not (math.isfinite(value) and value > 0):
            raise MessageError(f"meta {key} must be a number > 0, got {_short(value)}")
    tasks = _require(payload, "tasks", where)
    if not isinstance(tasks, dict) or not tasks:
        raise MessageError(
            f"meta tasks must be a non-empty object task -> class names, got "
            f"{_short(tasks)}"
        )
    for task, classes in tasks.items():
        if not isinstance(classes, list) or not all(
            isinstance(c, str) for c in classes
        ):
            raise MessageError(
                f"meta tasks[{_short(task)}] must be a list of class names"
            )
    names = _require(payload, "ch_names", where)
    if not isinstance(names, list) or not names:
        raise MessageError(
            f"meta ch_names must be a non-empty list of channel names, got "
            f"{_short(names)}"
        )
    for c in names:
        _check_name(c, "meta ch_names entry")
    if len(set(names)) != len(names):
        raise MessageError("meta ch_names must not repeat a channel")
    _check_points(_require(payload, "pos_3d", where), len(names), 3, "meta pos_3d")
    _check_points(_require(payload, "pos_2d", where), len(names), 2, "meta pos_2d")
    _check_str(_require(payload, "positions", where), "meta positions")
    _check_extras(payload, META_FIELDS, where)


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
        :data:`PREDICTION_TOPIC`, :data:`STATUS_TOPIC` or :data:`META_TOPIC`.
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
    if topic == META_TOPIC:
        _check_meta(payload)
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


# -- building ------------------------------------------------------------------
def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got a bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer, got {type(value).__name__}"
        ) from None


def _as_float(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got a bool")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number, got {type(value).__name__}"
        ) from None


def _as_label(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{name} label must be a str or None, got {type(value).__name__}")


def _task_object(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(
            f"task {name!r} must be (p_high, label) or (probs, label), got {value!r}"
        )
    p, label = value
    if isinstance(p, Mapping):
        probs = {
            str(k): _as_float(v, f"task {name!r} prob {k!r}") for k, v in p.items()
        }
        return {"probs": probs, "label": _as_label(label, f"task {name!r}")}
    return {
        "p_high": _as_float(p, f"task {name!r} p_high"),
        "label": _as_label(label, f"task {name!r}"),
    }


def _checked(topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        validate(topic, payload)
    except MessageError as exc:
        raise ValueError(str(exc)) from None
    return payload


def prediction_message(
    *,
    seq: int,
    stream: str,
    t_lsl: float | None,
    t_pub: float | None = None,
    window_s: float,
    tasks: Mapping[str, tuple[Any, str | None]],
    quality: Mapping[str, Any],
    latency_ms: float | None,
    model: str,
) -> dict[str, Any]:
    """Build a ``emomon.prediction.v1`` payload.

    Parameters
    ----------
    seq : int
        Sequence number of this stream's predictions (0, 1, 2, ...).
    stream : str
        Name of the EEG stream.
    t_lsl : float or None
        LSL timestamp of the window's last sample.
    t_pub : float or None
        Unix time of publication; default: now.
    window_s : float
        Window length in seconds.
    tasks : mapping
        Task name -> ``(p_high, label)`` for a binary task, where ``p_high`` is
        the probability of the second ("high") class, or ``(probs, label)`` with
        ``probs`` a mapping class name -> probability for a multi-class task.
        Probabilities may be NaN or None (not predicted); labels may be None.
    quality : mapping
        ``{"ok": bool, "bad_channels": [names], "dropped": int}``; extra keys are
        passed through.
    latency_ms : float or None
        Publication time minus arrival time of the window's last sample.
    model : str
        Model identifier (a sha256 prefix of the model file).

    Returns
    -------
    dict
        The payload, keys in wire order. NaN values stay NaN here;
        :func:`encode` writes them as ``null``.

    Raises
    ------
    TypeError, ValueError
        If an argument has the wrong type or the payload breaks the schema (a
        task named like a fixed field, a probability outside [0, 1], ...).
    """
    if not isinstance(tasks, Mapping) or not tasks:
        raise ValueError("a prediction needs at least one task")
    if not isinstance(quality, Mapping):
        raise TypeError(f"quality must be a mapping, got {type(quality).__name__}")
    payload: dict[str, Any] = {
        "v": VERSION,
        "seq": _as_int(seq, "seq"),
        "stream": stream,
        "t_lsl": _as_float(t_lsl, "t_lsl"),
        "t_pub": time.time() if t_pub is None else _as_float(t_pub, "t_pub"),
        "window_s": _as_float(window_s, "window_s"),
    }
    for name, value in tasks.items():
        if name in PREDICTION_FIELDS:
            raise ValueError(f"task name {name!r} clashes with a fixed field")
        payload[name] = _task_object(name, value)
    q = dict(quality)
    if "bad_channels" in q and not isinstance(q["bad_channels"], str):
        q["bad_channels"] = list(q["bad_channels"])
    if "dropped" in q:
        q["dropped"] = _as_int(q["dropped"], "quality dropped")
    if "ok" in q and not isinstance(q["ok"], bool):
        q["ok"] = bool(q["ok"])  # numpy.bool_ -> bool
    payload["quality"] = q
    payload["latency_ms"] = _as_float(latency_ms, "latency_ms")
    payload["model"] = model
    return _checked(PREDICTION_TOPIC, payload)


def status_message(
    *,
    seq: int,
    stream: str,
    state: str,
    samples: int,
    dropped: int,
    buffer_lag_s: float | None,
    uptime_s: float | None,
    predictions: int,
    last_error: str | None = None,
    t_pub: float | None = None,
) -> dict[str, Any]:
    """Build a ``emomon.status.v1`` payload.

    Parameters
    ----------
    seq : int
        Sequence number of this stream's status messages (0, 1, 2, ...).
    stream : str
        Name of the EEG stream.
    state : str
        Source state, one of :data:`STATES`: ``"starting"``, ``"connected"``,
        ``"reconnecting"`` or ``"stopped"``.
    samples : int
        Samples received since start.
    dropped : int
        Samples lost (timestamp gaps) since start.
    buffer_lag_s : float or None
        How far processing lags behind the newest received sample, in seconds.
    uptime_s : float or None
        Seconds since the pipeline started.
    predictions : int
        Prediction messages published since start.
    last_error : str or None
        Last error seen by the source (for example why it is reconnecting).
    t_pub : float or None
        Unix time of publication; default: now.

    Returns
    -------
    dict
        The payload, keys in :data:`STATUS_FIELDS` order.

    Raises
    ------
    TypeError, ValueError
        If an argument has the wrong type or value.
    """
    payload: dict[str, Any] = {
        "v": VERSION,
        "seq": _as_int(seq, "seq"),
        "stream": stream,
        "t_pub": time.time() if t_pub is None else _as_float(t_pub, "t_pub"),
        "state": state,
        "samples": _as_int(samples, "samples"),
        "dropped": _as_int(dropped, "dropped"),
        "buffer_lag_s": _as_float(buffer_lag_s, "buffer_lag_s"),
        "uptime_s": _as_float(uptime_s, "uptime_s"),
        "predictions": _as_int(predictions, "predictions"),
        "last_error": last_error,
    }
    return _checked(STATUS_TOPIC, payload)
