"""Leak-free cross-validation, null baselines and the final export.

``run_training(config, out_dir)`` is what ``emomon train`` runs:

1. features of the whole dataset (cached), labels per task;
2. for each protocol, the folds of :func:`~emomon.offline.protocols.make_splits`;
   per fold: z-score statistics from the training windows only, a model trained
   with Adam (batch 64, lr 1e-3 halved on plateau, early stopping on the inner
   validation videos/subjects, class-balanced loss, fixed seeds) and predictions for
   the held-out windows;
3. pooled metrics with (subject, video) bootstrap CIs, the majority-class
   baseline of each fold, and a permutation test that reruns the whole
   cross-validation with trial labels shuffled;
4. a final model trained on all data, exported to ONNX with its contract.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emomon import __version__
from emomon.config import FeatureSpec, from_mapping, load_toml
from emomon.contract import ModelContract
from emomon.datasets import get_reader
from emomon.dsp.normalize import channels_off_grid, fit_zscore, input_shape, model_input
from emomon.errors import ConfigError, DatasetError
from emomon.offline.features import FeatureTable, load_features
from emomon.offline.labels import LABEL_METHODS, SEED_CLASSES, class_labels, make_labels
from emomon.offline.metrics import (
    cluster_bootstrap_ci,
    cluster_ids,
    group_table,
    majority_baseline,
    permutation_p_value,
    permute_videos,
    summarize,
)
from emomon.offline.protocols import LEAKY_PROTOCOLS, PROTOCOLS, Split, make_splits

BINARY_CLASSES = ["low", "high"]
TASK_CHOICES = ("valence", "arousal", "class")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``emomon train`` / ``emomon evaluate`` needs (TOML ``[train]``).

    ``features`` is the ``[features]`` table, ``synthetic`` the generator options
    for ``dataset = "synthetic"``, ``hparams`` the ``[model]`` table.
    """

    dataset: str = "synthetic"
    data_dir: str | None = None
    subjects: tuple[str, ...] = ()  # empty: every subject of the dataset
    protocols: tuple[str, ...] = ("lovo",)
    model: str = "logreg"
    targets: tuple[str, ...] = ("valence", "arousal")
    labels: str = "fixed"
    threshold: float | None = None
    train_videos: str = "all"
    n_folds: int = 5
    val_fraction: float = 0.15
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    patience: int = 5
    weight_decay: float = 0.0
    permutations: int = 0
    n_boot: int = 1000
    seed: int = 0
    device: str = "auto"
    n_jobs: int = 2
    cache_dir: str | None = ".emomon_cache"
    export: bool = True
    features: FeatureSpec = field(default_factory=FeatureSpec)
    synthetic: dict[str, Any] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocols", tuple(self.protocols))
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "subjects", tuple(self.subjects))
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols:
            raise ConfigError(
                f"unknown protocol '{bad[0] if bad else ''}'; "
                f"choose from {', '.join(PROTOCOLS)}"
            )
        bad = [t for t in self.targets if t not in TASK_CHOICES]
        if bad or not self.targets:
            raise ConfigError(
                f"unknown target '{bad[0] if bad else ''}'; "
                f"choose from {', '.join(TASK_CHOICES)}"
            )
        if self.labels not in LABEL_METHODS:
            raise ConfigError(
                f"unknown labels '{self.labels}'; "
                f"choose from {', '.join(LABEL_METHODS)}"
            )
        for name in ("epochs", "batch_size", "patience", "n_folds", "n_jobs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1")
        if self.permutations < 0 or self.n_boot < 0:
            raise ConfigError("train.permutations and train.n_boot must be >= 0")
        if not self.lr > 0:
            raise ConfigError("train.lr must be > 0")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError("train.val_fraction must be within [0, 1)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("train.device must be auto, cpu or cuda")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ConfigError(
                f"train.threshold must be a finite number, got {self.threshold}"
            )
        from emomon.models import model_hparams

        # Unknown model or hyper-parameter names fail now, not after the features.
        valid = model_hparams(self.model)  # raises ConfigError on an unknown model
        unknown = sorted(set(self.hparams) - set(valid))
        if unknown:
            raise ConfigError(
                f"unknown hyper-parameter model.{unknown[0]} for model "
                f"'{self.model}'; valid keys: {', '.join(sorted(valid)) or 'none'}"
            )


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a TOML config (``[train]``, ``[features]``, ``[synthetic]``, ``[model]``).

    ``overrides`` (e.g. from the command line) replace ``[train]`` keys.
    """
    data = load_toml(path)
    unknown = sorted(set(data) - {"train", "features", "synthetic", "model"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown section [{unknown[0]}]; "
            "valid: [train], [features], [synthetic], [model]"
        )
    for section, value in data.items():
        if not isinstance(value, Mapping):  # e.g. "train = 3" at the top level
            raise ConfigError(
                f"{path}: {section} must be a [{section}] table, got {value!r}"
            )
    train = dict(data.get("train", {}))
    for key in ("features", "synthetic", "hparams"):
        if key in train:
            raise ConfigError(f"{path}: put {key} in its own [{key}] table")
    spec = FeatureSpec.from_dict(data.get("features", {}))
    train.update({k: v for k, v in overrides.items() if v is not None})
    return _assemble_config(
        train,
        spec=spec,
        synthetic=data.get("synthetic", {}),
        hparams=data.get("model", {}),
        section="train",
    )


def _assemble_config(
    train: Mapping[str, Any],
    *,
    spec: FeatureSpec,
    synthetic: Mapping[str, Any],
    hparams: Mapping[str, Any],
    section: str,
) -> TrainConfig:
    """A :class:`TrainConfig` from its flat keys and its three nested tables."""
    cfg = from_mapping(TrainConfig, train, section=section)
    return dataclasses.replace(
        cfg, features=spec, synthetic=dict(synthetic), hparams=dict(hparams)
    )


# -- data ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    """Features plus labels, ready for cross-validation."""

    table: FeatureTable
    tasks: dict[str, list[str]]  # task -> class names
    trial_labels: dict[str, np.ndarray]  # task -> (n_trials,) int
    layout: str


def model_spec(spec: FeatureSpec, model: str) -> FeatureSpec:
    """The feature spec a model reads: its layout, raw windows for EEG models."""
    from emomon.models import model_input_kind

    kind = model_input_kind(model)
    if kind == "eeg":
        return dataclasses.replace(spec, kinds=("raw",), layout="eeg", baseline=False)
    if spec.is_raw:
        return dataclasses.replace(spec, kinds=("de", "psd"), layout=kind)
    return dataclasses.replace(spec, layout=kind)


def load_dataset(cfg: TrainConfig, *, progress: bool = True) -> Dataset:
    """Read the dataset, compute (cached) features and the labels of every task."""
    options = cfg.synthetic if cfg.dataset == "synthetic" else {}
    reader = get_reader(cfg.dataset, cfg.data_dir, **options)
    spec = model_spec(cfg.features, cfg.model)
    table = load_features(
        reader,
        spec=spec,
        subjects=list(cfg.subjects) or None,
        cache_dir=cfg.cache_dir,
        n_jobs=cfg.n_jobs,
        progress=progress,
    )
    if spec.layout == "grid":
        off = channels_off_grid(table.ch_names)
        if len(off) == len(table.ch_names):
            raise ConfigError(
                f"model {cfg.model} reads the 8x9 scalp map, but none of the channels "
                f"({', '.join(table.ch_names[:4])}, ...) is a 10-20 name on it; "
                "use a flat model (logreg, mlp) or name the channels"
            )
    tasks: dict[str, list[str]] = {}
    trial_labels: dict[str, np.ndarray] = {}
    for task in cfg.targets:
        if task == "class":
            if not np.any(table.trial_label != ""):
                raise DatasetError(
                    f"dataset '{cfg.dataset}' has no class labels; "
                    "use --targets valence,arousal"
                )
            tasks[task] = list(SEED_CLASSES)
            trial_labels[task] = class_labels(table.trial_label)
            continue
        ratings = table.rating(task)
        if np.all(np.isnan(ratings)):
            raise DatasetError(
                f"dataset '{cfg.dataset}' has no {task} ratings; "
                "use --targets class for class-labelled data"
            )
        tasks[task] = list(BINARY_CLASSES)
        trial_labels[task] = make_labels(
            ratings,
            subjects=table.trial_subject,
            method=cfg.labels,
            threshold=cfg.threshold,
            scale=table.scale or (1.0, 9.0),
            seed=cfg.seed,
        )
    return Dataset(table, tasks, trial_labels, spec.layout)


# -- model fitting --------------------------------------------------------------------
def _device(name: str):
    import torch

    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced weights n / (k * count); classes absent from training weigh 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = y.size / (present.sum() * counts[present])
    return w


@dataclass
class FitResult:
    model: Any
    best_epoch: int
    history: list[dict[str, float]]


def fit_model(
    cfg: TrainConfig,
    *,
    tasks: Mapping[str, int],
    x_train: np.ndarray,
    y_train: Mapping[str, np.ndarray],
    x_val: np.ndarray | None = None,
    y_val: Mapping[str, np.ndarray] | None = None,
    epochs: int | None = None,
    seed: int = 0,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    """Train one registry model with Adam, plateau LR halving and early stopping.

    Parameters
    ----------
    cfg : TrainConfig
        Model name, hyper-parameters and optimisation settings.
    tasks : mapping of str to int
        Task -> number of classes; the model gets one head per task.
    x_train : ndarray of float32, shape (n, *input_shape)
    y_train : mapping of str to ndarray of int, each shape (n,)
    x_val, y_val : optional
        Inner validation windows (from training videos/subjects only). Without
        them the model trains for ``epochs`` epochs.
    epochs : int, optional
        Override ``cfg.epochs``.
    seed : int
        Torch seed (initialisation and batch order).
    """
    import torch

    from emomon.models import build_model, multitask_loss

    device = _device(cfg.device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_model(
        cfg.model, input_shape=x_train.shape[1:], tasks=dict(tasks), **cfg.hparams
    ).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    xt = torch.from_numpy(x_train).to(device)
    yt = {t: torch.from_numpy(y_train[t].astype(np.int64)).to(device) for t in tasks}
    cw = {
        t: torch.tensor(
            _class_weights(y_train[t], k), dtype=torch.float32, device=device
        )
        for t, k in tasks.items()
    }
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    if has_val:
        xv = torch.from_numpy(x_val).to(device)
        yv = {t: torch.from_numpy(y_val[t].astype(np.int64)).to(device) for t in tasks}
    n = xt.shape[0]
    bs = cfg.batch_size
    best_loss, best_epoch, best_state, bad = math.inf, 0, None, 0
    history: list[dict[str, float]] = []
    n_epochs = epochs or cfg.epochs
    for epoch in range(1, n_epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen).to(device)
        total = 0.0
        # Drop a trailing batch of 1: BatchNorm cannot train on it.
        n_batches = max(1, n // bs if n % bs == 1 else math.ceil(n / bs))
        for b in range(n_batches):
            idx = order[b * bs : (b + 1) * bs]
            logits = model(xt[idx])
            loss = multitask_loss(
                logits,
                {t: yt[t][idx] for t in tasks},
                weights=model.loss_weights,
                class_weights=cw,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
        row = {"epoch": epoch, "loss": total / n}
        if has_val:
            model.eval()
            with torch.no_grad():
                vl = 0.0
                for b in range(0, xv.shape[0], 4096):
                    out = model(xv[b : b + 4096])
                    vl += float(
                        multitask_loss(
                            out,
                            {t: yv[t][b : b + 4096] for t in tasks},
                            weights=model.loss_weights,
                            class_weights=cw,
                        )
                    ) * min(4096, xv.shape[0] - b)
            vl /= xv.shape[0]
            row["val_loss"] = vl
            sched.step(vl)
            if vl < best_loss - 1e-6:
                best_loss, best_epoch, bad = vl, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
        else:
            best_epoch = epoch
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if has_val and bad >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(model.cpu(), best_epoch, history)


def predict_proba(
    model: Any, x: np.ndarray, *, batch: int = 4096
) -> dict[str, np.ndarray]:
    """Softmax probabilities per task, each (n, n_classes) float64."""
    import torch

    model.eval()
    outs: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for b in range(0, len(x), batch):
            logits = model(torch.from_numpy(x[b : b + batch]))
            for t, v in logits.items():
                outs.setdefault(t, []).append(torch.softmax(v, dim=1).double().numpy())
    return {t: np.concatenate(v) for t, v in outs.items()}


#: Models whose task heads are trained in one network. ``mtcnn`` shares its trunk
#: on purpose; ``logreg``'s heads share no parameter, so one joint fit equals
#: separate fits (up to the common early-stopping epoch) at half the cost.
JOINT_MODELS = frozenset({"mtcnn", "logreg"})


def task_groups(model: str, tasks: Sequence[str]) -> list[tuple[str, ...]]:
    """Which tasks share one fit: all for :data:`JOINT_MODELS`, else one each."""
    return [tuple(tasks)] if model in JOINT_MODELS else [(t,) for t in tasks]


# -- cross-validation -----------------------------------------------------------------
@dataclass
class CVResult:
    """Pooled held-out predictions of one protocol run."""

    proba: dict[str, np.ndarray]  # task -> (n_windows, k), NaN where never tested
    tested: np.ndarray  # bool (n_windows,)
    fold_of: np.ndarray  # int (n_windows,): fold that tested the window, -1 never
    majority: dict[str, np.ndarray]  # task -> majority-baseline prediction
    folds: list[dict[str, Any]]
    notes: list[str]


def _splits(
    ds: Dataset, cfg: TrainConfig, protocol: str, win_labels: np.ndarray
) -> tuple[list[Split], list[str]]:
    """Splits of ``protocol`` and the protocol's notes (e.g. one-class folds)."""
    t = ds.table
    video_ratings = None
    if cfg.train_videos == "top-bottom":
        first = next(iter(ds.tasks))
        if first == "class":
            raise ConfigError("--train-videos top-bottom needs rating targets")
        r = t.rating(first)
        video_ratings = {
            v: float(np.nanmean(r[t.trial_video == v]))
            for v in np.unique(t.trial_video)
        }
    import warnings

    from emomon.offline.protocols import SplitWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SplitWarning)
        splits = make_splits(
            protocol,
            subjects=t.subject,
            videos=t.video,
            trials=t.trial,
            labels=win_labels,
            video_ratings=video_ratings,
            train_videos=cfg.train_videos if protocol == "lovo" else "all",
            n_folds=cfg.n_folds,
            val_fraction=cfg.val_fraction,
            seed=cfg.seed,
        )
    # One-class training folds are legitimate (video-level labels); the model then
    # predicts that class and the pooled metrics show it. Report, don't spam.
    return splits, sorted({str(w.message) for w in caught})


