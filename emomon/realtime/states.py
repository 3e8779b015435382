"""The life cycle of a live source: one list for the sources and the wire format.

``"starting"`` before a source is opened (a status sent before any data),
``"connecting"`` while it is being found and opened, ``"connected"`` while data
can flow, ``"reconnecting"`` while the input is lost (or silent) and the source
waits for it to come back, ``"stopped"`` after it closed or a recording ended.
The ``state`` field of ``emomon.status.v1`` messages takes these values.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["STATES", "State"]

State = Literal["starting", "connecting", "connected", "reconnecting", "stopped"]
#: Every state, in life-cycle order.
STATES: tuple[State, ...] = (
    "starting",
    "connecting",
    "connected",
    "reconnecting",
    "stopped",
)
