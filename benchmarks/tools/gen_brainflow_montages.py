"""Write emomon/dsp/_brainflow_montages.py from BrainFlow's own board descriptions.

Run by hand when BrainFlow changes (``python
benchmarks/tools/gen_brainflow_montages.py``); the library reads the committed
table, so ``emomon train --montage brainflow:NAME`` never imports BrainFlow
(``datasets`` and ``offline`` must not). For every ``BoardIds`` member it records
``BoardShim.get_board_descr(id)``'s ``eeg_names`` (None where the description
has none, or where their count differs from the EEG rows, as the BrainFlow
source treats them), the number of EEG rows and the sampling rate.
``tests/realtime/test_brainflow_montages.py`` checks the table against the
installed BrainFlow.
"""

from __future__ import annotations

import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "emomon" / "dsp" / "_brainflow_montages.py"


def board_table() -> dict[str, tuple[int, tuple[str, ...] | None, int | None]]:
    """``BoardIds`` name -> (id, EEG names or None, number of EEG rows or None)."""
    with warnings.catch_warnings():
        # BrainFlow locates its native library through the deprecated
        # pkg_resources on first use
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        from brainflow.board_shim import BoardIds, BoardShim
        from brainflow.exit_codes import BrainFlowError

        out = {}
        for board in BoardIds:
            try:
                descr = BoardShim.get_board_descr(board.value)
            except BrainFlowError:  # NO_BOARD: nothing to describe
                continue
            rows = descr.get("eeg_channels")
            names = descr.get("eeg_names")
            parts = tuple(n.strip() for n in names.split(",")) if names else None
            if parts is not None and (
                rows is None or len(parts) != len(rows) or not all(parts)
            ):
                parts = None
            out[board.name] = (int(board.value), parts, len(rows) if rows else None)
    return out


def brainflow_version() -> str:
    """The installed BrainFlow's version (the package's)."""
    from importlib.metadata import version

    return version("brainflow")


def render(table: dict, version: str) -> str:
    """The module text of ``table``."""
    lines = [
        '"""EEG channel names of BrainFlow boards: generated, do not edit.',
        "",
        "Written by benchmarks/tools/gen_brainflow_montages.py from",
        f"BrainFlow {version}'s BoardShim.get_board_descr(board)['eeg_names'].",
        "Each entry: BoardIds name -> (board id, EEG channel names as BrainFlow",
        "spells them, comma-separated, or None when the description names none,",
        "number of EEG rows or None).",
        '"""',
        "",
        f'BRAINFLOW_VERSION = "{version}"',
        "",
        "BOARDS: dict[str, tuple[int, str | None, int | None]] = {",
    ]
    for name, (bid, names, n) in table.items():
        names_src = "None" if names is None else f'"{",".join(names)}"'
        lines.append(f'    "{name}": ({bid}, {names_src}, {n}),')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    OUT.write_text(render(board_table(), brainflow_version()), encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
