"""The input check shared by the streaming blocks of :mod:`emomon.dsp`."""

from __future__ import annotations

import numpy as np


def as_eeg(
    x: object, n_channels: int | None = None, *, name: str = "chunk"
) -> np.ndarray:
    """Return ``x`` as a float64 ``(n_channels, n_times)`` array.

    No copy is made when ``x`` already is one.

    Parameters
    ----------
    x : array_like
        The samples, channels first.
    n_channels : int, optional
        The number of rows ``x`` must have (default: any).
    name : str
        What the error message calls ``x``.

    Returns
    -------
    ndarray of float64, shape (n_channels, n_times)

    Raises
    ------
    ValueError
        If ``x`` is not 2-D or has another number of rows.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or n_channels not in (None, arr.shape[0]):
        rows = "n_channels" if n_channels is None else n_channels
        raise ValueError(f"{name} must be ({rows}, n_times), got shape {arr.shape}")
    return arr
