"""Pure training tasks: one fold, one permutation run.

A task is a small picklable record (the fold's split, the config, the seed, the
labels when they are not the dataset's); running it needs nothing but the record
and a data handle (:mod:`emomon.offline.executors`), and gives a versioned,
serialisable result. The seed comes from (run seed, task index) and the torch
thread count is fixed (the config's ``task_threads``), so a task gives the same
result in this process, in a worker process, or on another machine.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from emomon.dsp.normalize import fit_zscore, model_input
from emomon.offline.crossval import (
    pool_folds,
    pooled_balanced_accuracy,
    protocol_splits,
)
from emomon.offline.dataset import Dataset
from emomon.offline.executors import DataHandle
from emomon.offline.fit import FitResult, fit_model, predict_proba
from emomon.offline.holdout import exchangeable_unit
from emomon.offline.protocols import Split
from emomon.offline.trainconfig import TrainConfig

__all__ = [
    "FOLD_RESULT_VERSION",
    "FoldResult",
    "FoldTask",
    "PermutationResult",
    "PermutationTask",
    "FoldData",
    "fit_fold",
    "fold_data",
    "fold_tasks",
    "run_fold",
    "run_permutation",
    "task_seed",
]

#: Version of the :class:`FoldResult` and :class:`PermutationResult` records.
FOLD_RESULT_VERSION = 1


def _check_version(d: Mapping[str, Any], what: str) -> None:
    """Refuse a task record of another :data:`FOLD_RESULT_VERSION`."""
    if d.get("version") != FOLD_RESULT_VERSION:
        raise ValueError(
            f"{what} version {d.get('version')!r}; this emomon reads "
            f"{FOLD_RESULT_VERSION}"
        )


def task_seed(run_seed: int, index: int) -> int:
    """Return the torch seed of fold ``index`` of a run seeded ``run_seed``.

    ``run_seed + index``, the seeds emomon has always used: fold k trains with it
    in the observed cross-validation and in every permutation run, so the
    permutation test repeats the same procedure with only the labels changed.
    """
    return run_seed + index


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True, eq=False)
class FoldTask:
    """Train on one fold's training windows and predict its test windows.

    Attributes
    ----------
    index : int
        The fold's position in its protocol.
    split : Split
    config : TrainConfig
    seed : int
        From :func:`task_seed`.
    trial_labels : mapping of str to ndarray, optional
        Labels per task (n_trials,); None for the dataset's.
    """

    index: int
    split: Split
    config: TrainConfig
    seed: int
    trial_labels: Mapping[str, np.ndarray] | None = None


def fold_tasks(
    splits: Sequence[Split],
    config: TrainConfig,
    trial_labels: Mapping[str, np.ndarray] | None = None,
) -> list[FoldTask]:
    """Return one :class:`FoldTask` per split, seeded by :func:`task_seed`.

    The observed cross-validation and every permutation run build their folds
    here, so fold k trains with the same seed in both.

    Parameters
    ----------
    splits : sequence of Split
        The protocol's folds, in order.
    config : TrainConfig
    trial_labels : mapping of str to ndarray, optional
        Labels per task (n_trials,); None for the dataset's.
    """
    return [
        FoldTask(k, s, config, task_seed(config.seed, k), trial_labels)
        for k, s in enumerate(splits)
    ]


@dataclass(frozen=True, eq=False)
class FoldResult:
    """What one fold task found.

    Attributes
    ----------
    fold : str
        The split's name.
    index, seed : int
        As in the task.
    n_train, n_val, n_test : int
        Windows trained on, validated on and tested (a full-batch model trains
        on the split's validation windows too: its ``n_val`` is 0).
    test : ndarray of int64, shape (n_test,)
        The held-out windows.
    proba : dict of str to ndarray of float64, shape (n_test, n_classes)
        Task -> predicted probabilities of the held-out windows.
    best_epoch : dict of str to int
        Task -> the epoch early stopping kept (0 for a full-batch model).
    seconds : float
        Wall time of the task (volatile).
    worker : str
        ``host:pid`` of the process that ran it (volatile).
    version : int
        :data:`FOLD_RESULT_VERSION`.
    history : dict of str to list of dict
        Task -> the fit's rows per epoch (:class:`~emomon.offline.fit.FitResult`),
        the learning curves. Empty in records written before it existed.
    importance : dict of str to dict of str to ndarray
        Task -> ``confusion`` (n_channels, n_bands, k, k) and ``loss``
        (n_channels, n_bands, k) of the held-out windows with one channel x
        band shuffled (:func:`~emomon.offline.importance.shuffled_scores`);
        empty where not computed (permutation runs, older records).
    importance_bands : tuple of str
        The bands of ``importance``'s second axis.
    importance_repeats : int
        Shuffles summed in each cell.
    augment : dict
        The training-set augmentation of the fold (:class:`FoldData`'s
        ``augment``): method, samples added, and the sanity checks where run;
        empty without augmentation.
    proba_plain : dict of str to ndarray of float64, shape (n_test, n_classes)
        With augmentation, in the observed run: the same model, seed and real
        training windows fitted without the added samples, on the same test
        windows (:func:`fit_fold`'s ``plain``), the comparison
        :mod:`emomon.offline.augreport` reports; empty otherwise.
    """

    fold: str
    index: int
    seed: int
    n_train: int
    n_val: int
    n_test: int
    test: np.ndarray
    proba: dict[str, np.ndarray]
    best_epoch: dict[str, int]
    seconds: float = 0.0
    worker: str = ""
    version: int = FOLD_RESULT_VERSION
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    importance: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    importance_bands: tuple[str, ...] = ()
    importance_repeats: int = 0
    augment: dict[str, Any] = field(default_factory=dict)
    proba_plain: dict[str, np.ndarray] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (probabilities as nested lists).

        ``history``, ``importance``, ``augment`` and ``proba_plain`` (additive:
        a record without them is read as one with them empty) are written only
        when present.
        """
        from emomon.offline._jsonread import to_jsonable

        d = {
            "version": self.version,
            "fold": self.fold,
            "index": self.index,
            "seed": self.seed,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "test": self.test.tolist(),
            "proba": {k: v.tolist() for k, v in self.proba.items()},
            "best_epoch": dict(self.best_epoch),
            "seconds": self.seconds,
            "worker": self.worker,
        }
        if self.history:
            d["history"] = to_jsonable(self.history)
        if self.augment:
            d["augment"] = to_jsonable(self.augment)
        if self.proba_plain:
            d["proba_plain"] = {k: v.tolist() for k, v in self.proba_plain.items()}
        if self.importance:
            d["importance"] = {
                "bands": list(self.importance_bands),
                "n_repeats": self.importance_repeats,
                "scores": {
                    t: {k: v.tolist() for k, v in s.items()}
                    for t, s in self.importance.items()
                },
            }
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FoldResult:
        """Read :meth:`to_dict`'s output.

        Raises
        ------
        ValueError
            For a record of another version.
        """
        _check_version(d, "fold result")
        n_test = int(d["n_test"])
        imp = d.get("importance") or {}
        return cls(
            fold=str(d["fold"]),
            index=int(d["index"]),
            seed=int(d["seed"]),
            n_train=int(d["n_train"]),
            n_val=int(d["n_val"]),
            n_test=n_test,
            test=np.asarray(d["test"], dtype=np.int64).reshape(n_test),
            proba={
                k: np.asarray(v, dtype=np.float64).reshape(n_test, -1)
                for k, v in d["proba"].items()
            },
            best_epoch={k: int(v) for k, v in d["best_epoch"].items()},
            seconds=float(d["seconds"]),
            worker=str(d.get("worker", "")),
            history={str(k): list(v) for k, v in (d.get("history") or {}).items()},
            importance={
                str(t): {
                    "confusion": np.asarray(v["confusion"], dtype=np.int64),
                    "loss": np.asarray(v["loss"], dtype=np.float64),
                }
                for t, v in (imp.get("scores") or {}).items()
            },
            importance_bands=tuple(str(b) for b in imp.get("bands", ())),
            importance_repeats=int(imp.get("n_repeats", 0)),
            augment=dict(d.get("augment") or {}),
            proba_plain={
                str(k): np.asarray(v, dtype=np.float64).reshape(n_test, -1)
                for k, v in (d.get("proba_plain") or {}).items()
            },
        )


def fold_input(
    ds: Dataset, train: np.ndarray, *, zscore: bool = True
) -> Callable[[np.ndarray], np.ndarray]:
    """Return the map from features to model input fitted on a fold's training part.

    z-scored with the statistics of the windows ``train`` (unless ``zscore`` is
    False: a model that reads physical units, :func:`input_stats`), then laid
    out for the model (:func:`~emomon.dsp.normalize.model_input`).
    """
    t = ds.table
    mean, std = input_stats(t.X[train], layout=ds.layout, zscore=zscore)

    def prep(x: np.ndarray) -> np.ndarray:
        return model_input(x, mean=mean, std=std, layout=ds.layout, ch_names=t.ch_names)

    return prep


def input_stats(
    x: np.ndarray, *, layout: str, zscore: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """z-score statistics of training windows, or the identity (mean 0, std 1).

    Parameters
    ----------
    x : ndarray, shape (n_windows, n_channels, n_features)
    layout : {"flat", "grid", "eeg"}
    zscore : bool
        False for a model whose class sets ``zscore = False`` (a pretrained
        encoder reading microvolts): the statistics leave the input as it is,
        and the contract carries them so the live pipeline does the same.

    Returns
    -------
    mean, std : ndarray
        As :func:`~emomon.dsp.normalize.fit_zscore` returns them.
    """
    mean, std = fit_zscore(x, layout=layout)
    if zscore:
        return mean, std
    return np.zeros_like(mean), np.ones_like(std)


@dataclass(frozen=True, eq=False)
class FoldData:
    """One fold's model inputs, the training set augmented where configured.

    Attributes
    ----------
    train, val : ndarray of int64
        The real training and inner validation windows (a full-batch model
        trains on both: ``val`` is then empty).
    x_train : ndarray of float32, shape (n_train + n_added, *input_shape)
        The real training windows' inputs, then the added samples.
    y_train : dict of str to ndarray of int, shape (n_train + n_added,)
        Task -> labels, in the same order.
    x_val : ndarray of float32 or None
    y_val : dict of str to ndarray or None
    x_test : ndarray of float32, shape (n_test, *input_shape)
    prep : callable
        Features (n, n_channels, n_features) -> model input (the fold's z-score).
    augment : dict
        ``method``, ``n_added``, ... and ``sanity`` where the checks ran; empty
        without augmentation.
    """

    train: np.ndarray
    val: np.ndarray
    x_train: np.ndarray
    y_train: dict[str, np.ndarray]
    x_val: np.ndarray | None
    y_val: dict[str, np.ndarray] | None
    x_test: np.ndarray
    prep: Callable[[np.ndarray], np.ndarray]
    augment: dict[str, Any] = field(default_factory=dict)

    def plain(self) -> FoldData:
        """Return the same fold without the added samples.

        The real training windows' inputs and labels (the first
        ``train.size`` rows: the samples are appended after them), with the
        same z-score, validation and test inputs: what a run without
        augmentation trains on.
        """
        n = self.train.size
        return replace(
            self,
            x_train=self.x_train[:n],
            y_train={g: v[:n] for g, v in self.y_train.items()},
            augment={},
        )


def fold_data(ds: Dataset, task: FoldTask, *, check: bool = False) -> FoldData:
    """Form one fold's model inputs: z-score, then augment the training part.

    The z-score statistics are the real training windows' (as the contract
    saves them); augmentation (``task.config.augment``) then adds samples made
    in that z-scored space from the real training windows and their labels
    alone (:func:`~emomon.offline.augment.augment_fold`), seeded by the fold's
    seed. The inner validation and test windows are formed apart and never
    passed to it. ``check`` runs the method's sanity checks on the training
    part (:func:`~emomon.offline.augment.sanity_check`).
    """
    from emomon.models import model_class, model_full_batch

    t, split, cfg = ds.table, task.split, task.config
    win = ds.window_labels(task.trial_labels)
    train, val = split.train, split.val
    if model_full_batch(cfg.model):
        # No early stopping to feed: the inner validation windows are training
        # windows like the others (all from training videos/subjects).
        train, val = np.union1d(train, val), val[:0]
    prep_x = fold_input(ds, train, zscore=model_class(cfg.model).zscore)
    x_tr = prep_x(t.X[train])
    y_tr = {g: win[g][train] for g in ds.tasks}
    info: dict[str, Any] = {}
    if cfg.augment is not None and train.size:
        from emomon.offline.augment import augment_fold, sanity_check

        aug = augment_fold(
            x_tr, y_tr, method=cfg.augment, ratio=cfg.augment_ratio, seed=task.seed
        )
        info = dict(aug.info)
        if check:
            info["sanity"] = sanity_check(
                x_tr,
                y_tr,
                t.video[train],
                method=cfg.augment,
                ratio=cfg.augment_ratio,
                seed=task.seed,
                n_classes={g: len(c) for g, c in ds.tasks.items()},
            )
        x_tr = np.concatenate([x_tr, aug.x])
        y_tr = {g: np.concatenate([y_tr[g], aug.y[g]]) for g in ds.tasks}
    return FoldData(
        train=train,
        val=val,
        x_train=x_tr,
        y_train=y_tr,
        x_val=prep_x(t.X[val]) if val.size else None,
        y_val={g: win[g][val] for g in ds.tasks} if val.size else None,
        x_test=prep_x(t.X[split.test]),
        prep=prep_x,
        augment=info,
    )


def fit_fold(
    ds: Dataset,
    task: FoldTask,
    *,
    importance: int = 0,
    check: bool = False,
    plain: bool = False,
) -> FoldResult:
    """Normalise with training statistics, fit, predict one fold's test windows.

    A full-batch model (logreg) trains on the training and the inner validation
    windows together. The caller sets the torch thread count (:func:`run_fold`
    does); the full-batch fit bounds its BLAS threads to the same count.
    ``importance`` > 0 shuffles each channel x band of the held-out windows that
    many times (:mod:`emomon.offline.importance`; the observed run only, never a
    permutation run), with a generator seeded by the fold's seed. The training
    set is :func:`fold_data`'s (augmented where configured; ``check`` runs the
    augmentation's sanity checks). ``plain`` (with augmentation) also fits the
    same model with the same seed on the real training windows alone
    (:meth:`FoldData.plain`) and predicts the same test windows into
    ``proba_plain``: the un-augmented twin the report compares against.
    """
    from emomon.models import task_groups
    from emomon.offline.importance import band_columns, shuffled_scores

    t0 = time.perf_counter()
    t, split, cfg = ds.table, task.split, task.config
    win = ds.window_labels(task.trial_labels)
    fd = fold_data(ds, task, check=check)
    proba: dict[str, np.ndarray] = {}
    best: dict[str, int] = {}
    history: dict[str, list[dict[str, Any]]] = {}
    imp: dict[str, np.ndarray] = {}
    bands = t.spec.band_names if importance else ()
    columns = band_columns(t.spec.feature_names, bands)
    rng = np.random.default_rng([task.seed, 0x1A5])  # the fold's own stream
    groups = task_groups(cfg.model, list(ds.tasks))
    for group in groups:
        res = _fit_group(ds, cfg, fd, group, seed=task.seed)
        proba.update(predict_proba(res.model, fd.x_test))
        best.update(dict.fromkeys(group, res.best_epoch))
        history.update(dict.fromkeys(group, res.history))
        if importance and split.test.size:
            imp.update(
                shuffled_scores(
                    t.X[split.test],
                    {g: win[g][split.test] for g in group},
                    lambda x, m=res.model: predict_proba(m, fd.prep(x)),
                    columns=columns,
                    n_classes={g: len(ds.tasks[g]) for g in group},
                    n_repeats=importance,
                    rng=rng,
                )
            )
    proba_plain: dict[str, np.ndarray] = {}
    if plain and cfg.augment is not None:
        real = fd.plain()
        for group in groups:
            res = _fit_group(ds, cfg, real, group, seed=task.seed)
            proba_plain.update(predict_proba(res.model, real.x_test))
    return FoldResult(
        fold=split.name,
        index=task.index,
        seed=task.seed,
        n_train=int(fd.train.size),
        n_val=int(fd.val.size),
        n_test=int(split.test.size),
        test=np.asarray(split.test, dtype=np.int64),
        proba=proba,
        best_epoch=best,
        seconds=round(time.perf_counter() - t0, 3),
        worker=f"{socket.gethostname()}:{os.getpid()}",
        history=history,
        importance=imp,
        importance_bands=tuple(bands) if imp else (),
        importance_repeats=importance if imp else 0,
        augment=fd.augment,
        proba_plain=proba_plain,
    )


def _fit_group(
    ds: Dataset, cfg: TrainConfig, fd: FoldData, group: Sequence[str], *, seed: int
) -> FitResult:
    """Fit the model of one task group on ``fd``'s training (and validation) set."""
    return fit_model(
        cfg,
        tasks={g: len(ds.tasks[g]) for g in group},
        x_train=fd.x_train,
        y_train={g: fd.y_train[g] for g in group},
        x_val=fd.x_val,
        y_val=None if fd.y_val is None else {g: fd.y_val[g] for g in group},
        seed=seed,
        ch_names=ds.table.ch_names,
    )


def run_fold(data: DataHandle, task: FoldTask) -> FoldResult:
    """Run the fold task: :func:`fit_fold` with the config's ``task_threads``.

    The observed cross-validation's folds compute the permutation importance
    the config asks for (:func:`~emomon.offline.importance.importance_repeats`)
    and, with augmentation, the un-augmented twin (``plain``: one more fit of
    the model, cheap next to making the samples; permutation reruns and the
    exported model never fit it).
    """
    from emomon.offline.importance import importance_repeats

    with torch_threads(task.config.task_threads):
        return fit_fold(
            data.get(),
            task,
            importance=importance_repeats(task.config),
            check=task.config.augment_check,
            plain=task.config.augment is not None,
        )


@dataclass(frozen=True, eq=False)
class PermutationTask:
    """Rerun a protocol's whole cross-validation with permuted trial labels.

    Attributes
    ----------
    index : int
        The permutation's position in the run.
    protocol : str
    config : TrainConfig
    trial_labels : mapping of str to ndarray, shape (n_trials,)
        The permuted labels, one permutation applied to every task.
    """

    index: int
    protocol: str
    config: TrainConfig
    trial_labels: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class PermutationResult:
    """The pooled balanced accuracy per task of one permutation run.

    None where undefined; ``seconds`` is volatile.
    """

    index: int
    balanced_accuracy: Mapping[str, float | None] = field(default_factory=dict)
    seconds: float = 0.0
    version: int = FOLD_RESULT_VERSION
    # The unit its labels were permuted by; records from before the field
    # were all permuted by video.
    unit: str = "video"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "version": self.version,
            "index": self.index,
            "balanced_accuracy": dict(self.balanced_accuracy),
            "seconds": self.seconds,
            "unit": self.unit,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PermutationResult:
        """Read :meth:`to_dict`'s output.

        Raises
        ------
        ValueError
            For a record of another version.
        """
        _check_version(d, "permutation result")
        return cls(
            int(d["index"]),
            {
                str(k): None if v is None else float(v)
                for k, v in d["balanced_accuracy"].items()
            },
            float(d["seconds"]),
            unit=str(d.get("unit", "video")),
        )


def run_permutation(data: DataHandle, task: PermutationTask) -> PermutationResult:
    """Run the permutation task: every fold of the protocol, one after the other."""
    t0 = time.perf_counter()
    ds, cfg, labels = data.get(), task.config, task.trial_labels
    with torch_threads(cfg.task_threads):
        splits, notes = protocol_splits(ds, cfg, task.protocol, trial_labels=labels)
        folds = [fit_fold(ds, t) for t in fold_tasks(splits, cfg, labels)]
    cv = pool_folds(ds, splits, folds, notes, trial_labels=labels)
    scores = pooled_balanced_accuracy(ds, cv, trial_labels=labels)
    return PermutationResult(
        task.index,
        {k: v if np.isfinite(v) else None for k, v in scores.items()},
        round(time.perf_counter() - t0, 3),
        unit=exchangeable_unit(task.protocol),
    )
