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
    overlap and is anti-conservative. :func:`sign_flip_mc_p` draws the flips
    (seeded Monte Carlo) where 2^J is too many; :func:`sign_flip_test` picks
    one by J.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "ALTERNATIVES",
    "MC_FLIPS",
    "corrected_resampled_t",
    "sign_flip_mc_p",
    "sign_flip_p",
    "sign_flip_test",
]

#: The alternatives of the sign-flip tests: two-sided (``|mean|``) or one-sided
#: (mean greater than 0).
ALTERNATIVES = ("two-sided", "greater")
#: Random sign vectors of the Monte Carlo sign-flip test.
MC_FLIPS = 10000
_FLIP_BLOCK = 1 << 14


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


def _flip_stat(means: np.ndarray, observed: float, alternative: str) -> np.ndarray:
    """Whether each flipped mean is as extreme as the observed one.

    A tolerance keeps the identity and exact ties counted despite rounding.
    """
    if alternative == "two-sided":
        return np.abs(means) >= abs(observed) - 1e-12
    if alternative == "greater":
        return means >= observed - 1e-12
    raise ValueError(f"alternative {alternative!r}: use one of {ALTERNATIVES}")


def sign_flip_p(
    d: np.ndarray, *, max_exact: int = 20, alternative: str = "two-sided"
) -> float:
    """Exact sign-flip p of the mean of ``d`` over all 2^J flips.

    Two-sided: ``p = #{flips: |mean(s * d)| >= |mean(d)|} / 2^J``; ``greater``:
    ``#{flips: mean(s * d) >= mean(d)} / 2^J`` (the identity counted).

    Parameters
    ----------
    d : ndarray of float, shape (J,)
    max_exact : int
        Refuse J above this (2^J rows).
    alternative : {"two-sided", "greater"}

    Returns
    -------
    float
        The p-value.
    """
    d = np.asarray(d, dtype=np.float64)
    j = d.size
    if not 1 <= j <= max_exact:
        raise ValueError(f"sign_flip_p: J = {j}, need 1..{max_exact}")
    # Flip k's signs are the bits of k, made a block at a time: 2^20 flips
    # would take 160 MB at once (and a tuple each through itertools: seconds).
    bits = np.arange(j)
    hits = 0
    for lo in range(0, 2**j, _FLIP_BLOCK):
        k = np.arange(lo, min(lo + _FLIP_BLOCK, 2**j))
        signs = 1.0 - 2.0 * ((k[:, None] >> bits) & 1)
        hits += int(_flip_stat(signs @ d / j, float(d.mean()), alternative).sum())
    return hits / 2**j


def sign_flip_mc_p(
    d: np.ndarray,
    *,
    n_flips: int = MC_FLIPS,
    seed: int = 0,
    alternative: str = "two-sided",
) -> float:
    """Monte Carlo sign-flip p: ``n_flips`` random sign vectors, seeded.

    ``p = (1 + #{drawn flips as extreme as observed}) / (1 + n_flips)``, the
    identity counted once (Phipson & Smyth, Stat. Appl. Genet. Mol. Biol. 9
    (2010): a drawn p is never 0). The same ``d`` and ``seed`` give the same p.

    Parameters
    ----------
    d : ndarray of float, shape (J,), J >= 1
    n_flips : int
    seed : int
    alternative : {"two-sided", "greater"}

    Returns
    -------
    float
        The p-value.
    """
    d = np.asarray(d, dtype=np.float64)
    if d.size < 1 or n_flips < 1:
        raise ValueError(f"sign_flip_mc_p: J = {d.size}, n_flips = {n_flips}")
    rng = np.random.default_rng([seed, 0x5F11])
    hits = 0
    for start in range(0, n_flips, 2048):  # bounded memory for large J
        s = rng.choice((-1.0, 1.0), size=(min(2048, n_flips - start), d.size))
        hits += int(_flip_stat(s @ d / d.size, float(d.mean()), alternative).sum())
    return (1 + hits) / (1 + n_flips)


def sign_flip_test(
    d: np.ndarray,
    *,
    alternative: str = "two-sided",
    max_exact: int = 20,
    n_flips: int = MC_FLIPS,
    seed: int = 0,
) -> dict[str, float | int | bool]:
    """Sign-flip p of the mean of ``d``: exact up to ``max_exact``, else drawn.

    Parameters
    ----------
    d : ndarray of float, shape (J,), J >= 1
    alternative : {"two-sided", "greater"}
    max_exact : int
        Largest J tested over all 2^J flips (:func:`sign_flip_p`); above it,
        :func:`sign_flip_mc_p` with ``n_flips`` and ``seed``.

    Returns
    -------
    dict
        ``p``, ``exact`` (bool), ``n_flips`` (2^J when exact).
    """
    d = np.asarray(d, dtype=np.float64)
    if d.size <= max_exact:
        p = sign_flip_p(d, max_exact=max_exact, alternative=alternative)
        return {"p": p, "exact": True, "n_flips": 2**d.size}
    p = sign_flip_mc_p(d, n_flips=n_flips, seed=seed, alternative=alternative)
    return {"p": p, "exact": False, "n_flips": n_flips}
