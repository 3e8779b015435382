"""The online pipeline: chunks in, predictions out (DESIGN.md section 9).

source chunk -> channel map (by name, from the model contract) -> NaN hold ->
optional polyphase resampling -> optional bad-channel interpolation -> the same
causal :class:`FeatureExtractor` as training (state carried) -> every hop:
z-score + layout -> onnxruntime -> optional EMA smoothing -> :class:`Prediction`.

:class:`Pipeline` does no I/O besides running the
:class:`~emomon.realtime.model.LoadedModel` it is given;
:mod:`emomon.realtime.stream` connects it to a source and sinks. It never imports
torch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from emomon.dsp.features import ExtractorSettings, FeatureExtractor
from emomon.dsp.layout import canonical_name
from emomon.dsp.montage import train_hint
from emomon.dsp.normalize import InputBuilder
from emomon.errors import EmomonError
from emomon.realtime.interpolation import WindowInterpolation
from emomon.realtime.messages import Quality
from emomon.realtime.model import LoadedModel
from emomon.realtime.quality import RunningLevel, SpectralMeasure

#: Lateness of timestamps must persist this long to count as lost samples.
_GAP_HORIZON_S = 0.1


class ChannelError(EmomonError):
    """The source lacks channels the model needs, or sends one in an unknown unit."""


@dataclass(frozen=True)
class PipelineSettings:
    """Frozen settings of a :class:`Pipeline`.

    Attributes
    ----------
    hop_s : float
        Seconds between predictions (default 0.25).
    smoothing : float
        EMA weight of the previous smoothed probability, in [0, 1); 0 disables.
    flat_uv : float
        A channel whose standard deviation over a window is below this (µV) is
        flagged flat.
    railed_uv : float
        A channel reaching this absolute value (µV) in a window is flagged
        railed (amplifier saturation).
    gap_tolerance : float
        Timestamps later than their schedule by more than ``gap_tolerance``
        sample periods for 0.1 s count the missing samples as dropped (a
        single late, jittered stamp does not); a jump forward longer than
        those 0.1 s counts at once. One period by default: a sender that
        stamps each chunk's last sample with its push time (most LSL apps)
        puts a whole chunk up to a period late (its last sample was acquired
        up to a period before the push), which a smaller tolerance counted
        as lost samples; a loss of one sample can then pass unnoticed.
    time_scale : float
        Replay speed of the source (timestamps advance ``1 / (sfreq * speed)`` per
        sample); 1 for live hardware.
    interpolate : bool
        Interpolate bad channels from the others (spherical splines on the
        model channels' 10-05 positions, :mod:`emomon.dsp.interpolate`) instead
        of flagging their windows, up to a quarter of the channels; off by
        default. A channel joins the interpolated set when a window's quality
        check flags it, from the next sample on, and leaves after 4 clean
        windows in a row; a window is published (``ok``, the channels named in
        ``bad_channels`` with reason ``"interpolated"``) once its flagged
        channels have been interpolated in all its samples and in the feature
        warm-up before them (``warmup_s``, the filters' settling time).
    noisy_uv : float
        A channel whose 1-40 Hz RMS over a window exceeds this (µV) is flagged
        noisy (default 150: clean EEG stayed below 65 µV in the synthetic set,
        BrainFlow's synthetic board, whose channels are sines of fixed
        amplitudes, reaches 96 µV; the largest jaw clench on the real OpenBCI
        Cyton sample reaches 170 µV). ``math.inf`` turns the rule off.
    noisy_ratio : float
        A channel whose 1-40 Hz RMS exceeds this many times its running level
        (the median over its last ``noisy_level_s``) is flagged noisy (default
        5: the synthetic set's largest excursion, a video changing a channel's
        band power, is 4.4 times). ``math.inf`` turns the rule off.
    noisy_level_s : float
        Seconds of windows the running level covers (default 30: a blink or a
        clench lasts far less than half of it, so the median stays clean).
    noisy_level_min_s : float
        Seconds of windows a channel needs before the ratio rule applies
        (default 5).
    line_noise_ratio : float
        A channel whose power within ±1 Hz of a mains frequency exceeds this
        many times its 1-40 Hz power is named ``line_noise`` (default 1: the
        mains as strong as all the EEG). It only annotates: the feature bands
        end below the mains and the model's band-pass (and optional notch)
        attenuate it, and flagging it would silence a whole session that
        needs a better ground or a notch. ``math.inf`` turns the rule off.
    line_freqs : tuple of float
        Mains frequencies checked (Hz); the strongest counts.
    """

    hop_s: float = 0.25
    smoothing: float = 0.0
    flat_uv: float = 0.05
    railed_uv: float = 1.0e5
    gap_tolerance: float = 1.0
    time_scale: float = 1.0
    interpolate: bool = False
    noisy_uv: float = 150.0
    noisy_ratio: float = 5.0
    noisy_level_s: float = 30.0
    noisy_level_min_s: float = 5.0
    line_noise_ratio: float = 1.0
    line_freqs: tuple[float, ...] = (50.0, 60.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "line_freqs", tuple(map(float, self.line_freqs)))
        for name in ("noisy_uv", "noisy_ratio", "line_noise_ratio"):
            if not getattr(self, name) > 0:
                raise EmomonError(
                    f"{{{name}}} must be > 0 (math.inf turns the rule off), "
                    f"got {getattr(self, name)}",
                    params=(name,),
                )
        if not 0 < self.noisy_level_min_s <= self.noisy_level_s < math.inf:
            raise EmomonError(
                "{noisy_level_min_s} and {noisy_level_s} must satisfy 0 < "
                f"noisy_level_min_s <= noisy_level_s, got {self.noisy_level_min_s} "
                f"and {self.noisy_level_s}",
                params=("noisy_level_min_s", "noisy_level_s"),
            )
        if not all(f > 0 for f in self.line_freqs):
            raise EmomonError(
                f"{{line_freqs}} must be frequencies > 0 Hz, got {self.line_freqs}",
                params=("line_freqs",),
            )
        if not self.hop_s > 0:
            raise EmomonError(
                f"{{hop_s}} must be > 0, got {self.hop_s}", params=("hop_s",)
            )
        if not 0 <= self.smoothing < 1:
            raise EmomonError(
                f"{{smoothing}} must be in [0, 1), got {self.smoothing}",
                params=("smoothing",),
            )
        if not self.time_scale > 0:
            raise EmomonError(f"time_scale must be > 0, got {self.time_scale}")


@dataclass(frozen=True)
class Prediction:
    """One hop's output.

    Attributes
    ----------
    t_lsl : float
        LSL timestamp of the window's last sample.
    arrival : float
        Local LSL-clock time the chunk completing the window was read.
    probs : dict of str to ndarray
        Task -> class probabilities (smoothed), or None for a bad window.
    quality : Quality
        The window's flags (also the wire's ``quality``).
    features : ndarray, shape (n_channels, n_features)
        The window's raw features (before normalisation), for checks and logs.
    compute_s : float
        Seconds spent on this window's features and inference.
    """

    t_lsl: float
    arrival: float
    probs: dict[str, np.ndarray] | None
    quality: Quality
    features: np.ndarray
    compute_s: float = 0.0


def map_channels(
    model_ch: Sequence[str],
    source_ch: Sequence[str],
    *,
    unconverted_units: Mapping[str, str] | None = None,
    montage: str | None = None,
) -> np.ndarray:
    """Row of each model channel in the source, matched by 10-20 name.

    Parameters
    ----------
    model_ch : sequence of str
        The model's channels.
    source_ch : sequence of str
        The source's channels, in row order.
    unconverted_units : mapping of str to str, optional
        Source channel -> unit of the channels the source delivers unconverted
        (:attr:`Source.unconverted_units <emomon.realtime.sources.Source>`);
        a model channel among them is refused.
    montage : str, optional
        The source's montage as ``emomon train --montage`` takes it
        (:attr:`Source.montage <emomon.realtime.sources.Source>`, e.g.
        ``"brainflow:synthetic"``); default the source's channel names.
        A refusal names the ``train`` command for it.

    Returns
    -------
    ndarray of int64
        The source row of each model channel.

    Raises
    ------
    ChannelError
        Naming every model channel the source does not provide, or every one
        it sends in a unit that is not a voltage.
    """
    index = {canonical_name(c).upper(): i for i, c in enumerate(source_ch)}
    rows, missing = [], []
    for c in model_ch:
        i = index.get(canonical_name(c).upper())
        if i is None:
            missing.append(c)
        else:
            rows.append(i)
    if missing:
        raise ChannelError(
            f"the stream lacks model channel(s) {', '.join(missing)}; it has "
            f"{', '.join(source_ch) or 'no named channels'} — use a stream with "
            "these channels or a model trained on this montage"
            + train_hint(source_ch, montage)
        )
    check_units(model_ch, unconverted_units or {})
    return np.asarray(rows, dtype=np.int64)


def check_units(model_ch: Sequence[str], unconverted_units: Mapping[str, str]) -> None:
    """Refuse a source that sends a model channel in a unit other than a voltage.

    Parameters
    ----------
    model_ch : sequence of str
        The model's channels.
    unconverted_units : mapping of str to str
        Source channel -> unit of the channels the source passes on unconverted
        (their unit is not microvolts, millivolts or volts); matched to the
        model's channels by 10-20 name.

    Raises
    ------
    ChannelError
        Naming each such model channel and its unit, and what to do.
    """
    if not unconverted_units:
        return
    used = {canonical_name(c).upper() for c in model_ch}
    bad = [
        (ch, unit)
        for ch, unit in unconverted_units.items()
        if canonical_name(ch).upper() in used
    ]
    if bad:
        if len(bad) == 1:
            ((ch, unit),) = bad
            what = f"model channel {ch!r} arrives in unit {unit!r}, not in"
            it = "it"
        else:
            listed = ", ".join(f"{ch!r} (unit {unit!r})" for ch, unit in bad)
            what = f"model channels {listed} arrive in units other than"
            it = "them"
        raise ChannelError(
            f"{what} microvolts, millivolts or volts, so emomon cannot convert "
            f"{it} to microvolts; send {it} in one of those units (an LSL stream's "
            f"desc/channels/channel/unit) or use a model without {it}"
        )


class _RawRing:
    """The last ``capacity`` source samples with their timestamps.

    Every sample is stored twice, at ``k % cap`` and ``k % cap + cap``, so the
    newest ``L <= cap`` samples are always one contiguous slice (views, no
    gathering per window). Quality marks (non-finite samples, losses) are rare
    and kept sparse by :class:`Pipeline`, so a clean chunk costs two copies.
    """

    def __init__(self, n_channels: int, capacity: int) -> None:
        self.x = np.zeros((n_channels, 2 * capacity))
        self.t = np.full(2 * capacity, -np.inf)
        self.cap = capacity
        self.n = 0  # samples written in total

    def push(self, x: np.ndarray, t: np.ndarray) -> None:
        """Append ``n <= cap`` samples.

        Timestamps are stored made non-decreasing (a stamp earlier than its
        predecessor takes the predecessor's) so that time spans are found by
        binary search.
        """
        n = x.shape[1]
        if n == 0:
            return
        cap = self.cap
        a = self.n % cap
        b = a + n  # <= 2 * cap
        lo_end = min(b, cap)  # [a, lo_end) lies in the first copy ...
        wrap = b - cap  # ... and [cap, b) in the second, when b > cap
        prev = self.t[a - 1 + cap]  # the newest stamp (read before overwriting)
        self.x[:, a:b] = x
        tv = self.t[a:b]
        tv[:] = t
        if self.n and tv[0] < prev:
            tv[0] = prev
        np.maximum.accumulate(tv, out=tv)
        self.x[:, a + cap : lo_end + cap] = self.x[:, a:lo_end]
        self.t[a + cap : lo_end + cap] = tv[: lo_end - a]
        if wrap > 0:
            self.x[:, :wrap] = self.x[:, cap:b]
            self.t[:wrap] = self.t[cap:b]
        self.n += n

    def last(self, length: int) -> slice:
        """Slice of the newest ``min(length, n, cap)`` samples, oldest first."""
        length = min(length, self.n, self.cap)
        end = self.n % self.cap + self.cap
        return slice(end - length, end)


class Pipeline:
    """Chunks of source EEG in, per-hop predictions out.

    Parameters
    ----------
    model : LoadedModel
        The model (:func:`~emomon.realtime.model.load_model`): its contract and
        its one onnxruntime session.
    source_ch_names : sequence of str
        Channel names of the source, in its row order.
    source_sfreq : float
        Sampling rate of the source (Hz); resampled to ``contract.sfreq``.
    settings : PipelineSettings
    unconverted_units : mapping of str to str, optional
        Source channel -> unit of the channels the source delivers unconverted
        (:attr:`Source.unconverted_units <emomon.realtime.sources.Source>`):
        a model channel among them raises :class:`ChannelError`.

    Raises
    ------
    ChannelError
        If the source lacks a model channel or sends one in a unit that is not
        a voltage.
    ModelError
        If the model was trained on precomputed (non-causal) features.
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        source_ch_names: Sequence[str],
        source_sfreq: float,
        settings: PipelineSettings | None = None,
        unconverted_units: Mapping[str, str] | None = None,
    ) -> None:
        contract = model.contract
        contract.require_live(source=str(model.path))
        self.model = model
        self.contract = contract
        self.settings = settings or PipelineSettings()
        self.rows = map_channels(
            contract.ch_names, source_ch_names, unconverted_units=unconverted_units
        )
        self.source_sfreq = float(source_sfreq)
        n_ch = len(contract.ch_names)
        self.session = model.session
        self.model_id = model.digest
        self.output_names = model.output_names
        self._input_name = contract.input_name
        self.resampler = None
        if abs(self.source_sfreq - contract.sfreq) > 1e-9:
            from emomon.dsp.resample import ResamplerSettings, StreamResampler

            self.resampler = StreamResampler(
                ResamplerSettings(self.source_sfreq, contract.sfreq, n_ch)
            )
        self.extractor = FeatureExtractor(
            ExtractorSettings(contract.spec, contract.sfreq, n_ch, self.settings.hop_s)
        )
        # Fed the extractor's samples, so its sample indices are the extractor's.
        self.interpolation = (
            WindowInterpolation(
                contract.ch_names,
                window_n=self.extractor.settings.window_n,
                settle_n=self.extractor.settings.warmup_n,
            )
            if self.settings.interpolate
            else None
        )
        self._inputs = InputBuilder(
            mean=contract.norm_mean,
            std=contract.norm_std,
            layout=contract.input_kind,
            ch_names=contract.ch_names,
            n_features=self.extractor.settings.n_features,
        )
        ring_s = contract.spec.window_s + 2.0
        self.ring = _RawRing(n_ch, int(np.ceil(ring_s * self.source_sfreq)) + 1)
        # Rows to take from a source chunk: a slice when they are consecutive.
        r = self.rows
        consecutive = r.size and np.array_equal(r, np.arange(r[0], r[0] + r.size))
        self._take = slice(int(r[0]), int(r[0]) + r.size) if consecutive else r
        # Chunks wait here (model channel order, float64) until a window completes.
        self._pend_x = np.empty((n_ch, 256))
        self._pend_t = np.empty(256)
        self.reset()

    @property
    def window_s(self) -> float:
        """Window length in seconds (the model's feature spec)."""
        return self.contract.spec.window_s

    def reset(self) -> None:
        """Forget all state (filters, warm-up, smoothing); e.g. after a reconnect."""
        self.extractor.reset()
        if self.resampler is not None:
            self.resampler.reset()
        if self.interpolation is not None:
            self.interpolation.reset()
        n_ch = len(self.contract.ch_names)
        # Gap detection: u = stamp - grid position of the last samples.
        self._gap_horizon = max(
            2, math.ceil(_GAP_HORIZON_S * self.source_sfreq * self.settings.time_scale)
        )
        self._dt = 1.0 / (self.source_sfreq * self.settings.time_scale)
        self._k_dt = np.arange(self.ring.cap) * self._dt
        self._u_hist = np.empty(0)
        self._u_base: float | None = None
        self._grid_skip = 0  # lost samples counted at once (see _gaps)
        self._pending_n = 0  # source samples held until a window can complete
        # Sparse quality marks by absolute sample index (rare; pruned past the
        # ring): non-finite samples as (start, (n_ch, n) mask) per chunk, and
        # lost samples as (index of the sample after the loss, count).
        self._bad_marks: list[tuple[int, np.ndarray]] = []
        self._gap_marks: list[tuple[int, int]] = []
        self._t_ext = np.empty(0)  # timestamps of extractor samples not yet ended
        self._t_ext_start = 0  # extractor index of _t_ext[0]
        self._ema: dict[str, np.ndarray] = {}
        self.dropped = 0
        self.samples = 0
        self.ring = _RawRing(n_ch, self.ring.cap)
        self._need = self.samples_to_next_window()
        st = self.settings
        self._spectral = SpectralMeasure(self.source_sfreq, line_freqs=st.line_freqs)
        self._levels = RunningLevel(  # a restart forgets the channels' levels
            len(self.contract.ch_names),
            RunningLevel.windows(st.noisy_level_s, st.hop_s),
            RunningLevel.windows(st.noisy_level_min_s, st.hop_s),
            refresh=RunningLevel.windows(1.0, st.hop_s),
        )

    # -- helpers ------------------------------------------------------------------
    def _hold_nonfinite(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Replace NaN/inf by the channel's last finite value (filters stay sane).

        Returns the held samples and the mask of replaced ones (None if none).
        """
        if np.isfinite(x.sum()):  # NaN and inf propagate into the sum
            return x, None
        bad = ~np.isfinite(x)
        if not bad.any():  # a finite sum overflowed
            return x, None
        n_ch, n = x.shape
        ring = self.ring
        # The ring holds held samples, so its newest one is the last finite value.
        prev = ring.x[:, (ring.n - 1) % ring.cap] if ring.n else np.zeros(n_ch)
        # Forward fill: index of the latest finite sample at or before each sample.
        pos = np.where(~bad, np.arange(n)[None, :], -1)
        np.maximum.accumulate(pos, axis=1, out=pos)
        filled = np.take_along_axis(x, np.maximum(pos, 0), axis=1)
        return np.where(pos >= 0, filled, prev[:, None]), bad

    def _gaps(self, t: np.ndarray) -> np.ndarray | None:
        """Count the samples missing before each sample, from the timestamps.

        None when none is missing.

        Tolerates jitter: many senders stamp samples when the computer receives
        them (BrainFlow, most LSL apps), so stamps come a period or two late, or
        late in a burst after a stall, and timestamp steps alone would count
        losses that never happened. With ``u = t - k * dt`` (stamp minus its
        place on a ``dt`` grid), a loss of ``m`` samples raises ``u`` by ``m * dt``
        for good, while jitter only raises single stamps. The baseline is the
        lowest ``u`` of the last ``_GAP_HORIZON_S`` seconds of samples; a rise of
        the baseline by more than ``gap_tolerance`` periods counts as lost
        samples, marked at the first sample after the loss (or at the chunk's
        first sample when that one came in an earlier chunk). Falls (early
        stamps) and slow drift count nothing.

        A step of ``u`` from one sample to the next larger than the horizon can
        undo (``gap_tolerance`` plus ``h - 1`` periods: stamps never decrease,
        so ``u`` falls by at most a period per sample) is a certain loss. It is
        counted at once, at the sample after it, so that a window ending within
        the horizon after a loss is flagged, not predicted on before the loss is
        confirmed; the grid then moves past the lost samples so that the
        baseline does not count them again.
        """
        dt = self._dt
        h = self._gap_horizon
        n = t.shape[0]
        tol = self.settings.gap_tolerance * dt
        if n > self._k_dt.size:
            self._k_dt = np.arange(2 * n) * dt
        u = t - self._k_dt[:n]
        u -= (self.samples + self._grid_skip) * dt
        prev = self._u_base
        if prev is not None and u.max() - min(u.min(), prev) <= tol:
            # The usual case: every stamp within tolerance of the baseline. Each
            # rolling minimum then lies in [min(u, prev), max(u)], so no rise
            # (and no step) can exceed the tolerance; only the state moves on.
            hist = np.concatenate([self._u_hist, u]) if n < h else u
            self._u_base = float(hist[-h:].min())
            self._u_hist = hist[-(h - 1) :].copy() if h > 1 else hist[:0]
            return None
        out = np.zeros(n, dtype=np.int64)
        steps = np.diff(u, prepend=self._u_hist[-1] if self._u_hist.size else u[0])
        certain = np.flatnonzero(steps > tol + (h - 1) * dt)
        if certain.size:
            lost = np.rint(steps[certain] / dt).astype(np.int64)
            out[certain] = lost
            skip = np.zeros(n)
            skip[certain] = lost * dt
            u -= np.cumsum(skip)
            self._grid_skip += int(lost.sum())
        hist = np.concatenate([self._u_hist, u])
        pad = h - 1 - self._u_hist.size  # fewer than h samples since the start
        if pad > 0:
            hist = np.concatenate([np.full(pad, np.inf), hist])
        # State for the next chunk: the baseline now and the last h-1 values.
        self._u_base = float(hist[-h:].min())
        self._u_hist = hist[-(h - 1) :] if h > 1 else hist[:0]
        self._u_hist = self._u_hist[np.isfinite(self._u_hist)]
        if prev is not None and u.max() - hist[np.isfinite(hist)].min() <= tol:
            # Every stamp within tolerance of the lowest in view: no baseline rise
            # can exceed the tolerance.
            return out
        # Rolling minimum over h samples: h cheap vector ops beat a strided view
        # for the small chunks live sources deliver.
        base = hist[h - 1 :].copy()
        for k in range(1, h):
            np.minimum(base, hist[h - 1 - k : hist.size - k], out=base)
        rise = np.diff(np.concatenate(([base[0] if prev is None else prev], base)))
        for i in np.flatnonzero(rise > tol):
            out[max(i - h + 1, 0)] += int(round(rise[i] / dt))
        return out

    def _quality(self, t_end: float) -> Quality:
        """Return the window's quality: every channel with a finding, and why.

        The rules are :mod:`emomon.realtime.quality`'s, measured on the raw
        source samples of the window (held where non-finite).
        """
        s = self.settings
        ring = self.ring
        span_s = self.window_s / s.time_scale
        recent = ring.last(ring.cap)
        tv = ring.t[recent]  # non-decreasing (see _RawRing.push)
        a = int(np.searchsorted(tv, t_end - span_s, side="right"))
        b = int(np.searchsorted(tv, t_end, side="right"))
        names = self.contract.ch_names
        m = b - a
        if m < 2:
            return Quality(
                ok=False, bad_channels=names, reasons=dict.fromkeys(names, "no_data")
            )
        x = ring.x[:, recent.start + a : recent.start + b]
        s1 = x.sum(axis=1)
        # Variance below flat_uv**2, as sums: sum(x^2) - sum(x)^2 / m < m * flat^2.
        flat = np.einsum("ct,ct->c", x, x) - s1 * s1 / m < m * s.flat_uv * s.flat_uv
        railed = x.max(axis=1) >= s.railed_uv  # railed (no |x| temporary)
        railed |= x.min(axis=1) <= -s.railed_uv
        # The window's samples by absolute index, for the sparse marks.
        first = ring.n - (recent.stop - recent.start) + a
        nonfinite = np.zeros(len(names), dtype=bool)
        for start, mask in self._bad_marks:
            lo, hi = max(first - start, 0), min(first + m - start, mask.shape[1])
            if lo < hi:
                nonfinite |= mask[:, lo:hi].any(axis=1)
        dropped = 0
        if self._gap_marks:
            dropped = sum(c for i, c in self._gap_marks if first <= i < first + m)
        # Spectral rules: 1-40 Hz RMS against absolute and running levels, and
        # the mains-to-EEG power ratio (one FFT of the window).
        rms, line = self._spectral(x)
        broken = flat | railed | nonfinite
        level = self._levels.level()  # of the windows before this one
        with np.errstate(invalid="ignore"):  # NaN level: no ratio rule yet
            noisy = (rms > s.noisy_uv) | (rms > s.noisy_ratio * level)
        noisy &= ~broken
        self._levels.push(rms, broken)
        bad = broken | noisy
        hum = (line > s.line_noise_ratio) & ~bad
        if dropped == 0 and not bad.any() and not hum.any():
            return Quality(ok=True)
        why = np.where(
            nonfinite,
            "nonfinite",
            np.where(
                railed,
                "railed",
                np.where(flat, "flat", np.where(noisy, "noisy", "line_noise")),
            ),
        )
        bad_idx = np.flatnonzero(bad)
        return Quality(
            ok=dropped == 0 and bad_idx.size == 0,
            bad_channels=tuple(names[i] for i in bad_idx),
            dropped=dropped,
            nonfinite=bool(nonfinite.any()),
            reasons={names[i]: str(why[i]) for i in np.flatnonzero(bad | hum)},
        )

    def infer(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Class probabilities of one window's features (n_channels, n_features)."""
        outs = self.session.run(
            self.output_names, {self._input_name: self._inputs(features[None])}
        )
        return {
            name: np.asarray(o[0], dtype=np.float64)
            for name, o in zip(self.output_names, outs, strict=True)
        }

    # -- processing -----------------------------------------------------------------
    def process(
        self, data: np.ndarray, timestamps: np.ndarray, *, arrival: float
    ) -> list[Prediction]:
        """Feed one source chunk; return the predictions of the hops it completes.

        Chunks are held (in model channel order) until a window can complete and
        then processed at once: the filter state is carried either way, so the
        features are the same, and the per-call cost is paid once per hop
        instead of once per (often one-sample) chunk.

        Parameters
        ----------
        data : ndarray, shape (n_source_channels, n_times)
            µV, in the source's channel order. May contain NaN/inf.
        timestamps : ndarray, shape (n_times,)
            LSL clock.
        arrival : float
            LSL-clock time the chunk was read (for latency).
        """
        n = timestamps.shape[0]
        if n == 0:
            return []
        data = np.asarray(data)
        if data.shape[-1] != n:
            raise ValueError(
                f"data has {data.shape[-1]} samples but timestamps has {n}"
            )
        k = self._pending_n
        if k + n > self._pend_t.size:  # a long chunk: grow (amortised)
            grow = 2 * (k + n)
            px = np.empty((self._pend_x.shape[0], grow))
            px[:, :k] = self._pend_x[:, :k]
            pt = np.empty(grow)
            pt[:k] = self._pend_t[:k]
            self._pend_x, self._pend_t = px, pt
        # One copy selects the model's rows and converts to float64.
        self._pend_x[:, k : k + n] = data[self._take]
        self._pend_t[k : k + n] = timestamps
        self._pending_n = k + n
        if self._pending_n < self._need:
            return []
        # Views of the pending buffers: everything below copies what it keeps.
        x = self._pend_x[:, : self._pending_n]
        t = self._pend_t[: self._pending_n]
        self._pending_n = 0
        # The quality ring holds a window plus ~2 s; feed longer blocks in pieces.
        piece = self.ring.cap - int(np.ceil(self.window_s * self.source_sfreq)) - 1
        if t.shape[0] <= piece:
            out = self._run(x, t, arrival)
        else:
            out = []
            for i in range(0, t.shape[0], piece):
                out += self._run(x[:, i : i + piece], t[i : i + piece], arrival)
        self._need = self.samples_to_next_window()
        return out

    def samples_to_next_window(self) -> int:
        """Source samples still missing before the next prediction is due.

        A live loop can sleep until about this many samples have had time to
        arrive instead of waking for every sample.
        """
        need = self.extractor.samples_to_next_window
        if self.resampler is not None:
            # Smallest input total N with ceil(N * up / down) >= target outputs.
            rs = self.resampler.settings
            target = self.resampler.n_out + need
            total = ((target - 1) * rs.down) // rs.up + 1 if target > 0 else 0
            need = total - self.resampler.n_in
        return max(1, need - self._pending_n)

    def _run(self, x: np.ndarray, timestamps: np.ndarray, arrival: float):
        """Quality marks, resampling, features and inference of one block."""
        t0 = time.perf_counter()
        n = timestamps.shape[0]
        x, bad = self._hold_nonfinite(x)
        gap = self._gaps(timestamps)
        if bad is not None:
            self._bad_marks.append((self.samples, bad))
        if gap is not None:
            lost = np.flatnonzero(gap)
            self.dropped += int(gap[lost].sum())
            self._gap_marks += [(self.samples + int(i), int(gap[i])) for i in lost]
        self.samples += n
        self.ring.push(x, timestamps)
        # Marks older than the ring can no longer fall inside a window.
        oldest = self.ring.n - self.ring.cap
        marks = self._bad_marks
        while marks and marks[0][0] + marks[0][1].shape[1] <= oldest:
            marks.pop(0)
        while self._gap_marks and self._gap_marks[0][0] < oldest:
            self._gap_marks.pop(0)
        if self.resampler is not None:
            start = self.resampler.n_out
            x = self.resampler.process(x)
            in_pos = self.resampler.settings.output_positions(start, x.shape[1])
            t_new = self._interp_times(in_pos)
        else:
            t_new = timestamps
        self._t_ext = np.concatenate([self._t_ext, t_new])
        if self.interpolation is not None:
            x = self.interpolation.process(x)
        wf = self.extractor.process(x)
        out = []
        for i in range(len(wf)):
            t_end = float(self._t_ext[wf.ends[i] - 1 - self._t_ext_start])
            q = self._quality(t_end)
            if self.interpolation is not None:
                q = self.interpolation.judge(q, int(wf.ends[i]))
            probs = None
            if q.ok:
                probs = self.infer(wf.values[i])
                if self.settings.smoothing:
                    a = self.settings.smoothing
                    for task, p in probs.items():
                        prev = self._ema.get(task)
                        probs[task] = p if prev is None else a * prev + (1 - a) * p
                        self._ema[task] = probs[task]
            t1 = time.perf_counter()
            out.append(Prediction(t_end, arrival, probs, q, wf.values[i], t1 - t0))
            t0 = t1
        # Keep timestamps from the start of the next window on.
        keep_from = self.extractor.n_seen - self.extractor.settings.window_n
        drop = max(0, keep_from - self._t_ext_start)
        if drop:
            self._t_ext = self._t_ext[drop:]
            self._t_ext_start += drop
        return out

    def _interp_times(self, in_pos: np.ndarray) -> np.ndarray:
        """LSL times of resampled samples at fractional input positions.

        Positions count input samples since the start (the resampler's group
        delay is already in them); the ring holds the recent input timestamps.
        Positions before the oldest kept sample (only the first outputs, which
        lie before the first input) are extrapolated with the nominal period.
        """
        total = self.samples
        first = total - min(total, self.ring.cap)
        idx = np.arange(first, total)
        t = self.ring.t[self.ring.last(total - first)]
        out = np.interp(in_pos, idx.astype(np.float64), t)
        early = in_pos < first
        if early.any():
            dt = 1.0 / (self.source_sfreq * self.settings.time_scale)
            out[early] = t[0] + (in_pos[early] - first) * dt
        return out
