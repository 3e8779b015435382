"""Electrode positions of the 10-20 / 10-05 system, from a committed table.

The table (:mod:`emomon.dsp._positions_1005`) holds the 343 points of MNE-Python's
``standard_1005`` montage in MNE's head frame, written once by
``benchmarks/tools/gen_positions.py`` (it records MNE's version); emomon reads it
without MNE. Names are matched as :func:`~emomon.dsp.layout.canonical_name`
spells them, in any case (``"FP1"``, ``"fp1"`` and ``"Fp1"`` are one electrode);
the old 10-20 names (T3, T4, T5, T6) are in the table beside the new ones (T7, T8,
P7, P8), at the same places.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from emomon.dsp._positions_1005 import MNE_VERSION, POSITIONS
from emomon.dsp.layout import canonical_name
from emomon.errors import EmomonError

__all__ = ["MNE_VERSION", "UnknownPositionError", "known_names", "positions"]

_BY_UPPER = {name.upper(): xyz for name, xyz in POSITIONS.items()}


class UnknownPositionError(EmomonError):
    """A channel name that is not an electrode of the 10-05 system."""


def known_names() -> tuple[str, ...]:
    """Every electrode name the table knows, in MNE's spelling and order.

    Returns
    -------
    tuple of str
        343 names (``"Fp1"``, ``"Fpz"``, ..., ``"T3"``, ``"M1"``, ...).
    """
    return tuple(POSITIONS)


def positions(
    ch_names: Sequence[str],
    *,
    on_missing: Literal["raise", "nan"] = "raise",
) -> np.ndarray:
    """Position of each electrode on the head.

    Parameters
    ----------
    ch_names : sequence of str
        Channel names (10-20 / 10-05, any case, e.g. ``"Fp1"``, ``"FCZ"``).
    on_missing : {"raise", "nan"}
        What a name the table does not know gives: ``"raise"`` (default) raises
        :class:`UnknownPositionError` naming every such channel; ``"nan"`` gives
        it a row of NaN.

    Returns
    -------
    ndarray of float64, shape (n_channels, 3)
        ``(x, y, z)`` in metres, in MNE's head frame (x towards the right ear,
        y towards the nasion, z up), in the order of ``ch_names``.

    Raises
    ------
    UnknownPositionError
        With ``on_missing="raise"``, if a name is not in the table.
    """
    if on_missing not in ("raise", "nan"):
        raise ValueError(f"on_missing must be 'raise' or 'nan', got {on_missing!r}")
    out = np.full((len(ch_names), 3), np.nan)
    unknown = []
    for i, name in enumerate(ch_names):
        xyz = _BY_UPPER.get(canonical_name(name).upper())
        if xyz is None:
            unknown.append(name)
        else:
            out[i] = xyz
    if unknown and on_missing == "raise":
        listed = ", ".join(repr(n) for n in unknown)
        raise UnknownPositionError(
            f"no electrode position for channel(s) {listed}: emomon knows the "
            "10-20 / 10-05 names (Fp1, AF3, FCz, ...); rename the channel(s) to "
            "their 10-05 name or leave them out"
        )
    return out
