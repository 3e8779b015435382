"""One protocol, evaluated: folds and permutation runs through an executor.

Then the pooled metrics with their nulls, CIs and per-group tables.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from emomon.offline.augreport import augment_summary
from emomon.offline.crossval import (
    CVResult,
    pool_folds,
    pooled_balanced_accuracy,
    protocol_splits,
)
from emomon.offline.dataset import Dataset
from emomon.offline.executors import MIN_PARALLEL_WORK, FoldExecutor, make_executor
from emomon.offline.figdata import task_figures
from emomon.offline.holdout import HOLDOUTS, exchangeable_unit
from emomon.offline.metrics import group_table, summarize
from emomon.offline.permbatch import batches, run_permutation_batch
from emomon.offline.protocols import LEAKY_PROTOCOLS
from emomon.offline.runreport import (
    Baseline,
    FoldRow,
    GroupRow,
    ProtocolResult,
    TaskResult,
)
from emomon.offline.scoring import permute_by_unit, score_task, window_units
from emomon.offline.tasks import (
    FoldResult,
    FoldTask,
    PermutationResult,
    PermutationTask,
    fold_tasks,
    run_fold,
    run_permutation,
)
from emomon.offline.trainconfig import TrainConfig

if TYPE_CHECKING:
    from emomon.offline.runfolder import TaskStore

__all__ = [
    "evaluate_protocol",
    "exchangeable_unit",
    "parallel_work",
    "permuted_labels",
    "score_protocol",
]


def permuted_labels(
    ds: Dataset, cfg: TrainConfig, protocol: str
) -> list[dict[str, np.ndarray]]:
    """Draw the trial labels of each of the config's permutation runs.

    Drawn by the protocol's exchangeable unit
    (:func:`~emomon.offline.scoring.permute_by_unit`: videos for leave-one-video-
    out, subjects for leave-one-subject-out, trials for window splits; never by
    window) from one stream seeded by the run seed; one permutation is applied to
    every task, keeping their joint structure.
    """
    rng = np.random.default_rng(cfg.seed + 7919)
    t = ds.table
    unit = exchangeable_unit(protocol)
    out = []
    for _ in range(cfg.n_permutations):
        perm = permute_by_unit(unit, t.trial_subject, t.trial_video, rng=rng)
        out.append({task: lab[perm] for task, lab in ds.trial_labels.items()})
    return out


#: How many times cheaper a full-batch fit (logreg) is than an Adam fit of the
#: same windows, for the choice between this process and worker processes.
FULL_BATCH_COST = 10


@contextlib.contextmanager
def _executor(
    executor: FoldExecutor | str, cfg: TrainConfig, n_windows: int, n_tasks: int
) -> Iterator[FoldExecutor]:
    """Yield the caller's executor, or a new one of that kind (closed afterwards)."""
    if isinstance(executor, FoldExecutor):
        yield executor
        return
    with make_executor(
        executor,
        n_jobs=cfg.n_jobs,
        n_windows=n_windows,
        n_tasks=n_tasks,
        task_threads=cfg.task_threads,
    ) as ex:
        yield ex


