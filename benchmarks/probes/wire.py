"""Receive emomon predictions with plain pyzmq and time them against a push log.

Nothing of emomon is imported (see ``lsl_sender.py``): receipt times are taken
with ``pylsl.local_clock()`` right after ``recv_multipart``, on the clock the
sender stamped its pushes with (the same machine's steady clock).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pylsl
import zmq

PREDICTION_TOPIC = b"emomon.prediction.v1"


def receive(
    address: str,
    *,
    n: int,
    timeout_s: float,
    on_ready: Callable[[], None] | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
    until: Callable[[list[dict[str, Any]]], bool] | None = None,
) -> list[dict[str, Any]]:
    """Collect ``n`` predictions (or what came before ``timeout_s``, or until
    ``until(received)`` holds: it is asked at least every 0.5 s).

    Each record is the payload plus ``"t_recv"`` (LSL clock, s); ``on_message``
    sees each one as it comes.
    """
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, PREDICTION_TOPIC)
    sock.connect(address)
    if on_ready is not None:
        on_ready()
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < n:
            if until is not None and until(out):
                break
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(min(left, 0.5) * 1000) + 1):
                if left <= 0:
                    break
                continue
            frames = sock.recv_multipart()
            t_recv = pylsl.local_clock()
            payload = json.loads(frames[1])
            payload["t_recv"] = t_recv
            out.append(payload)
            if on_message is not None:
                on_message(payload)
    finally:
        sock.close()
    return out


def push_to_receipt(log: dict[str, Any], preds: list[dict[str, Any]]) -> np.ndarray:
    """Latency (ms) of each prediction from the push of its window's last sample.

    The window's last sample (``t_lsl``) belongs to the first chunk whose last
    stamp (= its push time) is at or after it; the inlet's clock correction on
    one machine is microseconds, far below a sample period, hence the small
    tolerance. Predictions before the first push (none) are dropped.
    """
    pushes = np.asarray(log["t_push"])
    tol = 0.25 / float(log["sfreq"])
    t_lsl = np.array([p["t_lsl"] for p in preds])
    t_recv = np.array([p["t_recv"] for p in preds])
    j = np.searchsorted(pushes, t_lsl - tol, side="left")
    keep = j < pushes.size
    return (t_recv[keep] - pushes[j[keep]]) * 1e3


def summary(x: np.ndarray) -> dict[str, float]:
    """p50/p99/max of a latency array (ms), rounded; NaN when empty."""
    if x.size == 0:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "n": 0}
    return {
        "p50_ms": round(float(np.percentile(x, 50)), 2),
        "p99_ms": round(float(np.percentile(x, 99)), 2),
        "max_ms": round(float(np.max(x)), 2),
        "n": int(x.size),
    }
