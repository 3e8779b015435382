"""The ZeroMQ wire format (DESIGN.md section 10).

Typed messages, payload builders, a compact encoder and a strict parser.

Every message is two frames, ``[topic, payload]``: the topic as ASCII bytes and the
payload as compact UTF-8 JSON. Two topics exist, each versioned in its name and in
the payload's ``"v"`` field:

``emomon.prediction.v1`` (:data:`PREDICTION_TOPIC`), one message per hop::

    {"v": 1, "seq": 41, "stream": "Muse-1234", "t_lsl": 18233.52,
     "t_pub": 1718000000.25, "window_s": 2.0,
     "valence": {"p_high": 0.71, "label": "high"},
     "arousal": {"p_high": 0.35, "label": "low"},
     "quality": {"ok": true, "bad_channels": [], "dropped": 0},
     "latency_ms": 1.3, "model": "3f9a2c1d7e4b"}

Every key other than the fixed ones (``v seq stream t_lsl t_pub window_s quality
latency_ms model``) is a *task*, named as in the model contract. A binary task
(classes ``low``/``high``) carries ``{"p_high": p, "label": name}`` with ``p`` the
probability of the second class. A multi-class task, such as SEED's ``class``,
carries the probability of every class instead::

    "class": {"probs": {"negative": 0.1, "neutral": 0.2, "positive": 0.7},
              "label": "positive"}

``emomon.status.v1`` (:data:`STATUS_TOPIC`), once a second and re-sent to every
new subscriber::

    {"v": 1, "seq": 7, "stream": "Muse-1234", "t_pub": 1718000000.0,
     "state": "connected", "samples": 89600, "dropped": 0,
     "buffer_lag_s": 0.004, "uptime_s": 700.0, "predictions": 2796,
     "last_error": null}

Conventions:

- ``seq`` counts the messages of one topic from one stream, starting at 0 and
  increasing by one per message; a gap tells a subscriber it missed messages, a
  smaller value that the publisher restarted. A status message re-sent to a late
  joiner keeps its ``seq``, so the other subscribers see it as a duplicate.
- ``t_lsl`` is the LSL timestamp of the window's last sample, ``t_pub`` the Unix
  time of publication, ``latency_ms`` publication time minus the time emomon
  read that sample (the time spent inside emomon), and ``quality.sample_age_ms``
  (added in v1, optional) publication time minus ``t_lsl`` on the LSL clock:
  the latency up to publication as the user meets it, including the time the
  sample waited in the sender's chunk and on the network.
- ``quality.reasons`` (added in v1, optional: present when a channel has a
  finding; older publishers never send it) names every channel with a
  finding, channel -> reason (one of
  :data:`~emomon.realtime.quality.QUALITY_REASONS`; a reader meeting another
  word treats the channel as bad for an unknown reason). Every channel of
  ``bad_channels`` has one. ``interpolated`` (in ``bad_channels``) and
  ``line_noise`` (in ``reasons`` only) leave the window predicted on.
- Non-finite numbers are never emitted: NaN and infinities become ``null``, and
  every float field and probability may be ``null`` (not available). A window that
  was not predicted on (``quality.ok`` false) may carry ``null`` probabilities and
  labels.
- Readers of v1 ignore keys they do not know inside ``quality``, task objects and
  status payloads, so fields can be added without breaking apps; a breaking change
  bumps the version in both the topic and ``"v"``.

:func:`parse` is strict: any malformed input raises :class:`MessageError` (and
nothing else) with a one-line reason.

In a process a message is a frozen dataclass, :class:`PredictionMessage` or
:class:`StatusMessage` (with :class:`TaskOutput` per task and :class:`Quality`),
built once and read by fields; JSON exists only at the ZeroMQ boundary
(:meth:`PredictionMessage.to_json`, :meth:`PredictionMessage.from_json`). The
dict builders :func:`prediction_message` and :func:`status_message` check loose
values and return the wire dict.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np

from emomon.realtime._schema import (
    DEFAULT_ADDRESS,
    DEFAULT_BACKEND,
    DEFAULT_FRONTEND,
    MAX_PAYLOAD_BYTES,
    META_FIELDS,
    META_TOPIC,
    PREDICTION_FIELDS,
    PREDICTION_TOPIC,
    STATUS_FIELDS,
    STATUS_TOPIC,
    TOPICS,
    VERSION,
    MessageError,
    _short,
    prediction_message,
    status_message,
    validate,
)
from emomon.realtime.states import STATES, State

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_BACKEND",
    "DEFAULT_FRONTEND",
    "DEFAULT_BACKEND",
    "DEFAULT_FRONTEND",
    "MAX_PAYLOAD_BYTES",
    "META_FIELDS",
    "META_TOPIC",
    "PREDICTION_FIELDS",
    "PREDICTION_TOPIC",
    "STATES",
    "STATUS_FIELDS",
    "STATUS_TOPIC",
    "TOPICS",
    "VERSION",
    "Message",
    "MessageError",
    "MetaMessage",
    "PredictionMessage",
    "Quality",
    "State",
    "StatusMessage",
    "TaskOutput",
    "encode",
    "parse",
    "prediction_message",
    "status_message",
    "validate",
]

_TOPIC_BYTES = {t.encode("ascii"): t for t in TOPICS}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


@dataclass(frozen=True)
class Message:
    """One parsed message.

    Attributes
    ----------
    topic : str
        :data:`PREDICTION_TOPIC` or :data:`STATUS_TOPIC`.
    payload : dict
        The decoded JSON object, validated against the topic's schema.
    """

    topic: str
    payload: dict[str, Any]

    @property
    def kind(self) -> str:
        """``"prediction"``, ``"status"`` or ``"meta"``."""
        if self.topic == META_TOPIC:
            return "meta"
        return "prediction" if self.topic == PREDICTION_TOPIC else "status"

    @property
    def seq(self) -> int:
        """The message's sequence number."""
        return int(self.payload["seq"])

    @property
    def stream(self) -> str:
        """Name of the stream the message is about."""
        return str(self.payload["stream"])

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """Task name -> task object of a prediction (empty for a status)."""
        if self.topic != PREDICTION_TOPIC:
            return {}
        return {k: v for k, v in self.payload.items() if k not in PREDICTION_FIELDS}

    @property
    def prediction(self) -> PredictionMessage | None:
        """The typed prediction (None for a status message)."""
        if self.topic != PREDICTION_TOPIC:
            return None
        return PredictionMessage.from_dict(self.payload)

    @property
    def status(self) -> StatusMessage | None:
        """The typed status (None for a prediction message)."""
        if self.topic != STATUS_TOPIC:
            return None
        return StatusMessage.from_dict(self.payload)

    @property
    def meta(self) -> MetaMessage | None:
        """The typed stream description (None for other messages)."""
        if self.topic != META_TOPIC:
            return None
        return MetaMessage.from_dict(self.payload)


