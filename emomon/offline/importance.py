"""What a model uses: permutation importance of each channel x band, leak-free.

In each fold, after the model is fit, the held-out windows are predicted again
with one channel's features of one band (every feature kind of that band: DE and
PSD) shuffled across those windows, ``n_repeats`` times with fresh shuffles
(Breiman 2001, Machine Learning 45:5-32; the "model reliance" of Fisher, Rudin &
Dominici 2019, JMLR 20:177, computed on held-out data). Only held-out windows
are shuffled and predicted, so nothing the model trained on enters the score.

A fold keeps the confusion counts of those predictions (summed over repeats), not
a score: with video-level labels a fold's test windows often hold one class,
whose balanced accuracy is undefined. The counts of all folds are summed, and the
importance of a channel x band is the pooled balanced accuracy of the run minus
the pooled balanced accuracy with that feature shuffled (:func:`pool_importance`):
the drop, in balanced-accuracy units, the report's topomaps draw.

Which runs compute it: :func:`importance_repeats` (``TrainConfig.importance``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from emomon.offline.tasks import FoldResult
    from emomon.offline.trainconfig import TrainConfig

__all__ = [
    "DEFAULT_REPEATS",
    "band_columns",
    "confusion_ba",
    "importance_repeats",
    "pool_importance",
    "balanced_loss",
    "nll",
    "shuffled_scores",
]

#: Shuffles per channel x band where the config leaves it to emomon (``None``)
#: and the model is full-batch (logreg). Five shuffles keep the sd of a cell's
#: drop near a fifth of one shuffle's variance at a cost of 5 x n_channels x
#: n_bands predictions of the held-out windows per fold (README: measured cost).
DEFAULT_REPEATS = 5


def importance_repeats(cfg: TrainConfig) -> int:
    """Return the shuffles per channel x band a run computes (0: none).

    ``cfg.importance``; off unless asked (``--importance N``; N =
    :data:`DEFAULT_REPEATS` is what the README's figures use): every held-out
    window is predicted again N x channels x bands times, which on a cold
    logreg run of 6 subjects x 12 videos x 60 s doubles its time (16 s more;
    README "The plots a paper needs"). Raw-EEG models have no band features
    to shuffle: 0.
    """
    from emomon.models import model_input_kind

    if model_input_kind(cfg.model) == "eeg":
        return 0
    n = getattr(cfg, "importance", None)
    return 0 if n is None else int(n)


def band_columns(
    feature_names: Sequence[str], bands: Sequence[str]
) -> list[np.ndarray]:
    """Feature columns of each band (every kind: ``de_alpha``, ``psd_alpha``).

    Parameters
    ----------
    feature_names : sequence of str
        ``<kind>_<band>`` names, the table's feature axis.
    bands : sequence of str

    Returns
    -------
    list of ndarray of int
        One array of column indices per band.
    """
    return [
        np.array(
            [i for i, f in enumerate(feature_names) if f.split("_", 1)[-1] == b],
            dtype=np.int64,
        )
        for b in bands
    ]


def shuffled_scores(
    x_test: np.ndarray,
    y_test: Mapping[str, np.ndarray],
    predict: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    *,
    columns: Sequence[np.ndarray],
    n_classes: Mapping[str, int],
    n_repeats: int,
    rng: np.random.Generator,
    batch_rows: int = 16384,
) -> dict[str, dict[str, np.ndarray]]:
    """Score the held-out windows with one channel x band shuffled at a time.

    Parameters
    ----------
    x_test : ndarray, shape (n_test, n_channels, n_features)
        The held-out windows' features as the table holds them (before
        z-scoring; ``predict`` prepares them, so a shuffle is of raw values).
    y_test : mapping of str to ndarray of int, shape (n_test,)
        Task -> true class of each window.
    predict : callable
        Features (n, n_channels, n_features) -> task -> probabilities (n, k).
    columns : sequence of ndarray of int
        Feature columns of each band (:func:`band_columns`), shuffled together
        with one permutation of the windows.
    n_classes : mapping of str to int
    n_repeats : int
        Shuffles per channel x band.
    rng : numpy.random.Generator
    batch_rows : int
        Most windows per ``predict`` call (shuffled copies are stacked).

    Returns
    -------
    dict of str to dict
        Task -> ``confusion``: int64 counts, shape (n_channels, n_bands, k, k)
        (rows = true class), and ``loss``: the sum of -ln p(true class) per
        true class, shape (n_channels, n_bands, k); both summed over repeats.
    """
    n, n_ch = x_test.shape[0], x_test.shape[1]
    out = {
        t: {
            "confusion": np.zeros((n_ch, len(columns), k, k), dtype=np.int64),
            "loss": np.zeros((n_ch, len(columns), k), dtype=np.float64),
        }
        for t, k in n_classes.items()
    }
    if n < 2:
        return out
    x = np.asarray(x_test)
    cells = [(c, b) for c in range(n_ch) for b, cols in enumerate(columns) if cols.size]
    # Many shuffled copies go through one predict call (a stack of up to
    # BATCH_ROWS windows): per-call overhead, not arithmetic, dominates small
    # held-out sets. The shuffles are drawn in a fixed order (cell-major,
    # then repeat), so the result does not depend on the batch size.
    jobs = [(c, b, rng.permutation(n)) for c, b in cells for _ in range(n_repeats)]
    per_call = max(1, batch_rows // n)
    for start in range(0, len(jobs), per_call):
        chunk = jobs[start : start + per_call]
        big = np.repeat(x[None], len(chunk), axis=0)  # (m, n, n_ch, n_feat)
        for j, (c, b, perm) in enumerate(chunk):
            cols = columns[b]
            big[j][:, c, cols] = x[perm][:, c, cols]
        proba = predict(big.reshape(len(chunk) * n, *x.shape[1:]))
        for t, k in n_classes.items():
            y = y_test[t]
            p = proba[t].reshape(len(chunk), n, k)
            for j, (c, b, _) in enumerate(chunk):
                pred = np.argmax(p[j], axis=1)
                out[t]["confusion"][c, b] += np.bincount(
                    y * k + pred, minlength=k * k
                ).reshape(k, k)
                out[t]["loss"][c, b] += np.bincount(
                    y, weights=nll(p[j][np.arange(n), y]), minlength=k
                )
    return out


def nll(p_true: np.ndarray) -> np.ndarray:
    """-ln p of each window's true class; p floored at 1e-12 (finite for p = 0)."""
    return -np.log(np.maximum(np.asarray(p_true, dtype=np.float64), 1e-12))


