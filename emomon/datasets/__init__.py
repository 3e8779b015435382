"""Readers of the real on-disk dataset formats, yielding :class:`Trial` records.

Readers are registered by name and imported lazily so that ``emomon datasets list``
stays fast and a reader's optional imports (MNE) cost nothing until used.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from emomon.datasets.base import FeatureTrial, Reader, Trial
from emomon.errors import DatasetError

__all__ = ["READERS", "FeatureTrial", "Reader", "Trial", "get_reader", "reader_class"]

#: name -> "module:Class"
READERS: dict[str, str] = {
    "deap": "emomon.datasets.deap:DeapReader",
    "dreamer": "emomon.datasets.dreamer:DreamerReader",
    "amigos": "emomon.datasets.amigos:AmigosReader",
    "seed": "emomon.datasets.seed:SeedReader",
    "seed-features": "emomon.datasets.seed:SeedFeaturesReader",
    "eav": "emomon.datasets.eav:EavReader",
    "seed4": "emomon.datasets.seed4:SeedIVReader",
    "seed4-features": "emomon.datasets.seed4:SeedIVFeaturesReader",
    "seed5": "emomon.datasets.seed5:SeedVReader",
    "seed5-features": "emomon.datasets.seed5:SeedVFeaturesReader",
    "openbci": "emomon.datasets.openbci:OpenBCIReader",
    "mne": "emomon.datasets.mne_reader:MNEReader",
    "synthetic": "emomon.datasets.synthetic:SyntheticReader",
}


def reader_class(name: str) -> type[Reader]:
    """Return the reader class registered as ``name``.

    Raises
    ------
    DatasetError
        If ``name`` is not a registered reader (the message lists the valid names).
    """
    key = name.strip().lower()
    if key not in READERS:
        raise DatasetError(
            f"unknown dataset '{name}': choose one of {', '.join(sorted(READERS))}"
        )
    module, cls = READERS[key].split(":")
    return getattr(importlib.import_module(module), cls)


def get_reader(name: str, data_dir: str | Path | None = None, **options: Any) -> Reader:
    """Construct the reader ``name`` on ``data_dir`` (validated at construction)."""
    return reader_class(name)(data_dir, **options)
