"""The online pipeline without sockets: parity, quality flags, channel mapping."""

from __future__ import annotations

import numpy as np
import pytest

from emomon.config import FeatureSpec
from emomon.datasets import get_reader
from emomon.dsp.features import compute_features
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.realtime.model import load_model
from emomon.realtime.pipeline import ChannelError, Pipeline, PipelineSettings
from emomon.realtime.sources._sampleclock import SampleClock

from .models import make_model, offline_probabilities

SF = 128.0


@pytest.fixture(scope="module")
def session_eeg():
    trials = get_reader(
        "synthetic", None, n_subjects=1, n_videos=2, trial_s=10
    ).read_subject("s01")
    return np.hstack([np.hstack([t.baseline, t.eeg]) for t in trials])


@pytest.fixture(scope="module")
def deap_model(tmp_path_factory, session_eeg):
    path = tmp_path_factory.mktemp("m") / "model.onnx"
    return make_model(path, ch_names=DEAP_CHANNELS, sfreq=SF, eeg=session_eeg)


def _feed(pipe, eeg, ts, rng, max_chunk=40):
    preds, i = [], 0
    while i < eeg.shape[1]:
        n = int(rng.integers(0, max_chunk))
        preds += pipe.process(
            eeg[:, i : i + n], ts[i : i + n], arrival=float(ts[min(i + n, len(ts)) - 1])
        )
        i += n
    return preds


def test_chunked_pipeline_matches_offline_features_and_probabilities(
    deap_model, session_eeg
):
    model = load_model(deap_model)
    contract = model.contract
    # The source lists channels in another order and has an extra one.
    order = list(reversed(DEAP_CHANNELS)) + ["EXG9"]
    src = np.vstack([session_eeg[::-1], np.zeros((1, session_eeg.shape[1]))])
    ts = 1000.0 + np.arange(src.shape[1]) / SF
    pipe = Pipeline(model, source_ch_names=order, source_sfreq=SF)
    preds = _feed(pipe, src, ts, np.random.default_rng(0))
    off = compute_features(session_eeg, sfreq=SF, spec=contract.spec, hop_s=0.25)
    assert len(preds) == len(off) > 40
    t_off = ts[off.ends - 1]
    np.testing.assert_allclose([p.t_lsl for p in preds], t_off, atol=1e-12)
    assert np.allclose(np.diff([p.t_lsl for p in preds]), 0.25)
    feats = np.stack([p.features for p in preds])
    assert np.abs(feats - off.values).max() < 1e-6
    ref = offline_probabilities(deap_model, off.values)
    got = np.stack([p.probs["valence"] for p in preds])
    assert np.abs(got - ref["valence"]).max() < 1e-5
    assert all(p.quality.ok for p in preds)


def test_missing_channel_is_named(deap_model):
    model = load_model(deap_model)
    names = [c for c in DEAP_CHANNELS if c not in ("Fp1", "Oz")]
    with pytest.raises(ChannelError, match="Fp1, Oz"):
        Pipeline(model, source_ch_names=names, source_sfreq=SF)


def test_a_model_channel_in_a_unit_that_is_no_voltage_is_refused(deap_model):
    model = load_model(deap_model)
    names = [*DEAP_CHANNELS, "TRIG", "GSR"]
    # channels the model does not read may be in any unit
    Pipeline(model, source_ch_names=names, source_sfreq=SF,
             unconverted_units={"TRIG": "none", "GSR": "microsiemens"})  # fmt: skip
    # model channels are matched by 10-20 name, as the rows are
    with pytest.raises(ChannelError) as info:
        Pipeline(model, source_ch_names=names, source_sfreq=SF,
                 unconverted_units={"TRIG": "none", "FZ": "counts",
                                    "Oz": "-"})  # fmt: skip
    msg = str(info.value)
    assert msg.startswith(
        "model channels 'FZ' (unit 'counts'), 'Oz' (unit '-') arrive in units "
        "other than microvolts, millivolts or volts"
    ), msg
    assert msg.endswith("or use a model without them")
    assert "TRIG" not in msg


def test_nan_burst_is_flagged_and_the_pipeline_recovers(deap_model, session_eeg):
    model = load_model(deap_model)
    contract = model.contract
    eeg = session_eeg.copy()
    eeg[3, 1000:1010] = np.nan
    eeg[5, 1005] = np.inf
    ts = np.arange(eeg.shape[1]) / SF
    pipe = Pipeline(model, source_ch_names=DEAP_CHANNELS, source_sfreq=SF)
    preds = _feed(pipe, eeg, ts, np.random.default_rng(1))
    bad = [p for p in preds if not p.quality.ok]
    assert bad, "windows covering the NaN burst must be flagged"
    for p in bad:
        assert p.probs is None
        assert p.quality.nonfinite
        assert ts[1000] <= p.t_lsl < ts[1010] + contract.spec.window_s + 1e-9
        assert DEAP_CHANNELS[3] in p.quality.bad_channels
    assert all(np.isfinite(p.features).all() for p in preds)
    later = [p for p in preds if p.t_lsl > ts[1010] + 2 * contract.spec.window_s]
    assert later
    assert all(p.quality.ok for p in later)


