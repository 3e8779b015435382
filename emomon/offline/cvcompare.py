"""Comparing two procedures scored by the same cross-validation folds.

Paired per-fold differences ``d_j`` (procedure A minus B on the same held-out
fold, j = 1..J over folds and repetitions) are not independent: the training
sets overlap, so the plain paired t-test's variance is too small and its p too
small. Two tests that account for it, or state that they do not:

:func:`corrected_resampled_t`
    Nadeau & Bengio, "Inference for the generalization error", Machine
    Learning 52 (2003), the corrected resampled t-test; for r-times repeated
    k-fold cross-validation as in Bouckaert & Frank, PAKDD 2004 (eq. 2):
    ``t = mean(d) / sqrt((1/J + n_test/n_train) * var(d))``, ``var`` with
    ddof 1, Student's t with J - 1 degrees of freedom; ``n_test/n_train`` is
    1/(k-1) for k equal folds (leave-one-video-out over k videos).
:func:`sign_flip_p`
    The exact sign-flip (paired permutation) test of the mean difference, for
    units that are exchangeable under the null (held-out videos of independent
    data sets); applied to folds of one cross-validation it ignores their
    overlap and is anti-conservative.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["corrected_resampled_t", "sign_flip_p"]


def corrected_resampled_t(
    d: np.ndarray, *, test_train_ratio: float
) -> dict[str, float]:
    """Nadeau-Bengio corrected resampled t-test of paired fold differences.

    Parameters
    ----------
    d : ndarray of float, shape (J,)
        Per-fold differences (A - B) of a score, J >= 2.
    test_train_ratio : float
        Held-out over training windows of a fold (1/(k-1) for k-fold).

    Returns
    -------
    dict
        ``t``, two-sided ``p``, ``df`` (J - 1), ``mean``. Differences all equal:
        ``t`` NaN and ``p`` 1 when they are 0, else 0.
    """
    from scipy import stats

    d = np.asarray(d, dtype=np.float64)
    j = d.size
    if j < 2:
        raise ValueError(f"need at least 2 paired differences, got {j}")
    mean = float(d.mean())
    var = float(np.var(d, ddof=1))
    if var == 0:
        return {"t": math.nan, "p": 1.0 if mean == 0 else 0.0, "df": j - 1,
                "mean": mean}  # fmt: skip
    t = mean / math.sqrt((1 / j + test_train_ratio) * var)
    return {"t": t, "p": float(2 * stats.t.sf(abs(t), j - 1)), "df": j - 1,
            "mean": mean}  # fmt: skip


def sign_flip_p(d: np.ndarray, *, max_exact: int = 20) -> float:
    """Exact two-sided sign-flip p of the mean of ``d`` over all 2^J flips.

    ``p = #{flips: |mean(s * d)| >= |mean(d)|} / 2^J`` (the identity counted).

    Parameters
    ----------
    d : ndarray of float, shape (J,)
    max_exact : int
        Refuse J above this (2^J rows).
    """
    d = np.asarray(d, dtype=np.float64)
    j = d.size
    if not 1 <= j <= max_exact:
        raise ValueError(f"sign_flip_p: J = {j}, need 1..{max_exact}")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=j)))
    null = np.abs(signs @ d) / j
    return float(np.mean(null >= abs(d.mean()) - 1e-12))
