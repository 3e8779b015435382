"""The corrected resampled t-test and the sign-flip test, against hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emomon.offline.cvcompare import corrected_resampled_t, sign_flip_p


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