def _run_fold(
    ds: Dataset,
    cfg: TrainConfig,
    k: int,
    split: Split,
    win: Mapping[str, np.ndarray],
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Normalise with training statistics, fit, predict one fold's test windows."""
    t = ds.table
    mean, std = fit_zscore(t.X[split.train], layout=ds.layout)

    def prep(idx: np.ndarray) -> np.ndarray:
        return model_input(
            t.X[idx], mean=mean, std=std, layout=ds.layout, ch_names=t.ch_names
        )

    x_tr, x_va, x_te = prep(split.train), prep(split.val), prep(split.test)
    info: dict[str, Any] = {
        "fold": split.name,
        "n_train": int(split.train.size),
        "n_val": int(split.val.size),
        "n_test": int(split.test.size),
    }
    proba: dict[str, np.ndarray] = {}
    for group in task_groups(cfg.model, list(ds.tasks)):
        res = fit_model(
            cfg,
            tasks={g: len(ds.tasks[g]) for g in group},
            x_train=x_tr,
            y_train={g: win[g][split.train] for g in group},
            x_val=x_va,
            y_val={g: win[g][split.val] for g in group},
            seed=cfg.seed + k,
            on_epoch=on_epoch,
        )
        proba.update(predict_proba(res.model, x_te))
        for g in group:
            info[f"best_epoch_{g}"] = res.best_epoch
    return proba, info


# Worker processes receive the dataset once (initializer), then only fold indices.
_WORKER: dict[str, Any] = {}


def _init_worker(ds: Dataset, cfg: TrainConfig) -> None:
    import torch

    torch.set_num_threads(1)  # parallelism comes from the processes
    _WORKER["ds"], _WORKER["cfg"] = ds, cfg


def _worker_fold(k: int, split: Split, win: dict[str, np.ndarray]):
    return _run_fold(_WORKER["ds"], _WORKER["cfg"], k, split, win)


def _permuted_score(
    ds: Dataset, cfg: TrainConfig, protocol: str, labels: dict[str, np.ndarray]
) -> dict[str, float]:
    """Pooled balanced accuracy per task of one CV run with permuted labels."""
    cv = cross_validate(ds, cfg, protocol, trial_labels=labels)
    return _pooled_balanced_accuracy(ds, cv, labels)


def _worker_permutation(protocol: str, labels: dict[str, np.ndarray]):
    return _permuted_score(_WORKER["ds"], _WORKER["cfg"], protocol, labels)


def _make_pool(ds: Dataset, cfg: TrainConfig, n_tasks: int):
    """A spawn-based process pool holding ``ds``, or None when serial is better.

    Starting workers costs a few seconds (each imports torch), so small jobs stay
    in this process.
    """
    work = ds.table.X.shape[0] * n_tasks
    if cfg.n_jobs < 2 or n_tasks < 2 or work < 50_000:
        return None
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # spawn: forking a process that already runs torch threads can deadlock.
    return ProcessPoolExecutor(
        max_workers=min(cfg.n_jobs, n_tasks),
        mp_context=mp.get_context("spawn"),
        initializer=_init_worker,
        initargs=(ds, cfg),
    )


def cross_validate(
    ds: Dataset,
    cfg: TrainConfig,
    protocol: str,
    *,
    trial_labels: Mapping[str, np.ndarray] | None = None,
    progress: Any = None,
    pool: Any = None,
    splits: tuple[list[Split], list[str]] | None = None,
) -> CVResult:
    """Run one protocol: per fold normalise, train, predict the held-out windows.

    Parameters
    ----------
    trial_labels : mapping, optional
        Labels per task (n_trials,), default the dataset's (permutations pass
        shuffled ones).
    progress : tqdm bar, optional
        Updated once per fold.
    pool : ProcessPoolExecutor, optional
        From :func:`_make_pool`; folds then run in parallel.
    splits : (splits, notes), optional
        From :func:`_splits` for these labels, when the caller already has them.
    """
    t = ds.table
    labels_t = trial_labels or ds.trial_labels
    win = {task: np.asarray(labels_t[task])[t.trial] for task in ds.tasks}
    first = next(iter(ds.tasks))
    splits, notes = splits or _splits(ds, cfg, protocol, win[first])
    n = t.X.shape[0]
    proba = {task: np.full((n, len(c)), np.nan) for task, c in ds.tasks.items()}
    majority = {task: np.full(n, -1, dtype=np.int64) for task in ds.tasks}
    fold_of = np.full(n, -1, dtype=np.int64)
    if pool is not None:
        futures = [pool.submit(_worker_fold, k, sp, win) for k, sp in enumerate(splits)]
        results = []
        for f in futures:
            results.append(f.result())
            if progress is not None:
                progress.update()
    else:
        results = []
        for k, split in enumerate(splits):

            def on_epoch(row: dict[str, float], name: str = split.name) -> None:
                progress.set_postfix(fold=name, **row)

            results.append(
                _run_fold(
                    ds, cfg, k, split, win, on_epoch if progress is not None else None
                )
            )
            if progress is not None:
                progress.update()
    folds = []
    for k, (split, (fold_proba, info)) in enumerate(zip(splits, results, strict=True)):
        for task, p in fold_proba.items():
            proba[task][split.test] = p
        for task in ds.tasks:
            majority[task][split.test] = majority_baseline(
                win[task][split.train], win[task][split.test]
            )
        fold_of[split.test] = k
        folds.append(info)
    return CVResult(proba, fold_of >= 0, fold_of, majority, folds, notes)


def _pooled_balanced_accuracy(
    ds: Dataset, cv: CVResult, trial_labels: Mapping[str, np.ndarray]
) -> dict[str, float]:
    out = {}
    for task in ds.tasks:
        y = np.asarray(trial_labels[task])[ds.table.trial][cv.tested]
        out[task] = summarize(y, cv.proba[task][cv.tested])["balanced_accuracy"]
    return out


def _permutation_null(
    ds: Dataset, cfg: TrainConfig, protocol: str, *, progress: bool, pool: Any
) -> list[dict[str, float]]:
    """Rerun the whole cross-validation with labels permuted by video, n times.

    See :func:`~emomon.offline.metrics.permute_videos`: videos, not trials, are
    the exchangeable units under the null. One permutation is applied to every
    task, keeping their joint structure; all windows of a trial keep one label.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(cfg.seed + 7919)
    jobs = []
    t = ds.table
    for _ in range(cfg.permutations):
        perm = permute_videos(t.trial_subject, t.trial_video, rng=rng)
        jobs.append({task: lab[perm] for task, lab in ds.trial_labels.items()})
    bar = tqdm(
        total=len(jobs),
        desc=f"{protocol} permutations",
        unit="perm",
        disable=not progress,
    )
    out = []
    try:
        if pool is not None:
            futures = [pool.submit(_worker_permutation, protocol, j) for j in jobs]
            for f in futures:
                out.append(f.result())
                bar.update()
        else:
            for j in jobs:
                out.append(_permuted_score(ds, cfg, protocol, j))
                bar.update()
    finally:
        bar.close()
    return out


def evaluate_protocol(
    ds: Dataset,
    cfg: TrainConfig,
    protocol: str,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Cross-validate one protocol, with nulls, CIs and per-group tables.

    Returns
    -------
    dict
        The ``results[protocol]`` entry of the report (see :mod:`report`).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    first = next(iter(ds.tasks))
    split_info = _splits(ds, cfg, protocol, ds.trial_labels[first][ds.table.trial])
    n_folds = len(split_info[0])
    bar = tqdm(
        total=n_folds,
        desc=f"{protocol} {cfg.model}",
        unit="fold",
        disable=not progress,
    )
    pool = _make_pool(ds, cfg, max(n_folds, cfg.permutations))
    try:
        try:
            cv = cross_validate(
                ds, cfg, protocol, progress=bar, pool=pool, splits=split_info
            )
        finally:
            bar.close()
        t_cv = time.perf_counter() - t0
        null: dict[str, list[float]] = {task: [] for task in ds.tasks}
        if cfg.permutations:
            for scores in _permutation_null(
                ds, cfg, protocol, progress=progress, pool=pool
            ):
                for task, ba in scores.items():
                    null[task].append(ba)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    t = ds.table
    tested = cv.tested
    clusters = cluster_ids(t.subject[tested], t.video[tested])
    tasks_out: dict[str, Any] = {}
    for task, classes in ds.tasks.items():
        y = ds.trial_labels[task][t.trial][tested]
        p = cv.proba[task][tested]
        metrics = summarize(y, p, n_classes=len(classes))
        lo, hi = (
            cluster_bootstrap_ci(y, p, clusters, n_boot=cfg.n_boot, seed=cfg.seed)
            if cfg.n_boot
            else (math.nan, math.nan)
        )
        maj = summarize(
            y, np.eye(len(classes))[cv.majority[task][tested]], n_classes=len(classes)
        )
        perm = None
        if cfg.permutations:
            perm = {
                "n": cfg.permutations,
                "p_value": permutation_p_value(
                    metrics["balanced_accuracy"], null[task]
                ),
                "null": null[task],
            }
        p_high = p[:, 1] if p.shape[1] == 2 else p
        per_fold = []
        for f in cv.folds:
            per_fold.append({k: v for k, v in f.items() if not k.startswith("best")})
            per_fold[-1]["best_epoch"] = f.get(f"best_epoch_{task}")
        tasks_out[task] = {
            "classes": classes,
            "metrics": metrics,
            "ci95": {"balanced_accuracy": [lo, hi]},
            "majority_baseline": {
                "accuracy": maj["accuracy"],
                "balanced_accuracy": maj["balanced_accuracy"],
            },
            "permutation": perm,
            "above_chance": bool(perm is not None and perm["p_value"] < 0.05),
            "per_video": group_table(y, p_high, t.video[tested]),
            "per_subject": group_table(y, p_high, t.subject[tested]),
            "per_fold": _fold_metrics(per_fold, cv, ds, task),
        }
    return {
        "protocol": protocol,
        "leaky": protocol in LEAKY_PROTOCOLS,
        "n_folds": len(cv.folds),
        "model": cfg.model,
        "labels": cfg.labels,
        "seconds": round(t_cv, 2),
        "notes": cv.notes,
        "tasks": tasks_out,
    }


def _fold_metrics(
    rows: list[dict[str, Any]], cv: CVResult, ds: Dataset, task: str
) -> list[dict[str, Any]]:
    """Add each fold's test accuracy and balanced accuracy to its row."""
    y_all = ds.trial_labels[task][ds.table.trial]
    for k, row in enumerate(rows):
        m = cv.fold_of == k
        if not m.any():
            continue
        s = summarize(y_all[m], cv.proba[task][m], n_classes=len(ds.tasks[task]))
        row["accuracy"] = s["accuracy"]
        row["balanced_accuracy"] = s["balanced_accuracy"]
    return rows


# -- final model and export -------------------------------------------------------
def train_final(
    ds: Dataset, cfg: TrainConfig, *, epochs: int
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Train on all windows for ``epochs`` epochs; returns (module, mean, std)."""
    import torch

    t = ds.table
    mean, std = fit_zscore(t.X, layout=ds.layout)
    x = model_input(t.X, mean=mean, std=std, layout=ds.layout, ch_names=t.ch_names)
    win = {task: ds.trial_labels[task][t.trial] for task in ds.tasks}
    models = []
    for group in task_groups(cfg.model, list(ds.tasks)):
        res = fit_model(
            cfg,
            tasks={g: len(ds.tasks[g]) for g in group},
            x_train=x,
            y_train={g: win[g] for g in group},
            epochs=epochs,
            seed=cfg.seed,
        )
        models.append(res.model)

    class Combined(torch.nn.Module):
        """Per-task networks exported as one graph with one output per task."""

        def __init__(self, parts: list[torch.nn.Module]) -> None:
            super().__init__()
            self.parts = torch.nn.ModuleList(parts)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            out: dict[str, torch.Tensor] = {}
            for part in self.parts:
                out.update(part(x))
            return out

    module = models[0] if len(models) == 1 else Combined(models)
    return module.eval(), mean, std


def export_model(
    ds: Dataset,
    cfg: TrainConfig,
    report: Mapping[str, Any],
    out_dir: Path,
) -> dict[str, Any]:
    """Train the final model on all data and write ``model.onnx`` with its contract."""
    from emomon.offline.export import export_onnx

    main = report["results"][cfg.protocols[0]]
    epochs = [
        f["best_epoch"]
        for task in main["tasks"].values()
        for f in task["per_fold"]
        if f.get("best_epoch")
    ]
    n_epochs = int(np.median(epochs)) if epochs else cfg.epochs
    module, mean, std = train_final(ds, cfg, epochs=max(1, n_epochs))
    t = ds.table
    n_feat = t.X.shape[2]
    shape = input_shape(layout=ds.layout, n_channels=len(t.ch_names), n_features=n_feat)
    headline = {
        task: {
            "balanced_accuracy": r["metrics"]["balanced_accuracy"],
            "auc": r["metrics"]["auc"],
            "ci95_low": r["ci95"]["balanced_accuracy"][0],
            "ci95_high": r["ci95"]["balanced_accuracy"][1],
            "p_value": (r["permutation"] or {}).get("p_value", float("nan")),
        }
        for task, r in main["tasks"].items()
    }
    contract = ModelContract(
        input_name="eeg" if ds.layout == "eeg" else "features",
        input_kind=ds.layout,
        input_shape=shape,
        spec=t.spec,
        ch_names=t.ch_names,
        sfreq=t.sfreq,
        norm_mean=mean,
        norm_std=std,
        tasks=ds.tasks,
        model=cfg.model,
        info={
            "dataset": cfg.dataset,
            "protocol": cfg.protocols[0],
            "labels": cfg.labels,
            "threshold": cfg.threshold,
            "metrics": _finite(headline),
            "n_subjects": int(np.unique(t.trial_subject).size),
            "n_windows": int(t.X.shape[0]),
            "final_epochs": max(1, n_epochs),
        },
    )
    path = out_dir / "model.onnx"
    parity = export_onnx(
        module,
        input_shape=shape,
        input_name=contract.input_name,
        path=path,
        metadata={"emomon": contract.to_json()},
    )
    return {"path": path.name, "parity_max_abs": float(parity)}


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dataset_info(ds: Dataset) -> dict[str, Any]:
    t = ds.table
    return {
        "name": t.dataset,
        "n_subjects": int(np.unique(t.trial_subject).size),
        "n_videos": int(np.unique(t.trial_video).size),
        "n_trials": int(t.n_trials),
        "n_windows": int(t.X.shape[0]),
        "ch_names": list(t.ch_names),
        "sfreq": t.sfreq,
        "class_balance": {
            task: np.bincount(lab, minlength=len(ds.tasks[task])).tolist()
            for task, lab in ds.trial_labels.items()
        },
    }


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["features"] = cfg.features.to_dict()
    d["protocols"] = list(cfg.protocols)
    d["targets"] = list(cfg.targets)
    d["subjects"] = list(cfg.subjects)
    return d


def _check_out_dir(out: Path) -> None:
    """Fail before hours of training if the run directory cannot be one."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(
                    f"run directory {out}: {p} is a file, not a directory; pass "
                    "another --out"
                )
            return


def _make_out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"run directory {out}: cannot create it ({exc.strerror}); pass another "
            "--out"
        ) from None


