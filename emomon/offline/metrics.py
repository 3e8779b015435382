"""Classification metrics, cluster-bootstrap confidence intervals and null baselines.

Conventions
-----------
- ``y`` are integer class indices ``0..k-1`` (binary: 0 = low, 1 = high).
- ``proba`` is either shape (n,) = P(class 1) for binary tasks, or (n, k) class
  probabilities. Predictions are ``proba > 0.5`` (binary; exactly 0.5 is class 0)
  or ``argmax`` (first class on ties), which agree for ``k = 2``.
- Balanced accuracy is the mean recall over the classes present in ``y`` (classes
  absent from ``y`` are left out, as in scikit-learn). F1 of a binary task is the F1
  of class 1; ``f1_macro`` averages the per-class F1 over the classes present in
  ``y`` or in the predictions. Undefined values are NaN, never a silent 0.
- ROC AUC is the Mann-Whitney U statistic divided by ``n_pos * n_neg`` with mid-ranks
  for ties (a tie counts 1/2); NaN when ``y`` has one class. Multiclass AUC is the
  unweighted one-vs-rest mean over the classes whose AUC is defined.

Null baselines
--------------
``majority_baseline`` predicts the majority class of the fold's *training* labels for
every test window. Within one fold a constant predictor scores exactly 1/k balanced
accuracy if the test fold holds every class. Pooled over leave-one-video-out folds
with video-level labels it is far worse: removing a high video from a balanced set
makes "low" the training majority, so that video is predicted low, and vice versa,
so pooled accuracy *and* balanced accuracy can fall to 0. Report both plain accuracy
and balanced accuracy of this baseline next to the model's numbers (pass
``proba = predictions.astype(float)`` to ``summarize``).

``permute_trial_labels`` + ``permutation_p_value`` give the permutation test: labels
are shuffled across trials (all windows of a trial keep one label), the whole
protocol is rerun per permutation, and ``p = (1 + #(null >= observed)) / (1 + n)``
(Phipson & Smyth 2010, never 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

__all__ = [
    "BOOTSTRAP_METRICS",
    "accuracy",
    "balanced_accuracy",
    "cluster_bootstrap",
    "cluster_bootstrap_ci",
    "cluster_ids",
    "confusion_matrix",
    "f1",
    "f1_macro",
    "group_table",
    "majority_baseline",
    "majority_class",
    "permutation_p_value",
    "permute_by_donor",
    "permute_trial_labels",
    "permute_videos",
    "predict",
    "roc_auc",
    "summarize",
]

#: Metric names accepted by ``cluster_bootstrap_ci(metric=...)``.
BOOTSTRAP_METRICS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "f1_macro",
    "auc",
)


# ----------------------------------------------------------------- input handling


def _labels(y: Any, name: str = "y") -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.mod(arr, 1) == 0):
            raise ValueError(f"{name} must hold integer class indices")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must hold class indices >= 0")
    return arr


def _pair(y: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _labels(y), _labels(y_pred, "y_pred")
    if a.shape != b.shape:
        raise ValueError(f"y has shape {a.shape} but y_pred has {b.shape}")
    return a, b


def _n_classes(*arrays: np.ndarray, n_classes: int | None = None) -> int:
    top = max((int(a.max()) + 1 for a in arrays if a.size), default=0)
    k = max(2, top) if n_classes is None else int(n_classes)
    if k < top:
        raise ValueError(f"n_classes={k} but labels go up to {top - 1}")
    return k


def _proba(proba: Any, n: int) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[0] != n:
        raise ValueError(f"proba must have shape ({n},) or ({n}, k), got {p.shape}")
    if p.ndim == 2 and p.shape[1] < 2:
        raise ValueError(f"proba (n, k) needs k >= 2 columns, got {p.shape}")
    return p


def predict(proba: np.ndarray) -> np.ndarray:
    """Class predictions from probabilities.

    Parameters
    ----------
    proba : ndarray, shape (n,) or (n, k)
        P(class 1), or class probabilities.

    Returns
    -------
    ndarray of int64, shape (n,)
        ``proba > 0.5`` for shape (n,), ``argmax`` for shape (n, k).
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        return (p > 0.5).astype(np.int64)
    return np.argmax(p, axis=1).astype(np.int64)


