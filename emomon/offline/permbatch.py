"""Permutation reruns of a full-batch model (logreg), many label sets in one fit.

A permutation rerun changes the labels and nothing else: the folds, the
normalisation and the model inputs are those of the observed run. For a
full-batch model the objectives of different label sets share no parameter,
so a batch of permutations is minimised together
(:func:`~emomon.offline.linear_batch.fit_multinomial_many`: one L-BFGS per
label set, advancing in step): every step reads a fold's windows once for all
of them, a matrix product instead of one thin product per permutation. Each
permutation's optimum is reached by the same stopping rules as a fit of its
own (the weights agree to ~1e-5, not to the last bit), so a prediction can
differ only for a window that close to the decision boundary. The
batches are fixed by index (``j // PERM_BATCH``), so a run gives the same
null whichever executor runs it and however often it is
resumed: a batch with any result missing is rerun whole.

With augmentation every permutation is fit alone (:func:`fit_fold`): its
added samples are made from its own labels, as in the observed run.

A permutation whose folds differ from the first one's in the batch (a label
rule that picks the training videos, ``--train-videos top-bottom``) is fit on
its own folds, alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from emomon.offline.crossval import (
    pool_folds,
    pooled_balanced_accuracy,
    protocol_splits,
)
from emomon.offline.dataset import Dataset
from emomon.offline.executors import DataHandle
from emomon.offline.fit import class_weights, predict_proba
from emomon.offline.holdout import exchangeable_unit
from emomon.offline.protocols import Split
from emomon.offline.tasks import (
    FoldResult,
    PermutationResult,
    PermutationTask,
    fit_fold,
    fold_input,
    fold_tasks,
    torch_threads,
)
from emomon.offline.trainconfig import TrainConfig

__all__ = ["PERM_BATCH", "PermutationBatch", "batches", "run_permutation_batch"]

#: Permutations fit together. Fixed (not a function of the machine), because
#: the batch changes the last bits of each fit; 25 gives 8 tasks for 199 reruns.
PERM_BATCH = 25


@dataclass(frozen=True, eq=False)
class PermutationBatch:
    """Permutation reruns :data:`PERM_BATCH` at a time (full-batch models only).

    Attributes
    ----------
    tasks : tuple of PermutationTask
        Consecutive permutations of one protocol and config.
    """

    tasks: tuple[PermutationTask, ...]

    @property
    def indices(self) -> tuple[int, ...]:
        """Return the permutations' indices."""
        return tuple(t.index for t in self.tasks)


def batches(perms: Sequence[PermutationTask]) -> list[PermutationBatch]:
    """Group permutation tasks into their fixed batches (``index // PERM_BATCH``)."""
    groups: dict[int, list[PermutationTask]] = {}
    for p in perms:
        groups.setdefault(p.index // PERM_BATCH, []).append(p)
    return [PermutationBatch(tuple(g)) for _, g in sorted(groups.items())]


def _key(split: Split) -> tuple[bytes, bytes]:
    """Return what a full-batch fit of a fold depends on besides the labels."""
    train = np.union1d(split.train, split.val)
    return train.tobytes(), np.asarray(split.test).tobytes()


def run_permutation_batch(
    data: DataHandle, batch: PermutationBatch
) -> list[PermutationResult]:
    """Run a batch of permutation reruns; one result per permutation, in order."""
    t0 = time.perf_counter()
    ds = data.get()
    first = batch.tasks[0]
    cfg = first.config
    with torch_threads(cfg.task_threads):
        plans = [
            protocol_splits(ds, cfg, t.protocol, trial_labels=t.trial_labels)
            for t in batch.tasks
        ]
        ref = [_key(s) for s in plans[0][0]]
        joint = [i for i, (s, _) in enumerate(plans) if [_key(x) for x in s] == ref]
        if cfg.augment is not None:
            # The added samples depend on the labels (per stratum): each label
            # set has its own training set, so each is fit alone.
            joint = []
        folds: dict[int, list[FoldResult]] = {i: [] for i in range(len(plans))}
        for k, split in enumerate(plans[0][0] if joint else ()):
            fits = _fit_joint(
                ds, cfg, split, k, [batch.tasks[i].trial_labels for i in joint]
            )
            for i, res in zip(joint, fits, strict=True):
                folds[i].append(res)
        for i, t in enumerate(batch.tasks):
            if i not in joint:  # its own folds: fit it alone
                tasks = fold_tasks(plans[i][0], cfg, t.trial_labels)
                folds[i] = [fit_fold(ds, f) for f in tasks]
    out = []
    seconds = round((time.perf_counter() - t0) / len(batch.tasks), 3)
    for i, t in enumerate(batch.tasks):
        splits, notes = plans[i]
        cv = pool_folds(ds, splits, folds[i], notes, trial_labels=t.trial_labels)
        scores = pooled_balanced_accuracy(ds, cv, trial_labels=t.trial_labels)
        out.append(
            PermutationResult(
                t.index,
                {k: v if np.isfinite(v) else None for k, v in scores.items()},
                seconds,
                unit=exchangeable_unit(t.protocol),
            )
        )
    return out


def _fit_joint(
    ds: Dataset,
    cfg: TrainConfig,
    split: Split,
    k: int,
    labels: Sequence[Mapping[str, np.ndarray]],
) -> list[FoldResult]:
    """Fit one fold under every label set at once; one result per label set."""
    import torch

    from emomon.models import build_model
    from emomon.offline.linear import blas_threads, fit_multinomial
    from emomon.offline.linear_batch import ClassesDiffer, fit_multinomial_many

    train = np.union1d(split.train, split.val)
    prep = fold_input(ds, train)
    x_tr, x_te = prep(ds.table.X[train]), prep(ds.table.X[split.test])
    tasks = {name: len(c) for name, c in ds.tasks.items()}
    model = build_model(
        cfg.model, input_shape=x_tr.shape[1:], tasks=tasks, **cfg.hparams
    )
    lw = dict(model.loss_weights or {})
    targets, cws = [], []
    for lab in labels:
        win = ds.window_labels(lab)
        targets.append({task: win[task][train] for task in tasks})
        cws.append({t_: class_weights(targets[-1][t_], n) for t_, n in tasks.items()})
    opts = {"n_classes": tasks, "l2": model.hparams["l2"], "loss_weights": lw}
    with blas_threads(cfg.task_threads):
        try:
            fits = fit_multinomial_many(x_tr, targets, class_weights=cws, **opts)
        except ClassesDiffer:  # classes present differ between label sets
            fits = [
                fit_multinomial(x_tr, tg, class_weights=cw, **opts)
                for tg, cw in zip(targets, cws, strict=True)
            ]
    out = []
    for j in range(len(labels)):
        with torch.no_grad():
            for task in tasks:
                head = model.heads[task]
                head.weight.copy_(torch.from_numpy(fits[j].weight[task]))
                head.bias.copy_(torch.from_numpy(fits[j].bias[task]))
        out.append(
            FoldResult(
                fold=split.name,
                index=k,
                seed=0,
                n_train=int(train.size),
                n_val=0,
                n_test=int(split.test.size),
                test=np.asarray(split.test, dtype=np.int64),
                proba=predict_proba(model.eval(), x_te),
                best_epoch=dict.fromkeys(tasks, 0),
                seconds=0.0,
                worker="",
            )
        )
    return out
