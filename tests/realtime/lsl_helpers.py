"""Helpers for tests with real liblsl outlets and inlets (no sleeps as sync).

Every loop here is bounded twice: by a deadline and by an iteration count. Waits
happen inside bounded library calls (``Source.read(timeout_s=...)``,
``pull_sample(timeout=...)``), never in ``time.sleep``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pylsl

try:  # pylsl >= 1.17
    from pylsl.util import LostError
except ImportError:  # pragma: no cover - pylsl 1.16
    from pylsl.pylsl import LostError  # type: ignore[no-redef]

from emomon.realtime.sources.base import Source

MAX_ITERATIONS = 20_000


def unique(prefix: str = "emomon-test") -> str:
    """A stream name no other test (or test run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_outlet(
    name: str,
    source_id: str,
    labels: Sequence[str],
    *,
    sfreq: float = 100.0,
    unit: str | None = "microvolts",
    stream_type: str = "EEG",
) -> pylsl.StreamOutlet:
    """A float32 EEG outlet with ``desc/channels/channel/{label, unit}``."""
    info = pylsl.StreamInfo(name, stream_type, len(labels), sfreq, "float32", source_id)
    chans = info.desc().append_child("channels")
    for label in labels:
        ch = chans.append_child("channel")
        if label:
            ch.append_child_value("label", label)
        if unit is not None:
            ch.append_child_value("unit", unit)
    return pylsl.StreamOutlet(info)


@dataclass
class Collected:
    """Samples gathered from a source, with when each chunk arrived."""

    data: list[np.ndarray] = field(default_factory=list)
    stamps: list[np.ndarray] = field(default_factory=list)
    arrivals: list[tuple[float, float]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return sum(len(t) for t in self.stamps)

    def eeg(self, n_channels: int) -> np.ndarray:
        if not self.data:
            return np.empty((n_channels, 0))
        return np.hstack(self.data)

    def timestamps(self) -> np.ndarray:
        return np.concatenate(self.stamps) if self.stamps else np.empty(0)


def collect(
    source: Source,
    n_samples: int,
    *,
    timeout_s: float,
    into: Collected | None = None,
) -> Collected:
    """Read until ``n_samples`` arrived or ``timeout_s`` passed.

    Records ``(local_clock() at arrival, last timestamp of the chunk)`` per chunk.
    """
    out = into if into is not None else Collected()
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if out.n >= n_samples or time.monotonic() > deadline:
            break
        chunk = source.read(timeout_s=0.02)
        if chunk.n_times:
            out.arrivals.append((pylsl.local_clock(), float(chunk.timestamps[-1])))
            out.data.append(chunk.data)
            out.stamps.append(chunk.timestamps)
    return out


def grid_steps(stamps: np.ndarray, *, sfreq: float) -> np.ndarray:
    """How far each stamp moved past its place on a ``sfreq`` sample grid, in
    periods (a loss of k samples is a step of k; the pipeline calls a step of
    half a period a gap)."""
    return np.diff(stamps - np.arange(stamps.size) / sfreq) * sfreq


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    tick: Callable[[], object],
) -> bool:
    """Call ``tick`` (a bounded wait, e.g. ``source.read(timeout_s=0.02)``) until
    ``condition()`` holds; False on timeout."""
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        tick()
    return condition()


def open_inlet(predicate: str, *, timeout_s: float = 5.0) -> pylsl.StreamInlet:
    """Resolve one stream and subscribe to it (bounded)."""
    infos = pylsl.resolve_bypred(predicate, 1, timeout_s)
    assert infos, f"no stream matching {predicate} within {timeout_s} s"
    inlet = pylsl.StreamInlet(infos[0], recover=False)
    inlet.open_stream(timeout=timeout_s)
    return inlet


def inlet_lost(inlet: pylsl.StreamInlet, *, timeout_s: float) -> bool:
    """Whether pulling from ``inlet`` (opened with ``recover=False``) reports
    its outlet lost within ``timeout_s``; buffered samples are drained first."""
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if time.monotonic() > deadline:
            return False
        try:
            inlet.pull_chunk(timeout=0.05)
        except LostError:
            return True
    return False


def pull_markers(
    inlet: pylsl.StreamInlet, n: int, *, timeout_s: float
) -> list[tuple[dict, float]]:
    """Up to ``n`` JSON markers with their (raw) timestamps."""
    out: list[tuple[dict, float]] = []
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if len(out) >= n or time.monotonic() > deadline:
            break
        sample, ts = inlet.pull_sample(timeout=0.05)
        if sample is not None:
            out.append((json.loads(sample[0]), ts))
    return out
