"""``SampleClock``: arrival stamps with stalls in, sample-clock stamps out.

The simulated board samples at exactly ``SF`` and its samples arrive late by a
random delay, in chunks of random size; the package counter wraps at 256 like
OpenBCI's and BrainFlow's synthetic board's.
"""

from __future__ import annotations

import numpy as np
import pytest

from emomon.realtime.pipeline import PipelineSettings
from emomon.realtime.sources._sampleclock import CHECK_SAMPLES, SampleClock

from .helpers import grid_steps

SF = 250.0
DT = 1.0 / SF
# the pipeline counts a rise of the stamps past the grid by this much as a loss
GAP = PipelineSettings().gap_tolerance  # periods


def board(n: int, *, seed: int = 0, t0: float = 100.0):
    """True sample times, arrival times (0-5 ms late) and the counter."""
    rng = np.random.default_rng(seed)
    true = t0 + np.arange(n) * DT
    arrival = np.maximum.accumulate(true + rng.exponential(0.001, n).clip(0, 0.005))
    return true, arrival, np.arange(n) % 256


def run(clock: SampleClock, arrival, counter, *, seed: int = 1, max_chunk: int = 30):
    """Feed the clock in random chunks as a poller would; all stamps."""
    rng = np.random.default_rng(seed)
    out, i = [], 0
    for _ in range(arrival.size):
        if i >= arrival.size:
            break
        k = int(rng.integers(1, max_chunk))
        c = None if counter is None else counter[i : i + k]
        out.append(clock.stamps(arrival[i : i + k], c))
        i += k
    return np.concatenate(out)


def check_basic(stamps, arrival):
    assert np.all(np.diff(stamps) >= 0)
    assert np.all(stamps <= arrival + 1e-12)  # never later than the sample came


def counted_without_loss(arrival, counter):
    """Stamps of a run whose counter the clock trusts and finds no loss in; no
    step of the stamps comes near what the pipeline calls a gap (half a period)."""
    clock = SampleClock(SF)
    stamps = run(clock, arrival, counter)
    check_basic(stamps, arrival)
    assert clock.mode == "counter"
    assert clock.lost == 0
    assert grid_steps(stamps, sfreq=SF).max() <= GAP / 2
    return stamps


def test_jitter_and_a_stall_that_catches_up_are_no_gap():
    true, arrival, counter = board(3000)
    # 0.3 s without samples, then the held ones in a burst
    arrival[800:900] = np.maximum(arrival[800:900], true[800] + 0.3)
    stamps = counted_without_loss(arrival, counter)
    assert np.abs(stamps - true).max() < 0.006  # within the arrival delays


def test_a_shifted_timeline_is_caught_up_slowly():
    """A software board's thread that lost 0.2 s for good (BrainFlow's playback
    does not make that time up): no gap, and the stamps catch up."""
    true, arrival, counter = board(3000)
    arrival[1000:] += 0.2
    clock = SampleClock(SF)
    stamps = run(clock, arrival, counter)
    check_basic(stamps, arrival)
    assert clock.lost == 0
    assert grid_steps(stamps, sfreq=SF).max() <= GAP / 2
    assert np.abs(stamps[-300:] - arrival[-300:]).max() < 0.006


def test_lost_samples_are_an_exact_gap():
    true, arrival, counter = board(3000)
    keep = np.r_[0:1500, 1507:3000]  # 7 samples lost in transit
    clock = SampleClock(SF)
    stamps = run(clock, arrival[keep], counter[keep])
    check_basic(stamps, arrival[keep])
    assert clock.lost == 7
    steps = grid_steps(stamps, sfreq=SF)
    assert steps[1499] == pytest.approx(7.0, abs=0.05)  # at the sample after it
    assert np.delete(steps, 1499).max() <= GAP / 2
    np.testing.assert_allclose(stamps[1500:], true[1507:], atol=0.006)


def test_an_outage_longer_than_a_counter_cycle_is_counted_in_full():
    """300 samples lost: the counter alone says 300 % 256 = 44."""
    true, arrival, counter = board(3000)
    keep = np.r_[0:1500, 1800:3000]
    clock = SampleClock(SF)
    stamps = run(clock, arrival[keep], counter[keep])
    assert clock.lost == 300
    np.testing.assert_allclose(stamps[1500:], true[1800:], atol=0.006)


def test_a_restarted_counter_on_schedule_is_no_loss():
    """A looping playback starts its file again: the counter jumps back (here
    from 299 % 256 = 43 to 0, which reads as 212 lost) but the samples keep
    coming on schedule, so nothing was lost."""
    true, arrival, _ = board(1500)
    counter = np.arange(1500) % 300 % 256
    stamps = counted_without_loss(arrival, counter)
    np.testing.assert_allclose(stamps, true, atol=0.006)


def test_a_counter_that_is_not_finite_falls_back_to_arrival_stamps():
    _, arrival, counter = board(400)
    counter = counter.astype(float)
    counter[300] = np.nan
    clock = SampleClock(SF)
    stamps = run(clock, arrival, counter)
    assert clock.mode == "arrival"
    check_basic(stamps, arrival)


def test_a_counter_of_packages_falls_back_to_arrival_stamps():
    """Two samples per counted package: not a per-sample counter."""
    true, arrival, _ = board(1000)
    clock = SampleClock(SF)
    stamps = run(clock, arrival, (np.arange(1000) // 2) % 256)
    assert clock.mode == "arrival"
    tail = slice(CHECK_SAMPLES + 30, None)  # past the check (and its chunk)
    np.testing.assert_array_equal(stamps[tail], arrival[tail])
    check_basic(stamps, arrival)


def test_no_counter_passes_arrival_stamps_on_non_decreasing():
    _, arrival, _ = board(500)
    arrival[100] = arrival[99] - 0.01  # out of order on arrival
    clock = SampleClock(SF, counter=False)
    assert clock.mode == "arrival"
    stamps = run(clock, arrival, None)
    np.testing.assert_array_equal(stamps, np.maximum.accumulate(arrival))


def test_reset_starts_a_new_clock_but_never_goes_back():
    true, arrival, counter = board(1200)
    clock = SampleClock(SF)
    first = run(clock, arrival[:600], counter[:600])
    clock.reset()  # e.g. after the board came back from an outage
    later = run(clock, arrival[600:] + 2.0, (counter[600:] + 77) % 256)
    assert clock.mode == "counter"
    assert clock.lost == 0
    assert later[0] >= first[-1]
    np.testing.assert_allclose(later[-100:], true[-100:] + 2.0, atol=0.006)


def test_reset_keeps_the_counter_wrap_around():
    """After a reset the counter's cycle (256) is still known: two samples lost
    just before the first wrap (253 -> 0) are two samples lost."""
    _, arrival, counter = board(2000)
    clock = SampleClock(SF)
    run(clock, arrival[:600], counter[:600])
    clock.reset()
    keep = np.r_[600:766, 768:2000]  # counter 254 and 255 of the cycle 512-767
    run(clock, arrival[keep] + 1.0, counter[keep])
    assert clock.mode == "counter"
    assert clock.lost == 2


def test_bad_rate_is_refused():
    with pytest.raises(ValueError, match="sfreq"):
        SampleClock(0.0)
