"""The corrected resampled t-test and the sign-flip test, against hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emomon.offline.cvcompare import (
    corrected_resampled_t,
    sign_flip_mc_p,
    sign_flip_p,
    sign_flip_test,
)


def test_corrected_t_matches_the_formula_and_student_t_in_closed_form():
    got = corrected_resampled_t(np.array([1.0, 2.0, 3.0]), test_train_ratio=0.25)
    t = 2.0 / math.sqrt(1 / 3 + 0.25)  # mean 2, var 1
    assert got["t"] == pytest.approx(t)
    assert got["df"] == 2
    # Student's t with 2 df: CDF = 1/2 + t / (2 sqrt(2 + t^2)).
    assert got["p"] == pytest.approx(2 * (0.5 - t / (2 * math.sqrt(2 + t * t))))
    plain = corrected_resampled_t(np.array([1.0, 2.0, 3.0]), test_train_ratio=0.0)
    assert plain["p"] < got["p"]  # the correction widens the variance
    assert corrected_resampled_t(np.zeros(4), test_train_ratio=0.2)["p"] == 1.0
    with pytest.raises(ValueError, match="at least 2"):
        corrected_resampled_t(np.array([1.0]), test_train_ratio=0.2)


def test_sign_flip_counts_the_flips_as_large_as_observed():
    assert sign_flip_p(np.array([1.0, 1.0, 1.0])) == pytest.approx(2 / 8)
    assert sign_flip_p(np.array([1.0, -1.0])) == 1.0
    assert sign_flip_p(np.array([3.0, 1.0, 1.0, 1.0])) == pytest.approx(2 / 16)
    with pytest.raises(ValueError, match="J = 21"):
        sign_flip_p(np.ones(21))


def test_one_sided_sign_flip_counts_only_the_flips_as_large_and_positive():
    assert sign_flip_p(np.array([1.0, 1.0, 1.0]), alternative="greater") == 1 / 8
    assert sign_flip_p(np.array([3.0, 1.0, 1.0, 1.0]), alternative="greater") == (
        pytest.approx(1 / 16)
    )
    # Mean 0: the flips with sums 0, 0 and 2 of (0, 2, -2, 0) are >= 0.
    assert sign_flip_p(np.array([1.0, -1.0]), alternative="greater") == 0.75
    with pytest.raises(ValueError, match="alternative 'less'"):
        sign_flip_p(np.ones(3), alternative="less")


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_monte_carlo_sign_flip_is_seeded_and_agrees_with_the_exact_one(alternative):
    d = np.random.default_rng(3).normal(0.3, 1.0, size=12)
    exact = sign_flip_p(d, alternative=alternative)
    drawn = sign_flip_mc_p(d, seed=0, alternative=alternative)
    assert 0.02 < exact < 0.98  # a p the draws can miss in either direction
    assert drawn == sign_flip_mc_p(d, seed=0, alternative=alternative)
    assert drawn != sign_flip_mc_p(d, seed=1, alternative=alternative)
    assert abs(drawn - exact) < 0.02
    # The identity counts once: a drawn p is never 0.
    assert sign_flip_mc_p(np.full(30, 5.0), n_flips=100) == 1 / 101


def test_sign_flip_test_is_exact_up_to_20_folds_then_drawn():
    d = np.array([0.5, 1.0, -0.2])
    got = sign_flip_test(d, alternative="greater")
    assert got == {"p": sign_flip_p(d, alternative="greater"), "exact": True,
                   "n_flips": 8}  # fmt: skip
    many = np.linspace(-0.5, 1.0, 21)
    got = sign_flip_test(many, seed=2)
    assert got == {"p": sign_flip_mc_p(many, seed=2), "exact": False,
                   "n_flips": 10000}  # fmt: skip
