"""``emomon info MODEL``: the contract of an emomon ONNX model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: Library parameter -> flag.
FLAGS: dict[str, str] = {"path": "MODEL"}


def run(args: argparse.Namespace) -> int:
    """Print the model's contract (``--json``: the raw contract JSON)."""
    from emomon.contract import ModelContract

    contract = ModelContract.from_onnx(args.model)
    print(contract.to_json() if args.json else contract.describe())
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``info`` on ``sub`` (argparse subparsers)."""
    p = sub.add_parser("info", help="print the contract of an emomon ONNX model")
    p.add_argument("model", type=Path, help="model.onnx")
    p.add_argument("--json", action="store_true", help="raw contract JSON")
    p.set_defaults(func=run, flags=FLAGS)
    return p