# -- typed messages --------------------------------------------------------------
@dataclass(frozen=True)
class Quality:
    """Signal quality of one window: built once by the pipeline, read by fields.

    Attributes
    ----------
    ok : bool
        Whether the window was predicted on (no flagged channel, nothing
        dropped).
    bad_channels : tuple of str
        Model channels flagged in the window, or interpolated for it, in model
        order.
    dropped : int
        Samples lost (timestamp gaps) inside the window.
    nonfinite : bool
        Whether NaN/inf samples fell in the window (in process; not on the wire,
        where such channels are among ``bad_channels``).
    reasons : mapping of str to str
        Channel -> why, for every channel with a finding, in model order:
        ``"nonfinite"``, ``"railed"``, ``"flat"``, ``"noisy"`` or ``"no_data"``
        (these flag the window and the channel is among ``bad_channels``),
        ``"interpolated"`` (among ``bad_channels``, the window predicted on)
        or ``"line_noise"`` (only named here; the window predicted on). The
        rules are :mod:`emomon.realtime.quality`'s. On the wire as
        ``quality.reasons`` when not empty (added in v1; a clean window, and
        every window of an older publisher, has none).
    sample_age_ms : float or None
        Age of the window's last sample when the prediction was published: the
        publication time minus the sample's timestamp, both on this machine's
        LSL clock (the sender's stamp mapped with the inlet's time correction).
        The latency a user meets up to publication, including the sender's
        chunking and the network (the message's ``latency_ms`` counts only the
        time inside emomon). Set by the live loop; None where it has no meaning
        (a recording read as fast as possible). On the wire as
        ``quality.sample_age_ms`` when set (v1 readers ignore quality keys they
        do not know).
    extra : mapping
        Quality fields this version does not define, as received (kept so a
        received message is re-sent unchanged).
    """

    ok: bool
    bad_channels: tuple[str, ...] = ()
    dropped: int = 0
    nonfinite: bool = False
    reasons: Mapping[str, str] = field(default_factory=dict)
    sample_age_ms: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the wire object.

        ``{"ok", "bad_channels", "dropped", "reasons" (when any),
        "sample_age_ms" (when set), ...extra}``.
        """
        out: dict[str, Any] = {
            "ok": self.ok,
            "bad_channels": list(self.bad_channels),
            "dropped": self.dropped,
        }
        if self.reasons:
            out["reasons"] = dict(self.reasons)
        if self.sample_age_ms is not None:
            out["sample_age_ms"] = self.sample_age_ms
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Quality:
        """From a validated wire object."""
        extra = {k: v for k, v in obj.items() if k not in _QUALITY_FIELDS}
        age = obj.get("sample_age_ms")
        return cls(
            ok=bool(obj["ok"]),
            bad_channels=tuple(obj["bad_channels"]),
            dropped=int(obj["dropped"]),
            reasons=dict(obj.get("reasons") or {}),
            sample_age_ms=None if age is None else float(age),
            extra=extra,
        )


_QUALITY_FIELDS = ("ok", "bad_channels", "dropped", "reasons", "sample_age_ms")


@dataclass(frozen=True)
class TaskOutput:
    """One task of a prediction, as on the wire.

    A binary task (classes ``low``/``high``) carries ``p_high``, the probability
    of the second class; a multi-class task carries ``probs`` (class ->
    probability) instead. Probabilities and the label are None for a window that
    was not predicted on.

    Attributes
    ----------
    label : str or None
        The most probable class.
    p_high : float or None
        Binary tasks: probability of the second class.
    probs : mapping of str to float or None, or None
        Multi-class tasks: every class's probability; None for a binary task.
    extra : mapping
        Fields this version does not define, as received.
    """

    label: str | None
    p_high: float | None = None
    probs: Mapping[str, float | None] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def binary(self) -> bool:
        """Whether this is a binary task (``p_high``), not a multi-class one."""
        return self.probs is None

    @classmethod
    def from_probs(cls, classes: Sequence[str], p: np.ndarray | None) -> TaskOutput:
        """From the model's class probabilities (None: window not predicted on).

        Parameters
        ----------
        classes : sequence of str
            The task's class names, as in the model contract.
        p : ndarray, shape (n_classes,), or None
            Probabilities in class order.
        """
        if len(classes) == 2:
            if p is None:
                return cls(label=None, p_high=None)
            return cls(label=classes[int(np.argmax(p))], p_high=float(p[1]))
        if p is None:  # every class named, with no probability (null on the wire)
            return cls(label=None, probs=dict.fromkeys(classes))
        probs = {c: float(v) for c, v in zip(classes, p, strict=True)}
        return cls(label=classes[int(np.argmax(p))], probs=probs)

    def probability(self, cls_name: str | None = None) -> float | None:
        """``p_high`` of a binary task, or the probability of ``cls_name``."""
        if self.probs is None:
            return self.p_high
        return self.probs.get(cls_name) if cls_name is not None else None

    def to_dict(self) -> dict[str, Any]:
        """Return the wire object: ``{"p_high", "label"}`` or ``{"probs", "label"}``."""
        if self.probs is None:
            return {"p_high": self.p_high, "label": self.label, **self.extra}
        return {"probs": dict(self.probs), "label": self.label, **self.extra}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> TaskOutput:
        """From a validated wire object."""
        extra = {k: v for k, v in obj.items() if k not in ("p_high", "probs", "label")}
        if "probs" in obj:
            return cls(label=obj["label"], probs=dict(obj["probs"]), extra=extra)
        return cls(label=obj["label"], p_high=obj["p_high"], extra=extra)


class _Wire:
    """JSON at the boundary, shared by the two message types."""

    topic: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_json(self) -> bytes:
        """Encode the payload frame: compact UTF-8 JSON, NaN/inf as ``null``."""
        return _dumps(self.to_dict())

    def frames(self) -> list[bytes]:
        """Return the two frames ``[topic, payload]`` of a ZeroMQ multipart message."""
        return [self.topic.encode("ascii"), self.to_json()]

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        """Parse and validate one payload frame of this message's topic.

        Raises
        ------
        MessageError
            For a malformed payload (see :func:`parse`).
        """
        raw = data.encode("utf-8") if isinstance(data, str) else data
        msg = parse([cls.topic.encode("ascii"), raw])
        return cls.from_dict(msg.payload)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class PredictionMessage(_Wire):
    """An ``emomon.prediction.v1`` message (see the module docstring).

    Built once per window by the live loop; sinks read its fields, and only the
    ZeroMQ boundary turns it into JSON (:meth:`to_json`, byte for byte the v1
    payload).
    """

    seq: int
    stream: str
    t_lsl: float | None
    t_pub: float
    window_s: float
    tasks: Mapping[str, TaskOutput]
    quality: Quality
    latency_ms: float | None
    model: str
    topic: ClassVar[str] = PREDICTION_TOPIC

    def to_dict(self) -> dict[str, Any]:
        """Return the payload, keys in wire order.

        NaN is kept; :meth:`to_json` writes it as ``null``.
        """
        payload: dict[str, Any] = {
            "v": VERSION,
            "seq": self.seq,
            "stream": self.stream,
            "t_lsl": self.t_lsl,
            "t_pub": self.t_pub,
            "window_s": self.window_s,
        }
        for name, task in self.tasks.items():
            payload[name] = task.to_dict()
        payload["quality"] = self.quality.to_dict()
        payload["latency_ms"] = self.latency_ms
        payload["model"] = self.model
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> PredictionMessage:
        """From a payload that passed :func:`validate` (as :func:`parse` returns)."""
        return cls(
            seq=payload["seq"],
            stream=payload["stream"],
            t_lsl=payload["t_lsl"],
            t_pub=payload["t_pub"],
            window_s=payload["window_s"],
            tasks={
                k: TaskOutput.from_dict(v)
                for k, v in payload.items()
                if k not in PREDICTION_FIELDS
            },
            quality=Quality.from_dict(payload["quality"]),
            latency_ms=payload["latency_ms"],
            model=payload["model"],
        )

    @classmethod
    def build(cls, **kwargs: Any) -> PredictionMessage:
        """Build a checked message from loose values; see :func:`prediction_message`."""
        return cls.from_dict(prediction_message(**kwargs))


@dataclass(frozen=True)
class StatusMessage(_Wire):
    """An ``emomon.status.v1`` message (see the module docstring)."""

    seq: int
    stream: str
    t_pub: float
    state: State
    samples: int
    dropped: int
    buffer_lag_s: float | None
    uptime_s: float | None
    predictions: int
    last_error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    topic: ClassVar[str] = STATUS_TOPIC

    def to_dict(self) -> dict[str, Any]:
        """Return the payload, keys in :data:`STATUS_FIELDS` order, then any extras."""
        return {
            "v": VERSION,
            "seq": self.seq,
            "stream": self.stream,
            "t_pub": self.t_pub,
            "state": self.state,
            "samples": self.samples,
            "dropped": self.dropped,
            "buffer_lag_s": self.buffer_lag_s,
            "uptime_s": self.uptime_s,
            "predictions": self.predictions,
            "last_error": self.last_error,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> StatusMessage:
        """From a payload that passed :func:`validate` (as :func:`parse` returns)."""
        extra = {k: v for k, v in payload.items() if k not in STATUS_FIELDS}
        return cls(**{k: payload[k] for k in STATUS_FIELDS if k != "v"}, extra=extra)

    @classmethod
    def build(cls, **kwargs: Any) -> StatusMessage:
        """Build a checked message from loose values; see :func:`status_message`."""
        return cls.from_dict(status_message(**kwargs))


def _point(p: Any) -> tuple[float, ...] | None:
    return None if p is None else tuple(float(c) for c in p)


@dataclass(frozen=True)
class MetaMessage(_Wire):
    """An ``emomon.meta.v1`` message: what a viewer needs once per stream.

    Sent when the live loop starts and re-sent to every new subscriber of the
    topic (see :class:`~emomon.realtime.publish.Publisher`); a re-send keeps
    its ``seq``.

    Attributes
    ----------
    seq : int
        0 for a run's description (re-sends keep it).
    stream : str
        Name of the EEG stream, as in its predictions.
    t_pub : float
        Unix time the description was built.
    model : str
        Model identifier, as in the predictions.
    sfreq : float
        Sampling rate of the stream as received (Hz).
    model_sfreq : float
        Rate the model's features are computed at (Hz; the stream is
        resampled to it when they differ).
    window_s, hop_s : float
        Window length and hop of the predictions (s).
    tasks : mapping of str to tuple of str
        Task -> class names, in the model's order.
    ch_names : tuple of str
        The model's channels in model order: the names ``quality.reasons``
        and ``quality.bad_channels`` use.
    pos_3d : tuple of (x, y, z) or None
        Per channel, its position in metres in MNE's head frame (x to the
        right ear, y to the nasion, z up), from the 10-05 table
        (:mod:`emomon.dsp.positions`); None for a name the table lacks.
    pos_2d : tuple of (x, y) or None
        Per channel, the scalp-map position: the azimuthal equidistant
        projection of ``pos_3d`` seen from above (the vertex, Cz, near the
        centre), scaled so the head's circumference through Fpz, T7, Oz and
        T8 is the unit circle; x to the right, y to the nose.
    positions : str
        Where the positions come from (``"standard_1005"``).
    extra : mapping
        Fields this version does not define, as received.
    """

    seq: int
    stream: str
    t_pub: float
    model: str
    sfreq: float
    model_sfreq: float
    window_s: float
    hop_s: float
    tasks: Mapping[str, tuple[str, ...]]
    ch_names: tuple[str, ...]
    pos_3d: tuple[tuple[float, ...] | None, ...]
    pos_2d: tuple[tuple[float, ...] | None, ...]
    positions: str = "standard_1005"
    extra: Mapping[str, Any] = field(default_factory=dict)
    topic: ClassVar[str] = META_TOPIC

    def to_dict(self) -> dict[str, Any]:
        """Return the payload, keys in :data:`META_FIELDS` order, then any extras."""
        return {
            "v": VERSION,
            "seq": self.seq,
            "stream": self.stream,
            "t_pub": self.t_pub,
            "model": self.model,
            "sfreq": self.sfreq,
            "model_sfreq": self.model_sfreq,
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "tasks": {t: list(c) for t, c in self.tasks.items()},
            "ch_names": list(self.ch_names),
            "pos_3d": [None if p is None else list(p) for p in self.pos_3d],
            "pos_2d": [None if p is None else list(p) for p in self.pos_2d],
            "positions": self.positions,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> MetaMessage:
        """From a payload that passed :func:`validate` (as :func:`parse` returns)."""
        extra = {k: v for k, v in payload.items() if k not in META_FIELDS}
        return cls(
            seq=payload["seq"],
            stream=payload["stream"],
            t_pub=payload["t_pub"],
            model=payload["model"],
            sfreq=payload["sfreq"],
            model_sfreq=payload["model_sfreq"],
            window_s=payload["window_s"],
            hop_s=payload["hop_s"],
            tasks={t: tuple(c) for t, c in payload["tasks"].items()},
            ch_names=tuple(payload["ch_names"]),
            pos_3d=tuple(_point(p) for p in payload["pos_3d"]),
            pos_2d=tuple(_point(p) for p in payload["pos_2d"]),
            positions=payload["positions"],
            extra=extra,
        )

    def same_description(self, other: MetaMessage) -> bool:
        """Whether ``other`` describes the same run (all but ``t_pub`` equal)."""
        return dataclasses.replace(other, t_pub=self.t_pub) == self


def _sanitize(obj: Any) -> Any:
    """Copy of ``obj`` with non-finite floats as None and numpy values as Python."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, Mapping):
        return {k: _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v) for v in obj]
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return _sanitize(tolist())
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def encode(topic: str, payload: Mapping[str, Any]) -> list[bytes]:
    """Encode a message as its two frames ``[topic, payload]``.

    Parameters
    ----------
    topic : str
        Message topic.
    payload : mapping
        JSON-serialisable payload. NaN and infinities are written as ``null``;
        numpy scalars and arrays as numbers and lists.

    Returns
    -------
    list of bytes
        ``[topic as ASCII, compact UTF-8 JSON]``.

    Raises
    ------
    TypeError
        If the payload holds a value JSON cannot represent.
    """
    return [topic.encode("ascii"), _dumps(payload)]


