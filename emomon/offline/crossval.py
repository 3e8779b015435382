"""Cross-validation bookkeeping: the folds of a protocol, their pooled predictions.

:func:`protocol_splits` makes the folds; fold tasks (:mod:`emomon.offline.tasks`)
predict each fold's held-out windows; :func:`pool_folds` puts the predictions
back in window order, with each fold's majority-class baseline.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from emomon.errors import ConfigError
from emomon.offline.dataset import Dataset
from emomon.offline.holdout import shared_trial_folds, shared_video_folds
from emomon.offline.metrics import majority_baseline, summarize
from emomon.offline.protocols import Split, SplitWarning, make_splits
from emomon.offline.trainconfig import TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from emomon.offline.tasks import FoldResult

__all__ = ["CVResult", "pool_folds", "pooled_balanced_accuracy", "protocol_splits"]


def protocol_splits(
    ds: Dataset,
    cfg: TrainConfig,
    protocol: str,
    *,
    trial_labels: Mapping[str, np.ndarray] | None = None,
) -> tuple[list[Split], list[str]]:
    """Make the folds of ``protocol`` and its notes (e.g. one-class training folds).

    Parameters
    ----------
    ds : Dataset
    cfg : TrainConfig
        ``train_videos``, ``n_folds``, ``val_fraction`` and ``seed`` shape the
        folds.
    protocol : str
    trial_labels : mapping of str to ndarray, optional
        Labels per task (n_trials,), default the dataset's; folds are stratified
        by the first task's.

    Returns
    -------
    splits : list of Split
    notes : list of str
        Problems of the folds in the user's words (:func:`one_class_notes`).

    Raises
    ------
    ConfigError
        For ``train_videos="top-bottom"`` without rating targets.
    """
    t = ds.table
    first = next(iter(ds.tasks))
    video_ratings = None
    if cfg.train_videos == "top-bottom":
        if first == "class":
            raise ConfigError(
                "{train_videos} top-bottom needs rating targets",
                params=("train_videos",),
            )
        r = t.rating(first)
        video_ratings = {
            v: float(np.nanmean(r[t.trial_video == v]))
            for v in np.unique(t.trial_video)
        }
    films: dict[str, object] = {}
    if protocol == "seed-split":
        if ds.session_split is None:
            raise ConfigError(
                f"{{protocols}} seed-split: dataset '{t.dataset}' has no customary "
                "split by trial number; use lovo, subject-lovo or loso",
                params=("protocols",),
            )
        a, b = ds.session_split
        films = {
            "seed_train_films": range(1, a + 1),
            "seed_test_films": range(a + 1, b + 1),
        }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SplitWarning)
        splits = make_splits(
            protocol,
            subjects=t.subject,
            videos=t.video,
            trials=t.trial,
            labels=ds.window_labels(trial_labels)[first],
            video_ratings=video_ratings,
            train_videos=cfg.train_videos if protocol == "lovo" else "all",
            n_folds=cfg.n_folds,
            val_fraction=cfg.val_fraction,
            seed=cfg.seed,
            sessions=t.session,
            **films,
        )
    # One-class training folds are legitimate (video-level labels); the model then
    # predicts that class and the pooled metrics show it. Report them per task, in
    # the user's words (printed under the results table), not as warnings.
    del caught
    return splits, one_class_notes(ds.window_labels(trial_labels), splits, ds.tasks)


def one_class_notes(
    labels: Mapping[str, np.ndarray],
    splits: Sequence[Split],
    tasks: Mapping[str, Sequence[str]],
) -> list[str]:
    """Say, per task, which folds trained on one class only.

    Parameters
    ----------
    labels : mapping of str to ndarray of int, shape (n_windows,)
        Task -> class index of each window.
    splits : sequence of Split
    tasks : mapping of str to sequence of str
        Task -> class names.

    Returns
    -------
    list of str
        One line per task with such folds, e.g. "valence: 3 of 20 folds trained
        on one class only (v03, v07, v11): those folds predict that class for
        every test window".
    """
    notes = []
    for task in tasks:
        y = np.asarray(labels[task])
        bad = [s.name for s in splits if np.unique(y[s.train]).size < 2]
        if not bad:
            continue
        shown = ", ".join(bad[:4]) + (
            f" and {len(bad) - 4} more" if len(bad) > 4 else ""
        )
        notes.append(
            f"{task}: {len(bad)} of {len(splits)} folds trained on one class only "
            f"({shown}): those folds predict that class for every test window"
        )
    return notes


@dataclass
class CVResult:
    """Pooled held-out predictions of one protocol run.

    Attributes
    ----------
    proba : dict of str to ndarray, shape (n_windows, n_classes)
        Task -> held-out probabilities, NaN where a window was never tested.
    tested : ndarray of bool, shape (n_windows,)
    fold_of : ndarray of int, shape (n_windows,)
        The fold that tested each window, -1 for never.
    majority : dict of str to ndarray of int, shape (n_windows,)
        Task -> the majority-class baseline's prediction.
    folds : list of FoldResult
    notes : list of str
    shared_video_folds : int
        Folds whose test videos appear in their training or validation part
        (:func:`~emomon.offline.holdout.shared_video_folds`).
    shared_trial_folds : int
        Folds with a trial on both sides
        (:func:`~emomon.offline.holdout.shared_trial_folds`).
    """

    proba: dict[str, np.ndarray]
    tested: np.ndarray
    fold_of: np.ndarray
    majority: dict[str, np.ndarray]
    folds: list[FoldResult]
    notes: list[str]
    shared_video_folds: int = 0
    shared_trial_folds: int = 0


def pool_folds(
    ds: Dataset,
    splits: Sequence[Split],
    results: Sequence[FoldResult],
    notes: list[str],
    *,
    trial_labels: Mapping[str, np.ndarray] | None = None,
) -> CVResult:
    """Put each fold's predictions back in window order, with its baseline.

    Parameters
    ----------
    ds : Dataset
    splits : sequence of Split
    results : sequence of FoldResult
        One per split, in split order.
    notes : list of str
        From :func:`protocol_splits`.
    trial_labels : mapping, optional
        The labels the folds were trained on (default the dataset's).

    Returns
    -------
    CVResult
    """
    win = ds.window_labels(trial_labels)
    n = ds.table.X.shape[0]
    proba = {task: np.full((n, len(c)), np.nan) for task, c in ds.tasks.items()}
    majority = {task: np.full(n, -1, dtype=np.int64) for task in ds.tasks}
    fold_of = np.full(n, -1, dtype=np.int64)
    for k, (split, res) in enumerate(zip(splits, results, strict=True)):
        for task, p in res.proba.items():
            proba[task][split.test] = p
        for task in ds.tasks:
            majority[task][split.test] = majority_baseline(
                win[task][split.train], win[task][split.test]
            )
        fold_of[split.test] = k
    return CVResult(
        proba,
        fold_of >= 0,
        fold_of,
        majority,
        list(results),
        notes,
        shared_video_folds(splits, ds.table.video),
        shared_trial_folds(splits, ds.table.trial),
    )


def pooled_balanced_accuracy(
    ds: Dataset, cv: CVResult, *, trial_labels: Mapping[str, np.ndarray] | None = None
) -> dict[str, float]:
    """Balanced accuracy of every task over all tested windows (NaN if undefined)."""
    win = ds.window_labels(trial_labels)
    return {
        task: summarize(win[task][cv.tested], cv.proba[task][cv.tested])[
            "balanced_accuracy"
        ]
        for task in ds.tasks
    }
