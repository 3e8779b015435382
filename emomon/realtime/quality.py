"""Per-channel signal quality of a window: the reasons, their rules and measures.

The pipeline (:meth:`Pipeline._quality <emomon.realtime.pipeline.Pipeline>`)
names every channel with a finding and why, as the wire's ``quality.reasons``
(channel -> reason). The rules, with the thresholds of
:class:`~emomon.realtime.pipeline.PipelineSettings`:

- ``nonfinite`` (flags): a NaN or infinite sample in the window;
- ``railed`` (flags): a sample at or beyond ``±railed_uv``;
- ``flat`` (flags): window standard deviation below ``flat_uv``;
- ``noisy`` (flags): 1-40 Hz RMS above ``noisy_uv``, or above ``noisy_ratio``
  times the channel's running level (the median of its RMS over the last
  ``noisy_level_s``, once it has ``noisy_level_min_s`` of them);
- ``line_noise`` (annotates): power within ±1 Hz of 50 or 60 Hz above
  ``line_noise_ratio`` times the 1-40 Hz power;
- ``interpolated`` (annotates): the channel was bad and was replaced from its
  neighbours; the window was predicted on (set by the interpolation step);
- ``no_data`` (flags): fewer than two samples in the window (every channel).

A channel gets one reason, the first that applies in this list's order. A
flagging reason sets ``quality.ok`` false (no probability is published) and
lists the channel in ``bad_channels``; ``line_noise`` and ``interpolated`` only
annotate: the window is predicted on, the channel is named in ``reasons`` and
not in ``bad_channels``.

Where the measures come from: the *raw* source samples of the window (the ring
the flat/railed rules read), at the source's rate, not the features. The
features are computed after the common average reference (which spreads one
channel's artefact over every channel), after resampling to the model's rate
(which removes mains above its Nyquist) and only in the model's bands; none
of them tells which electrode is bad. One FFT per window gives both spectral
measures: the window is detrended (mean and linear trend: the large DC offsets
and drifts of unfiltered amplifiers stay out of the 1 Hz bins), Hann-tapered
and turned into a one-sided power density, which is summed over 1-40 Hz and
over each mains band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import signal

from emomon.realtime._schema import QUALITY_REASONS

__all__ = [
    "ANNOTATING_REASONS",
    "FLAGGING_REASONS",
    "QUALITY_REASONS",
    "RunningLevel",
    "SpectralMeasure",
]

#: Reasons that set ``quality.ok`` false and list the channel in ``bad_channels``.
FLAGGING_REASONS: frozenset[str] = frozenset(
    {"nonfinite", "railed", "flat", "noisy", "no_data"}
)
#: Reasons that only name the channel; the window is predicted on.
ANNOTATING_REASONS: frozenset[str] = frozenset({"line_noise", "interpolated"})


class SpectralMeasure:
    """1-40 Hz RMS and mains-to-EEG power ratio of each channel of a window.

    Parameters
    ----------
    sfreq : float
        Sampling rate of the samples measured (Hz).
    band : (float, float)
        The EEG band in Hz (default 1-40); its upper edge is cut at Nyquist.
    line_freqs : sequence of float
        Mains frequencies in Hz (default 50 and 60); those whose band reaches
        Nyquist are left out.
    line_half_width : float
        Half width of each mains band in Hz (default 1).

    Notes
    -----
    The operators depend only on the window length; they are kept per length
    (a window holds a sample more or less when timestamps jitter).
    """

    def __init__(
        self,
        sfreq: float,
        *,
        band: tuple[float, float] = (1.0, 40.0),
        line_freqs: Sequence[float] = (50.0, 60.0),
        line_half_width: float = 1.0,
    ) -> None:
        self.sfreq = float(sfreq)
        nyq = self.sfreq / 2
        self.band = (float(band[0]), min(float(band[1]), nyq))
        self.line_freqs = tuple(
            float(f) for f in line_freqs if f + line_half_width < nyq
        )
        self.line_half_width = float(line_half_width)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, slice, np.ndarray]] = {}

    def _operators(self, n: int) -> tuple[np.ndarray, np.ndarray, slice, np.ndarray]:
        """Detrend basis, taper, the FFT bins in use and their band weights."""
        got = self._cache.get(n)
        if got is not None:
            return got
        sfreq = self.sfreq
        freqs = np.fft.rfftfreq(n, d=1.0 / sfreq)
        df = sfreq / n
        win = signal.get_window("hann", n)  # periodic, as the features' Welch
        # One-sided density (scipy.signal.periodogram's "density" scaling) times
        # the bin width: a column sum is the power (µV²) in that band.
        scale = np.full(freqs.size, 2.0 * df / (sfreq * float(win @ win)))
        scale[0] /= 2.0
        if n % 2 == 0:
            scale[-1] /= 2.0
        lo, hi = self.band
        h = self.line_half_width
        masks = [(freqs >= lo) & (freqs <= hi)]
        masks += [np.abs(freqs - f) <= h for f in self.line_freqs]
        used = np.flatnonzero(np.any(masks, axis=0))
        bins = slice(int(used[0]), int(used[-1]) + 1)
        weights = np.stack([m[bins] * scale[bins] for m in masks], axis=1)
        # Least-squares detrend on an orthonormal basis of {1, t}: x - (x B') B.
        t = np.arange(n) - (n - 1) / 2.0
        basis = np.stack([np.full(n, 1.0 / math.sqrt(n)), t / math.sqrt(t @ t)])
        got = (basis, win, bins, weights)
        if len(self._cache) > 8:  # lengths come and go with the sample rate
            self._cache.clear()
        self._cache[n] = got
        return got

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measure one window.

        Parameters
        ----------
        x : ndarray, shape (n_channels, n_times)
            Raw samples in µV (finite), ``n_times >= 2``.

        Returns
        -------
        rms_uv : ndarray, shape (n_channels,)
            Root mean square of the 1-40 Hz band (µV).
        line_ratio : ndarray, shape (n_channels,)
            Power within ``±line_half_width`` of the strongest mains frequency
            divided by the 1-40 Hz power (0 when no mains band fits).
        """
        basis, win, bins, weights = self._operators(x.shape[1])
        xd = x - (x @ basis.T) @ basis
        xd *= win
        spec = np.fft.rfft(xd, axis=1)[:, bins]
        power = spec.real * spec.real
        power += spec.imag * spec.imag
        bands = power @ weights  # (n_channels, 1 + n_line)
        eeg = bands[:, 0]
        rms = np.sqrt(eeg)
        if bands.shape[1] == 1:
            return rms, np.zeros_like(rms)
        line = bands[:, 1:].max(axis=1)
        ratio = np.divide(line, eeg, out=np.zeros_like(line), where=eeg > 0)
        return rms, ratio


