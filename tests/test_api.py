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


def _readme_examples() -> list[str]:
    """The ```python blocks of the README's "Python API" section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```python\n")[1:]
    return [b.split("\n```", 1)[0] for b in blocks]


@pytest.mark.integration
def test_the_readme_python_api_examples_run(tmp_path, monkeypatch, capsys):
    """Each example runs, in order, in one namespace (as a user would paste
    them), and prints what it says it prints."""
    blocks = _readme_examples()
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # the examples write runs/api here
    namespace: dict = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md (Python API)", "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert (tmp_path / "runs" / "api" / "model.onnx").is_file()
    assert out[0].startswith("valence ")
    assert out[1].startswith("arousal ")
    assert out[2] == "model.onnx"
    assert out[3].startswith("input[b, f * 32 + c] =")
    assert len(out[4].split()) == 4  # index, time, p_high, ok of a window
    report = namespace["report"]
    assert isinstance(report, emomon.RunReport)
    assert set(report.results) == {"lovo", "intra"}
    seqs = [int(line.split()[0]) for line in out[7:12]]
    assert seqs == list(range(5))
    assert out[12] == "5"
