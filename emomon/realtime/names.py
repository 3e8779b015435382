"""The wire's default addresses and topic names, without the wire's code.

The command line's parser shows these in its help; importing them from here
instead of :mod:`~emomon.realtime.messages` keeps numpy out of ``emomon --help``
(0.1 s instead of 0.3 s). :mod:`~emomon.realtime.messages` exports the same names.
"""

from __future__ import annotations

from emomon.realtime._schema import (
    DEFAULT_ADDRESS,
    DEFAULT_BACKEND,
    DEFAULT_FRONTEND,
    META_TOPIC,
    PREDICTION_TOPIC,
    STATUS_TOPIC,
    TOPICS,
)

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_BACKEND",
    "DEFAULT_FRONTEND",
    "META_TOPIC",
    "PREDICTION_TOPIC",
    "STATUS_TOPIC",
    "TOPICS",
]
