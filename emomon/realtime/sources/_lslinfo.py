"""An LSL stream's query and description.

The resolver's XPath predicate (the type in any case), the search itself, and
the channel labels and units of a stream's ``desc`` (the XDF meta-data
convention) converted to microvolts.
"""

from __future__ import annotations

import time
from typing import Any

import pylsl

from emomon.realtime.sources.base import SourceError

__all__ = [
    "FORGET_AFTER_S",
    "TO_LOWER",
    "build_predicate",
    "channel_fields",
    "describe_query",
    "flatten_desc",
    "poll_resolver",
    "unit_scale_to_uv",
]

_UNIT_TO_UV: dict[str, float] = {
    "": 1.0,
    "microvolts": 1.0,
    "microvolt": 1.0,
    "uv": 1.0,
    "µv": 1.0,  # micro sign
    "μv": 1.0,  # Greek mu
    "millivolts": 1e3,
    "millivolt": 1e3,
    "mv": 1e3,
    "volts": 1e6,
    "volt": 1e6,
    "v": 1e6,
    "nanovolts": 1e-3,
    "nanovolt": 1e-3,
    "nv": 1e-3,
}

#: ASCII letters for XPath's translate(): the type matches in any case.
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = _UPPER.lower()
TO_LOWER = str.maketrans(_UPPER, _LOWER)

_POLL_S = 0.01  # polling step of the resolver's results in open()
FORGET_AFTER_S = 1.0  # continuous resolver: drop streams unseen this long


def unit_scale_to_uv(unit: str) -> float | None:
    """Factor that converts values in ``unit`` to microvolts, or None if unknown.

    Accepts the usual spellings (``"microvolts"``, ``"uV"``, ``"µV"``,
    ``"millivolts"``, ``"mV"``, ``"volts"``, ``"V"``; case-insensitive; empty means
    microvolts) and a power-of-ten exponent of volts as written by MNE-LSL's
    ``set_channel_units`` (``"-6"`` = microvolts, ``"0"`` = volts).
    """
    key = unit.strip().lower()
    if key in _UNIT_TO_UV:
        return _UNIT_TO_UV[key]
    try:
        exponent = int(key)
    except ValueError:
        return None
    return float(10.0 ** (exponent + 6))


def _xpath_literal(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise SourceError(
        f"LSL query value {value!r} contains both quote characters; XPath 1.0 "
        "cannot express it (rename the stream or query by another property)"
    )


def build_predicate(
    *,
    name: str | None = None,
    stream_type: str | None = None,
    source_id: str | None = None,
) -> str:
    """XPath 1.0 predicate for LSL resolvers (empty parts skipped).

    ``name`` and ``source_id`` match exactly, ``stream_type`` in any case (ASCII
    letters: the stream's type is lowered with XPath's ``translate()``).

    >>> build_predicate(name="Cyton", source_id="cyton-1")
    "name='Cyton' and source_id='cyton-1'"
    >>> build_predicate(stream_type="EEG")
    "translate(type,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz')='eeg'"
    """
    parts = []
    if name:
        parts.append(f"name={_xpath_literal(name)}")
    if stream_type:
        lowered = _xpath_literal(stream_type.translate(TO_LOWER))
        parts.append(f"translate(type,'{_UPPER}','{_LOWER}')={lowered}")
    if source_id:
        parts.append(f"source_id={_xpath_literal(source_id)}")
    return " and ".join(parts)


def describe_query(
    *,
    name: str | None = None,
    stream_type: str | None = None,
    source_id: str | None = None,
) -> str:
    """Describe the query of :func:`build_predicate` in words, for messages.

    >>> describe_query(name="Cyton", stream_type="EEG")
    "name='Cyton' and type='EEG' (any case)"
    """
    parts = []
    if name:
        parts.append(f"name={name!r}")
    if stream_type:
        parts.append(f"type={stream_type!r} (any case)")
    if source_id:
        parts.append(f"source_id={source_id!r}")
    return " and ".join(parts)


def channel_fields(info: pylsl.StreamInfo, n: int, field: str) -> list[str]:
    """``desc/channels/channel/<field>`` of up to ``n`` channels ("" if absent)."""
    out: list[str] = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty() and len(out) < n:
        out.append(ch.child_value(field).strip())
        ch = ch.next_sibling("channel")
    return out + [""] * (n - len(out))


def flatten_desc(info: pylsl.StreamInfo, depth: int = 2) -> dict[str, str]:
    """Text values of ``desc`` outside ``channels``, keyed ``"node/child"``."""
    out: dict[str, str] = {}

    def walk(element: Any, prefix: str, levels: int) -> None:
        child = element.first_child()
        while not child.empty():
            name = child.name()
            if name and not (not prefix and name == "channels"):
                first = child.first_child()
                if not first.empty() and first.is_text():
                    out[prefix + name] = first.value()
                elif levels > 0:
                    walk(child, f"{prefix}{name}/", levels - 1)
            child = child.next_sibling()

    walk(info.desc(), "", depth)
    return out


def poll_resolver(
    predicate: str, deadline: float, *, beside: str | None = None
) -> tuple[list[pylsl.StreamInfo], list[pylsl.StreamInfo]]:
    """Find the streams matching ``predicate`` before ``deadline`` (monotonic s).

    Returns as soon as one answers. A second resolver on ``beside`` runs for the
    same time; its results come second, when the first found nothing.
    """
    resolver = pylsl.ContinuousResolver(pred=predicate, forget_after=FORGET_AFTER_S)
    other = (
        None
        if not beside
        else pylsl.ContinuousResolver(pred=beside, forget_after=FORGET_AFTER_S)
    )
    try:
        while True:
            infos = resolver.results()
            left = deadline - time.monotonic()
            if infos:
                return infos, []
            if left <= 0:
                return [], [] if other is None else other.results()
            time.sleep(min(_POLL_S, left))
    finally:
        del resolver, other