# ----------------------------------------------------------- confusion-based metrics


def confusion_matrix(
    y: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None
) -> np.ndarray:
    """Confusion counts, rows = true class, columns = predicted class.

    Parameters
    ----------
    y, y_pred : ndarray of int, shape (n,)
        True and predicted class indices.
    n_classes : int, optional
        Size of the matrix; default ``max(2, max label + 1)``.

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
    """
    a, b = _pair(y, y_pred)
    k = _n_classes(a, b, n_classes=n_classes)
    return np.bincount(a * k + b, minlength=k * k).reshape(k, k).astype(np.int64)


def _from_confusion(conf: np.ndarray, metric: str) -> np.ndarray:
    """Metric of a stack of confusion matrices, shape (..., k, k) -> (...)."""
    c = np.asarray(conf, dtype=np.float64)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    support = c.sum(axis=-1)  # true counts per class
    predicted = c.sum(axis=-2)
    total = support.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "accuracy":
            return np.where(total > 0, tp.sum(axis=-1) / total, np.nan)
        if metric == "balanced_accuracy":
            present = support > 0
            recall = np.where(present, tp / support, 0.0)
            n_present = present.sum(axis=-1)
            return np.where(n_present > 0, recall.sum(axis=-1) / n_present, np.nan)
        denom = support + predicted  # 2tp + fp + fn
        f1c = np.where(denom > 0, 2.0 * tp / denom, np.nan)
        if metric == "f1":
            k = c.shape[-1]
            if k == 2:
                return f1c[..., 1]
            metric = "f1_macro"
        if metric == "f1_macro":
            defined = denom > 0
            n_def = defined.sum(axis=-1)
            return np.where(
                n_def > 0, np.where(defined, f1c, 0.0).sum(axis=-1) / n_def, np.nan
            )
    raise ValueError(f"unknown metric {metric!r}")


