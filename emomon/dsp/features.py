"""Windowed band features: differential entropy and Welch band power.

:class:`FeatureExtractor` is the one implementation used offline (one call on a
whole trial) and online (one call per incoming chunk). It keeps the causal filter
state and a short history, so chunked and one-shot processing give the same
features (tested to < 1e-9).

Window grid: after a start or :meth:`FeatureExtractor.reset`, the first
``warmup`` samples are filtered but never used; windows start at ``warmup``,
``warmup + hop``, ... and each covers ``window`` samples. A window is identified by
its exclusive end index ``end`` (samples since the start).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from emomon.config import Band, FeatureSpec
from emomon.dsp._arrays import as_eeg
from emomon.dsp.filters import SOSFilterBank, band_filter_bank, notch_filter

# Floors keep features finite on flat channels; quality flags report those.
_VAR_FLOOR = 1e-20  # µV²
_POWER_FLOOR = 1e-20  # µV²
_LOG_2PIE = math.log(2.0 * math.pi * math.e)


def differential_entropy(var: np.ndarray) -> np.ndarray:
    """Differential entropy of a Gaussian with variance ``var``.

    DE = 0.5 * ln(2 * pi * e * var) (Shi, Jiao & Lu 2013, "Differential entropy
    feature for EEG-based vigilance estimation"), natural log, ``var`` in µV².
    """
    return 0.5 * (_LOG_2PIE + np.log(np.maximum(var, _VAR_FLOOR)))


def welch_weights(sfreq: float, seg_n: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Hann window, frequencies and density scale of a one-sided Welch estimate.

    Matches ``scipy.signal.welch(x, fs=sfreq, window="hann", nperseg=seg_n,
    noverlap=seg_n // 2, detrend="constant", scaling="density")``.

    Returns
    -------
    window : ndarray, shape (seg_n,)
    freqs : ndarray, shape (seg_n // 2 + 1,)
    scale : float
        Multiplier turning ``|rfft|**2`` into µV²/Hz (one-sided doubling applied
        separately).
    """
    win = signal.get_window("hann", seg_n)
    freqs = np.fft.rfftfreq(seg_n, d=1.0 / sfreq)
    return win, freqs, 1.0 / (sfreq * float(np.sum(win**2)))


def band_integration_matrix(freqs: np.ndarray, bands) -> np.ndarray:
    """Trapezoid-rule weights integrating a PSD over each band.

    Parameters
    ----------
    freqs : ndarray, shape (n_freqs,)
        Uniformly spaced frequencies in Hz.
    bands : sequence of Band

    Returns
    -------
    weights : ndarray, shape (n_freqs, n_bands)
        ``psd @ weights`` is the band power (µV²) over bins within ``[lo, hi]``.
    """
    df = freqs[1] - freqs[0]
    w = np.zeros((freqs.size, len(bands)))
    for j, b in enumerate(bands):
        idx = np.flatnonzero((freqs >= b.lo - 1e-9) & (freqs <= b.hi + 1e-9))
        if idx.size < 2:
            raise ValueError(
                f"band {b.name} ({b.lo}-{b.hi} Hz) spans fewer than 2 Welch bins of "
                f"{df:.3g} Hz; use a longer welch_seg_s"
            )
        w[idx, j] = df
        w[idx[0], j] = w[idx[-1], j] = df / 2.0
    return w


@dataclass(frozen=True)
class WindowFeatures:
    """Features of consecutive windows.

    Attributes
    ----------
    values : ndarray, shape (n_windows, n_channels, n_features)
        Per-channel features in ``FeatureSpec.feature_names`` order.
    ends : ndarray of int64, shape (n_windows,)
        Exclusive end of each window in samples since the extractor's start.
    """

    values: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return self.values.shape[0]


@dataclass(frozen=True)
class ExtractorSettings:
    """Frozen settings of a :class:`FeatureExtractor`."""

    spec: FeatureSpec
    sfreq: float
    n_channels: int
    hop_s: float | None = None  # overrides spec.hop_s (online uses 0.25 s)

    def __post_init__(self) -> None:
        if not self.sfreq > 0:
            raise ValueError(f"sfreq must be > 0, got {self.sfreq}")
        if self.n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, got {self.n_channels}")
        if self.spec.max_band_hz() >= self.sfreq / 2:
            raise ValueError(
                f"band edge {self.spec.max_band_hz()} Hz is at or above Nyquist "
                f"({self.sfreq / 2} Hz) for sfreq={self.sfreq}"
            )
        if self.hop_n < 1:
            raise ValueError("hop is shorter than one sample")

    @cached_property
    def window_n(self) -> int:
        """Window length in samples."""
        return int(round(self.spec.window_s * self.sfreq))

    @cached_property
    def hop_n(self) -> int:
        """Hop in samples (``hop_s``, else the spec's)."""
        hop = self.hop_s if self.hop_s is not None else self.spec.hop_s
        return int(round(hop * self.sfreq))

    @cached_property
    def warmup_n(self) -> int:
        """Warm-up in samples: none of them ends a window."""
        return int(round(self.spec.warmup_s * self.sfreq))

    @cached_property
    def seg_n(self) -> int:
        """Welch segment length in samples."""
        return int(round(self.spec.welch_seg_s * self.sfreq))

    @cached_property
    def n_features(self) -> int:
        """Values per channel and window (window length for raw specs)."""
        return self.window_n if self.spec.is_raw else self.spec.n_features

    @cached_property
    def block_n(self) -> int:
        """Block length in samples: the gcd of window and hop."""
        # Window sums are built from blocks aligned to the window grid, so every
        # window's variance is computed from the same numbers however the input
        # was chunked.
        return math.gcd(self.window_n, self.hop_n)


@dataclass
class FeatureExtractor:
    """Causal filtering and windowed DE/PSD features, chunk by chunk.

    Parameters
    ----------
    settings : ExtractorSettings

    Notes
    -----
    Per chunk: optional causal notch -> optional common average reference ->
    causal Butterworth band-pass per band (state carried). For each window:
    DE of each band-filtered signal (variance with ddof=1) and log10 Welch band
    power of the referenced, unfiltered-by-band signal (Hann, ``welch_seg_s``
    segments, 50% overlap, trapezoid over the band).
    """

    settings: ExtractorSettings
    _bank: SOSFilterBank = field(init=False, repr=False)
    _notch: SOSFilterBank | None = field(init=False, repr=False)
    _n_seen: int = field(default=0, init=False)
    _next_end: int = field(default=0, init=False)
    _hist_start: int = field(default=0, init=False)
    _x_hist: _History = field(init=False, repr=False)
    _y_hist: _History = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        spec = s.spec
        bands = spec.bands
        if spec.is_raw:
            bands = (Band("raw", *spec.raw_band()),)
        self._bank = band_filter_bank(
            bands, sfreq=s.sfreq, n_channels=s.n_channels, order=spec.filter_order
        )
        self._notch = (
            notch_filter(
                spec.notch, sfreq=s.sfreq, n_channels=s.n_channels, q=spec.notch_q
            )
            if spec.notch is not None
            else None
        )
        self._win, freqs, scale = welch_weights(s.sfreq, s.seg_n)
        self._win_fft = np.fft.rfft(self._win)
        # Density scale and one-sided doubling (all bins but DC and, for even
        # lengths, Nyquist) folded into the band-integration weights.
        one_sided = np.full(freqs.size, 2.0)
        one_sided[0] = 1.0
        if s.seg_n % 2 == 0:
            one_sided[-1] = 1.0
        self._band_w = (
            band_integration_matrix(freqs, spec.bands) * (scale * one_sided)[:, None]
        )
        # The constant detrend only moves bins where the window's own spectrum
        # is nonzero (DC and the first bin for a periodic Hann); skip it when no
        # band uses those bins.
        touched = np.abs(self._win_fft) > 1e-9 * np.abs(self._win_fft).max()
        self._detrend = bool(np.any(self._band_w[touched] != 0))
        self._needs_bands = "de" in spec.kinds or spec.is_raw
        self._needs_x = "psd" in spec.kinds and not spec.is_raw
        self._seg_step = s.seg_n - s.seg_n // 2
        self._seg_offsets = np.arange(
            0, s.window_n - s.seg_n + 1, self._seg_step, dtype=np.int64
        )
        self._seg_offset_list = self._seg_offsets.tolist()
        # Welch averages the segments of a window: each segment's band power is
        # stored divided by their count, so a window's power is a plain sum. The
        # weights apply to the interleaved (re, im) float view of the spectrum.
        self._band_w2 = np.repeat(self._band_w / self._seg_offsets.size, 2, axis=0)
        self.reset()

    # -- state -----------------------------------------------------------------
    def reset(self) -> None:
        """Drop filter state and history; the warm-up starts again."""
        s = self.settings
        self._bank.reset()
        if self._notch is not None:
            self._notch.reset()
        self._n_seen = 0
        self._next_end = s.warmup_n + s.window_n
        self._hist_start = s.warmup_n
        n_b = 1 if s.spec.is_raw else len(s.spec.bands)
        # Room for a window, a hop and a typical chunk before compaction.
        cap = 2 * (s.window_n + s.hop_n)
        self._x_hist = _History((s.n_channels,), cap if self._needs_x else 0)
        # Band-filtered samples are kept only for raw windows; DE needs just
        # the sum and sum of squares of each block of the window grid, computed
        # once as samples arrive (whole blocks; the tail waits in _y_tail).
        self._y_hist = _History((n_b, s.n_channels), cap if s.spec.is_raw else 0)
        self._y_tail = np.empty((n_b, s.n_channels, 0))
        self._blk = _History((2, n_b, s.n_channels), 2 * s.window_n // s.block_n + 4)
        self._blk_first = 0  # block index of _blk[..., 0]; block 0 starts at warmup
        # Online, consecutive windows share most Welch segments: their band
        # powers are kept by absolute start sample.
        self._seg_power: dict[int, np.ndarray] = {}

    @property
    def n_seen(self) -> int:
        """Samples processed since the start or the last reset."""
        return self._n_seen

    @property
    def samples_to_next_window(self) -> int:
        """Input samples still missing before the next window completes.

        A caller receiving small chunks can hold them until this many have come
        and process them at once: the filter state is carried either way, so the
        features are the same and the per-call overhead is paid once per hop.
        """
        return max(0, self._next_end - self._n_seen)

    # -- processing ------------------------------------------------------------
    def preprocess(self, chunk: np.ndarray) -> np.ndarray:
        """Notch and common average reference of one chunk (updates notch state)."""
        x = chunk
        if self._notch is not None:
            x = self._notch.process(x)[0]
        if self.settings.spec.car:
            x = x - x.sum(axis=0) / x.shape[0]  # the channel mean, one call less
        return x

    def process(self, chunk: np.ndarray) -> WindowFeatures:
        """Filter one chunk and return the features of every window it completes.

        Parameters
        ----------
        chunk : ndarray, shape (n_channels, n_times)
            EEG in µV; ``n_times`` may be 0.

        Returns
        -------
        WindowFeatures
            Zero or more windows, in time order.
        """
        s = self.settings
        chunk = as_eeg(chunk, s.n_channels)
        n = chunk.shape[1]
        if n == 0:
            return self._empty()
        x = self.preprocess(chunk)
        # Band filtering only feeds DE; PSD-only specs skip it.
        y = self._bank.process(x) if self._needs_bands else x[None, :, :0]
        t0 = self._n_seen
        self._n_seen += n
        keep_from = max(self._hist_start - t0, 0)  # drop warm-up samples
        if keep_from < n:
            if self._needs_x:
                self._x_hist.append(x[:, keep_from:])
            if s.spec.is_raw:
                self._y_hist.append(y[:, :, keep_from:])
            elif self._needs_bands:
                self._add_blocks(y[:, :, keep_from:])
        if self._next_end > self._n_seen:
            return self._empty()
        n_win = (self._n_seen - self._next_end) // s.hop_n + 1
        ends = self._next_end + s.hop_n * np.arange(n_win, dtype=np.int64)
        values = self._features(ends)
        # Keep history from the start of the next window on.
        self._next_end = int(ends[-1]) + s.hop_n
        drop = self._next_end - s.window_n - self._hist_start
        self._x_hist.drop(drop)
        self._y_hist.drop(drop)
        self._hist_start += drop
        first_blk = (self._hist_start - s.warmup_n) // s.block_n
        self._blk.drop(first_blk - self._blk_first)
        self._blk_first = first_blk
        return WindowFeatures(values, ends)

    def _add_blocks(self, y: np.ndarray) -> None:
        """Sum and sum of squares of every block ``y`` completes (B, C, n)."""
        b = self.settings.block_n
        if self._y_tail.shape[-1]:
            y = np.concatenate([self._y_tail, y], axis=-1)
        k = y.shape[-1] // b
        if k:
            blocks = y[:, :, : k * b].reshape(*y.shape[:2], k, b)
            dst = self._blk.reserve(k)  # (2, n_bands, n_channels, k)
            blocks.sum(axis=-1, out=dst[0])
            np.einsum("...i,...i->...", blocks, blocks, out=dst[1])
        self._y_tail = y[:, :, k * b :].copy()

    def _empty(self) -> WindowFeatures:
        s = self.settings
        return WindowFeatures(
            np.empty((0, s.n_channels, s.n_features)), np.empty(0, np.int64)
        )

    def _features(self, ends: np.ndarray) -> np.ndarray:
        s = self.settings
        starts = ends - s.window_n - self._hist_start  # offsets into history
        if s.spec.is_raw:
            view = sliding_window_view(self._y_hist.view()[0], s.window_n, axis=-1)
            return view[:, starts].transpose(1, 0, 2).copy()  # (W, C, window)
        out = np.empty((starts.size, s.n_channels, s.n_features))
        n_b = len(s.spec.bands)
        for j, kind in enumerate(s.spec.kinds):
            dst = out[:, :, j * n_b : (j + 1) * n_b]
            if kind == "de":
                self._de(starts, dst)
            else:
                self._log_band_power(starts, dst)
        return out

    def _de(self, starts: np.ndarray, out: np.ndarray) -> None:
        """DE per window into ``out`` (n_windows, n_channels, n_bands)."""
        s = self.settings
        n = s.window_n
        m = n // s.block_n
        # Each window's blocks in _blk: window sums are sums of m block sums.
        first = (starts + self._hist_start - s.warmup_n) // s.block_n - self._blk_first
        v = self._blk.view()
        if starts.size == 1:  # the online case
            j = int(first[0])
            w = v[..., j : j + m].sum(axis=-1, keepdims=True)
        else:
            w = sliding_window_view(v, m, axis=-1)[..., first, :].sum(axis=-1)
        w1, w2 = w[0], w[1]  # (B, C, W)
        var = (w2 - w1 * w1 / n) / (n - 1)
        out[...] = differential_entropy(var).transpose(2, 1, 0)

    def _log_band_power(self, starts: np.ndarray, out: np.ndarray) -> None:
        """log10 Welch band power per window into ``out`` (n_windows, C, B)."""
        if starts.size == 1:  # the online case: reuse segments of earlier hops
            power = self._window_segment_power(int(starts[0]))
            np.log10(np.maximum(power, _POWER_FLOOR, out=power), out=out[0])
            return
        # Windows overlap: transform each distinct segment once.
        seg_starts = (starts[:, None] + self._seg_offsets[None, :]).ravel()
        uniq, inv = np.unique(seg_starts, return_inverse=True)
        segs = sliding_window_view(self._x_hist.view(), self.settings.seg_n, axis=-1)
        seg_power = self._segment_power(segs[:, uniq])  # (C, S, B)
        inv = inv.reshape(starts.size, self._seg_offsets.size)
        power = seg_power[:, inv].sum(axis=2)  # (C, W, B)
        out[...] = np.log10(np.maximum(power, _POWER_FLOOR)).transpose(1, 0, 2)

    def _segment_power(self, segs: np.ndarray) -> np.ndarray:
        """Band power of Welch segments over their count, (C, S, seg_n) -> (C, S, B).

        In µV²; a window's Welch band power is the sum over its segments.
        """
        # Constant detrend folded into the spectrum: rfft(w*(x-m)) = rfft(w*x) - m*W.
        # C order: a gathered (C, S, n) may be laid out S-major, and so its rfft.
        spec = np.fft.rfft(np.multiply(segs, self._win, order="C"), axis=-1)
        if self._detrend:
            spec -= segs.mean(axis=-1, keepdims=True) * self._win_fft
        # |X|^2 from the interleaved (re, im) float view, squared in place; band
        # integration is linear, so it commutes with the mean over segments, and
        # one 2-D product beats a stacked (C, S, F) @ (F, B) of tiny products.
        v = spec.view(np.float64)
        v *= v
        return (v.reshape(-1, v.shape[-1]) @ self._band_w2).reshape(
            *spec.shape[:-1], -1
        )

    def _window_segment_power(self, start: int) -> np.ndarray:
        """Welch band power of one window (C, B), segments cached across hops."""
        a = self._hist_start + start
        keys = [a + o for o in self._seg_offset_list]
        cache = self._seg_power
        missing = [k for k in keys if k not in cache]
        if missing:
            x = self._x_hist.view()
            seg_n = self.settings.seg_n
            if len(missing) == 1:  # the usual hop: one new segment, a slice
                off = missing[0] - self._hist_start
                segs = x[:, None, off : off + seg_n]
            else:
                off = np.asarray(missing) - self._hist_start
                segs = x[:, off[:, None] + np.arange(seg_n)]
            new = self._segment_power(segs)
            for j, k in enumerate(missing):
                cache[k] = new[:, j]
            for k in [k for k in cache if k < a]:
                del cache[k]
        acc = cache[keys[0]].copy()
        for k in keys[1:]:
            acc += cache[k]
        return acc


class _History:
    """Recent samples along the last axis, appended in place.

    A preallocated buffer replaces a concatenation per chunk: appends write into
    free room, and the kept samples move to the front only when it runs out
    (amortised O(1) per sample). Grows for chunks longer than the room.
    """

    def __init__(self, lead: tuple[int, ...], capacity: int) -> None:
        self._buf = np.empty((*lead, max(capacity, 0)))
        self._start = 0
        self._stop = 0

    def __len__(self) -> int:
        return self._stop - self._start

    def view(self) -> np.ndarray:
        """Return the kept samples, oldest first.

        A view: valid until the next append.
        """
        return self._buf[..., self._start : self._stop]

    def append(self, new: np.ndarray) -> None:
        self.reserve(new.shape[-1])[...] = new

    def reserve(self, n: int) -> np.ndarray:
        """Append ``n`` samples to be written by the caller: their view."""
        if self._stop + n > self._buf.shape[-1]:
            kept = len(self)
            if kept + n > self._buf.shape[-1]:
                grown = np.empty((*self._buf.shape[:-1], 2 * (kept + n)))
                grown[..., :kept] = self.view()
                self._buf = grown
            else:
                self._buf[..., :kept] = self.view()
            self._start, self._stop = 0, kept
        self._stop += n
        return self._buf[..., self._stop - n : self._stop]

    def drop(self, n: int) -> None:
        """Forget the oldest ``n`` samples."""
        self._start = min(self._start + max(n, 0), self._stop)


def compute_features(
    eeg: np.ndarray,
    *,
    sfreq: float,
    spec: FeatureSpec,
    hop_s: float | None = None,
) -> WindowFeatures:
    """Features of a whole recording in one call (the offline path).

    Parameters
    ----------
    eeg : ndarray, shape (n_channels, n_times)
        EEG in µV.
    sfreq : float
        Sampling frequency in Hz.
    spec : FeatureSpec
    hop_s : float, optional
        Hop override (default ``spec.hop_s``).

    Returns
    -------
    WindowFeatures
        ``values`` (n_windows, n_channels, n_features), ``ends`` in samples.
    """
    eeg = as_eeg(eeg, name="eeg")
    ext = FeatureExtractor(ExtractorSettings(spec, sfreq, eeg.shape[0], hop_s))
    return ext.process(eeg)
