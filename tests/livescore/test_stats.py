"""The numbers of a fixed model's session: exact and Monte Carlo nulls, verdicts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from emomon.livescore import arrangements, score_windows
from emomon.offline.metrics import balanced_accuracy, summarize


def _session(n_trials: int, per_trial: int, *, seed: int, skill: float):
    """Windows of ``n_trials`` trials, half high: a model right with prob ``skill``."""
    rng = np.random.default_rng(seed)
    trial_y = np.array([0, 1] * (n_trials // 2))
    y = np.repeat(trial_y, per_trial)
    trials = np.repeat([f"t{i}" for i in range(n_trials)], per_trial)
    right = rng.random(y.size) < skill
    p_high = np.where(
        right == (y == 1), 0.5 + 0.5 * rng.random(y.size), 0.5 * rng.random(y.size)
    )
    return y, np.column_stack([1 - p_high, p_high]), trials


def test_few_trials_get_the_exact_test():
    y, proba, trials = _session(6, 20, seed=3, skill=0.9)
    s = score_windows(y, proba, trials, n_classes=2, permutations=999, n_boot=100)
    # brute force: every assignment of 3 highs to the 6 trials
    pred = (proba[:, 1] > 0.5).astype(int)
    code = np.unique(trials, return_inverse=True)[1]
    obs = balanced_accuracy(y, pred)
    null = []
    for highs in itertools.combinations(range(6), 3):
        lab = np.zeros(6, dtype=int)
        lab[list(highs)] = 1
        null.append(balanced_accuracy(lab[code], pred))
    assert len(null) == arrangements(y[::20]) == 20
    assert s.exact
    assert s.n_permutations == 19
    assert s.p_value == pytest.approx(np.mean(np.array(null) >= obs))
    assert s.min_p == pytest.approx(1 / 20)
    assert s.verdict == "inconclusive"  # 1/20 cannot go below alpha = 0.05
    assert s.metrics == summarize(y, proba[:, 1], n_classes=2)


def test_many_trials_get_random_permutations_and_a_verdict():
    y, proba, trials = _session(16, 10, seed=4, skill=0.95)
    s = score_windows(y, proba, trials, n_classes=2, permutations=199, n_boot=200)
    assert arrangements(y[::10]) == 12870
    assert not s.exact
    assert s.n_permutations == 199
    assert s.min_p == pytest.approx(1 / 200)
    assert s.p_value == pytest.approx(1 / 200)
    assert s.verdict == "above chance"
    lo, hi = s.ci95
    assert lo <= s.metrics["balanced_accuracy"] <= hi
    # a model that knows nothing is at chance by the same test
    y0, proba0, trials0 = _session(16, 10, seed=5, skill=0.5)
    rng = np.random.default_rng(0)
    proba0 = np.repeat(rng.random((16, 1)), 10, axis=0)  # one guess per trial
    s0 = score_windows(
        y0, np.column_stack([1 - proba0[:, 0], proba0[:, 0]]), trials0,
        n_classes=2, permutations=199, n_boot=200,
    )  # fmt: skip
    assert s0.verdict == "at chance"
    assert s0.p_value > 0.05


def test_no_permutations_no_interval():
    y, proba, trials = _session(8, 5, seed=1, skill=0.9)
    s = score_windows(y, proba, trials, n_classes=2, permutations=0)
    assert s.verdict == "not tested"
    assert s.ci95 == (None, None)
    assert s.p_value is None
    assert s.min_p is None
    assert s.to_dict()["ci95"] == [None, None]


def test_arrangements_of_three_classes():
    assert arrangements(np.array([0, 0, 1, 1, 2, 2])) == 90  # 6! / (2! 2! 2!)
    y = np.repeat([0, 0, 1, 1, 2, 2], 4)
    trials = np.repeat(np.arange(6), 4).astype(str)
    proba = np.eye(3)[np.repeat([0, 1, 0, 1, 2, 2], 4)] * 0.8 + 0.2 / 3
    s = score_windows(y, proba, trials, n_classes=3, permutations=999, n_boot=50)
    assert s.exact
    assert s.n_permutations == 89
    assert s.metrics["n_classes"] == 3
