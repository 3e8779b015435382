"""argparse value types shared by the CLI verbs: errors name the bad value.

Each takes the command-line text and returns the value, or raises
:class:`argparse.ArgumentTypeError` for text it refuses (argparse then names the
option).
"""

from __future__ import annotations

import argparse
import math
from typing import Any


def positive_int(text: str) -> int:
    """Parse a whole number >= 1."""
    v = _whole(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def nonneg_int(text: str) -> int:
    """Parse a whole number >= 0."""
    v = _whole(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def tcp_port(text: str) -> int:
    """Parse a TCP port: a whole number in 0-65535 (0: any free port)."""
    v = _whole(text)
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port in 0-65535, got {v}")
    return v


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def nonneg_float(text: str) -> float:
    """Parse a finite number >= 0."""
    v = _number(text)
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def finite_float(text: str) -> float:
    """Parse a finite number (any sign); NaN and inf are refused."""
    v = _number(text)
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return v


def positive_float(text: str) -> float:
    """Parse a finite number > 0."""
    v = _number(text)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def endpoint(text: str) -> str:
    """Check a ZeroMQ endpoint and return it unchanged.

    ``tcp://HOST:PORT`` (port 1-65535 or ``*``), ``ipc://PATH`` or
    ``inproc://NAME``. Another transport, a missing host or path, or a port that
    is not a number in 1-65535 is refused (ZeroMQ itself would wrap 99999 round
    to 34463).
    """
    example = "expected e.g. tcp://127.0.0.1:5556, ipc:///tmp/emomon or inproc://name"
    transport, sep, rest = text.partition("://")
    if not sep or transport not in ("tcp", "ipc", "inproc") or not rest:
        raise argparse.ArgumentTypeError(f"{example}, got {text!r}")
    if transport == "tcp":
        host, colon, port = rest.rpartition(":")
        if not colon or not host or host == "[]":
            raise argparse.ArgumentTypeError(f"{text!r} has no host:port; {example}")
        if port != "*" and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise argparse.ArgumentTypeError(
                f"port {port!r} in {text!r} is not a number in 1-65535 (or *)"
            )
    return text


def reader_option(text: str) -> tuple[str, Any]:
    """Parse a dataset reader option ``KEY=VALUE`` into ``(key, value)``.

    The value becomes an int, a float or a bool where it reads as one, else stays
    text. Text without ``=`` or a key is refused.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    v: Any = value.strip()
    for conv in (int, float):
        try:
            v = conv(value)
            break
        except ValueError:
            continue
    else:
        if value.strip().lower() in ("true", "false"):
            v = value.strip().lower() == "true"
    return key.strip(), v
