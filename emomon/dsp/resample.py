"""Causal, chunk-invariant polyphase resampling (DESIGN.md section 9).

The online pipeline resamples a source (e.g. an amplifier at 250 Hz) to the rate a
model was trained at (e.g. 128 Hz). :class:`StreamResampler` does it chunk by
chunk: every output sample is emitted as soon as all the input samples it depends
on have arrived, and feeding a recording in chunks of any size (empty and
one-sample chunks included) gives bit-identical output to one call on the whole
recording.

Definition
----------
With ``up / down`` the reduced rational ``sfreq_out / sfreq_in`` and ``h`` the
low-pass FIR of :attr:`ResamplerSettings.taps` (``n_taps`` taps, gain ``up``),
output sample ``m`` (``m = 0, 1, ...`` since the start or a reset) is::

    y[m] = sum_j h[j] * u[m * down - j],    u[k] = x[k / up] if up divides k else 0

i.e. zero-stuffing by ``up``, FIR filtering and keeping every ``down``-th sample,
computed in polyphase form by :func:`scipy.signal.upfirdn`. Input samples before
the first one are taken equal to the first one (``x[i] = x[0]`` for ``i < 0``), the
same choice as the causal IIR filters' ``sosfilt_zi * x[:, :1]`` initial state: a
DC offset gives no step transient; other signals have a start transient of about
``n_taps / up`` input samples.

Output ``m`` depends on inputs up to ``floor(m * down / up)``, so after ``n_in``
input samples ``ceil(n_in * up / down)`` outputs exist.

Timing
------
``h`` is linear phase with a group delay of ``(n_taps - 1) / 2`` upsampled
samples. Output ``m`` therefore represents the input at the fractional input
sample position::

    p(m) = (m * down - (n_taps - 1) / 2) / up        (input sample i is at p = i)

(:meth:`ResamplerSettings.output_positions`); its timestamp is the input
timestamp interpolated (or, for the first outputs, extrapolated) at ``p(m)``,
``t0 + p(m) / sfreq_in`` for a regular input clock
(:meth:`ResamplerSettings.output_times`). The delay is
:attr:`ResamplerSettings.delay_s`.

Filter design
-------------
Kaiser-window low-pass (:func:`scipy.signal.firwin`) with its stop band starting
at the lower of the two Nyquist frequencies (nothing aliases) and its pass band
ending ``transition_width`` (a fraction of that Nyquist) below it; ``n_taps`` and
the Kaiser beta come from :func:`scipy.signal.kaiserord` for ``stopband_db + 1``
(Kaiser's empirical formulas fall ~0.6 dB short of the target).
Defaults (``transition_width=0.25``, ``stopband_db=80``) at 128 Hz output: pass band
0-48 Hz (ripple < 0.001 dB, so the 4-45 Hz EEG bands are untouched), transition
48-64 Hz, >= 80 dB attenuation from 64 Hz, delay 0.159 s (the delay depends only
on the transition width in Hz and the attenuation, not on the input rate); from
250 Hz: up/down = 64/125, 5091 taps at 16 kHz (about 80 per output sample).
Each polyphase branch ``h[r::up]`` is then scaled to sum to exactly 1, which makes
the DC gain exactly 1 for every output phase (the raw design is off by ~1e-5,
i.e. a 0.01 µV ripple on a 1000 µV offset) and keeps ``h`` symmetric.

Equal rates take a fast path: :meth:`StreamResampler.process` returns its input
unchanged, with zero delay.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import KW_ONLY, dataclass, field
from fractions import Fraction
from functools import cached_property

import numpy as np
from scipy import signal

from emomon.dsp._arrays import as_eeg

# Kaiser's formula for the length undershoots the attenuation by ~0.6 dB.
_KAISER_MARGIN_DB = 1.0


@dataclass(frozen=True)
class ResamplerSettings:
    """Frozen settings and FIR design of a :class:`StreamResampler`.

    Parameters
    ----------
    sfreq_in : float
        Input sampling frequency in Hz (the source's nominal rate).
    sfreq_out : float
        Output sampling frequency in Hz (the model's rate).
    n_channels : int
        Number of channels.
    max_denominator : int
        Largest ``down`` allowed when approximating ``sfreq_out / sfreq_in`` by
        ``up / down``.
    rate_tol : float
        Largest relative error ``|up / down - sfreq_out / sfreq_in|`` accepted
        (the actual output rate is ``sfreq_in * up / down``,
        :attr:`sfreq_out_actual`).
    transition_width : float
        Width of the FIR transition band as a fraction of the lower Nyquist
        frequency, ``0 < transition_width < 1``; the pass band ends at
        ``(1 - transition_width) * min(sfreq_in, sfreq_out) / 2``.
    stopband_db : float
        Minimum stop-band attenuation in dB (the Kaiser design gives the same
        relative ripple, ``10 ** (-stopband_db / 20)``, in the pass band).
    """

    sfreq_in: float
    sfreq_out: float
    n_channels: int
    _: KW_ONLY
    max_denominator: int = 1000
    rate_tol: float = 1e-6
    transition_width: float = 0.25
    stopband_db: float = 80.0

    def __post_init__(self) -> None:
        for name in ("sfreq_in", "sfreq_out"):
            v = getattr(self, name)
            if not (isinstance(v, numbers.Real) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (isinstance(self.n_channels, numbers.Integral) and self.n_channels >= 1):
            raise ValueError(f"n_channels must be an int >= 1, got {self.n_channels!r}")
        if not (
            isinstance(self.max_denominator, numbers.Integral)
            and self.max_denominator >= 1
        ):
            raise ValueError(
                f"max_denominator must be an int >= 1, got {self.max_denominator!r}"
            )
        if not (math.isfinite(self.rate_tol) and self.rate_tol >= 0):
            raise ValueError(f"rate_tol must be >= 0, got {self.rate_tol!r}")
        if not 0 < self.transition_width < 1:
            raise ValueError(
                f"transition_width must be in (0, 1), got {self.transition_width!r}"
            )
        if not (math.isfinite(self.stopband_db) and self.stopband_db >= 21):
            raise ValueError(
                f"stopband_db must be >= 21 dB (a Kaiser design), "
                f"got {self.stopband_db!r}"
            )
        _ = self.taps  # design now, so bad rates fail at construction

    # -- rational ratio --------------------------------------------------------
    @cached_property
    def ratio(self) -> Fraction:
        """``up / down``, the reduced rational approximation of the rate ratio."""
        exact = Fraction(float(self.sfreq_out)) / Fraction(float(self.sfreq_in))
        approx = exact.limit_denominator(self.max_denominator)
        rel_err = abs(float((approx - exact) / exact))
        if approx == 0 or rel_err > self.rate_tol:
            raise ValueError(
                f"cannot resample sfreq_in={self.sfreq_in} Hz to "
                f"sfreq_out={self.sfreq_out} Hz: the best ratio up/down with "
                f"down <= max_denominator={self.max_denominator} is {approx} "
                f"(relative error {rel_err:.3g} > rate_tol={self.rate_tol})"
            )
        return approx

    @property
    def up(self) -> int:
        """Upsampling factor (numerator of :attr:`ratio`)."""
        return self.ratio.numerator

    @property
    def down(self) -> int:
        """Downsampling factor (denominator of :attr:`ratio`)."""
        return self.ratio.denominator

    @property
    def is_identity(self) -> bool:
        """True when the rates are equal: no filtering, zero delay."""
        return self.ratio == 1

    @property
    def sfreq_out_actual(self) -> float:
        """Output rate in Hz actually produced, ``sfreq_in * up / down``."""
        return self.sfreq_in * self.up / self.down

    # -- FIR design ------------------------------------------------------------
    @property
    def passband_hz(self) -> float:
        """End of the pass band in Hz (``inf`` for the identity)."""
        if self.is_identity:
            return math.inf
        return (1.0 - self.transition_width) * self.stopband_hz

    @property
    def stopband_hz(self) -> float:
        """Start of the stop band in Hz: the lower Nyquist frequency."""
        if self.is_identity:
            return math.inf
        return min(self.sfreq_in, self.sfreq_out_actual) / 2.0

    @cached_property
    def taps(self) -> np.ndarray:
        """Low-pass FIR at the upsampled rate ``sfreq_in * up``, gain ``up``.

        Returns
        -------
        ndarray, shape (n_taps,)
            Odd length, symmetric; ``taps[r::up].sum() == 1`` for each ``r``.
            ``[1.0]`` for the identity.
        """
        if self.is_identity:
            return np.ones(1)
        up = self.up
        fs_up = self.sfreq_in * up
        f_stop = self.stopband_hz
        f_pass = self.passband_hz
        n_taps, beta = signal.kaiserord(
            self.stopband_db + _KAISER_MARGIN_DB, (f_stop - f_pass) / (fs_up / 2)
        )
        n_taps |= 1  # odd: type I linear phase, integer delay in upsampled samples
        h = signal.firwin(
            n_taps, (f_pass + f_stop) / 2, window=("kaiser", beta), fs=fs_up
        )
        # Exact unit DC gain for every output phase (see the module notes).
        pad = -n_taps % up
        branches = np.concatenate([h, np.zeros(pad)]).reshape(-1, up)
        h = (branches / branches.sum(axis=0)).ravel()[:n_taps]
        h = 0.5 * (h + h[::-1])  # exactly symmetric (mirrored branches scale alike)
        h.setflags(write=False)
        return h

    @property
    def n_taps(self) -> int:
        """FIR length in upsampled samples."""
        return int(self.taps.size)

    @property
    def delay_in(self) -> float:
        """Group delay in input samples, ``(n_taps - 1) / 2 / up``."""
        return (self.n_taps - 1) / 2.0 / self.up

    @property
    def delay_s(self) -> float:
        """Group delay in seconds, ``(n_taps - 1) / 2 / (sfreq_in * up)``."""
        return self.delay_in / self.sfreq_in

    # -- timing ----------------------------------------------------------------
    def output_positions(self, start: int, n: int) -> np.ndarray:
        """Input sample positions represented by outputs ``start .. start + n - 1``.

        Parameters
        ----------
        start : int
            Index of the first output sample since the resampler's start or reset
            (:attr:`StreamResampler.n_out` before a :meth:`StreamResampler.process`
            call gives the first output of that call).
        n : int
            Number of output samples.

        Returns
        -------
        ndarray of float64, shape (n,)
            Fractional input sample index ``(m * down - (n_taps - 1) / 2) / up``
            (input sample ``i`` is at ``i``; the first few are negative). Stamp
            output ``m`` with the input timestamps interpolated at this position.
        """
        m = np.arange(start, start + n, dtype=np.float64)
        return (m * self.down - (self.n_taps - 1) / 2.0) / self.up

    def output_times(self, start: int, n: int, *, t0: float) -> np.ndarray:
        """Timestamps of outputs ``start .. start + n - 1`` for a regular input clock.

        Parameters
        ----------
        start, n : int
            As in :meth:`output_positions`.
        t0 : float
            Timestamp in s of input sample 0 (the first since the start or reset).

        Returns
        -------
        ndarray of float64, shape (n,)
            ``t0 + output_positions(start, n) / sfreq_in`` in s.
        """
        return t0 + self.output_positions(start, n) / self.sfreq_in

    def n_out_for(self, n_in: int) -> int:
        """Count the outputs after ``n_in`` inputs: ``ceil(n_in * up / down)``."""
        return -(-n_in * self.up // self.down)

    def _seg_start(self, m: int) -> int:
        # First input index needed by output m (taps reach back n_taps - 1
        # upsampled samples), rounded down to a multiple of `down` so that
        # upfirdn's output o on a segment starting there is output
        # m = o + seg_start * up / down.
        first = -(-(m * self.down - (self.n_taps - 1)) // self.up)
        return (first // self.down) * self.down


@dataclass
class StreamResampler:
    """Causal polyphase resampler with history carried across chunks.

    Parameters
    ----------
    settings : ResamplerSettings

    Notes
    -----
    See the module docstring for the exact definition, the start (inputs before
    the first sample equal the first sample) and the output timing. Each call
    filters a short history segment (about ``n_taps / up + down`` input samples)
    plus the new chunk with :func:`scipy.signal.upfirdn`; the history starts at a
    multiple of ``down`` so output indices map exactly and every output is
    computed from the same terms in the same order however the input is chunked.
    NaN or inf in the input spreads to the outputs within ``n_taps / up`` input
    samples of it.
    """

    settings: ResamplerSettings
    _n_in: int = field(default=0, init=False)
    _n_out: int = field(default=0, init=False)
    _hist: np.ndarray | None = field(default=None, init=False, repr=False)
    _hist_start: int = field(default=0, init=False)

    def reset(self) -> None:
        """Forget the history and counters; the next chunk starts afresh."""
        self._n_in = 0
        self._n_out = 0
        self._hist = None
        self._hist_start = 0

    @property
    def n_in(self) -> int:
        """Input samples processed since the start or the last reset."""
        return self._n_in

    @property
    def n_out(self) -> int:
        """Output samples emitted since the start or the last reset."""
        return self._n_out

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Resample one chunk.

        Parameters
        ----------
        chunk : ndarray, shape (n_channels, n_times)
            Input in µV at ``sfreq_in``; ``n_times`` may be 0.

        Returns
        -------
        y : ndarray of float64, shape (n_channels, n_new)
            Outputs ``n_out .. n_out + n_new - 1`` (``n_out`` before this call) at
            ``sfreq_out``: every output whose inputs have all arrived,
            ``n_new = ceil(n_in * up / down) - n_out``. For equal rates this is
            ``chunk`` itself (no copy when it is already float64).
        """
        s = self.settings
        x = as_eeg(chunk, s.n_channels)
        n = x.shape[1]
        if s.is_identity:
            self._n_in += n
            self._n_out += n
            return x
        m0 = self._n_out
        m1 = s.n_out_for(self._n_in + n)
        if n == 0:
            return np.empty((s.n_channels, 0))
        if self._hist is None:  # first samples: history = first sample repeated
            self._hist_start = s._seg_start(0)  # <= 0
            pre = np.repeat(x[:, :1], -self._hist_start, axis=1)
            self._hist = np.concatenate([pre, x], axis=1)
        else:
            self._hist = np.concatenate([self._hist, x], axis=1)
        self._n_in += n
        if m1 == m0:
            return np.empty((s.n_channels, 0))
        seg_start = s._seg_start(m0)
        seg = self._hist[:, seg_start - self._hist_start :]
        # Keep inputs only up to the last one output m1 - 1 uses, so upfirdn
        # never computes the tail beyond it.
        last = ((m1 - 1) * s.down) // s.up
        seg = seg[:, : last + 1 - seg_start]
        full = signal.upfirdn(s.taps, seg, s.up, s.down, axis=-1)
        o0 = m0 - seg_start * s.up // s.down
        y = full[:, o0 : o0 + (m1 - m0)]
        self._n_out = m1
        # Drop history no later output needs (never past the newest sample).
        keep = min(s._seg_start(m1), self._n_in)
        self._hist = self._hist[:, keep - self._hist_start :].copy()  # free big chunks
        self._hist_start = keep
        return y


def resample(
    eeg: np.ndarray,
    *,
    sfreq_in: float,
    sfreq_out: float,
    **options,
) -> np.ndarray:
    """Resample a whole recording in one call, exactly as the online pipeline does.

    Parameters
    ----------
    eeg : ndarray, shape (n_channels, n_times)
        EEG in µV at ``sfreq_in``.
    sfreq_in, sfreq_out : float
        Rates in Hz.
    **options
        Keyword options of :class:`ResamplerSettings`.

    Returns
    -------
    ndarray, shape (n_channels, ceil(n_times * up / down))
        Causal output, delayed by ``ResamplerSettings.delay_s``.
    """
    eeg = as_eeg(eeg, name="eeg")
    settings = ResamplerSettings(sfreq_in, sfreq_out, eeg.shape[0], **options)
    return StreamResampler(settings).process(eeg)
