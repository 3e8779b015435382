"""Writing an LSL stream's description: the XDF channel metadata convention."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["add_channels"]


def add_channels(desc: Any, labels: Sequence[str], *, unit: str, kind: str) -> None:
    """Describe each channel under ``desc/channels/channel`` (label, unit, type).

    The layout is the XDF/LSL meta-data convention for ``channels``, which
    LabRecorder, MNE-LSL and emomon's own :class:`LSLSource` read.

    Parameters
    ----------
    desc : pylsl.XMLElement
        A stream info's ``desc()``.
    labels : sequence of str
        Channel labels, in sample order.
    unit : str
        Unit of every channel (``"microvolts"``, ``"probability"``).
    kind : str
        Content type of every channel (``"EEG"``, ``"Emotion"``).
    """
    channels = desc.append_child("channels")
    for label in labels:
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)
        ch.append_child_value("type", kind)