def evaluate_protocol(
    ds: Dataset,
    cfg: TrainConfig,
    protocol: str,
    *,
    progress: bool = True,
    executor: FoldExecutor | str = "auto",
    store: TaskStore | None = None,
) -> ProtocolResult:
    """Cross-validate one protocol, with nulls, CIs and per-group tables.

    Parameters
    ----------
    ds : Dataset
    cfg : TrainConfig
    protocol : str
    progress : bool
        Progress bars over folds and permutation runs (stderr).
    executor : FoldExecutor or {"auto", "serial", "process"}
        Where the fold and permutation tasks run; a name makes a new executor for
        this protocol (``auto``: worker processes for large jobs only). A Ray
        cluster comes as a :class:`~emomon.offline.ray_executor.RayExecutor`
        (:func:`~emomon.offline.executors.run_executor` makes one per run).
        Results are saved as tasks finish, in any order.
    store : TaskStore, optional
        Where each finished fold and permutation result is saved as it lands,
        and found again by a resumed run (those tasks are not rerun).

    Returns
    -------
    ProtocolResult
    """
    from tqdm.auto import tqdm

    from emomon.models import model_full_batch

    t0 = time.perf_counter()
    splits, notes = protocol_splits(ds, cfg, protocol)
    folds = fold_tasks(splits, cfg)
    drawn = permuted_labels(ds, cfg, protocol)
    # Reruns whose labels the permutation left as they are (the unit it
    # exchanges does not vary them: LOSO where every subject gives a video
    # the same label) would refit the observed run: they score its value.
    n_same = {
        task: sum(np.array_equal(d[task], lab) for d in drawn)
        for task, lab in ds.trial_labels.items()
    }
    perms = [
        PermutationTask(j, protocol, cfg, labels)
        for j, labels in enumerate(drawn)
        if not all(np.array_equal(labels[t], v) for t, v in ds.trial_labels.items())
    ]
    full_batch = model_full_batch(cfg.model)
    unit = exchangeable_unit(protocol)
    done_folds = _saved_folds(store, folds)
    done_perms = _saved_perms(store, [p.index for p in perms], unit)
    todo_folds = [f for f in folds if f.index not in done_folds]
    todo_perms = [p for p in perms if p.index not in done_perms]
    if full_batch:  # a batch with a result missing reruns whole (same null)
        todo_perms = [
            p
            for b in batches(perms)
            if set(b.indices) - set(done_perms)
            for p in b.tasks
        ]
    n_windows, n_tasks = parallel_work(
        cfg,
        n_windows=ds.table.X.shape[0],
        n_folds=len(folds),
        todo_folds=len(todo_folds),
        todo_perms=todo_perms,
    )
    with _executor(executor, cfg, n_windows, n_tasks) as ex:
        data = ex.share(ds)
        with tqdm(
            total=len(folds),
            initial=len(done_folds),
            desc=f"{protocol} {cfg.model}",
            unit="fold",
            disable=not progress,
        ) as bar:
            for res in ex.map(run_fold, data, todo_folds, ordered=False):
                if store is not None:
                    store.save("fold", res.index, res.to_dict())
                done_folds[res.index] = res
                bar.set_postfix(fold=res.fold)
                bar.update()
        results = [done_folds[f.index] for f in folds]
        cv = pool_folds(ds, splits, results, notes)
        t_cv = time.perf_counter() - t0
        with tqdm(
            total=len(perms),
            initial=len(done_perms),
            desc=f"{protocol} permutations",
            unit="perm",
            disable=not progress or not perms,
        ) as bar:
            for got in _run_perms(ex, data, todo_perms, full_batch):
                for pres in got:
                    if pres.index in done_perms:
                        continue  # saved before (a batch reruns whole): kept as is
                    if store is not None:
                        store.save("perm", pres.index, pres.to_dict())
                    done_perms[pres.index] = pres
                    bar.update()
    observed = pooled_balanced_accuracy(ds, cv)
    null: dict[str, list[float]] = {task: [] for task in ds.tasks}
    for j in range(len(drawn)):
        for task in ds.tasks:
            if j not in done_perms:  # labels unchanged: the observed run
                null[task].append(observed[task])
                continue
            ba = done_perms[j].balanced_accuracy[task]
            null[task].append(math.nan if ba is None else ba)
    return score_protocol(ds, cfg, protocol, cv, null, seconds=t_cv, n_same=n_same)


