"""Tests of emomon.offline.metrics against hand-computed and brute-force values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emomon.offline.metrics import (
    accuracy,
    balanced_accuracy,
    cluster_bootstrap,
    cluster_bootstrap_ci,
    cluster_ids,
    confusion_matrix,
    f1,
    f1_macro,
    group_table,
    majority_baseline,
    majority_class,
    permutation_p_value,
    permute_trial_labels,
    roc_auc,
    summarize,
)
from emomon.offline.protocols import make_splits

Y = np.array([0, 0, 1, 1, 1])
P = np.array([0, 1, 1, 1, 0])


def brute_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def test_binary_hand_values() -> None:
    np.testing.assert_array_equal(confusion_matrix(Y, P), [[1, 1], [1, 2]])
    assert accuracy(Y, P) == pytest.approx(3 / 5)
    assert balanced_accuracy(Y, P) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert f1(Y, P) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # class 1: tp2 fp1 fn1
    assert f1_macro(Y, P) == pytest.approx((0.5 + 2 / 3) / 2)  # class 0: 2/(2+1+1)


def test_multiclass_hand_values() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    np.testing.assert_array_equal(
        confusion_matrix(y, p, 3), [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    )
    assert balanced_accuracy(y, p) == pytest.approx((0.5 + 1 + 0.5) / 3)
    # per-class F1: 2/(2+2)=0.5, 4/(4+1)=0.8, 2/(2+1)=2/3; binary falls back to macro
    assert f1_macro(y, p) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert f1(y, p) == pytest.approx(f1_macro(y, p))


def test_undefined_values_are_nan() -> None:
    assert math.isnan(f1(np.array([0, 0]), np.array([0, 0])))  # no class 1 anywhere
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.9])))
    assert math.isnan(balanced_accuracy(np.array([], int), np.array([], int)))
    # Balanced accuracy ignores classes absent from y.
    assert balanced_accuracy(np.array([1, 1]), np.array([1, 0])) == 0.5


def test_auc_hand_and_ties() -> None:
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc(y, np.array([0.1, 0.5, 0.5, 0.9])) == pytest.approx(
        (1 + 0.5 + 1 + 1) / 4
    )


def test_auc_matches_brute_force_random() -> None:
    rng = np.random.default_rng(0)
    for n in (7, 50, 301):
        y = rng.integers(0, 2, n)
        s = np.round(rng.normal(size=n) + 0.5 * y, 1)  # rounding creates ties
        assert roc_auc(y, s) == pytest.approx(brute_auc(y, s), abs=1e-12)
        two_col = np.stack([1 - s, s], axis=1)
        assert roc_auc(y, two_col) == pytest.approx(brute_auc(y, s), abs=1e-12)
    y = rng.integers(0, 3, 200)
    s = rng.random((200, 3))
    expected = np.mean([brute_auc((y == c).astype(int), s[:, c]) for c in range(3)])
    assert roc_auc(y, s) == pytest.approx(expected, abs=1e-12)


def test_summarize_binary_and_multiclass() -> None:
    proba = np.array([0.2, 0.6, 0.9, 0.7, 0.5])  # 0.5 -> class 0
    out = summarize(Y, proba)
    assert out["n"] == 5
    assert out["n_classes"] == 2
    assert out["confusion"] == [[1, 1], [1, 2]]
    assert out["balanced_accuracy"] == pytest.approx(7 / 12)
    assert out["auc"] == pytest.approx(brute_auc(Y, proba))
    assert set(out) == {
        "n",
        "n_classes",
        "accuracy",
        "balanced_accuracy",
        "auc",
        "f1",
        "f1_macro",
        "confusion",
    }
    two = summarize(Y, np.stack([1 - proba, proba], axis=1))
    assert two["confusion"] == out["confusion"]
    assert two["auc"] == out["auc"]
    y3 = np.array([0, 1, 2, 2])
    p3 = np.eye(3)[[0, 1, 2, 1]] * 0.8 + 0.1
    out3 = summarize(y3, p3)
    assert out3["n_classes"] == 3
    assert out3["balanced_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)


def _clustered(n_clusters: int, seed: int = 0, per: int = 20):
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(n_clusters), per)
    y = rng.integers(0, 2, clusters.size)
    shift = rng.normal(0, 0.5, n_clusters)[clusters]  # cluster-level effect
    score = 1 / (1 + np.exp(-(1.2 * (y - 0.5) + shift + rng.normal(0, 1, y.size))))
    return y, np.round(score, 2), clusters


@pytest.mark.parametrize("metric", ["balanced_accuracy", "accuracy", "f1", "auc"])
def test_bootstrap_ci_contains_estimate_and_narrows(metric: str) -> None:
    y, s, c = _clustered(20)
    point = {
        "balanced_accuracy": balanced_accuracy(y, (s > 0.5).astype(int)),
        "accuracy": accuracy(y, (s > 0.5).astype(int)),
        "f1": f1(y, (s > 0.5).astype(int)),
        "auc": roc_auc(y, s),
    }[metric]
    low, high = cluster_bootstrap_ci(y, s, c, metric=metric, n_boot=500)
    assert low < point < high
    yb, sb, cb = _clustered(320)
    low_b, high_b = cluster_bootstrap_ci(yb, sb, cb, metric=metric, n_boot=500)
    assert high_b - low_b < 0.6 * (high - low)


@pytest.mark.parametrize("metric", ["balanced_accuracy", "f1_macro", "auc"])
def test_vectorised_bootstrap_equals_naive_resampling(metric: str) -> None:
    y, s, c = _clustered(15, seed=3, per=7)
    fn = {
        "balanced_accuracy": lambda a, p: balanced_accuracy(a, (p > 0.5).astype(int)),
        "f1_macro": lambda a, p: f1_macro(a, (p > 0.5).astype(int)),
        "auc": roc_auc,
    }[metric]
    fast = cluster_bootstrap(y, s, c, metric=metric, n_boot=40, seed=5)
    slow = cluster_bootstrap(y, s, c, metric=fn, n_boot=40, seed=5)
    np.testing.assert_allclose(fast, slow, equal_nan=True, atol=1e-12)


def test_bootstrap_multiclass_auc_and_cluster_ids() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 120)
    p = rng.dirichlet(np.ones(3), 120)
    p[np.arange(120), y] += 0.3
    c = cluster_ids(
        np.repeat(["s1", "s2"], 60), np.tile(np.repeat(["a", "b", "c"], 20), 2)
    )
    assert c[0] == "s1|a"
    assert len(set(c)) == 6
    fast = cluster_bootstrap(y, p, c, metric="auc", n_boot=20)
    slow = cluster_bootstrap(y, p, c, metric=roc_auc, n_boot=20)
    np.testing.assert_allclose(fast, slow, atol=1e-12)
    low, high = cluster_bootstrap_ci(y, p, c, metric="auc", n_boot=200)
    assert low <= roc_auc(y, p) <= high


def test_permutation_p_value_formula() -> None:
    assert permutation_p_value(0.7, np.array([0.5, 0.7, 0.8, 0.6])) == pytest.approx(
        3 / 5
    )
    assert permutation_p_value(0.9, np.zeros(99)) == pytest.approx(1 / 100)
    assert permutation_p_value(0.1, np.ones(9)) == 1.0
    assert permutation_p_value(0.9, np.array([np.nan, 0.1])) == pytest.approx(2 / 3)


def test_permute_trial_labels() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1, 1, 1])
    groups = np.array(list("aaaabbbbbb"))
    out = permute_trial_labels(labels, rng=0)
    assert sorted(out) == sorted(labels)
    np.testing.assert_array_equal(out, permute_trial_labels(labels, rng=0))
    seen = set()
    for seed in range(30):
        within = permute_trial_labels(
            labels, groups=groups, rng=np.random.default_rng(seed)
        )
        assert within[:4].sum() == 1
        assert within[4:].sum() == 5  # per-group balance kept
        seen.add(tuple(within))
    assert len(seen) > 3
    # Expanding trial labels to windows keeps one label per trial.
    trial_of_window = np.repeat(np.arange(10), 4)
    win = permute_trial_labels(labels, rng=2)[trial_of_window]
    assert all(len(set(win[trial_of_window == t])) == 1 for t in range(10))


def test_majority_baseline_single_fold() -> None:
    assert majority_class(np.array([1, 0, 1])) == 1
    assert majority_class(np.array([0, 1])) == 0  # tie -> smaller class
    pred = majority_baseline(np.array([1, 1, 0]), np.array([0, 1, 1, 0]))
    np.testing.assert_array_equal(pred, [1, 1, 1, 1])
    assert balanced_accuracy(np.array([0, 1, 1, 0]), pred) == 0.5


def test_majority_baseline_is_far_below_chance_under_lovo() -> None:
    """Video-level labels, 10 high / 10 low videos: every LOVO fold predicts wrong."""
    n_subj, n_vid, n_win = 3, 20, 2
    subjects = np.repeat([f"s{i}" for i in range(n_subj)], n_vid * n_win)
    videos = np.tile(np.repeat([f"v{j:02d}" for j in range(n_vid)], n_win), n_subj)
    trials = np.repeat(np.arange(n_subj * n_vid), n_win)
    y = np.array([int(v[1:]) % 2 for v in videos])
    y_all, pred_all = [], []
    for sp in make_splits("lovo", subjects=subjects, videos=videos, trials=trials):
        y_all.append(y[sp.test])
        pred_all.append(
            majority_baseline(y[np.concatenate([sp.train, sp.val])], y[sp.test])
        )
    yt, yp = np.concatenate(y_all), np.concatenate(pred_all)
    out = summarize(yt, yp.astype(float))
    assert out["accuracy"] == 0.0
    assert out["balanced_accuracy"] == 0.0


def test_group_table() -> None:
    y = np.array([0, 1, 1, 1, 0, 0])
    proba = np.array([0.2, 0.8, 0.4, 0.9, 0.6, 0.3])
    groups = np.array(["v2", "v2", "v2", "v1", "v1", "v1"])
    rows = group_table(y, proba, groups)
    assert [r["group"] for r in rows] == ["v1", "v2"]
    v1, v2 = rows
    assert v1["n"] == 3
    assert v1["accuracy"] == pytest.approx(2 / 3)
    assert v1["balanced_accuracy"] == pytest.approx((1 + 0.5) / 2)
    assert v1["auc"] == pytest.approx(1.0)
    assert v1["mean_p_high"] == pytest.approx(0.6)
    assert v1["true_majority"] == 0
    assert v1["pred_majority"] == 1
    assert v2["accuracy"] == pytest.approx(2 / 3)
    assert v2["true_majority"] == 1
    one = group_table(np.array([1, 1]), np.array([0.7, 0.2]), np.array(["a", "a"]))[0]
    assert math.isnan(one["balanced_accuracy"])
    assert math.isnan(one["auc"])
    assert one["accuracy"] == 0.5
    multi = group_table(np.array([0, 2]), np.eye(3)[[0, 1]], np.array(["a", "a"]))[0]
    assert set(multi) >= {"mean_p_0", "mean_p_1", "mean_p_2"}


def test_permute_videos_relabels_whole_videos_for_every_subject():
    from emomon.offline.metrics import permute_videos

    subj = np.repeat(["s01", "s02", "s03"], 5)
    vid = np.tile([f"v{i}" for i in range(5)], 3)
    labels = np.arange(15)
    perm = permute_videos(subj, vid, rng=3)
    assert sorted(perm) == list(range(15))
    # Every subject keeps its own trials, and one video map serves all subjects.
    assert (subj[perm] == subj).all()
    maps = {(vid[i], vid[perm[i]]) for i in range(15)}
    assert len(maps) == 5
    assert not np.array_equal(labels[perm], labels)


def test_permute_videos_falls_back_within_subject_when_a_trial_is_missing():
    from emomon.offline.metrics import permute_videos

    subj = np.array(["s01"] * 3 + ["s02"] * 2)
    vid = np.array(["a", "b", "c", "a", "b"])
    for seed in range(10):
        perm = permute_videos(subj, vid, rng=seed)
        assert sorted(perm) == list(range(5))
        assert (subj[perm] == subj).all()
