"""Electrode names and the 8x9 scalp grid ("brain map") of DESIGN.md section 5."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: DEAP's 32 EEG channels in the Geneva order used by ``data_preprocessed_python``.
DEAP_CHANNELS: tuple[str, ...] = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7",
    "PO3", "O1", "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz",
    "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2",
)  # fmt: skip

#: Emotiv EPOC 14-channel order used by DREAMER and AMIGOS.
EMOTIV_CHANNELS: tuple[str, ...] = (
    "AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4",
    "F8", "AF4",
)  # fmt: skip

#: SEED's 62 channels (ESI NeuroScan order), names as stored by the dataset.
SEED_CHANNELS: tuple[str, ...] = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4",
    "F6", "F8", "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8",
    "T7", "C5", "C3", "C1", "CZ", "C2", "C4", "C6", "T8", "TP7", "CP5", "CP3",
    "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "P7", "P5", "P3", "P1", "PZ", "P2",
    "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4", "PO6", "PO8", "CB1",
    "O1", "OZ", "O2", "CB2",
)  # fmt: skip

#: The 8x9 scalp map; ``None`` cells stay zero.
GRID_ROWS: tuple[tuple[str | None, ...], ...] = (
    (None, None, "AF3", "Fp1", None, "Fp2", "AF4", None, None),
    ("F7", None, "F3", None, "Fz", None, "F4", None, "F8"),
    (None, "FC5", None, "FC1", None, "FC2", None, "FC6", None),
    ("T7", None, "C3", None, "Cz", None, "C4", None, "T8"),
    (None, "CP5", None, "CP1", None, "CP2", None, "CP6", None),
    ("P7", None, "P3", None, "Pz", None, "P4", None, "P8"),
    (None, None, None, "PO3", None, "PO4", None, None, None),
    (None, None, None, "O1", "Oz", "O2", None, None, None),
)
GRID_SHAPE: tuple[int, int] = (8, 9)

_GRID_POS = {
    name.upper(): (r, c)
    for r, row in enumerate(GRID_ROWS)
    for c, name in enumerate(row)
    if name is not None
}

# Canonical 10-20 spelling for upper-case names (SEED stores "FP1", "FZ", "CZ", ...).
_CANONICAL = {n.upper(): n for n in DEAP_CHANNELS + EMOTIV_CHANNELS}


def canonical_name(name: str) -> str:
    """Return the 10-20 spelling of an electrode name (``"FP1"`` -> ``"Fp1"``).

    Names emomon does not know are returned stripped but otherwise unchanged; SEED
    names outside the DEAP set use the usual mixed case (``"FPZ"`` -> ``"Fpz"``).
    """
    n = name.strip()
    up = n.upper()
    if up in _CANONICAL:
        return _CANONICAL[up]
    if up.startswith("FP"):
        return "Fp" + up[2:].lower() if up[2:] == "Z" else "Fp" + up[2:]
    if up.endswith("Z") and up[:-1].isalpha() and len(up) <= 4:
        return up[:-1] + "z"
    return n


def grid_positions(ch_names: Sequence[str]) -> np.ndarray:
    """Grid cell of each channel.

    Parameters
    ----------
    ch_names : sequence of str
        Channel names in array order (any case).

    Returns
    -------
    positions : ndarray of int, shape (n_channels, 2)
        ``(row, col)`` in the 8x9 map, ``(-1, -1)`` for channels not on the map.
    """
    return np.array(
        [_GRID_POS.get(canonical_name(n).upper(), (-1, -1)) for n in ch_names],
        dtype=int,
    ).reshape(len(ch_names), 2)


def to_grid(features: np.ndarray, ch_names: Sequence[str]) -> np.ndarray:
    """Scatter per-channel features onto the 8x9 scalp map.

    Parameters
    ----------
    features : ndarray, shape (n_windows, n_channels, n_features)
        Features in channel order ``ch_names``.
    ch_names : sequence of str
        Names of the channels, ``len(ch_names) == n_channels``.

    Returns
    -------
    grid : ndarray, shape (n_windows, n_features, 8, 9)
        Electrodes absent from the montage (and channels off the map) stay zero.
    """
    if features.ndim != 3 or features.shape[1] != len(ch_names):
        raise ValueError(
            f"features must be (n_windows, {len(ch_names)}, n_features), "
            f"got {features.shape}"
        )
    pos = grid_positions(ch_names)
    on_map = pos[:, 0] >= 0
    out = np.zeros((features.shape[0], features.shape[2], *GRID_SHAPE), features.dtype)
    out[:, :, pos[on_map, 0], pos[on_map, 1]] = features[:, on_map, :].transpose(
        0, 2, 1
    )
    return out


def to_flat(features: np.ndarray) -> np.ndarray:
    """Flatten per-channel features, feature-major.

    Parameters
    ----------
    features : ndarray, shape (n_windows, n_channels, n_features)

    Returns
    -------
    flat : ndarray, shape (n_windows, n_features * n_channels)
        Index ``f * n_channels + c`` holds feature ``f`` of channel ``c``.
    """
    n_win = features.shape[0]
    return np.ascontiguousarray(features.transpose(0, 2, 1)).reshape(n_win, -1)