class RunningLevel:
    """Each channel's running median of a per-window value (its usual level).

    Parameters
    ----------
    n_channels : int
    length : int
        Windows the median covers (the newest ``length``).
    min_count : int
        Windows a channel needs before it has a level.

    Notes
    -----
    A median, not a mean: a blink or a jaw clench lasting less than half the
    span moves it little, so the artefact is measured against the channel's
    clean level. Windows in which a channel was excluded (flat, railed,
    non-finite) count as missing for that channel.
    """

    def __init__(self, n_channels: int, length: int, min_count: int) -> None:
        self.length = max(1, int(length))
        self.min_count = max(1, min(int(min_count), self.length))
        self._buf = np.full((n_channels, self.length), np.nan)
        self._i = 0
        self._clean = False  # the buffer holds no NaN (the usual, fast case)
        self._level: np.ndarray | None = None

    def level(self) -> np.ndarray:
        """Median per channel; NaN for a channel with fewer than ``min_count``."""
        if self._clean:
            if self._level is None:  # one median per window pushed, at most
                self._level = np.median(self._buf, axis=1)
            return self._level
        count = np.isfinite(self._buf).sum(axis=1)
        out = np.full(self._buf.shape[0], np.nan)
        ok = count >= self.min_count
        if ok.any():
            out[ok] = np.nanmedian(self._buf[ok], axis=1)
        return out

    def push(self, values: np.ndarray, exclude: np.ndarray | None = None) -> None:
        """Add one window's values; ``exclude`` (bool per channel) counts as missing."""
        self._level = None
        col = self._buf[:, self._i]
        col[:] = values
        if exclude is not None and exclude.any():
            col[exclude] = np.nan
        self._i = (self._i + 1) % self.length
        if self._clean:
            self._clean = bool(np.isfinite(col).all())
        elif self._i == 0:  # a full cycle: the missing values may be gone
            self._clean = bool(np.isfinite(self._buf).all())

    @staticmethod
    def windows(span_s: float, hop_s: float) -> int:
        """Windows in ``span_s`` seconds at one window per ``hop_s``."""
        return max(1, math.ceil(span_s / hop_s - 1e-9))