def run_training(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    export: bool | None = None,
) -> dict[str, Any]:
    """Cross-validate every protocol of ``cfg``, write the reports, export the model.

    Returns
    -------
    dict
        The report (also written to ``out_dir/report.json``).
    """
    from emomon.offline.report import write_report

    out = Path(out_dir)
    _check_out_dir(out)
    ds = load_dataset(cfg, progress=progress)
    # Created once the data loaded: a missing dataset leaves no empty run dir.
    _make_out_dir(out)
    report: dict[str, Any] = {
        "emomon_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": config_dict(cfg),
        "dataset": dataset_info(ds),
        "results": {},
    }
    for protocol in cfg.protocols:
        report["results"][protocol] = evaluate_protocol(
            ds, cfg, protocol, progress=progress
        )
    if cfg.export if export is None else export:
        report["export"] = export_model(ds, cfg, report, out)
    write_report(report, out)
    return report


def config_from_report(report: Mapping[str, Any], *, where: str) -> TrainConfig:
    """The :class:`TrainConfig` a run was made with (``report["config"]``)."""
    raw = report.get("config")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: no 'config' object; was it written by emomon?")
    train = dict(raw)
    spec = FeatureSpec.from_dict(train.pop("features", {}) or {})
    synthetic = train.pop("synthetic", {}) or {}
    hparams = train.pop("hparams", {}) or {}
    section = f"{where} config"
    return _assemble_config(
        train, spec=spec, synthetic=synthetic, hparams=hparams, section=section
    )


