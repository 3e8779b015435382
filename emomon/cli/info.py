"""``emomon info MODEL``: the contract of an emomon ONNX model."""

from __future__ import annotations

import argparse
from pathlib import Path

#: One line for ``emomon --help``.
HELP = "print the contract of an emomon ONNX model"

#: Library parameter -> flag.
FLAGS: dict[str, str] = {"path": "MODEL"}


def run(args: argparse.Namespace) -> int:
    """Print the model's contract (``--json``: the raw contract JSON)."""
    from emomon.contract import ModelContract

    contract = ModelContract.from_onnx(args.model)
    print(contract.to_json() if args.json else contract.describe())
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``info`` to ``p``."""
    p.add_argument("model", type=Path, help="model.onnx")
    p.add_argument("--json", action="store_true", help="raw contract JSON")
