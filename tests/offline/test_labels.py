"""Tests of emomon.offline.labels."""

from __future__ import annotations

import numpy as np
import pytest

from emomon.errors import ConfigError, DatasetError, EmomonError
from emomon.offline.labels import (
    LABEL_METHODS,
    class_labels,
    default_threshold,
    make_labels,
)


def test_default_threshold_is_scale_midpoint() -> None:
    assert default_threshold((1, 9)) == 5.0
    assert default_threshold((1, 5)) == 3.0


def test_fixed_strictly_greater_than_five_on_1_9() -> None:
    r = np.array([1.0, 4.9, 5.0, 5.01, 9.0])
    np.testing.assert_array_equal(make_labels(r), [0, 0, 0, 1, 1])


def test_fixed_dreamer_scale_and_explicit_threshold() -> None:
    r = np.array([1, 2, 3, 4, 5])
    np.testing.assert_array_equal(make_labels(r, scale=(1, 5)), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(
        make_labels(r, scale=(1, 5), threshold=1.5), [0, 1, 1, 1, 1]
    )
    ge = make_labels(r, scale=(1, 5), threshold=np.nextafter(3.0, -np.inf))
    np.testing.assert_array_equal(ge, [0, 0, 1, 1, 1])


def test_median_split_per_subject() -> None:
    r = np.array([1, 2, 3, 4, 5, 5, 5, 9], dtype=float)
    s = np.array(["a"] * 4 + ["b"] * 4)
    np.testing.assert_array_equal(
        make_labels(r, subjects=s, method="median"), [0, 0, 1, 1, 0, 0, 0, 1]
    )


def test_rank_split_exact_halves_with_ties() -> None:
    r = np.array([1, 2, 3, 4, 5, 5, 5, 9, 7, 7, 7], dtype=float)
    s = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 3)
    lab = make_labels(r, subjects=s, method="rank", seed=3)
    np.testing.assert_array_equal(lab[:4], [0, 0, 1, 1])
    assert lab[7] == 1
    assert lab[4:7].sum() == 1  # 9 high, one of the tied 5s high
    assert lab[8:].sum() == 1  # odd count: n // 2 = 1 high
    np.testing.assert_array_equal(
        lab, make_labels(r, subjects=s, method="rank", seed=3)
    )
    # Ties are broken by the seed, not by position: some seed picks another 5.
    picks = {
        int(np.flatnonzero(make_labels(r, subjects=s, method="rank", seed=k)[4:7])[0])
        for k in range(20)
    }
    assert len(picks) > 1


def test_rank_is_monotone_within_subject() -> None:
    rng = np.random.default_rng(0)
    r = rng.integers(1, 10, 60).astype(float)
    s = np.repeat(["a", "b", "c"], 20)
    lab = make_labels(r, subjects=s, method="rank")
    for subj in "abc":
        m = s == subj
        assert lab[m].sum() == 10
        assert r[m][lab[m] == 1].min() >= r[m][lab[m] == 0].max()


def test_random_keeps_class_balance_and_is_seeded() -> None:
    r = np.linspace(1, 9, 41)
    s = np.array(["a", "b"] * 20 + ["a"])
    fixed = make_labels(r)
    a = make_labels(r, subjects=s, method="random", seed=1)
    assert a.sum() == fixed.sum()
    np.testing.assert_array_equal(
        a, make_labels(r, subjects=s, method="random", seed=1)
    )
    assert not np.array_equal(a, make_labels(r, subjects=s, method="random", seed=2))
    assert not np.array_equal(a, fixed)


def test_random_shuffles_within_subject_keeping_each_subjects_balance() -> None:
    # 6 subjects x 8 trials, subjects interleaved in trial order, with a rating
    # bias per subject (s0 rates everything high, s5 everything low): the shuffled
    # control must keep each subject's count of highs exactly (a global shuffle
    # hands each subject a random share, which LOVO models learn from the
    # subject's identity: benchmarks/exp_shuffled_control.py).
    rng = np.random.default_rng(0)
    subjects = np.tile([f"s{i}" for i in range(6)], 8)
    bias = np.array([3.0, 1.0, 0.5, 0.0, -1.0, -3.0])[np.tile(np.arange(6), 8)]
    r = np.clip(5.0 + bias + rng.normal(0.0, 1.5, 48), 1.0, 9.0)
    fixed = make_labels(r)
    moved = 0
    for seed in range(10):
        lab = make_labels(r, subjects=subjects, method="random", seed=seed)
        for subj in np.unique(subjects):
            m = subjects == subj
            assert lab[m].sum() == fixed[m].sum(), (seed, subj)
        moved += int(np.sum(lab != fixed))
    assert moved > 0  # the labels do move between a subject's trials


def test_random_needs_subjects() -> None:
    with pytest.raises(ConfigError, match="subjects"):
        make_labels(np.array([2.0, 7.0]), method="random")


def test_unknown_method_names_argument_and_choices() -> None:
    with pytest.raises(ConfigError) as err:
        make_labels(np.array([1.0]), method="quantile")
    msg = str(err.value)
    assert "method" in msg
    assert all(m in msg for m in LABEL_METHODS)


def test_errors() -> None:
    with pytest.raises(ConfigError, match="subjects"):
        make_labels(np.array([1.0, 2.0]), method="median")
    with pytest.raises(DatasetError, match="scale"):
        make_labels(np.array([0.0, 9.5]))
    with pytest.raises(DatasetError, match="NaN"):
        make_labels(np.array([np.nan]))
    with pytest.raises(ConfigError, match="scale"):
        make_labels(np.array([1.0]), scale=(9, 1))
    assert issubclass(ConfigError, EmomonError)


def test_class_labels_seed() -> None:
    out = class_labels(["positive", "neutral", "negative", "negative"])
    np.testing.assert_array_equal(out, [2, 1, 0, 0])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(class_labels(["b", "a"], classes=("a", "b")), [1, 0])
    with pytest.raises(DatasetError, match="happy"):
        class_labels(["happy"])
