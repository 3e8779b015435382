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
lists the channel in ``bad_channels``. ``line_noise`` and ``interpolated`` do
not flag the window: an ``interpolated`` channel is still listed in
``bad_channels`` (its signal was bad and was replaced), a ``line_noise``
channel is named in ``reasons`` only (its signal is used as it is).

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
#: Reasons that leave the window predicted on (``interpolated`` channels are
#: still in ``bad_channels``; ``line_noise`` ones only in ``reasons``).
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
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, list]] = {}

    def _operators(
        self, n: int
    ) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, list[tuple[slice, float, int | None]]
    ]:
        """Centred time, its regression weights, the taper, and each band's bins.

        Each band is a contiguous run of FFT bins; its power is the sum of
        their periodogram values times one scale (one-sided density times the
        bin width, as ``scipy.signal.periodogram``'s "density" scaling), the
        Nyquist bin counted once (``nyquist``: its index when in the band).
        """
        got = self._cache.get(n)
        if got is not None:
            return got
        sfreq = self.sfreq
        freqs = np.fft.rfftfreq(n, d=1.0 / sfreq)
        win = signal.get_window("hann", n)  # periodic, as the features' Welch
        scale = 2.0 / (n * float(win @ win))  # 2 * df / (sfreq * sum(win**2))
        nyq = freqs.size - 1 if n % 2 == 0 else None
        lo, hi = self.band
        h = self.line_half_width
        masks = [(freqs >= lo) & (freqs <= hi)]
        masks += [np.abs(freqs - f) <= h for f in self.line_freqs]
        bands = []
        for m in masks:
            idx = np.flatnonzero(m)
            if idx.size == 0:  # a band narrower than a bin: no power
                bands.append((slice(0, 0), scale, None))
                continue
            sl = slice(int(idx[0]), int(idx[-1]) + 1)
            bands.append((sl, scale, nyq if nyq is not None and m[nyq] else None))
        t = np.arange(n) - (n - 1) / 2.0
        got = (t, t / float(t @ t), win, bands)
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

        Notes
        -----
        No matrix product: a threaded BLAS spends more waking its threads for
        these small products than computing them (+0.4 ms a hop, measured on
        this project's 2 busy cores); reductions and one FFT do not thread.
        """
        t, ramp, win, band_bins = self._operators(x.shape[1])
        # Least-squares detrend (mean and slope: t is centred), then the taper.
        xd = x - x.mean(axis=1, keepdims=True)
        xd -= (x * ramp).sum(axis=1, keepdims=True) * t
        xd *= win
        spec = np.fft.rfft(xd, axis=1)
        power = spec.real * spec.real
        power += spec.imag * spec.imag
        out = []
        for sl, scale, nyq in band_bins:
            p = power[:, sl].sum(axis=1)
            if nyq is not None:
                p -= 0.5 * power[:, nyq]
            out.append(p * scale)
        bands = np.stack(out, axis=1)  # (n_channels, 1 + n_line)
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
    refresh : int
        Windows between two computations of the median once every channel has
        a full span (default 1: every window).

    Notes
    -----
    A median, not a mean: a blink or a jaw clench lasting less than half the
    span moves it little, so the artefact is measured against the channel's
    clean level. Windows in which a channel was excluded (flat, railed,
    non-finite) count as missing for that channel.
    """

    def __init__(
        self, n_channels: int, length: int, min_count: int, *, refresh: int = 1
    ) -> None:
        self.length = max(1, int(length))
        self.min_count = max(1, min(int(min_count), self.length))
        self._buf = np.full((n_channels, self.length), np.nan)
        self._i = 0
        self._clean = False  # the buffer holds no NaN (the usual, fast case)
        self._level: np.ndarray | None = None
        self._since = 0  # windows pushed since the level was computed
        self.refresh = max(1, int(refresh))

    def level(self) -> np.ndarray:
        """Median per channel; NaN for a channel with fewer than ``min_count``."""
        if self._clean:
            # A median over ``length`` windows moves little in a few: recompute
            # it every ``refresh`` windows (a 30 s level, once a second).
            if self._level is None or self._since >= self.refresh:
                self._level = np.median(self._buf, axis=1)
                self._since = 0
            return self._level
        return _nanmedian_rows(self._buf, self.min_count)

    def push(self, values: np.ndarray, exclude: np.ndarray | None = None) -> None:
        """Add one window's values; ``exclude`` (bool per channel) counts as missing."""
        self._since += 1
        col = self._buf[:, self._i]
        col[:] = values
        if exclude is not None and exclude.any():
            col[exclude] = np.nan
        self._i = (self._i + 1) % self.length
        if self._clean:
            self._clean = bool(np.isfinite(col).all())
        elif self._i == 0:  # a full cycle: the missing values may be gone
            self._clean = bool(np.isfinite(self._buf).all())
            self._level = None

    @staticmethod
    def windows(span_s: float, hop_s: float) -> int:
        """Windows in ``span_s`` seconds at one window per ``hop_s``."""
        return max(1, math.ceil(span_s / hop_s - 1e-9))


def _nanmedian_rows(buf: np.ndarray, min_count: int) -> np.ndarray:
    """Median of each row's non-NaN values; NaN for a row with fewer than ``min_count``.

    The same values as :func:`numpy.nanmedian` along axis 1, by one sort (NaN
    sorts last) and an index: numpy's ``nanmedian`` goes through masked arrays
    for rows this short, about 2 ms for 32 x 120 windows, which every hop paid
    while the level filled (its first ``noisy_level_s``) and for as long as a
    channel stays excluded (an unplugged electrode).
    """
    ordered = np.sort(buf, axis=1)
    count = buf.shape[1] - np.isnan(buf).sum(axis=1)
    rows = np.arange(buf.shape[0])
    lo = np.maximum((count - 1) // 2, 0)
    out = 0.5 * (ordered[rows, lo] + ordered[rows, count // 2 - (count == 0)])
    out[count < min_count] = np.nan
    return out
