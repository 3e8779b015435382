"""Live EEG inputs behind one interface: :class:`Source` yielding :class:`Chunk`.

- :class:`~emomon.realtime.sources.lsl.LSLSource`: a Lab Streaming Layer stream
  (resolved by name/type/source_id), surviving loss and return of the stream.
- :class:`~emomon.realtime.sources.brainflow.BrainFlowSource`: any BrainFlow
  board, including SYNTHETIC_BOARD and PLAYBACK_FILE_BOARD (no hardware).
- :class:`~emomon.realtime.sources.replay.ReplaySource`: a recording in process,
  unpaced or on a headset's schedule (no LSL).

Chunks are ``(n_channels, n_times)`` float64 microvolts with timestamps on this
machine's LSL clock. The concrete sources are imported lazily, so that importing
this package loads neither liblsl nor BrainFlow's native libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from emomon.realtime.sources.base import Chunk, Source, SourceError, SourceState

if TYPE_CHECKING:
    from emomon.realtime.sources.brainflow import BrainFlowSource
    from emomon.realtime.sources.lsl import LSLSource
    from emomon.realtime.sources.replay import ReplaySource

__all__ = [
    "BrainFlowSource",
    "Chunk",
    "LSLSource",
    "ReplaySource",
    "Source",
    "SourceError",
    "SourceState",
]

_LAZY = {
    "LSLSource": "emomon.realtime.sources.lsl",
    "BrainFlowSource": "emomon.realtime.sources.brainflow",
    "ReplaySource": "emomon.realtime.sources.replay",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