def parallel_work(
    cfg: TrainConfig,
    *,
    n_windows: int,
    n_folds: int,
    todo_folds: int,
    todo_perms: list[PermutationTask],
) -> tuple[int, int]:
    """Weigh a protocol's remaining work for the choice of executor.

    Parameters
    ----------
    cfg : TrainConfig
    n_windows : int
        Windows in the dataset.
    n_folds : int
        Folds of the protocol.
    todo_folds : int
        Folds still to fit.
    todo_perms : list of PermutationTask
        Permutation reruns still to fit.

    Returns
    -------
    n_windows, n_tasks : int
        What :func:`~emomon.offline.executors.make_executor` weighs (``auto``:
        worker processes when ``n_windows * n_tasks`` reaches
        :data:`~emomon.offline.executors.MIN_PARALLEL_WORK`).
    """
    from emomon.models import model_full_batch

    full_batch = model_full_batch(cfg.model)
    n_perm_tasks = len(batches(todo_perms)) if full_batch else len(todo_perms)
    n_tasks = max(todo_folds, n_perm_tasks)
    if full_batch and n_tasks:
        # A full-batch fit costs about a tenth of an Adam fit per window
        # (measured: ~0.3 s for an 8k-window fold), while a worker process
        # takes seconds to start (it imports torch): weigh the work by the
        # fits it holds (a permutation task runs every fold; in a batch a
        # rerun costs about a quarter of a fit of its own) at that rate.
        n_fits = todo_folds + len(todo_perms) * n_folds // 4
        n_windows = max(1, n_windows * n_fits // (FULL_BATCH_COST * n_tasks))
    if cfg.augment == "wgan" and n_tasks:
        # A generator trained per task (tens of seconds) outweighs any fit and
        # any worker's start: always worth the worker processes asked for.
        n_windows = max(n_windows, -(-MIN_PARALLEL_WORK // n_tasks))
    return n_windows, n_tasks


def _run_perms(
    ex: FoldExecutor,
    data: object,
    todo: list[PermutationTask],
    full_batch: bool,
) -> Iterator[list[PermutationResult]]:
    """Yield the permutation results as they land, a batch at a time for logreg."""
    if full_batch:
        yield from ex.map(run_permutation_batch, data, batches(todo), ordered=False)
        return
    for pres in ex.map(run_permutation, data, todo, ordered=False):
        yield [pres]


def _saved_folds(
    store: TaskStore | None, folds: list[FoldTask]
) -> dict[int, FoldResult]:
    """Return the fold results an earlier attempt saved for these tasks, by index.

    With augmentation, a result saved without the un-augmented twin (an emomon
    before ``proba_plain``) is rerun, so every fold enters the comparison.
    """
    out: dict[int, FoldResult] = {}
    for f in folds if store is not None else ():
        rec = store.load("fold", f.index)
        if rec is None:
            continue
        res = FoldResult.from_dict(rec)
        twin = f.config.augment is None or bool(res.proba_plain)
        if res.fold == f.split.name and res.seed == f.seed and twin:
            out[f.index] = res
    return out


def _saved_perms(
    store: TaskStore | None, indices: list[int], unit: str
) -> dict[int, PermutationResult]:
    """Return the permutation results an earlier attempt saved, by index.

    A result permuted by another unit (a run begun before the protocol's null
    changed) is not this null's: it is rerun, not mixed in.
    """
    out: dict[int, PermutationResult] = {}
    for j in indices if store is not None else ():
        rec = store.load("perm", j)
        if rec is not None:
            res = PermutationResult.from_dict(rec)
            if res.unit == unit:
                out[j] = res
    return out


def score_protocol(
    ds: Dataset,
    cfg: TrainConfig,
    protocol: str,
    cv: CVResult,
    null: dict[str, list[float]],
    *,
    seconds: float,
    n_same: dict[str, int] | None = None,
) -> ProtocolResult:
    """Pooled metrics of a cross-validation, with baselines, CIs and tables.

    Parameters
    ----------
    ds : Dataset
    cfg : TrainConfig
        ``n_boot``, ``seed`` and ``permutations`` shape the CIs and the test.
    protocol : str
    cv : CVResult
    null : dict of str to list of float
        Task -> balanced accuracy of each permutation run (empty without a test).
    n_same : dict of str to int, optional
        Task -> reruns whose permuted labels equal the observed ones.
    seconds : float
        Wall time of the cross-validation.

    Returns
    -------
    ProtocolResult
    """
    t = ds.table
    tested = cv.tested
    unit = exchangeable_unit(protocol)
    units = window_units(unit, t.subject[tested], t.video[tested])
    y_all = ds.window_labels()
    tasks_out: dict[str, TaskResult] = {}
    for task, classes in ds.tasks.items():
        y = y_all[task][tested]
        p = cv.proba[task][tested]
        k = len(classes)
        scored = score_task(
            y,
            p,
            units=units,
            unit=unit,
            n_classes=k,
            null=null.get(task) if cfg.n_permutations else None,
            n_same=(n_same or {}).get(task, 0),
            n_boot=cfg.n_boot,
            seed=cfg.seed,
        )
        maj = summarize(y, np.eye(k)[cv.majority[task][tested]], n_classes=k)
        p_high = p[:, 1] if p.shape[1] == 2 else p
        tasks_out[task] = TaskResult(
            classes=tuple(classes),
            metrics=scored.metrics,
            ci95=scored.ci95,
            ci_unit=unit if scored.ci95[0] is not None else None,
            majority_baseline=Baseline.from_dict(maj),
            permutation=scored.permutation,
            per_video=_groups(y, p_high, t.video[tested]),
            per_subject=_groups(y, p_high, t.subject[tested]),
            per_fold=_fold_rows(ds, cv, task, y_all[task]),
            figures=task_figures(
                ds, cv, task, y=y, proba=p, observed=scored.metrics.balanced_accuracy
            ),
            augment=None
            if cfg.augment is None
            else augment_summary(
                cv,
                y_all[task],
                task=task,
                n_classes=k,
                method=cfg.augment,
                ratio=cfg.augment_ratio,
            ),
        )
    decl = HOLDOUTS.get(protocol)
    return ProtocolResult(
        protocol=protocol,
        # Leaky by design, or measured: a fold with a trial on both sides.
        leaky=protocol in LEAKY_PROTOCOLS or cv.shared_trial_folds > 0,
        holds_out=None if decl is None else decl.holds_out,
        exchangeable=None if decl is None else decl.exchangeable,
        content_dependent=cv.shared_video_folds > 0,
        tasks=tasks_out,
        n_folds=len(cv.folds),
        model=cfg.model,
        labels=cfg.labels,
        seconds=round(seconds, 2),
        notes=(*cv.notes, *contamination_notes(cfg.model, cfg.dataset)),
    )


def contamination_notes(model: str, dataset: str) -> list[str]:
    """Say that a pretrained model saw the dataset (or its family) in pretraining.

    Parameters
    ----------
    model : str
        Registry name; its class lists ``pretrained_on`` reader names.
    dataset : str
        The reader the run evaluates on.

    Returns
    -------
    list of str
        One note when ``dataset`` is among them (a result that is not a fair
        estimate of generalisation), else empty.
    """
    from emomon.models import model_class

    if dataset not in model_class(model).pretrained_on:
        return []
    return [
        f"CONTAMINATED: {model}'s encoder was pretrained on SEED, and {dataset} "
        "is of the SEED family (same lab and recording setup); the result "
        "overestimates generalisation to unseen data"
    ]


def _groups(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> tuple[GroupRow, ...]:
    return tuple(GroupRow.from_dict(r) for r in group_table(y, p, groups))


def _fold_rows(
    ds: Dataset, cv: CVResult, task: str, y: np.ndarray
) -> tuple[FoldRow, ...]:
    """Each fold's sizes, best epoch, and test accuracy and balanced accuracy."""
    rows: list[FoldRow] = []
    n_classes = len(ds.tasks[task])
    for k, f in enumerate(cv.folds):
        m = cv.fold_of == k
        s: dict[str, float | None] = {"accuracy": None, "balanced_accuracy": None}
        if m.any():
            s = summarize(y[m], cv.proba[task][m], n_classes=n_classes)
        rows.append(
            FoldRow.from_dict(
                {
                    "fold": f.fold,
                    "n_train": f.n_train,
                    "n_val": f.n_val,
                    "n_test": f.n_test,
                    "best_epoch": f.best_epoch.get(task),
                    "accuracy": s["accuracy"],
                    "balanced_accuracy": s["balanced_accuracy"],
                    "augment": f.augment or None,
                }
            )
        )
    return tuple(rows)