def test_quality_marks_match_a_per_window_reference(deap_model, session_eeg):
    """Sparse NaN and loss marks flag exactly the windows that contain them."""
    model = load_model(deap_model)
    contract = model.contract
    eeg = session_eeg.copy()
    rng = np.random.default_rng(7)
    nan_at = rng.choice(np.arange(400, eeg.shape[1] - 400), size=6, replace=False)
    eeg[rng.integers(0, 32, size=6), nan_at] = np.nan
    ts = np.arange(eeg.shape[1]) / SF
    lost = [1500, 2600]  # first sample after each loss of 20 samples
    for i in lost:
        ts[i:] += 20 / SF
    pipe = Pipeline(model, source_ch_names=DEAP_CHANNELS, source_sfreq=SF)
    # Small random chunks, then chunks longer than every internal buffer.
    preds = _feed(pipe, eeg[:, :2000], ts[:2000], rng)
    for a in range(2000, eeg.shape[1], 700):
        preds += pipe.process(eeg[:, a : a + 700], ts[a : a + 700], arrival=ts[a])
    assert len(preds) > 50
    assert pipe.dropped == 40
    for p in preds:
        inside = (ts > p.t_lsl - contract.spec.window_s + 1e-9) & (ts <= p.t_lsl)
        assert p.quality.nonfinite == bool(np.isnan(eeg[:, inside]).any())
        assert p.quality.dropped == 20 * sum(bool(inside[i]) for i in lost)
        q = p.quality
        assert q.ok == (not q.nonfinite and not q.dropped)


def test_chunk_with_mismatched_sample_count_is_refused(deap_model):
    model = load_model(deap_model)
    pipe = Pipeline(model, source_ch_names=DEAP_CHANNELS, source_sfreq=SF)
    with pytest.raises(ValueError, match="3 samples but timestamps has 4"):
        pipe.process(np.zeros((32, 3)), np.arange(4.0), arrival=0.0)


def test_timestamp_gap_counts_dropped_samples_and_flags_windows(
    deap_model, session_eeg
):
    model = load_model(deap_model)
    ts = np.arange(session_eeg.shape[1]) / SF
    ts[2000:] += 10 / SF  # ten samples never arrived
    pipe = Pipeline(model, source_ch_names=DEAP_CHANNELS, source_sfreq=SF)
    preds = _feed(pipe, session_eeg, ts, np.random.default_rng(2))
    assert pipe.dropped == 10
    flagged = [p for p in preds if p.quality.dropped]
    assert flagged
    assert all(not p.quality.ok and p.probs is None for p in flagged)
    assert all(p.t_lsl >= ts[2000] for p in flagged)


def test_sample_clock_stamps_count_real_losses_only(deap_model, session_eeg):
    """Arrival stamps of a board whose timeline shifted by 0.1 s (a stalled
    reading thread) and that lost 10 samples later: raw, the pipeline counts
    both; through the source's sample clock, only the loss."""
    model = load_model(deap_model)
    n = session_eeg.shape[1]
    keep = np.r_[0:3000, 3010:n]
    eeg = session_eeg[:, keep]
    arrival = 50.0 + keep / SF + 0.002
    arrival[1000:] += 0.1
    counter = keep % 256
    clock = SampleClock(SF)
    stamps = np.concatenate(
        [clock.stamps(arrival[i : i + 16], counter[i : i + 16])
         for i in range(0, keep.size, 16)]
    )  # fmt: skip
    for ts, dropped in ((arrival, 10 + 13), (stamps, 10)):
        pipe = Pipeline(model,
                        source_ch_names=DEAP_CHANNELS, source_sfreq=SF)  # fmt: skip
        _feed(pipe, eeg, ts, np.random.default_rng(3))
        assert pipe.dropped == dropped


def test_flat_channel_is_flagged(deap_model, session_eeg):
    model = load_model(deap_model)
    eeg = session_eeg.copy()
    eeg[7] = 12.0
    ts = np.arange(eeg.shape[1]) / SF
    pipe = Pipeline(model, source_ch_names=DEAP_CHANNELS, source_sfreq=SF)
    preds = pipe.process(eeg, ts, arrival=ts[-1])
    assert preds
    assert all(DEAP_CHANNELS[7] in p.quality.bad_channels for p in preds)


