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

:data:`SOURCES` registers them by name (``emomon stream --source NAME``), each
with a one-line description; :func:`source_class` imports the one chosen.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emomon.errors import ConfigError

if TYPE_CHECKING:
    from emomon.realtime.sources.base import Chunk, Source, SourceError, SourceState
    from emomon.realtime.sources.brainflow import BrainFlowSource
    from emomon.realtime.sources.lsl import LSLSource
    from emomon.realtime.sources.replay import ReplaySource

__all__ = [
    "SOURCES",
    "BrainFlowSource",
    "Chunk",
    "LSLSource",
    "ReplaySource",
    "Source",
    "SourceEntry",
    "SourceError",
    "SourceState",
    "source_class",
]


@dataclass(frozen=True)
class SourceEntry:
    """A registered source: where its class lives and what it reads.

    Attributes
    ----------
    target : str
        ``"module:Class"``, imported by :func:`source_class`.
    description : str
        One line for ``--help``.
    """

    target: str
    description: str


#: name -> registered source (the first is the default of ``emomon stream``).
SOURCES: dict[str, SourceEntry] = {
    "lsl": SourceEntry(
        "emomon.realtime.sources.lsl:LSLSource",
        "a Lab Streaming Layer stream, found by name, type or source_id",
    ),
    "brainflow": SourceEntry(
        "emomon.realtime.sources.brainflow:BrainFlowSource",
        "a BrainFlow board (hardware, synthetic or a playback file)",
    ),
    "replay": SourceEntry(
        "emomon.realtime.sources.replay:ReplaySource",
        "a recording read in process (no LSL)",
    ),
}


def source_class(name: str) -> type[Source]:
    """Return the source class registered as ``name`` (imported now).

    Parameters
    ----------
    name : str
        A key of :data:`SOURCES`.

    Returns
    -------
    type of Source

    Raises
    ------
    ConfigError
        If ``name`` is not registered (the message lists the names).
    """
    if name not in SOURCES:
        raise ConfigError(
            f"unknown source {name!r}; choose one of {', '.join(SOURCES)}"
        )
    module, cls = SOURCES[name].target.split(":")
    return getattr(importlib.import_module(module), cls)


#: Names of :mod:`~emomon.realtime.sources.base`, imported on first use too: the
#: command line's parser reads :data:`SOURCES` without loading numpy.
_BASE = frozenset({"Chunk", "Source", "SourceError", "SourceState"})


def __getattr__(name: str) -> Any:
    if name in _BASE:
        return getattr(importlib.import_module(f"{__name__}.base"), name)
    for entry in SOURCES.values():
        module, cls = entry.target.split(":")
        if cls == name:
            return getattr(importlib.import_module(module), cls)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
