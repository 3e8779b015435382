"""Timestamps for sources that stamp samples when the computer receives them.

BrainFlow stamps most boards' samples on arrival ("for some boards timestamps
are generated on PC side as soon as packages were received", BrainFlow
DataFormatDesc). Arrival times carry every stall of the transport or of the
reading thread: a Bluetooth hiccup, or BrainFlow's PLAYBACK_FILE_BOARD thread
being descheduled (it does not make up the time lost in ``push_package``, so its
timeline shifts for good). Passed on as they are, such stalls look to the
pipeline's gap detection exactly like lost samples, and the windows around them
are flagged although nothing was lost.

:class:`SampleClock` stamps sample ``n`` at ``anchor + n / sfreq`` instead:

- ``n`` counts samples, plus the samples the board's package counter says were
  lost, so a real loss is an exact gap of ``lost / sfreq`` in the stamps (which
  the pipeline counts) and a stall is no gap at all;
- ``anchor`` is the lower envelope of ``arrival - n / sfreq`` over the last
  :data:`ENVELOPE_S` seconds of samples (arrival = send time + a delay >= 0, so the
  lowest value is the least delayed one). It follows a board clock that runs
  fast at once and one that runs slow, or a timeline that shifted, at most
  :data:`SLEW` periods per sample: far below the period the pipeline
  calls a gap, so the catching up is never counted as a loss.

The counter is used only once it has shown itself to count one per sample
(:data:`CHECK_SAMPLES` samples with at least :data:`MIN_ONE_FRACTION` steps of
1): boards whose counter counts packages of several samples fall back to the
arrival stamps, as does a board without a counter. Its wrap-around is learned
from the largest value seen (256 for OpenBCI boards and BrainFlow's synthetic
board). Arrival times check the counter both ways: an outage longer than a
whole counter cycle is recognised from how late the samples after it arrive, and
a jump of the counter after which samples arrive on the old schedule is a
restarted counter (a looping playback), not a loss.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np

__all__ = ["SampleClock"]

CHECK_SAMPLES = 256
MIN_ONE_FRACTION = 0.9
ENVELOPE_S = 2.0
SLEW = 0.1

ClockMode = Literal["checking", "counter", "arrival"]


class SampleClock:
    """Map arrival stamps (and a package counter) to sample-clock stamps.

    Parameters
    ----------
    sfreq : float
        Nominal sampling rate of the board (Hz).
    counter : bool
        Whether the board has a package counter (passed to :meth:`stamps`).

    Attributes
    ----------
    mode : {"checking", "counter", "arrival"}
        ``"checking"``: the counter is being checked (stamps from the sample
        clock, losses not yet counted); ``"counter"``: stamps from the sample
        clock with losses from the counter; ``"arrival"``: no usable counter,
        the arrival stamps are passed on (non-decreasing).
    lost : int
        Samples the counter showed as lost since the clock was created.
    """

    def __init__(self, sfreq: float, *, counter: bool = True) -> None:
        if not sfreq > 0:
            raise ValueError(f"sfreq must be > 0, got {sfreq}")
        self.dt = 1.0 / float(sfreq)
        self._span = ENVELOPE_S * float(sfreq)
        self.mode: ClockMode = "checking" if counter else "arrival"
        self.lost = 0
        self._last_out = -np.inf
        self._checked = 0
        self._ones = 0
        self._max_counter = 0  # the counter's largest value: its wrap-around
        self.reset()

    def reset(self) -> None:
        """Start a new sample clock (after an outage).

        The anchor, the sample count and the last counter value are forgotten;
        what is known of the counter (the check, its wrap-around) and the
        non-decreasing order of the stamps are kept.
        """
        self._n_next = 0
        self._anchor: float | None = None
        self._env: deque[tuple[int, float]] = deque()  # (n, min offset), rising
        self._last_counter: int | None = None
        self._last_arrival: float | None = None

    def stamps(self, arrival: np.ndarray, counter: np.ndarray | None) -> np.ndarray:
        """Stamps for one chunk, on the clock of ``arrival``.

        Parameters
        ----------
        arrival : ndarray, shape (n_times,)
            Arrival stamps of the chunk's samples (seconds, non-decreasing).
        counter : ndarray, shape (n_times,), optional
            The board's package counter for each sample.

        Returns
        -------
        ndarray, shape (n_times,)
            Non-decreasing stamps, never later than the arrival of their sample.
        """
        m = arrival.shape[0]
        if m == 0:
            return arrival.astype(np.float64)
        if counter is None:
            self.mode = "arrival"
        if self.mode == "arrival":
            out = np.maximum(arrival, self._last_out)
            np.maximum.accumulate(out, out=out)
            self._last_out = float(out[-1])
            return out
        lost = self._counter_gaps(counter)
        if lost is None:  # the check just failed: arrival stamps from now on
            return self.stamps(arrival, None)
        n = self._n_next - 1 + np.cumsum(lost + 1)
        if self._anchor is not None and lost.any():
            # Lost samples would have taken time: the sample after a real loss
            # arrives no earlier than its place on the clock. One that arrives
            # on the old schedule follows a counter that restarted (a looping
            # playback), not a loss.
            at = np.flatnonzero(lost)
            early = arrival[at] < self._anchor + (n[at] - lost[at] / 2) * self.dt
            if early.any():
                lost[at[early]] = 0
                n = self._n_next - 1 + np.cumsum(lost + 1)
        self.lost += int(lost.sum())
        if self._env and self.mode == "counter":
            # A loss of whole counter cycles leaves the counter as if nothing or
            # less were lost; the samples after it arrive that much too late.
            late = (arrival[-1] - self._env[0][1]) / self.dt - n[-1]
            cycle = self._max_counter + 1
            if cycle >= 16 and late > cycle / 2:
                extra = int(round(late / cycle)) * cycle
                prev = arrival[0] if self._last_arrival is None else self._last_arrival
                at = int(np.argmax(np.diff(arrival, prepend=prev)))
                n[at:] += extra
                self.lost += extra
        self._last_arrival = float(arrival[-1])
        n_before = self._n_next - 1
        self._n_next = int(n[-1]) + 1
        # Lower envelope of the offsets over the last ENVELOPE_S of samples.
        offset = float((arrival - n * self.dt).min())
        env = self._env
        while env and env[-1][1] >= offset:
            env.pop()
        env.append((int(n[-1]), offset))
        while env[0][0] < n[-1] - self._span:
            env.popleft()
        target = env[0][1]
        if self._anchor is None or target <= self._anchor:
            anchor = np.full(m, target)
        else:  # catch up slowly: never a step the pipeline would call a gap
            anchor = np.minimum(target, self._anchor + SLEW * self.dt * (n - n_before))
        self._anchor = float(anchor[-1])
        out = anchor + n * self.dt
        np.maximum(out, self._last_out, out=out)
        np.maximum.accumulate(out, out=out)
        self._last_out = float(out[-1])
        return out

    def _counter_gaps(self, counter: np.ndarray) -> np.ndarray | None:
        """Count the samples lost before each sample (zeros while checking).

        None when the counter is unusable (not one per sample, or not finite).
        """
        if not np.isfinite(counter).all():
            self.mode = "arrival"
            return None
        c = np.rint(counter).astype(np.int64)
        self._max_counter = max(self._max_counter, int(c.max()))
        first = self._last_counter
        self._last_counter = int(c[-1])
        step = np.diff(c, prepend=c[0] - 1 if first is None else first)
        step %= self._max_counter + 1
        if self.mode == "checking":
            take = step[: CHECK_SAMPLES - self._checked]
            self._checked += take.size
            self._ones += int((take == 1).sum())
            if self._checked >= CHECK_SAMPLES:
                if self._ones < MIN_ONE_FRACTION * CHECK_SAMPLES:
                    self.mode = "arrival"
                    return None
                self.mode = "counter"
            return np.zeros(c.size, dtype=np.int64)
        return np.where(step == 0, 0, step - 1)  # a repeated number loses nothing
