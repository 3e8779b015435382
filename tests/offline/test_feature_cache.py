"""Dataset feature extraction and its cache."""

from __future__ import annotations

import os

import numpy as np
import pytest

from emomon.config import FeatureSpec
from emomon.datasets import get_reader
from emomon.datasets.synthetic import SynthParams, write_deap
from emomon.offline import features as F


@pytest.fixture(scope="module")
def deap_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("deap")
    write_deap(SynthParams(n_subjects=2, n_videos=3, trial_s=8.0, seed=3), d)
    return d


def _forbid_reads(monkeypatch, reader):
    def boom(subject):
        raise AssertionError(f"read_subject({subject}) called despite a valid cache")

    monkeypatch.setattr(reader, "read_subject", boom)


def test_table_shapes_and_trial_metadata(deap_dir):
    reader = get_reader("deap", deap_dir)
    spec = FeatureSpec()
    t = F.load_features(reader, spec=spec, progress=False)
    assert t.n_trials == 6
    assert list(t.trial_subject) == ["s01"] * 3 + ["s02"] * 3
    assert list(t.trial_video) == ["v01", "v02", "v03"] * 2
    assert t.X.shape[1:] == (32, spec.n_features)
    assert t.X.shape[0] == t.trial.size == t.t_end.size
    assert np.isfinite(t.X).all()
    assert t.sfreq == 128.0
    assert t.scale == (1.0, 9.0)
    assert ((t.rating("valence") >= 1) & (t.rating("valence") <= 9)).all()
    # Trial windows never reach into the 3 s baseline: the first ends >= 2 s in.
    assert t.t_end.min() >= spec.window_s - 1e-9
    assert set(t.subject) == {"s01", "s02"}


def test_cache_hit_equals_fresh_and_skips_reading(deap_dir, tmp_path, monkeypatch):
    spec = FeatureSpec()
    reader = get_reader("deap", deap_dir)
    fresh = F.load_features(reader, spec=spec, cache_dir=tmp_path, progress=False)
    assert len(list((tmp_path / "deap").glob("*.npz"))) == 2
    reader2 = get_reader("deap", deap_dir)
    _forbid_reads(monkeypatch, reader2)
    cached = F.load_features(reader2, spec=spec, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(cached.X, fresh.X)
    np.testing.assert_array_equal(cached.trial, fresh.trial)
    np.testing.assert_array_equal(cached.ratings, fresh.ratings)
    assert cached.ch_names == fresh.ch_names


def test_changed_spec_file_or_code_never_reuses_the_cache(deap_dir, tmp_path):
    spec = FeatureSpec()
    reader = get_reader("deap", deap_dir)
    key = F.cache_key(reader, "s01", spec)
    assert F.cache_key(reader, "s01", FeatureSpec(hop_s=0.25)) != key
    assert F.cache_key(reader, "s01", FeatureSpec(notch=50.0)) != key
    assert F.cache_key(reader, "s02", spec) != key
    f = deap_dir / "s01.dat"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert F.cache_key(reader, "s01", spec) != key
    finally:
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert F.cache_key(reader, "s01", spec) == key


def test_code_version_is_part_of_the_key(deap_dir, monkeypatch):
    reader = get_reader("deap", deap_dir)
    key = F.cache_key(reader, "s01", FeatureSpec())
    monkeypatch.setattr(F, "_code_version", lambda: "other-dsp-code")
    assert F.cache_key(reader, "s01", FeatureSpec()) != key


def test_synthetic_reader_options_are_part_of_the_key():
    a = get_reader("synthetic", None, n_subjects=2, n_videos=2, seed=1)
    b = get_reader("synthetic", None, n_subjects=2, n_videos=2, seed=2)
    spec = FeatureSpec()
    assert F.cache_key(a, "s01", spec) != F.cache_key(b, "s01", spec)


def test_corrupt_cache_entry_is_recomputed(deap_dir, tmp_path):
    spec = FeatureSpec(layout="flat")
    reader = get_reader("deap", deap_dir)
    good = F.load_features(reader, spec=spec, cache_dir=tmp_path, progress=False)
    for p in (tmp_path / "deap").glob("*.npz"):
        p.write_bytes(b"not a zip")
    again = F.load_features(reader, spec=spec, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again.X, good.X)


def test_parallel_extraction_matches_serial(deap_dir):
    reader = get_reader("deap", deap_dir)
    spec = FeatureSpec()
    one = F.load_features(reader, spec=spec, n_jobs=1, progress=False)
    two = F.load_features(reader, spec=spec, n_jobs=2, progress=False)
    np.testing.assert_array_equal(one.X, two.X)


def test_baseline_subtraction_uses_the_pre_trial_segment(deap_dir):
    reader = get_reader("deap", deap_dir)
    plain = F.load_features(reader, spec=FeatureSpec(), progress=False)
    sub = F.load_features(reader, spec=FeatureSpec(baseline=True), progress=False)
    trial = reader.read_subject("s01")[0]
    tf = F.trial_features(trial, FeatureSpec())
    assert tf.baseline is not None
    n0 = tf.values.shape[0]
    np.testing.assert_allclose(sub.X[:n0], plain.X[:n0] - tf.baseline, atol=1e-12)


def test_a_channel_pick_is_part_of_the_cache_key(deap_dir, tmp_path):
    """A montage's channels are picked before the features (the average
    reference is over them, as live); the cache never returns another pick's."""
    reader = get_reader("deap", deap_dir)
    spec = FeatureSpec(layout="flat")
    cyton = (("Fp1", "Fp1"), ("Fp2", "Fp2"), ("C3", "C3"), ("O2", "O2"))
    three = (("Oz", "Oz"), ("Fz", "Fz"), ("Cz", "Cz"))
    keys = {F.cache_key(reader, "s01", spec, pick) for pick in (None, cyton, three)}
    assert len(keys) == 3
    assert F.cache_key(reader, "s01", spec, None) == F.cache_key(reader, "s01", spec)
    cache = tmp_path / "cache"
    a = F.load_features(reader, spec=spec, cache_dir=cache, progress=False,
                        channels=cyton)  # fmt: skip
    b = F.load_features(reader, spec=spec, cache_dir=cache, progress=False,
                        channels=three)  # fmt: skip
    again = F.load_features(reader, spec=spec, cache_dir=cache, progress=False,
                            channels=cyton)  # fmt: skip
    assert a.ch_names == ("Fp1", "Fp2", "C3", "O2")
    assert b.ch_names == ("Oz", "Fz", "Cz")
    assert b.X.shape[1] == 3
    np.testing.assert_array_equal(again.X, a.X)
    # the same features as picking the trials by hand, CAR over the pick
    trials = F.pick_channels(reader.read_subject("s01"), cyton)
    by_hand = F.trial_features(trials[0], spec).values
    np.testing.assert_allclose(a.X[: by_hand.shape[0]], by_hand, rtol=0, atol=1e-12)


def test_a_pick_renames_and_a_lacking_trial_is_named(deap_dir):
    reader = get_reader("deap", deap_dir)
    trials = F.pick_channels(reader.read_subject("s01"), (("Fz", "FZ"),))
    assert trials[0].ch_names == ("FZ",)
    assert trials[0].baseline.shape[0] == 1
    with pytest.raises(F.DatasetError, match="lacks channel"):
        F.pick_channels(trials, (("Cz", "Cz"),))
