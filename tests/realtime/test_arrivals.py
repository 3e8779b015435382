"""The live loop's estimate of when a window's last sample can arrive.

Simulated senders on a virtual clock (no waiting): what matters is that the
estimate is never later than the arrival (the loop would sleep through it), and
not much earlier (it would block, waking per sample, for nothing).
"""

from __future__ import annotations

import numpy as np
import pytest

from emomon.realtime._arrivals import ArrivalModel

FS = 128.0
HOP = 32  # samples per window hop at 128 Hz


def _blocking_reader(arrivals: np.ndarray, model: ArrivalModel) -> list[float]:
    """Read like the live loop: block until the next hop's last sample arrives
    (the read returns then, with everything that arrived by then); before each
    read, note the estimate for that sample. Returns estimate - arrival (s)."""
    errors = []
    n_read = 0
    n = arrivals.size
    while n_read + HOP <= n:
        target = n_read + HOP - 1  # index of the completing sample
        early = model.earliest(HOP)
        t = arrivals[target]
        if early is not None:
            errors.append(early - t)
        got = int(np.searchsorted(arrivals, t, side="right")) - n_read
        model.observe(t, got, prompt=True)
        n_read += got
    return errors


def _chunked(n: int, chunk: int, *, rate: float = FS, t0: float = 10.0) -> np.ndarray:
    """Arrival time of each sample of a sender pushing ``chunk`` samples when the
    last of them is due."""
    idx = np.arange(n)
    last = (idx // chunk + 1) * chunk - 1
    return t0 + last / rate


@pytest.mark.parametrize("chunk", [1, 4, 8, 10, 16, 32])
def test_never_late_and_close_for_steady_chunked_senders(chunk):
    errors = np.array(_blocking_reader(_chunked(20 * 128, chunk), ArrivalModel(FS)))
    assert errors.size > 50
    assert errors.max() <= 0.0  # never after the arrival
    # early by the chunk's phase at most, plus the rate margin over the horizon
    assert errors.min() >= -(chunk / FS + 3.0 * 0.005 + 1e-9)


def test_a_sender_faster_than_its_nominal_rate_is_learnt():
    """A replay at 4x declares 128 Hz but sends 512 samples a second."""
    errors = np.array(
        _blocking_reader(_chunked(40 * 128, 1, rate=4 * FS), ArrivalModel(FS))
    )
    assert errors.max() <= 0.0
    assert np.median(errors) > -0.02


def test_jitter_and_stalls_keep_it_early():
    rng = np.random.default_rng(7)
    times, t, n = [], 5.0, 0
    while n < 60 * 128:
        size = int(rng.integers(1, 12))
        # push when the chunk's last sample is due, with 0-40 ms of delay, and
        # now and then a stall of 100-200 ms (later samples then come in bursts)
        due = 5.0 + (n + size - 1) / FS
        late = rng.uniform(0.0, 0.04) + (
            rng.uniform(0.1, 0.2) if rng.random() < 0.05 else 0
        )
        t = max(t, due + late)
        times += [t] * size
        n += size
    errors = np.array(_blocking_reader(np.array(times), ArrivalModel(FS)))
    assert errors.size > 200
    assert errors.max() <= 0.0
    assert np.median(errors) > -0.1  # it still rests for most of a hop


def test_no_estimate_before_half_a_second_of_reads_and_after_reset():
    model = ArrivalModel(FS)
    assert model.earliest(HOP) is None
    model.observe(1.0, 32, prompt=True)
    model.observe(1.25, 32, prompt=True)
    assert model.earliest(HOP) is None  # 0.25 s of reads
    model.observe(1.5, 32, prompt=True)
    early = model.earliest(HOP)
    assert early is not None
    assert 1.5 + 0.2 < early <= 1.75
    model.reset()
    assert model.earliest(HOP) is None
    model.observe(2.0, 0, prompt=True)  # an empty read records nothing
    assert model.earliest(HOP) is None


def test_forgets_reads_older_than_the_horizon():
    """A stall leaves old, early-phase reads behind; after the horizon the
    estimate follows the sender's new phase."""
    model = ArrivalModel(FS, horizon_s=3.0)
    for k in range(40):  # 10 s at one read per hop
        model.observe(k * 0.25, HOP, prompt=True)
    for k in range(40):  # then the same sender, 1 s later
        model.observe(11.0 + k * 0.25, HOP, prompt=True)
    early = model.earliest(HOP)
    assert early is not None
    assert 11.0 + 40 * 0.25 - 0.03 < early <= 11.0 + 40 * 0.25


def test_reads_that_did_not_wait_count_samples_but_place_no_phase():
    """A read that found its samples there (after a too-long rest) or gave up
    at its timeout returned after they arrived: learning its time would make
    the estimate late, and keep it late."""
    model = ArrivalModel(FS)
    for k in range(8):  # prompt reads: a hop's last sample at 10 + k/4 s
        model.observe(10.0 + k * 0.25, HOP, prompt=True)
    before = model.earliest(HOP)
    assert before is not None
    assert 10.0 + 8 * 0.25 - 0.02 < before <= 10.0 + 8 * 0.25
    # the next hop, read 60 ms after its arrival: counted, but no phase
    model.observe(10.0 + 8 * 0.25 + 0.06, HOP, prompt=False)
    after = model.earliest(HOP)
    assert after is not None
    assert 10.0 + 9 * 0.25 - 0.02 < after <= 10.0 + 9 * 0.25


def test_rejects_a_rate_that_is_not_positive():
    with pytest.raises(ValueError, match="nominal_rate"):
        ArrivalModel(0.0)
