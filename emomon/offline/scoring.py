"""The statistics of one task's pooled predictions: metrics, interval, null and verdict.

One function, :func:`score_task`, turns held-out labels and predicted
probabilities into the numbers a report prints, by the rules that keep a
headline honest:

- The interval resamples the units that are exchangeable under the protocol's
  null (videos for leave-one-video-out, subjects for leave-one-subject-out,
  trials for window-level splits): windows of one video share its content, so
  resampling (subject, video) pairs or windows gives intervals far too narrow.
- No interval without its null: an interval is computed only beside a
  permutation p-value. A bootstrap interval describes the spread of the
  estimate, not where chance lies; alone it reads as a finding.
- "above chance" only when ``p < alpha``; "inconclusive" when the number of
  reruns ``n`` cannot reach that, i.e. ``1 / (n + 1) >= alpha`` (Phipson & Smyth
  2010: the smallest attainable permutation p-value is ``1 / (n + 1)``); "at
  chance" otherwise; "not tested" without a test.

The offline report (:func:`emomon.offline.evaluate.score_protocol`) and the
scoring of a recorded live session use this same code; the live session's null
is :func:`fixed_model_null` (the model is fixed, so labels are permuted against
its predictions instead of retraining).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emomon.offline.metrics import (
    _from_confusion,
    cluster_bootstrap_ci,
    cluster_ids,
    permutation_p_value,
    permute_by_donor,
    permute_videos,
    predict,
    summarize,
    trial_arrays,
)
from emomon.offline.runreport import ALPHA, Metrics, Permutation

__all__ = [
    "UNITS",
    "Scored",
    "fixed_model_null",
    "min_p",
    "permute_by_unit",
    "permute_subjects",
    "score_task",
    "verdict",
    "window_units",
]

#: Exchangeable units a protocol may declare (``Holdout.exchangeable``).
UNITS: tuple[str, ...] = ("video", "subject", "trial")


def verdict(
    p_value: float | None,
    n: int | None = None,
    *,
    alpha: float = ALPHA,
    n_fixed: int = 0,
) -> str:
    """Chance verdict of a permutation test.

    Parameters
    ----------
    p_value : float or None
        Permutation p-value; None or NaN when no test was run.
    n : int, optional
        Number of permutation reruns. With it, a test that cannot reach
        ``alpha`` is ``"inconclusive"``: the smallest p it can give is
        ``(1 + n_fixed) / (n + 1)``.
    alpha : float
        Significance level.
    n_fixed : int
        Reruns that count as reaching the observed value whatever the EEG
        holds: those whose permuted labels equal the observed ones (the unit
        the null exchanges does not vary them) and those with an undefined
        score.

    Returns
    -------
    str
        ``"not tested"``, ``"inconclusive"``, ``"above chance"`` (``p < alpha``)
        or ``"at chance"``.
    """
    if p_value is None or not math.isfinite(p_value):
        return "not tested"
    if n is not None and (1.0 + n_fixed) / (n + 1) >= alpha:
        return "inconclusive"
    return "above chance" if p_value < alpha else "at chance"


def min_p(permutation: Permutation) -> float:
    """Return the smallest p-value a test's reruns allow (see :func:`verdict`)."""
    fixed = permutation.n_same + sum(v is None for v in permutation.null)
    return (1.0 + fixed) / (permutation.n + 1)


def window_units(
    unit: str,
    subjects: np.ndarray | Sequence[str],
    videos: np.ndarray | Sequence[str],
) -> np.ndarray:
    """Return the exchangeable unit of each window.

    Parameters
    ----------
    unit : {"video", "subject", "trial"}
    subjects, videos : array of str, shape (n_windows,)

    Returns
    -------
    ndarray of str, shape (n_windows,)
        The video id, the subject id, or ``"subject|video"``.
    """
    if unit == "video":
        return np.asarray(videos).astype(str)
    if unit == "subject":
        return np.asarray(subjects).astype(str)
    if unit == "trial":
        return cluster_ids(subjects, videos)
    raise ValueError(f"unknown exchangeable unit {unit!r}; choose from {UNITS}")


