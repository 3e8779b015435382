"""When the next samples can arrive at the earliest, learnt from the reads.

The live loop waits for a window's last sample in a blocking read, which
returns the moment that sample arrives. A sender pushing one sample at a time
then wakes the waiting reader (and liblsl's receiving thread, which must signal
it) for every sample: about a third of the stream's CPU at 128 Hz. Resting
first, until shortly before the completing sample *could* arrive, and only then
blocking, keeps the latency of the blocking read at a fraction of the cost.

The estimate must never be late (a reader asleep when the sample arrives is
the latency the blocking read removed), so it is built to err early:

- every read that waited for its last sample and returned as it arrived (a
  *prompt* read) gives a point ``(t_i, n_i)``: that arrival time and the number
  of samples read so far;
- at a rate ``r`` at least the highest seen (and at least the nominal one),
  sample ``N`` then arrives no earlier than ``N / r + min_i(t_i - n_i / r)``
  over the last few seconds: the earliest phase seen, at the fastest pace
  seen. Chunks (a sample waits for its chunk: later, never earlier), jitter
  (the earliest push of the horizon sets the phase) and stalls (late, not
  early) keep it early; only a sender faster or earlier than anything in the
  last ``horizon_s`` can beat it, and the rate margin makes it drift early by
  ``horizon_s * rate_margin`` (15 ms) on a steady sender. When it was beaten
  (the read after a rest finds the sample already there), the loop forgets the
  reads and blocks until prompt reads span ``min_span_s`` again.
"""

from __future__ import annotations

from collections import deque

__all__ = ["ArrivalModel"]


class ArrivalModel:
    """The earliest time the next samples of a source can arrive.

    Parameters
    ----------
    nominal_rate : float
        Samples per second the source declares (its sampling rate times the
        replay speed).
    horizon_s : float
        Reads older than this are forgotten (s).
    rate_margin : float
        The rate used is this fraction above the highest seen, so the estimate
        errs early.
    min_span_s : float
        No estimate before the reads kept span this long (s).
    """

    def __init__(
        self,
        nominal_rate: float,
        *,
        horizon_s: float = 3.0,
        rate_margin: float = 0.005,
        min_span_s: float = 0.5,
    ) -> None:
        if not nominal_rate > 0:
            raise ValueError(f"nominal_rate must be > 0, got {nominal_rate}")
        self.nominal_rate = float(nominal_rate)
        self.horizon_s = float(horizon_s)
        self.rate_margin = float(rate_margin)
        self.min_span_s = float(min_span_s)
        self._reads: deque[tuple[float, int]] = deque(maxlen=4096)  # (t, total)
        self._total = 0

    def reset(self) -> None:
        """Forget every read (the source reconnected or restarted its clock)."""
        self._reads.clear()

    def observe(self, t: float, n: int, *, prompt: bool) -> None:
        """Count a read that returned ``n`` samples at time ``t`` (monotonic s).

        ``prompt``: the read waited for its last sample and returned as it
        arrived, so ``t`` is that sample's arrival. Only such reads place the
        phase: a read that found its samples already there, or gave up at its
        timeout, returned at some time *after* they arrived, and learning from
        it would make the estimate late (and a late estimate only ever sees
        such reads).
        """
        if n <= 0:
            return
        self._total += n
        if not prompt:
            return
        self._reads.append((t, self._total))
        while self._reads and self._reads[0][0] < t - self.horizon_s:
            self._reads.popleft()

    def earliest(self, want: int) -> float | None:
        """When the ``want``-th sample after those read can arrive, at the earliest.

        Parameters
        ----------
        want : int
            Samples still missing (1 = the next one).

        Returns
        -------
        float or None
            A time on the clock of :meth:`observe` (monotonic s), or None while
            the reads kept span less than ``min_span_s``.
        """
        reads = self._reads
        if len(reads) < 2:
            return None
        (t0, n0), (t1, n1) = reads[0], reads[-1]
        if t1 - t0 < self.min_span_s:
            return None
        rate = max(self.nominal_rate, (n1 - n0) / (t1 - t0)) * (1 + self.rate_margin)
        phase = min(t - n / rate for t, n in reads)
        return phase + (self._total + max(want, 1)) / rate
