"""Model tests: single-threaded torch and a fixed seed."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

# Tests share two cores with other jobs: one intra-op thread, no oversubscription.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same torch RNG state."""
    torch.manual_seed(0)