def accuracy(y: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of correct predictions (NaN for empty input).

    Parameters
    ----------
    y, y_pred : ndarray of int, shape (n,)

    Returns
    -------
    float
    """
    a, b = _pair(y, y_pred)
    return float(np.mean(a == b)) if a.size else float("nan")


def balanced_accuracy(
    y: np.ndarray, y_pred: np.ndarray, *, n_classes: int | None = None
) -> float:
    """Mean per-class recall over the classes present in ``y``.

    Parameters
    ----------
    y, y_pred : ndarray of int, shape (n,)
    n_classes : int, optional

    Returns
    -------
    float
        NaN for empty input.
    """
    return float(
        _from_confusion(confusion_matrix(y, y_pred, n_classes), "balanced_accuracy")
    )


def f1(
    y: np.ndarray,
    y_pred: np.ndarray,
    *,
    average: str = "binary",
    n_classes: int | None = None,
) -> float:
    """F1 score.

    Parameters
    ----------
    y, y_pred : ndarray of int, shape (n,)
    average : {"binary", "macro"}
        ``binary``: F1 of class 1 (multiclass input falls back to ``macro``);
        ``macro``: unweighted mean of the per-class F1 over the classes present in
        ``y`` or ``y_pred``.
    n_classes : int, optional

    Returns
    -------
    float
        NaN when undefined (binary: no true and no predicted class 1).
    """
    if average not in ("binary", "macro"):
        raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")
    metric = "f1" if average == "binary" else "f1_macro"
    return float(_from_confusion(confusion_matrix(y, y_pred, n_classes), metric))


def f1_macro(
    y: np.ndarray, y_pred: np.ndarray, *, n_classes: int | None = None
) -> float:
    """Macro-averaged F1 (see ``f1(average="macro")``)."""
    return f1(y, y_pred, average="macro", n_classes=n_classes)


# ----------------------------------------------------------------------------- AUC


def _binary_auc(pos: np.ndarray, score: np.ndarray) -> float:
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)  # mid-ranks for ties
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC via the Mann-Whitney U statistic, ties counted 1/2.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        Class indices.
    score : ndarray, shape (n,) or (n, k)
        Score of class 1 (binary), or per-class scores: one-vs-rest AUC of each
        class, averaged (unweighted) over the classes where it is defined. With
        k = 2 columns the binary AUC of column 1 is returned.

    Returns
    -------
    float
        NaN when ``y`` holds one class only.
    """
    a = _labels(y)
    s = _proba(score, a.size)
    if s.ndim == 1:
        return _binary_auc(a == 1, s)
    if s.shape[1] == 2:
        return _binary_auc(a == 1, s[:, 1])
    if a.size and a.max() >= s.shape[1]:
        raise ValueError(f"y has class {a.max()} but score has {s.shape[1]} columns")
    vals = np.array([_binary_auc(a == c, s[:, c]) for c in range(s.shape[1])])
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else float("nan")


# ----------------------------------------------------------------------- summaries


def summarize(
    y: np.ndarray, proba: np.ndarray, *, n_classes: int | None = None
) -> dict[str, Any]:
    """All headline metrics of pooled held-out predictions.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        True classes.
    proba : ndarray, shape (n,) or (n, k)
        P(class 1) or class probabilities.
    n_classes : int, optional
        Default: ``k`` of a 2-D ``proba``, else ``max(2, max label + 1)``.

    Returns
    -------
    dict
        ``n``, ``n_classes``, ``accuracy``, ``balanced_accuracy``, ``auc``, ``f1``
        (class 1 for binary, macro otherwise), ``f1_macro`` (floats, NaN where
        undefined) and ``confusion`` (list of lists of int, rows = true class).
    """
    a = _labels(y)
    p = _proba(proba, a.size)
    if n_classes is None and p.ndim == 2:
        n_classes = p.shape[1]
    pred = predict(p)
    conf = confusion_matrix(a, pred, n_classes)
    return {
        "n": int(a.size),
        "n_classes": int(conf.shape[0]),
        "accuracy": float(_from_confusion(conf, "accuracy")),
        "balanced_accuracy": float(_from_confusion(conf, "balanced_accuracy")),
        "auc": roc_auc(a, p),
        "f1": float(_from_confusion(conf, "f1")),
        "f1_macro": float(_from_confusion(conf, "f1_macro")),
        "confusion": conf.tolist(),
    }


def group_table(
    y: np.ndarray,
    proba: np.ndarray,
    groups: np.ndarray | Sequence,
) -> list[dict[str, Any]]:
    """Per-group rows (per video, per subject) for the report CSVs.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        True classes of the held-out windows.
    proba : ndarray, shape (n,) or (n, k)
        Their predicted probabilities.
    groups : array, shape (n,)
        Group of each window (video id, subject id, ...).

    Returns
    -------
    list of dict
        One row per group in sorted group order with keys ``group`` (str), ``n``,
        ``accuracy``, ``balanced_accuracy`` and ``auc`` (NaN when the group holds
        a single true class: not defined there), ``true_majority``,
        ``pred_majority`` (majority classes, ties -> smaller index), and
        ``mean_p_high`` (binary) or ``mean_p_<c>`` for each class ``c``
        (multiclass).
    """
    a = _labels(y)
    p = _proba(proba, a.size)
    g = np.asarray(groups)
    if g.shape != a.shape:
        raise ValueError(f"groups has shape {g.shape} but y has {a.shape}")
    pred = predict(p)
    k = p.shape[1] if p.ndim == 2 else _n_classes(a, pred)
    names, code = np.unique(g, return_inverse=True)
    code = code.reshape(-1)
    n_g = names.size
    counts = np.bincount(code, minlength=n_g)
    correct = np.bincount(code, weights=(a == pred), minlength=n_g)
    conf = np.bincount(code * k * k + a * k + pred, minlength=n_g * k * k).reshape(
        n_g, k, k
    )
    true_counts = conf.sum(axis=2)
    pred_counts = conf.sum(axis=1)
    n_true_classes = (true_counts > 0).sum(axis=1)
    bal = _from_confusion(conf, "balanced_accuracy")
    if p.ndim == 1:
        mean_p = {"mean_p_high": np.bincount(code, weights=p, minlength=n_g) / counts}
    else:
        mean_p = {
            f"mean_p_{c}": np.bincount(code, weights=p[:, c], minlength=n_g) / counts
            for c in range(k)
        }
    rows = []
    for i, name in enumerate(names):
        one_class = n_true_classes[i] < 2
        idx = np.flatnonzero(code == i)
        row: dict[str, Any] = {
            "group": str(name),
            "n": int(counts[i]),
            "accuracy": float(correct[i] / counts[i]),
            "balanced_accuracy": float("nan") if one_class else float(bal[i]),
            "auc": float("nan") if one_class else roc_auc(a[idx], p[idx]),
            "true_majority": int(np.argmax(true_counts[i])),
            "pred_majority": int(np.argmax(pred_counts[i])),
        }
        for key, vals in mean_p.items():
            row[key] = float(vals[i])
        rows.append(row)
    return rows


# ------------------------------------------------------------------- bootstrap CIs


def cluster_ids(
    subjects: np.ndarray | Sequence[str],
    videos: np.ndarray | Sequence[str],
    *,
    sep: str = "|",
) -> np.ndarray:
    """(subject, video) cluster ids such as ``"s01|v03"``.

    Parameters
    ----------
    subjects, videos : array of str, shape (n,)

    Returns
    -------
    ndarray of str, shape (n,)
    """
    s = np.asarray(subjects).astype(str)
    v = np.asarray(videos).astype(str)
    if s.shape != v.shape:
        raise ValueError(f"subjects {s.shape} and videos {v.shape} differ in shape")
    return np.char.add(np.char.add(s, sep), v)


def _bootstrap_auc(
    pos: np.ndarray,
    score: np.ndarray,
    code: np.ndarray,
    weights: np.ndarray,
    chunk_elems: int = 2_000_000,
) -> np.ndarray:
    """Binary AUC of every cluster-weighted replicate, shape (n_boot,)."""
    n_clusters = weights.shape[1]
    levels, lvl = np.unique(score, return_inverse=True)
    lvl = lvl.reshape(-1)
    n_lvl = levels.size
    ones = np.ones(pos.size)

    def counts(mask: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix(
            (ones[mask], (lvl[mask], code[mask])), shape=(n_lvl, n_clusters)
        )

    m_pos, m_neg = counts(pos), counts(~pos)  # (levels, clusters)
    out = np.empty(weights.shape[0])
    step = max(1, chunk_elems // max(1, n_lvl))
    for start in range(0, weights.shape[0], step):
        w = weights[start : start + step].T.astype(np.float64)  # (clusters, b)
        p = np.asarray(m_pos @ w).T  # (b, levels)
        q = np.asarray(m_neg @ w).T
        below = np.cumsum(q, axis=1) - q  # negatives with a strictly lower score
        u = (p * (below + 0.5 * q)).sum(axis=1)
        denom = p.sum(axis=1) * q.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = np.where(denom > 0, u / denom, np.nan)
    return out


def cluster_bootstrap(
    y: np.ndarray,
    proba: np.ndarray,
    clusters: np.ndarray | Sequence,
    *,
    metric: str | Callable[[np.ndarray, np.ndarray], float] = "balanced_accuracy",
    n_boot: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Replicates of a metric under resampling of whole clusters with replacement.

    Each replicate draws ``n_clusters`` clusters with replacement, i.e. integer
    weights ``w ~ Multinomial(n_clusters, uniform)``. Named metrics are vectorised:
    confusion metrics as ``weights @ per-cluster confusion counts``, AUC from
    per-cluster counts at each distinct score (sparse) with cumulative sums.
    A callable ``metric(y, proba) -> float`` is evaluated on each resample (slow).

    Parameters
    ----------
    y : ndarray of int, shape (n,)
    proba : ndarray, shape (n,) or (n, k)
    clusters : array, shape (n,)
        Cluster of each window, e.g. ``cluster_ids(subjects, videos)``.
    metric : str or callable
        One of ``BOOTSTRAP_METRICS`` or a function.
    n_boot : int
        Number of replicates.
    seed : int

    Returns
    -------
    ndarray of float64, shape (n_boot,)
        NaN where the metric is undefined on a replicate.
    """
    a = _labels(y)
    p = _proba(proba, a.size)
    c = np.asarray(clusters)
    if c.shape != a.shape:
        raise ValueError(f"clusters has shape {c.shape} but y has {a.shape}")
    if a.size == 0:
        return np.full(int(n_boot), np.nan)
    if not callable(metric) and metric not in BOOTSTRAP_METRICS:
        raise ValueError(
            f"unknown metric {metric!r}; choose one of {', '.join(BOOTSTRAP_METRICS)}"
        )
    _, code = np.unique(c, return_inverse=True)
    code = code.reshape(-1)
    m = int(code.max()) + 1
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(m, np.full(m, 1.0 / m), size=int(n_boot))  # (B, m)

    if callable(metric):
        out = np.empty(int(n_boot))
        for b in range(int(n_boot)):
            idx = np.repeat(np.arange(a.size), weights[b, code])
            out[b] = metric(a[idx], p[idx])
        return out
    if metric == "auc":
        if p.ndim == 1:
            return _bootstrap_auc(a == 1, p, code, weights)
        if p.shape[1] == 2:
            return _bootstrap_auc(a == 1, p[:, 1], code, weights)
        per_class = np.stack(
            [_bootstrap_auc(a == k, p[:, k], code, weights) for k in range(p.shape[1])]
        )
        defined = np.isfinite(per_class)
        n_def = defined.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                n_def > 0, np.where(defined, per_class, 0.0).sum(axis=0) / n_def, np.nan
            )
    pred = predict(p)
    k = p.shape[1] if p.ndim == 2 else _n_classes(a, pred)
    per_cluster = np.bincount(code * k * k + a * k + pred, minlength=m * k * k)
    boot_conf = (weights @ per_cluster.reshape(m, k * k)).reshape(-1, k, k)
    return np.asarray(_from_confusion(boot_conf, metric), dtype=np.float64)


def cluster_bootstrap_ci(
    y: np.ndarray,
    proba: np.ndarray,
    clusters: np.ndarray | Sequence,
    *,
    metric: str | Callable[[np.ndarray, np.ndarray], float] = "balanced_accuracy",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile confidence interval of a metric, resampling clusters.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
    proba : ndarray, shape (n,) or (n, k)
    clusters : array, shape (n,)
        Cluster of each window, typically ``"subject|video"`` (``cluster_ids``).
    metric : str or callable
        See ``cluster_bootstrap``.
    n_boot : int
    alpha : float
        ``1 - alpha`` coverage (0.05 -> 95% interval).
    seed : int

    Returns
    -------
    (low, high) : tuple of float
        The ``alpha/2`` and ``1 - alpha/2`` quantiles of the finite replicates;
        ``(nan, nan)`` when no replicate is finite.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    reps = cluster_bootstrap(
        y, proba, clusters, metric=metric, n_boot=n_boot, seed=seed
    )
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


# ------------------------------------------------------------------ null baselines


def majority_class(y_train: np.ndarray) -> int:
    """Most frequent class of the training labels (ties -> smallest index).

    Raises
    ------
    ValueError
        ``y_train`` is empty.
    """
    a = _labels(y_train, "y_train")
    if a.size == 0:
        raise ValueError("y_train is empty: no majority class")
    return int(np.argmax(np.bincount(a)))


def majority_baseline(y_train: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """Predict the training majority class for every test window.

    Parameters
    ----------
    y_train : ndarray of int, shape (n_train,)
        Labels of the fold's training windows.
    y_test : ndarray, shape (n_test,)
        Test labels (only their count is used).

    Returns
    -------
    ndarray of int64, shape (n_test,)
        Constant predictions. See the module docstring for why, pooled over
        leave-one-video-out folds, this scores far below 50% plain and balanced
        accuracy with video-level labels; report both.
    """
    n_test = np.asarray(y_test).shape[0]
    return np.full(n_test, majority_class(y_train), dtype=np.int64)


def permutation_p_value(observed: float, null: np.ndarray | Sequence[float]) -> float:
    """Permutation-test p-value ``(1 + #(null >= observed)) / (1 + n_null)``.

    Phipson & Smyth (2010), "Permutation p-values should never be zero". Non-finite
    null values count as exceeding the observed value (conservative).

    Parameters
    ----------
    observed : float
        The metric on the true labels.
    null : ndarray, shape (n_null,)
        The metric on each permutation.

    Returns
    -------
    float
        In ``(0, 1]``; NaN when ``observed`` is NaN.
    """
    obs = float(observed)
    nul = np.asarray(null, dtype=np.float64).reshape(-1)
    if np.isnan(obs):
        return float("nan")
    exceed = int(np.sum(~np.isfinite(nul) | (nul >= obs)))
    return (1.0 + exceed) / (1.0 + nul.size)


def permute_trial_labels(
    trial_labels: np.ndarray | Sequence,
    *,
    groups: np.ndarray | Sequence | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Shuffle labels across trials, optionally only within groups.

    Permute *trial* labels, then expand to windows (``permuted[trial_of_window]``),
    so all windows of a trial keep one label, as in the real data.

    Parameters
    ----------
    trial_labels : array, shape (n_trials,)
        One label per trial.
    groups : array, shape (n_trials,), optional
        Group of each trial (e.g. subject); labels are permuted within groups, so
        each group keeps its class balance.
    rng : numpy Generator or int seed, optional

    Returns
    -------
    ndarray, shape (n_trials,)
        The permuted labels (same dtype).
    """
    lab = np.asarray(trial_labels)
    if lab.ndim != 1:
        raise ValueError(f"trial_labels must be 1-D, got shape {lab.shape}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if groups is None:
        return gen.permutation(lab)
    g = np.asarray(groups)
    if g.shape != lab.shape:
        raise ValueError(f"groups has shape {g.shape} but trial_labels {lab.shape}")
    _, code = np.unique(g, return_inverse=True)
    code = code.reshape(-1)
    # Positions grouped in original order, and the same groups in random order.
    slots = np.argsort(code, kind="stable")
    donors = np.lexsort((gen.random(lab.size), code))
    out = lab.copy()
    out[slots] = lab[donors]
    return out


def permute_videos(
    trial_subjects: np.ndarray | Sequence[str],
    trial_videos: np.ndarray | Sequence[str],
    *,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Draw a trial permutation that relabels whole videos: (s, v) takes (s, pi(v)).

    Under the null hypothesis (the EEG carries no emotion information beyond the
    video it shows), the exchangeable units of a cross-video design are the
    videos, not the trials: every subject's windows of one video share that
    video's content. Shuffling single trials breaks that dependence and gives a
    null distribution far narrower than the real chance spread of leave-one-
    video-out, so chance highs look significant. One permutation ``pi`` of the
    video ids is drawn and applied to every subject, keeping each subject's own
    label set and the within-video structure. A subject missing a trial of
    ``pi(v)`` falls back to a shuffle of its own trials.

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
    videos = np.unique(vid)
    pi = dict(zip(videos, gen.permutation(videos), strict=True))
    return permute_by_donor(subj, vid, lambda s, v: (s, pi[v]), rng=gen)


def trial_arrays(
    trial_subjects: np.ndarray | Sequence[str],
    trial_videos: np.ndarray | Sequence[str],
    rng: np.random.Generator | int | None,
) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """Check and convert a permutation's inputs: (subjects, videos) as str, a Generator.

    Raises
    ------
    ValueError
        When the two are not 1-D arrays of the same length.
    """
    subj = np.asarray(trial_subjects).astype(str)
    vid = np.asarray(trial_videos).astype(str)
    if subj.shape != vid.shape or subj.ndim != 1:
        raise ValueError("trial_subjects and trial_videos must be 1-D, same length")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return subj, vid, gen


def permute_by_donor(
    trial_subjects: np.ndarray,
    trial_videos: np.ndarray,
    donor: Callable[[str, str], tuple[str, str]],
    *,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw the trial permutation in which trial (s, v) takes trial ``donor(s, v)``.

    A subject that lacks one of its donor trials gets a shuffle of its own
    trials instead.

    Parameters
    ----------
    trial_subjects, trial_videos : ndarray of str, shape (n_trials,)
    donor : callable
        ``(subject, video) -> (subject, video)`` of the trial whose label it takes.
    rng : numpy Generator

    Returns
    -------
    ndarray of int, shape (n_trials,)
        ``perm`` such that ``labels[perm]`` are the permuted trial labels.
    """
    subj, vid = trial_subjects, trial_videos
    where = {(s, v): i for i, (s, v) in enumerate(zip(subj, vid, strict=True))}
    perm = np.arange(subj.size)
    for s in np.unique(subj):
        rows = np.flatnonzero(subj == s)
        donors = [where.get(donor(s, vid[i])) for i in rows]
        if any(d is None for d in donors):
            perm[rows] = rng.permutation(rows)
        else:
            perm[rows] = donors
    return perm
