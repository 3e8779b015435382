"""The heartbeat schedule of status messages (the live loop and the publisher)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["StatusTimer"]


class StatusTimer:
    """Absolute-schedule timer for status heartbeats.

    :meth:`due` is True on its first call and then once per ``interval_s`` on a
    fixed schedule (no drift). After a stall longer than one interval it fires
    once and restarts the schedule from then: missed beats are not replayed.

    Parameters
    ----------
    interval_s : float
        Heartbeat interval in seconds (default 1.0).
    clock : callable
        Monotonic clock in seconds (default :func:`time.monotonic`).
    """

    def __init__(
        self, interval_s: float = 1.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.interval_s = float(interval_s)
        self._clock = clock
        self._next: float | None = None

    def due(self, now: float | None = None) -> bool:
        """Whether a heartbeat is due at ``now`` (default: the clock); advances."""
        t = self._clock() if now is None else now
        if self._next is None:
            self._next = t + self.interval_s
            return True
        if t < self._next:
            return False
        self._next += self.interval_s
        if self._next <= t:
            self._next = t + self.interval_s
        return True

    def left(self, now: float | None = None) -> float:
        """Seconds until the next heartbeat is due (0 when due, or never started)."""
        if self._next is None:
            return 0.0
        t = self._clock() if now is None else now
        return max(0.0, self._next - t)

    def reset(self) -> None:
        """Forget the schedule: the next :meth:`due` fires."""
        self._next = None
