"""Causal IIR filters with state carried across chunks (DESIGN.md section 5).

Every filter here is causal (``scipy.signal.sosfilt``), so the online pipeline and
offline training compute identical samples: feeding a recording in chunks of any
size gives the same output as one call on the whole recording.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from emomon.config import Band

try:  # scipy's compiled cascade, minus ~150 µs of per-call argument handling
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # pragma: no cover - other scipy layouts: public API
    _sosfilt_kernel = None


def bandpass_sos(lo: float, hi: float, *, sfreq: float, order: int = 4) -> np.ndarray:
    """Butterworth band-pass as second-order sections.

    Parameters
    ----------
    lo, hi : float
        Pass band edges in Hz, ``0 < lo < hi < sfreq / 2``.
    sfreq : float
        Sampling frequency in Hz.
    order : int
        Butterworth order (the band-pass has ``2 * order`` poles).

    Returns
    -------
    sos : ndarray, shape (order, 6)
    """
    nyq = sfreq / 2.0
    if not 0 < lo < hi < nyq:
        raise ValueError(
            f"band {lo}-{hi} Hz needs 0 < lo < hi < Nyquist ({nyq} Hz at sfreq={sfreq})"
        )
    return _butter_sos(float(lo), float(hi), float(sfreq), int(order)).copy()


@functools.lru_cache(maxsize=64)
def _butter_sos(lo: float, hi: float, sfreq: float, order: int) -> np.ndarray:
    """Design the band-pass once per band.

    scipy's ``butter`` takes ~4 ms, and a dataset builds one extractor (4 bands)
    per trial.
    """
    return signal.butter(order, [lo, hi], btype="bandpass", fs=sfreq, output="sos")


def notch_sos(freq: float, *, sfreq: float, q: float = 10.0) -> np.ndarray:
    """Second-order IIR notch at ``freq`` Hz with quality factor ``q``.

    Returns
    -------
    sos : ndarray, shape (1, 6)
    """
    if not 0 < freq < sfreq / 2:
        raise ValueError(f"notch {freq} Hz is above Nyquist at sfreq={sfreq}")
    b, a = signal.iirnotch(freq, q, fs=sfreq)
    return signal.tf2sos(b, a)


def common_average(x: np.ndarray) -> np.ndarray:
    """Subtract the mean over channels at each sample (common average reference).

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_times)

    Returns
    -------
    ndarray, shape (n_channels, n_times)
        A new array.
    """
    return x - x.mean(axis=0, keepdims=True)


@functools.lru_cache(maxsize=64)
def _sosfilt_zi(sos: bytes, n_sections: int) -> np.ndarray:
    """Return ``sosfilt_zi`` of a cascade given as bytes, read-only.

    Once per cascade: a linear solve per section, repeated for every trial
    otherwise.
    """
    zi = signal.sosfilt_zi(np.frombuffer(sos).reshape(n_sections, 6))
    zi.flags.writeable = False
    return zi


@dataclass(frozen=True)
class SOSFilterSettings:
    """Coefficients of a bank of causal filters applied to the same input.

    Attributes
    ----------
    sos : tuple of ndarray, each shape (n_sections, 6)
        One cascade per output branch (one per band; one for a notch).
    """

    sos: tuple[np.ndarray, ...]

    @property
    def zi(self) -> tuple[np.ndarray, ...]:
        """Unit-step steady-state of each cascade, shape (n_sections, 2) each."""
        cached = self.__dict__.get("_zi")
        if cached is None:
            cached = tuple(_sosfilt_zi(s.tobytes(), s.shape[0]) for s in self.sos)
            object.__setattr__(self, "_zi", cached)
        return cached


@dataclass
class SOSFilterBank:
    """Causal filter bank with carried state.

    Each branch filters the same input with its own cascade. State is initialised
    from the first sample seen (``sosfilt_zi * x[:, :1]``), so a DC offset does not
    produce a step transient.

    Parameters
    ----------
    settings : SOSFilterSettings
    n_channels : int
    """

    settings: SOSFilterSettings
    n_channels: int
    _zi: list[np.ndarray] | None = field(default=None, init=False, repr=False)
    _sos: list[np.ndarray] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._sos = [
            np.ascontiguousarray(s, dtype=np.float64) for s in self.settings.sos
        ]

    def reset(self) -> None:
        """Forget the filter state; the next chunk re-initialises it."""
        self._zi = None

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter one chunk.

        Parameters
        ----------
        x : ndarray, shape (n_channels, n_times)
            ``n_times`` may be 0.

        Returns
        -------
        y : ndarray, shape (n_branches, n_channels, n_times)
        """
        n_br = len(self._sos)
        if x.shape[-1] == 0:  # sosfilt raises on empty input
            return np.empty((n_br, *x.shape))
        if self._zi is None:
            # Kernel layout (n_channels, n_sections, 2), C-contiguous.
            self._zi = [
                np.ascontiguousarray(z[None, :, :] * x[:, :1, None])
                for z in self.settings.zi
            ]
        if _sosfilt_kernel is None:  # pragma: no cover
            return self._process_public(x)
        # The kernel filters each row in place and updates zi in place: the very
        # computation scipy.signal.sosfilt(sos, x, axis=-1, zi=zi) runs.
        out = np.empty((n_br, *x.shape))
        out[:] = x
        for i, s in enumerate(self._sos):
            _sosfilt_kernel(s, out[i], self._zi[i])
        return out

    def _process_public(self, x: np.ndarray) -> np.ndarray:
        assert self._zi is not None  # initialised by process()
        out = np.empty((len(self._sos), *x.shape))
        for i, s in enumerate(self._sos):
            zi = self._zi[i].transpose(1, 0, 2)  # (n_sections, n_channels, 2)
            out[i], zf = signal.sosfilt(s, x, axis=-1, zi=zi)
            self._zi[i] = np.ascontiguousarray(zf.transpose(1, 0, 2))
        return out


def band_filter_bank(
    bands: Sequence[Band], *, sfreq: float, n_channels: int, order: int = 4
) -> SOSFilterBank:
    """Causal Butterworth band-pass bank, one branch per band."""
    sos = tuple(bandpass_sos(b.lo, b.hi, sfreq=sfreq, order=order) for b in bands)
    return SOSFilterBank(SOSFilterSettings(sos), n_channels)


def notch_filter(
    freq: float, *, sfreq: float, n_channels: int, q: float = 10.0
) -> SOSFilterBank:
    """Causal notch as a one-branch :class:`SOSFilterBank`."""
    sos = (notch_sos(freq, sfreq=sfreq, q=q),)
    return SOSFilterBank(SOSFilterSettings(sos), n_channels)