def _dumps(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON of a payload (see :func:`encode`)."""
    try:  # fast path: a clean payload of Python values
        text = json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (ValueError, TypeError):  # NaN/inf, or numpy values
        text = json.dumps(
            _sanitize(payload),
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
    return text.encode("utf-8")


# -- parsing -------------------------------------------------------------------
def _frame_bytes(frame: Any, what: str) -> bytes:
    if isinstance(frame, bytes):
        return frame
    try:
        if isinstance(frame, (bytearray, memoryview)):
            return bytes(frame)
        data = getattr(frame, "bytes", None)  # zmq.Frame
    except Exception as exc:  # noqa: BLE001 - any odd object is a bad frame
        raise MessageError(
            f"{what} frame is unreadable ({type(exc).__name__})"
        ) from None
    if isinstance(data, bytes):
        return data
    raise MessageError(f"{what} frame must be bytes, got {type(frame).__name__}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MessageError(f"payload has duplicate key {_short(key)}")
            seen.add(key)
    return out


def _reject_constant(name: str) -> Any:
    raise MessageError(f"payload holds {name}, which JSON does not allow (use null)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MessageError(f"payload number {_short(text)} is out of range")
    return value


def parse(frames: Any) -> Message:
    """Parse and validate the frames of one received message.

    Parameters
    ----------
    frames : list or tuple
        Exactly two frames, ``[topic, payload]``, each ``bytes``,
        ``bytearray``, ``memoryview`` or ``zmq.Frame``.

    Returns
    -------
    Message
        The topic and the validated payload.

    Raises
    ------
    MessageError
        For any malformed input (wrong frame count, unknown topic, payload not
        UTF-8 or not JSON, missing or ill-typed fields, unsupported version),
        with a one-line reason. No other exception escapes.
    """
    if not isinstance(frames, (list, tuple)):
        raise MessageError(
            f"expected a list of 2 frames [topic, payload], got {type(frames).__name__}"
        )
    if len(frames) != 2:
        raise MessageError(
            f"expected 2 frames [topic, payload], got {len(frames)} frame(s)"
        )
    topic_bytes = _frame_bytes(frames[0], "topic")
    topic = _TOPIC_BYTES.get(topic_bytes)
    if topic is None:
        raise MessageError(
            f"unknown topic {_short(topic_bytes)} (expected one of {', '.join(TOPICS)})"
        )
    data = _frame_bytes(frames[1], "payload")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise MessageError(
            f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD_BYTES} bytes"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageError(
            f"payload is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    try:
        obj = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except MessageError:
        raise
    except (ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MessageError(
            f"payload is not valid JSON ({_short(reason, 120)})"
        ) from None
    if not isinstance(obj, dict):
        raise MessageError(f"payload must be a JSON object, got {type(obj).__name__}")
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise MessageError("payload holds a lone UTF-16 surrogate escape") from None
    validate(topic, obj)
    return Message(topic=topic, payload=obj)
