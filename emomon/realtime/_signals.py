"""SIGINT/SIGTERM as a :class:`threading.Event`, without a deadlock.

A Python signal handler runs in the main thread between two bytecodes, which
may be inside ``Event.wait()`` while that thread holds the event's internal
lock. A handler that calls ``event.set()`` then waits for a lock its own thread
holds, and the process hangs for good (seen as a rare ``emomon stream`` that
never exits on Ctrl-C). So the handler does nothing in Python: CPython's C
handler writes the signal number to a wake-up pipe (``signal.set_wakeup_fd``)
and a small thread, which holds no lock the main thread could be inside, sets
the event.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any, Self

from emomon.realtime._closing import Closing

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_QUIT = 0  # not a signal number: tells the watcher to end


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Do nothing: replaces the default action; the wake-up pipe carries the signal."""


class StopOnSignals(Closing):
    """``with StopOnSignals(event):`` SIGINT and SIGTERM set ``event``.

    Outside the main thread (where handlers cannot be installed) it does
    nothing. While active, a repeated signal only sets the event again, so a
    second Ctrl-C cannot interrupt a clean shutdown. The previous handlers and
    wake-up fd are restored on exit.

    Parameters
    ----------
    event : threading.Event
        Set once SIGINT or SIGTERM arrives.
    """

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self._old: dict[int, Any] = {}
        self._old_fd = -1
        self._pipe: tuple[int, int] | None = None
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> Self:
        if threading.current_thread() is not threading.main_thread():
            return self
        r, w = os.pipe()
        os.set_blocking(w, False)  # required by set_wakeup_fd
        self._pipe = (r, w)
        self._old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            self._old[sig] = signal.signal(sig, _ignore)
        self._watcher = threading.Thread(
            target=self._watch, name="emomon-signals", daemon=True
        )
        self._watcher.start()
        return self

    def _watch(self) -> None:
        assert self._pipe is not None
        while True:
            data = os.read(self._pipe[0], 64)
            if not data:
                return
            if any(b in STOP_SIGNALS for b in data):
                self.event.set()
            if _QUIT in data:
                return

    def close(self) -> None:
        """Restore the previous handlers and wake-up fd (idempotent)."""
        if self._pipe is None:
            return
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()
        signal.set_wakeup_fd(self._old_fd)
        r, w = self._pipe
        os.set_blocking(w, True)
        os.write(w, bytes([_QUIT]))
        if self._watcher is not None:
            self._watcher.join(5.0)
            self._watcher = None
        os.close(w)
        os.close(r)
        self._pipe = None
