"""Shared test fixtures: paths to the real sample data under ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
OPENBCI_SAMPLE = (
    SHARED_DATA / "openbci-cyton-sample" / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"
)


@pytest.fixture(scope="session")
def openbci_sample() -> Path:
    """The real OpenBCI Cyton recording; skips when ../shared/data is absent."""
    if not OPENBCI_SAMPLE.exists():
        pytest.skip(
            f"real OpenBCI sample not found at {OPENBCI_SAMPLE} (../shared/data)"
        )
    return OPENBCI_SAMPLE
