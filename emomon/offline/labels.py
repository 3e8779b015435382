"""Trial-level targets: high/low labels from ratings, class indices from class names.

Labels are made per *trial* (one (subject, video) presentation); windows inherit the
label of their trial, so a label is never a property of a single window.

Binary methods (``make_labels``):

``fixed``
    ``high = rating > threshold``. The default threshold is the midpoint of the
    rating scale: 5 on DEAP's 1-9 scale, 3 on DREAMER's 1-5 scale. Koelstra et al.
    (2012, DEAP, IEEE Trans. Affective Computing 3(1):18-31, sec. 6) thresholded the
    9-point ratings in the middle of the scale, i.e. at 5; they do not say on which
    side a rating of exactly 5 falls. emomon uses the strict ``>`` (a rating equal to
    the threshold is *low*), the most common choice in DEAP code bases. Pass e.g.
    ``threshold=np.nextafter(5.0, -np.inf)`` for ``>=``.
``median``
    Per-subject median split: ``high = rating > median(ratings of that subject)``.
    Ratings equal to the median are low, so a subject with many ties at the median
    can be unbalanced; use ``rank`` for an exact half/half split.
``rank``
    Per-subject rank split: the ``n // 2`` highest-rated trials of each subject are
    high, the others low (with an odd count the middle trial is low). Ties are broken
    by a seeded random key, not by trial order: DEAP stores trials in video order,
    so an order-based tie-break would tie the label to the video id.
``random``
    The ``fixed`` labels shuffled *within each subject* with ``seed``: every
    subject keeps its own number of high trials, the link to the trial (and so to
    the video and its EEG) is destroyed. Used by the label-reliability experiment
    (fixed vs rank vs random) as a null target.

    Why within subject: a shuffle across all trials hands each subject a random
    share of highs (with 8 videos often 6 of 8 or 2 of 8). Leave-one-video-out
    keeps every subject in training and EEG features identify the subject, so a
    model learns "this subject: mostly high" and scores above 0.5 with no
    emotion information (0.61 on synthetic data without an emotion effect, in
    the middle of its own permutation null; ``benchmarks/exp_shuffled_control.py``
    and README "Why the shuffled-label control can score 0.70"). Shuffled within
    subject, the control has exactly the subject balance of ``fixed``, which is
    what the permutation test's null keeps too, so ``fixed`` minus ``random``
    measures what the link to the trial adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emomon.errors import ConfigError, DatasetError

__all__ = [
    "LABEL_METHODS",
    "SEED_CLASSES",
    "class_labels",
    "default_threshold",
    "make_labels",
]

#: Valid values of ``make_labels(method=...)``.
LABEL_METHODS: tuple[str, ...] = ("fixed", "median", "rank", "random")

#: SEED's classes in index order.
SEED_CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")


def default_threshold(scale: tuple[float, float]) -> float:
    """Midpoint of a rating scale (5 on 1-9, 3 on 1-5).

    Parameters
    ----------
    scale : tuple of float
        ``(low, high)`` ends of the rating scale.

    Returns
    -------
    float
        ``(low + high) / 2``.
    """
    lo, hi = _check_scale(scale)
    return (lo + hi) / 2.0


def make_labels(
    ratings: np.ndarray,
    *,
    subjects: np.ndarray | Sequence[str] | None = None,
    method: str = "fixed",
    threshold: float | None = None,
    scale: tuple[float, float] = (1.0, 9.0),
    seed: int = 0,
) -> np.ndarray:
    """Binary high/low labels (1 = high) from trial ratings.

    Parameters
    ----------
    ratings : ndarray, shape (n_trials,)
        One rating per trial (e.g. valence) on ``scale``.
    subjects : ndarray of str, shape (n_trials,), optional
        Subject of each trial. Required by the per-subject methods ``median``,
        ``rank`` and ``random``; ignored by ``fixed``.
    method : {"fixed", "median", "rank", "random"}
        See the module docstring.
    threshold : float, optional
        Threshold of ``fixed`` and ``random``; default: midpoint of ``scale``.
    scale : tuple of float
        ``(low, high)`` of the rating scale; ratings outside it are an error.
    seed : int
        Seed of the ``rank`` tie-break and of the ``random`` shuffle (separate
        streams).

    Returns
    -------
    ndarray of int64, shape (n_trials,)
        0 = low, 1 = high.

    Raises
    ------
    ConfigError
        Unknown ``method``, invalid ``scale``, a ``threshold`` outside ``scale``, or
        ``subjects`` missing/mismatched.
    DatasetError
        Ratings not finite or outside ``scale``.
    """
    if method not in LABEL_METHODS:
        raise ConfigError(
            f"unknown label method {method!r} (argument 'method'); "
            f"choose one of {', '.join(LABEL_METHODS)}"
        )
    lo, hi = _check_scale(scale)
    r = np.asarray(ratings, dtype=np.float64)
    if r.ndim != 1:
        raise DatasetError(f"ratings must be 1-D (n_trials,), got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise DatasetError("ratings contain NaN or inf; fix or drop those trials")
    if r.size and (r.min() < lo or r.max() > hi):
        raise DatasetError(
            f"ratings span {r.min():g}..{r.max():g}, outside the scale {lo:g}-{hi:g}; "
            "pass the dataset's scale (e.g. scale=(1, 5) for DREAMER)"
        )

    if method in ("fixed", "random"):
        thr = default_threshold((lo, hi)) if threshold is None else float(threshold)
        if not lo <= thr < hi:  # one class only: nothing to learn or score
            side = "high" if thr < lo else "low"
            raise ConfigError(
                f"threshold {thr:g} is outside the rating scale {lo:g}-{hi:g} (every "
                f"trial would be {side}); choose {{threshold}} within [{lo:g}, {hi:g})",
                params=("threshold",),
            )
        labels = (r > thr).astype(np.int64)
        if method == "fixed":
            return labels

    if subjects is None:
        raise ConfigError(
            f"label method {method!r} is per subject: pass subjects= "
            "(one subject id per trial)"
        )
    subj = np.asarray(subjects)
    if subj.shape != r.shape:
        raise ConfigError(
            f"subjects has shape {subj.shape} but ratings has {r.shape}; "
            "pass one subject id per trial"
        )
    _, inv = np.unique(subj, return_inverse=True)
    inv = inv.reshape(-1)
    if method == "median":
        return _median_split(r, inv)
    if method == "random":
        return _shuffle_within(labels, inv, seed=seed)
    return _rank_split(r, inv, seed=seed)


#: Spawn key of the ``random`` shuffle's stream: with the same ``seed`` it draws
#: other numbers than the ``rank`` tie-break (``default_rng(seed)``).
_SHUFFLE_KEY = (1,)


def _shuffle_within(labels: np.ndarray, inv: np.ndarray, *, seed: int) -> np.ndarray:
    """``labels`` permuted within each group (groups given by ``inv``), seeded."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=_SHUFFLE_KEY))
    key = rng.random(labels.size)
    # The group's slots in trial order take the group's labels in random order.
    slots = np.argsort(inv, kind="stable")
    donors = np.lexsort((key, inv))
    out = np.empty_like(labels)
    out[slots] = labels[donors]
    return out


