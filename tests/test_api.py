"""The Python API: ``import emomon`` is light and lists its names; the README's
examples run (``emomon.load_model(...).predict`` itself is tested against the
live stream in ``tests/realtime/test_model.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import emomon

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "onnxruntime", "scipy", "mne", "pylsl", "zmq", "brainflow")


def _modules_after(code: str) -> set[str]:
    """Top-level packages imported by ``code`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {m.split(".")[0] for m in out.split()}


def test_import_emomon_loads_no_torch_onnxruntime_or_scipy():
    heavy = set(HEAVY) & _modules_after("import emomon")
    assert heavy == set(), f"import emomon imported {sorted(heavy)}"
    # a name is resolved on first use, and only its own module's imports come in
    assert "torch" not in _modules_after("import emomon\nemomon.load_model")


def test_the_api_lists_its_names():
    assert {"load_model", "Subscriber", "LoadedModel", "PredictionMessage"} <= set(
        dir(emomon)
    )
    assert emomon.Subscriber.__name__ == "Subscriber"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        emomon.nope  # noqa: B018
