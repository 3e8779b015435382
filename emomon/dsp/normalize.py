"""z-score normalisation and model-input layout, shared by training and streaming.

Offline training and the online pipeline both turn window features into the model
input with :func:`model_input`, with the statistics saved in the model contract, so
the two paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emomon.dsp.layout import grid_positions, to_flat, to_grid

_STD_FLOOR = 1e-6


def fit_zscore(values: np.ndarray, *, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Training-set statistics for :func:`model_input`.

    Parameters
    ----------
    values : ndarray, shape (n_windows, n_channels, n_features)
        Training windows (for ``layout="eeg"``: n_features = samples per window).
    layout : {"flat", "grid", "eeg"}

    Returns
    -------
    mean, std : ndarray, shape (n_channels, n_features) or (n_channels, 1) for eeg
        ``std`` is floored at 1e-6 so constant features do not divide by zero.
    """
    if values.ndim != 3 or values.shape[0] == 0:
        raise ValueError(
            f"values must be (n_windows>0, n_ch, n_feat), got {values.shape}"
        )
    if layout == "eeg":
        # Raw EEG: one scale per channel over windows and time.
        mean = values.mean(axis=(0, 2), dtype=np.float64)[:, None]
        std = values.std(axis=(0, 2), dtype=np.float64)[:, None]
    else:
        mean = values.mean(axis=0, dtype=np.float64)
        std = values.std(axis=0, dtype=np.float64)
    return mean, np.maximum(std, _STD_FLOOR)


def model_input(
    values: np.ndarray,
    *,
    mean: np.ndarray,
    std: np.ndarray,
    layout: str,
    ch_names: Sequence[str],
) -> np.ndarray:
    """z-score window features and arrange them as the model input.

    Parameters
    ----------
    values : ndarray, shape (n_windows, n_channels, n_features)
    mean, std : ndarray
        From :func:`fit_zscore` (shape (n_channels, n_features) or (n_channels, 1)).
    layout : {"flat", "grid", "eeg"}
    ch_names : sequence of str
        Channel names in ``values`` order (for the grid).

    Returns
    -------
    ndarray of float32
        ``flat``: (n_windows, n_features * n_channels); ``grid``:
        (n_windows, n_features, 8, 9), electrodes off the montage zero (the
        training mean); ``eeg``: (n_windows, n_channels, n_times).
    """
    z = (values - mean) / std
    if layout == "flat":
        out = to_flat(z)
    elif layout == "grid":
        out = to_grid(z, ch_names)
    elif layout == "eeg":
        out = z
    else:
        raise ValueError(f"unknown layout {layout!r}")
    return np.ascontiguousarray(out, dtype=np.float32)


class InputBuilder:
    """:func:`model_input` for one layout and montage, set up once.

    The live pipeline builds one model input per hop; this keeps the grid
    scatter indices and an output buffer instead of recomputing them each time.
    Same values as :func:`model_input`.

    Parameters
    ----------
    mean, std : ndarray
        As for :func:`model_input`.
    layout : {"flat", "grid", "eeg"}
    ch_names : sequence of str
    n_features : int
        Features (or samples, for ``eeg``) per channel.
    """

    def __init__(
        self,
        *,
        mean: np.ndarray,
        std: np.ndarray,
        layout: str,
        ch_names: Sequence[str],
        n_features: int,
    ) -> None:
        if layout not in ("flat", "grid", "eeg"):
            raise ValueError(f"unknown layout {layout!r}")
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.layout = layout
        self.ch_names = list(ch_names)
        self._one = np.zeros(
            (1, *input_shape(layout=layout, n_channels=len(ch_names),
                             n_features=n_features)),
            dtype=np.float32,
        )  # fmt: skip
        pos = grid_positions(ch_names)
        self._on_map = np.flatnonzero(pos[:, 0] >= 0)
        self._rows = pos[self._on_map, 0]
        self._cols = pos[self._on_map, 1]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Model input of ``values`` (n_windows, n_channels, n_features), float32.

        For one window the returned array is a reused buffer: use it (e.g. run
        the model) before the next call.
        """
        if values.shape[0] != 1:
            return model_input(
                values,
                mean=self.mean,
                std=self.std,
                layout=self.layout,
                ch_names=self.ch_names,
            )
        z = (values[0] - self.mean) / self.std  # (C, F)
        out = self._one
        if self.layout == "grid":
            out[0][:, self._rows, self._cols] = z[self._on_map].T
        elif self.layout == "flat":
            out[0] = z.T.ravel()
        else:
            out[0] = z
        return out


def input_shape(*, layout: str, n_channels: int, n_features: int) -> tuple[int, ...]:
    """Shape of one model input sample for a layout (without the batch axis)."""
    if layout == "flat":
        return (n_features * n_channels,)
    if layout == "grid":
        return (n_features, 8, 9)
    if layout == "eeg":
        return (n_channels, n_features)
    raise ValueError(f"unknown layout {layout!r}")


def channels_off_grid(ch_names: Sequence[str]) -> list[str]:
    """Channels that have no cell on the 8x9 scalp map."""
    pos = grid_positions(ch_names)
    return [c for c, p in zip(ch_names, pos, strict=True) if p[0] < 0]