def _median_split(r: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """``r > median of its group`` for every element (groups given by ``inv``)."""
    labels = np.zeros(r.size, dtype=np.int64)
    for g in range(int(inv.max()) + 1 if inv.size else 0):
        idx = np.flatnonzero(inv == g)
        labels[idx] = r[idx] > np.median(r[idx])
    return labels


def _rank_split(r: np.ndarray, inv: np.ndarray, *, seed: int) -> np.ndarray:
    """Top ``n_g // 2`` of each group high; ties broken by a seeded random key."""
    n = r.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    tie = np.random.default_rng(seed).random(n)
    # Sorted by group, then rating, then the random tie-break key (last key primary).
    order = np.lexsort((tie, r, inv))
    counts = np.bincount(inv)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # Position of each sorted element within its group.
    pos = np.arange(n) - np.repeat(starts, counts)
    n_group = np.repeat(counts, counts)
    labels = np.empty(n, dtype=np.int64)
    # The highest n_g // 2 positions (n_g - n_g // 2 .. n_g - 1) are high.
    labels[order] = pos >= n_group - n_group // 2
    return labels


def class_labels(
    labels: Sequence[str] | np.ndarray,
    *,
    classes: Sequence[str] = SEED_CLASSES,
) -> np.ndarray:
    """Class indices from class names (SEED: negative=0, neutral=1, positive=2).

    Parameters
    ----------
    labels : sequence of str, length n
        Class name of each trial (or window).
    classes : sequence of str
        Class names in index order.

    Returns
    -------
    ndarray of int64, shape (n,)
        ``classes.index(label)`` for every label.

    Raises
    ------
    DatasetError
        A label is not one of ``classes``.
    ConfigError
        ``classes`` is empty or has duplicates.
    """
    cls = [str(c) for c in classes]
    if not cls or len(set(cls)) != len(cls):
        raise ConfigError(f"classes must be non-empty and unique, got {cls}")
    lookup = {c: i for i, c in enumerate(cls)}
    arr = np.asarray(labels, dtype=object).reshape(-1)
    out = np.empty(arr.size, dtype=np.int64)
    for i, lab in enumerate(arr):
        try:
            out[i] = lookup[str(lab)]
        except KeyError:
            raise DatasetError(
                f"unknown class label {lab!r}; expected one of {', '.join(cls)} "
                "(pass classes= to use other names)"
            ) from None
    return out


def _check_scale(scale: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in scale)
    except (TypeError, ValueError):
        raise ConfigError(
            f"scale must be (low, high), got {scale!r} (argument 'scale')"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(
            f"scale must be (low, high) with low < high, got {scale!r} "
            "(argument 'scale')"
        )
    return lo, hi