def balanced_loss(loss: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Class-balanced mean cross-entropy, (..., k) sums and counts -> (...).

    The mean over classes with windows of each class's mean -ln p(true), the
    loss the models are trained on (class-weighted); NaN where none counted.
    """
    s = np.asarray(support, dtype=np.float64)
    present = s > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(present, loss / np.where(present, s, 1.0), 0.0)
        n_present = present.sum(axis=-1)
        return np.where(n_present > 0, per.sum(axis=-1) / n_present, np.nan)


def confusion_ba(conf: np.ndarray) -> np.ndarray:
    """Balanced accuracy of stacked confusion counts, shape (..., k, k) -> (...).

    The mean recall over the classes present, as
    :func:`emomon.offline.metrics.balanced_accuracy` computes it; NaN where no
    window was counted.
    """
    c = np.asarray(conf, dtype=np.float64)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    support = c.sum(axis=-1)
    present = support > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(present, tp / np.where(present, support, 1.0), 0.0)
        n_present = present.sum(axis=-1)
        return np.where(n_present > 0, recall.sum(axis=-1) / n_present, np.nan)


def pool_importance(
    folds: Sequence[FoldResult],
    task: str,
    *,
    observed: float | None,
    observed_loss: float | None,
) -> dict[str, Any] | None:
    """Pool the folds' shuffled scores into each cell's importance.

    Parameters
    ----------
    folds : sequence of FoldResult
    task : str
    observed : float or None
        The run's pooled balanced accuracy of ``task``.
    observed_loss : float or None
        The run's pooled class-balanced cross-entropy (:func:`balanced_loss`).

    Returns
    -------
    dict or None
        ``bands``, ``n_repeats``, ``observed``, ``observed_loss``, and per cell
        (n_channels x n_bands lists; None where undefined) ``shuffled`` (the
        balanced accuracy with it shuffled), ``drop`` (``observed - shuffled``)
        and ``loss_increase`` (shuffled cross-entropy minus ``observed_loss``,
        nats). None when some fold has no importance scores (a run without
        importance, or a resumed run whose older fold records lack them).
    """
    if not folds or observed is None:
        return None
    if any(task not in f.importance for f in folds):
        return None
    bands = folds[0].importance_bands
    repeats = {f.importance_repeats for f in folds}
    if len(repeats) != 1 or any(f.importance_bands != bands for f in folds):
        return None
    conf = sum(np.asarray(f.importance[task]["confusion"]) for f in folds)
    loss = sum(np.asarray(f.importance[task]["loss"]) for f in folds)
    shuffled = confusion_ba(conf)
    increase = balanced_loss(loss, conf.sum(axis=-1)) - (
        np.nan if observed_loss is None else observed_loss
    )

    def cells(a: np.ndarray) -> list[list[float | None]]:
        return [[float(v) if np.isfinite(v) else None for v in row] for row in a]

    return {
        "bands": list(bands),
        "n_repeats": int(repeats.pop()),
        "observed": observed,
        "observed_loss": observed_loss,
        "shuffled": cells(shuffled),
        "drop": cells(observed - shuffled),
        "loss_increase": cells(increase),
    }