def permute_subjects(
    trial_subjects: np.ndarray | Sequence[str],
    trial_videos: np.ndarray | Sequence[str],
    *,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Draw a trial permutation that relabels whole subjects: (s, v) takes (pi(s), v).

    The null of leave-one-subject-out: a new person's EEG says nothing about
    *their* ratings. Each subject's trials take another subject's labels of the
    same videos, so each video keeps the labels people gave it: a model that only
    recognises the video scores as well on the null as on the data, which is
    what a content-dependent protocol deserves. Where every subject gives a
    video the same label the permutation changes nothing, and the test cannot
    reject (:func:`verdict` then says "inconclusive"). A subject that lacks one
    of its donor's videos gets a shuffle of all its own trials instead.

    Parameters
    ----------
    trial_subjects, trial_videos : array of str, shape (n_trials,)
    rng : numpy Generator or int seed, optional

    Returns
    -------
    ndarray of int, shape (n_trials,)
        ``perm`` such that ``labels[perm]`` are the permuted trial labels.
    """
    subj, vid, gen = trial_arrays(trial_subjects, trial_videos, rng)
    names = np.unique(subj)
    pi = dict(zip(names, gen.permutation(names), strict=True))
    return permute_by_donor(subj, vid, lambda s, v: (pi[s], v), rng=gen)


def permute_by_unit(
    unit: str,
    trial_subjects: np.ndarray | Sequence[str],
    trial_videos: np.ndarray | Sequence[str],
    *,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Draw one permutation of trial labels by the protocol's exchangeable unit.

    ``video``: :func:`~emomon.offline.metrics.permute_videos` (one permutation of
    the videos for every subject); ``subject``: :func:`permute_subjects`;
    ``trial``: trials shuffled within each subject. Every variant keeps each
    subject's own set of labels except ``subject``, which swaps whole subjects,
    so a subject's rating bias travels with its labels into the null.

    Returns
    -------
    ndarray of int, shape (n_trials,)
        ``perm`` such that ``labels[perm]`` are the permuted trial labels.
    """
    if unit == "video":
        return permute_videos(trial_subjects, trial_videos, rng=rng)
    if unit == "subject":
        return permute_subjects(trial_subjects, trial_videos, rng=rng)
    if unit == "trial":
        gen = np.random.default_rng(rng)  # a Generator passes through
        subj = np.asarray(trial_subjects).astype(str)
        perm = np.arange(subj.size)
        for s in np.unique(subj):
            rows = np.flatnonzero(subj == s)
            perm[rows] = gen.permutation(rows)
        return perm
    raise ValueError(f"unknown exchangeable unit {unit!r}; choose from {UNITS}")


def fixed_model_null(
    y: np.ndarray,
    proba: np.ndarray,
    trials: np.ndarray | Sequence[str],
    *,
    n_permutations: int,
    n_classes: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Balanced accuracy of a fixed model's predictions against permuted labels.

    The null of a model that is not retrained (a live session scored after the
    fact): the trials' labels are shuffled among the trials (every window of a
    trial keeps one label), the predictions stay. Each trial must carry a single
    label.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        True class of each window.
    proba : ndarray, shape (n,) or (n, k)
        The model's probabilities.
    trials : array, shape (n,)
        Trial (the exchangeable unit) of each window.
    n_permutations : int
    n_classes : int, optional
    seed : int

    Returns
    -------
    ndarray of float64, shape (n_permutations,)
    """
    a = np.asarray(y, dtype=np.int64).reshape(-1)
    pred = predict(np.asarray(proba, dtype=np.float64))
    _, first, code = np.unique(
        np.asarray(trials), return_index=True, return_inverse=True
    )
    code = code.reshape(-1)
    trial_label = a[first]
    if np.any(trial_label[code] != a):
        raise ValueError("a trial holds windows of different labels")
    k = n_classes or int(max(a.max(initial=0), pred.max(initial=0)) + 1)
    k = max(k, 2)
    n_t = first.size
    # Per trial: how many of its windows were predicted as each class.
    pred_counts = np.bincount(code * k + pred, minlength=n_t * k).reshape(n_t, k)
    rng = np.random.default_rng(seed)
    out = np.empty(int(n_permutations))
    for j in range(out.size):
        lab = trial_label[rng.permutation(n_t)]
        conf = np.zeros((k, k))
        np.add.at(conf, lab, pred_counts)
        out[j] = float(_from_confusion(conf, "balanced_accuracy"))
    return out


@dataclass(frozen=True)
class Scored:
    """The statistics of one task.

    Attributes
    ----------
    metrics : Metrics
        Pooled metrics of the predictions.
    ci95 : (float or None, float or None)
        95% bootstrap interval of the balanced accuracy, resampling ``unit``;
        ``(None, None)`` without a permutation test.
    permutation : Permutation or None
        The test; None when none was run.
    unit : str
        The exchangeable unit the interval resamples and the null permutes.
    verdict : str
        See :func:`verdict`.
    """

    metrics: Metrics
    ci95: tuple[float | None, float | None]
    permutation: Permutation | None
    unit: str
    verdict: str


def score_task(
    y: np.ndarray,
    proba: np.ndarray,
    *,
    units: np.ndarray | Sequence[str],
    unit: str,
    n_classes: int,
    null: Sequence[float] | np.ndarray | None,
    n_same: int = 0,
    n_boot: int = 1000,
    seed: int = 0,
) -> Scored:
    """Metrics, interval, permutation p-value and verdict of one task.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        True classes of the held-out windows.
    proba : ndarray, shape (n,) or (n, k)
        Their predicted probabilities.
    units : array of str, shape (n,)
        Exchangeable unit of each window (:func:`window_units`).
    unit : str
        Its name, recorded with the interval.
    n_classes : int
    null : sequence of float or None
        Balanced accuracy of each permutation rerun; None (or empty) when no
        test was run: then no interval either.
    n_same : int
        Reruns among ``null`` whose permuted labels equal the observed ones.
    n_boot : int
        Bootstrap resamples of the units (0: no interval).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    Scored
    """
    metrics = Metrics.from_dict(summarize(y, proba, n_classes=n_classes))
    nul = [] if null is None else [float(v) for v in null]
    if not nul:
        return Scored(metrics, (None, None), None, unit, verdict(None))
    observed = metrics.balanced_accuracy
    p = permutation_p_value(math.nan if observed is None else observed, nul)
    perm = Permutation(len(nul), _finite(p), tuple(_finite(v) for v in nul), n_same)
    lo, hi = (
        cluster_bootstrap_ci(y, proba, np.asarray(units), n_boot=n_boot, seed=seed)
        if n_boot and perm.p_value is not None
        else (math.nan, math.nan)
    )
    fixed = n_same + sum(v is None for v in perm.null)
    return Scored(
        metrics,
        (_finite(lo), _finite(hi)),
        perm,
        unit,
        verdict(perm.p_value, perm.n, n_fixed=fixed),
    )


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