def export_run(
    run_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Export the final model of an earlier run without cross-validating again.

    Reads ``run_dir/report.json`` (from ``emomon evaluate`` or ``emomon train
    --no-export``), reloads the same data with the same config, trains the final
    model on all of it (as many epochs as the run's folds chose) and writes
    ``run_dir/model.onnx``, whose contract carries the run's headline metrics.
    ``report.json`` gains the ``export`` entry.

    Parameters
    ----------
    run_dir : str or Path
        The run directory.
    data_dir : str or Path, optional
        Where the data is now, if it moved since the run.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The report's ``export`` entry: ``path`` and ``parity_max_abs``.

    Raises
    ------
    ConfigError
        If the run has no usable ``report.json`` or the data no longer matches it.
    """
    from emomon.offline.report import write_report

    out = Path(run_dir)
    path = out / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found; export needs the directory of an `emomon evaluate` "
            "or `emomon train --no-export` run"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(report, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    if "ablation" in report:
        raise ConfigError(
            f"{path} is an ablation run, which has no single model to export; "
            "export a run of `emomon evaluate` without --ablate-bands or a list of "
            "--labels"
        )
    cfg = config_from_report(report, where=str(path))
    if data_dir is not None:
        cfg = dataclasses.replace(cfg, data_dir=str(data_dir))
    main = (report.get("results") or {}).get(cfg.protocols[0])
    if not isinstance(main, Mapping) or not isinstance(main.get("tasks"), Mapping):
        raise ConfigError(f"{path}: no results for protocol '{cfg.protocols[0]}'")
    ds = load_dataset(cfg, progress=progress)
    now, then = dataset_info(ds), report.get("dataset") or {}
    for key in ("n_subjects", "n_trials", "n_windows", "ch_names"):
        if key in then and now[key] != then[key]:
            raise ConfigError(
                f"the data in {cfg.data_dir or cfg.dataset} no longer matches the "
                f"run in {out} ({key}: {now[key]!r} now, {then[key]!r} then); run "
                "`emomon train` again instead"
            )
    report["export"] = export_model(ds, cfg, report, out)
    write_report(report, out, plots=False)
    return report["export"]


def run_ablation(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    kind: str,
    settings: Sequence[str],
    progress: bool = True,
) -> dict[str, Any]:
    """The seed papers' factor experiments: each band alone, or label methods.

    Parameters
    ----------
    kind : {"bands", "labels"}
        ``bands``: the first protocol with each band of the spec alone (plus all
        bands). ``labels``: with each label method in ``settings``.
    settings : sequence of str
        Band names (``bands``; empty = every band) or label methods (``labels``).
    """
    from emomon.offline.report import write_report

    out = Path(out_dir)
    _make_out_dir(out)
    protocol = cfg.protocols[0]
    rows = []
    results = {}
    runs: list[tuple[str, TrainConfig]] = []
    if kind == "bands":
        names = list(settings) or list(cfg.features.band_names)
        valid = cfg.features.band_names
        bad = [b for b in names if b not in valid]
        if bad:
            raise ConfigError(
                f"--ablate-bands: unknown band '{bad[0]}'; bands: {', '.join(valid)}"
            )
        runs.append(("all", cfg))
        for b in names:
            band = tuple(x for x in cfg.features.bands if x.name == b)
            runs.append(
                (b, dataclasses.replace(
                    cfg, features=dataclasses.replace(cfg.features, bands=band)
                ))
            )  # fmt: skip
    elif kind == "labels":
        for m in settings:
            if m not in LABEL_METHODS:
                raise ConfigError(
                    f"--labels: unknown method '{m}'; "
                    f"choose from {', '.join(LABEL_METHODS)}"
                )
            runs.append((m, dataclasses.replace(cfg, labels=m)))
    else:
        raise ConfigError(f"unknown ablation kind {kind!r}")
    ds_first = None
    for name, c in runs:
        ds = load_dataset(c, progress=progress)
        ds_first = ds_first or ds
        res = evaluate_protocol(ds, c, protocol, progress=progress)
        results[name] = res
        for task, r in res["tasks"].items():
            rows.append(
                {
                    "setting": name,
                    "task": task,
                    "balanced_accuracy": r["metrics"]["balanced_accuracy"],
                    "auc": r["metrics"]["auc"],
                    "ci95": r["ci95"]["balanced_accuracy"],
                    "p_value": (r["permutation"] or {}).get("p_value"),
                    "majority_balanced_accuracy": r["majority_baseline"][
                        "balanced_accuracy"
                    ],
                }
            )
    assert ds_first is not None
    report = {
        "emomon_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": config_dict(cfg),
        "dataset": dataset_info(ds_first),
        "results": {protocol: results[runs[0][0]]},
        "ablation": {"kind": kind, "protocol": protocol, "rows": rows},
    }
    write_report(report, out)
    return report
