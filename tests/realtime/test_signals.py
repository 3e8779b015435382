"""SIGINT/SIGTERM stop ``emomon stream``/``replay``/``broker`` without a deadlock.

The race these tests pin: a signal arrives while the main thread is inside
``Event.wait()`` holding the event's internal lock. A handler that calls
``event.set()`` then waits forever for a lock its own thread holds; it was seen
as an ``emomon stream`` that never exited after Ctrl-C (about once in a few
hundred runs). The child processes below hit that moment on purpose.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from emomon.realtime._signals import StopOnSignals

# The child holds the event's condition lock (a private attribute of
# threading.Event, used here only to stand still at the racy instant) while the
# signal is delivered, then releases it and waits for the event.
_CHILD = """
import signal, sys, threading
from emomon.realtime._signals import StopOnSignals
ev = threading.Event()
sig = getattr(signal, sys.argv[1])
if sys.argv[2] == "naive":
    signal.signal(sig, lambda *_: ev.set())
    guard = None
else:
    guard = StopOnSignals(ev).__enter__()
with ev._cond:
    signal.raise_signal(sig)  # the handler runs here, in this thread
print("set" if ev.wait(5.0) else "not set", flush=True)
if guard is not None:
    guard.close()
"""


def _child(sig: str, mode: str, timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, sig, mode],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_while_the_event_lock_is_held_still_stops(sig):
    done = _child(sig, "safe", timeout_s=30.0)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "set"


def test_the_same_moment_hangs_a_handler_that_sets_the_event():
    """The scenario above is the real hazard: ``Event.set()`` in the handler
    never returns."""
    with pytest.raises(subprocess.TimeoutExpired):
        _child("SIGTERM", "naive", timeout_s=3.0)


def test_handlers_and_wakeup_fd_are_restored():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    fd_before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd_before)
    ev = threading.Event()
    with StopOnSignals(ev):
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        signal.raise_signal(signal.SIGTERM)
        assert ev.wait(5.0)
        signal.raise_signal(signal.SIGINT)  # again: still no KeyboardInterrupt
    assert {s: signal.getsignal(s) for s in before} == before
    fd_after = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd_after)
    assert fd_after == fd_before


def test_outside_the_main_thread_nothing_is_installed():
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def run() -> None:
        with StopOnSignals(threading.Event()):
            seen.append(signal.getsignal(signal.SIGTERM))

    th = threading.Thread(target=run)
    th.start()
    th.join(5.0)
    assert seen == [before]