def test_smoothing_is_an_ema(deap_model, session_eeg):
    model = load_model(deap_model)
    ts = np.arange(session_eeg.shape[1]) / SF
    raw = Pipeline(model, source_ch_names=DEAP_CHANNELS, source_sfreq=SF)
    ema = Pipeline(
        model,
        source_ch_names=DEAP_CHANNELS,
        source_sfreq=SF,
        settings=PipelineSettings(smoothing=0.5),
    )
    a = [p.probs["valence"] for p in raw.process(session_eeg, ts, arrival=0.0)]
    b = [p.probs["valence"] for p in ema.process(session_eeg, ts, arrival=0.0)]
    np.testing.assert_allclose(b[0], a[0])
    np.testing.assert_allclose(b[1], 0.5 * a[0] + 0.5 * a[1])


def test_resampled_source(tmp_path, session_eeg):
    names = ["Fz", "C3", "Cz", "C4", "Pz", "Oz", "F3", "F4"]
    model = load_model(make_model(tmp_path / "m.onnx", ch_names=names, sfreq=SF))
    sf_in = 250.0
    rng = np.random.default_rng(3)
    eeg = rng.standard_normal((len(names), int(20 * sf_in))) * 10
    ts = 50.0 + np.arange(eeg.shape[1]) / sf_in
    pipe = Pipeline(model, source_ch_names=names, source_sfreq=sf_in)
    preds = _feed(pipe, eeg, ts, rng)
    assert len(preds) > 40
    t = np.array([p.t_lsl for p in preds])
    assert np.allclose(np.diff(t), 0.25, atol=1.5 / SF)
    assert ts[0] < t[0]
    assert t[-1] <= ts[-1] + 1e-9
    assert all(p.quality.ok for p in preds)


def test_settings_validation():
    from emomon.errors import EmomonError

    with pytest.raises(EmomonError, match="hop"):
        PipelineSettings(hop_s=0)
    with pytest.raises(EmomonError, match="smoothing"):
        PipelineSettings(smoothing=1.0)
    assert FeatureSpec().window_s == 2.0


def test_raw_ring_newest_samples_are_one_ordered_slice():
    from emomon.realtime.pipeline import _RawRing

    rng = np.random.default_rng(3)
    ring = _RawRing(3, 50)
    ref_x = np.empty((3, 0))
    ref_t = np.empty(0)
    for _ in range(200):
        n = int(rng.integers(0, 51))
        x = rng.normal(size=(3, n))
        t = ref_t[-1] + 1 + np.arange(n) if ref_t.size else np.arange(n, dtype=float)
        ring.push(x, t)
        ref_x = np.hstack([ref_x, x])[:, -50:]
        ref_t = np.concatenate([ref_t, t])[-50:]
        length = int(rng.integers(0, 60))
        sl = ring.last(length)
        k = min(length, ref_t.size)
        np.testing.assert_array_equal(ring.x[:, sl], ref_x[:, ref_x.shape[1] - k :])
        np.testing.assert_array_equal(ring.t[sl], ref_t[ref_t.size - k :])


def test_raw_ring_makes_stamps_non_decreasing():
    from emomon.realtime.pipeline import _RawRing

    ring = _RawRing(1, 8)
    ring.push(np.zeros((1, 3)), np.array([1.0, 3.0, 2.0]))
    ring.push(np.zeros((1, 2)), np.array([2.5, 4.0]))
    np.testing.assert_array_equal(ring.t[ring.last(5)], [1, 3, 3, 3, 4])


def test_samples_to_next_window_counts_source_samples(deap_model):
    """Feeding exactly the announced count completes the next window."""
    path = deap_model
    model = load_model(path)
    for sfreq in (128.0, 250.0):
        pipe = Pipeline(model, source_ch_names=DEAP_CHANNELS,
                        source_sfreq=sfreq)  # fmt: skip
        rng = np.random.default_rng(0)
        t = 0.0
        for hop in range(4):
            need = pipe.samples_to_next_window()
            assert need >= 1
            if need > 1:
                x = rng.normal(size=(32, need - 1)) * 10
                ts = t + np.arange(need - 1) / sfreq
                t = ts[-1] + 1 / sfreq
                assert pipe.process(x, ts, arrival=0.0) == []
                assert pipe.samples_to_next_window() == 1
            preds = pipe.process(rng.normal(size=(32, 1)) * 10, np.array([t]),
                                 arrival=0.0)  # fmt: skip
            t += 1 / sfreq
            assert len(preds) == 1, (sfreq, hop)
