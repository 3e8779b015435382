"""The layering of the package (README, "Architecture"), checked on the source.

Every ``import`` and ``from ... import`` of every module under ``emomon/`` is
read with :mod:`ast`, also the lazy ones inside functions and under
``TYPE_CHECKING``: a rule broken anywhere fails with the file, the line and the
rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "emomon"

#: Which emomon layers each layer may import (the package root ``emomon`` gives
#: ``__version__``). Layers not listed (``cli``, the API in ``__init__``, the
#: demo) sit on top and may import any.
LAYERS: dict[str, set[str]] = {
    "errors": set(),
    "config": {"errors"},
    "contract": {"config", "errors", "emomon"},
    "dsp": {"config", "errors", "emomon"},
    "datasets": {"dsp", "config", "errors", "emomon"},
    "models": {"config", "errors", "emomon"},
    "offline": {"config", "contract", "datasets", "dsp", "errors", "models", "emomon"},
    "realtime": {"config", "contract", "datasets", "dsp", "errors", "emomon"},
    # the browser view: a subscriber of the wire format, nothing more
    "dashboard": {"realtime", "config", "errors", "emomon"},
    # scoring a recorded session: reads the recording (realtime), scores with
    # the offline report's code
    "livescore": {
        "realtime",
        "offline",
        "datasets",
        "dsp",
        "config",
        "contract",
        "errors",
        "emomon",
    },
}

#: Third-party packages a layer never imports, and why.
FORBIDDEN: list[tuple[set[str], set[str], str]] = [
    (
        {"dsp", "models", "datasets", "offline", "config", "contract", "errors"},
        {"pylsl", "brainflow", "zmq"},
        "only realtime talks to LSL, BrainFlow and ZeroMQ",
    ),
    (
        {"realtime", "dsp", "datasets", "livescore"},
        {"torch"},
        "streaming (and scoring what it recorded) needs no torch",
    ),
    ({"dashboard"}, {"torch", "onnxruntime"}, "the dashboard only shows the wire"),
]


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every absolute import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def violations(paths: list[Path]) -> list[str]:
    """Every broken rule, as ``file:line: what (why)``."""
    out = []
    for path in paths:
        layer = _layer(path)
        where = path.relative_to(PACKAGE.parent)
        for line, module in _imports(path):
            top, _, rest = module.partition(".")
            if top == "argparse" and layer != "cli":
                out.append(f"{where}:{line}: imports argparse (only emomon/cli may)")
            if top == "emomon" and layer in LAYERS:
                target = rest.split(".")[0] if rest else "emomon"
                if target != layer and target not in LAYERS[layer]:
                    out.append(
                        f"{where}:{line}: {layer} imports {module} (a {layer} "
                        f"module may import {', '.join(sorted(LAYERS[layer]))})"
                    )
            for layers, banned, why in FORBIDDEN:
                if layer in layers and top in banned:
                    out.append(f"{where}:{line}: {layer} imports {top} ({why})")
    return out


def test_every_module_keeps_to_its_layer():
    assert violations(_sources()) == []


@pytest.mark.parametrize(
    ("layer_file", "line", "needle"),
    [
        ("dsp/bad.py", "import pylsl", "dsp imports pylsl"),
        ("models/bad.py", "from zmq import Context", "models imports zmq"),
        (
            "datasets/bad.py",
            "import brainflow.board_shim",
            "datasets imports brainflow",
        ),
        ("realtime/bad.py", "import torch", "realtime imports torch"),
        ("realtime/bad.py", "import argparse", "imports argparse"),
        ("offline/bad.py", "from emomon.realtime import stream", "offline imports"),
        ("dsp/bad.py", "from emomon.offline.train import x", "dsp imports"),
        ("dashboard/bad.py", "import torch", "dashboard imports torch"),
        ("dashboard/bad.py", "from emomon.offline import x", "dashboard imports"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path, monkeypatch, layer_file, line, needle):
    """The check itself fails on each kind of break, also inside a function."""
    root = tmp_path / "emomon"
    path = root / layer_file
    path.parent.mkdir(parents=True)
    path.write_text(f"def lazy():\n    {line}\n", encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.PACKAGE", root)
    found = violations([path])
    assert len(found) == 1, found
    assert needle in found[0]
    assert ":2:" in found[0]  # the line of the import


def test_modules_are_small_enough_to_read_in_one_sitting():
    """No module over 800 lines, except the synthetic generator (its knobs and
    their physiology are one concern)."""
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in _sources()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800
    }
    long.pop("emomon/datasets/synthetic.py", None)
    assert long == {}
