"""Permutation reruns of logreg, many label sets at once, against one at a time."""

from __future__ import annotations

import numpy as np
import pytest

from emomon.offline.dataset import load_dataset
from emomon.offline.evaluate import permuted_labels
from emomon.offline.fit import class_weights
from emomon.offline.linear import blas_threads, fit_multinomial
from emomon.offline.linear_batch import fit_multinomial_many
from emomon.offline.permbatch import (
    PERM_BATCH,
    PermutationBatch,
    batches,
    run_permutation_batch,
)
from emomon.offline.tasks import PermutationTask, run_permutation
from emomon.offline.trainconfig import make_train_config


def test_many_fits_reach_each_problem_s_own_optimum():
    rng = np.random.default_rng(0)
    n, d = 600, 40
    x = rng.normal(size=(n, d))
    x[:, :3] += rng.normal(size=(n, 1))  # correlated columns: a harder problem
    trial = np.arange(n) // 6
    targets = [
        {
            "a": rng.integers(0, 2, trial.max() + 1)[trial],
            "b": rng.integers(0, 3, trial.max() + 1)[trial],
        }
        for _ in range(7)
    ]
    n_classes = {"a": 2, "b": 3}
    cws = [{t: class_weights(y, n_classes[t]) for t, y in tg.items()} for tg in targets]
    opts = {"n_classes": n_classes, "l2": 0.1, "loss_weights": {"a": 1.0, "b": 0.5}}
    with blas_threads(1):
        many = fit_multinomial_many(x, targets, class_weights=cws, **opts)
        for tg, cw, got in zip(targets, cws, many, strict=True):
            one = fit_multinomial(x, tg, class_weights=cw, **opts)
            for t in n_classes:
                assert np.abs(got.weight[t] - one.weight[t]).max() < 1e-4
                assert np.abs(got.bias[t] - one.bias[t]).max() < 1e-4
            assert got.grad_norm <= 1e-6
            assert got.loss == pytest.approx(one.loss, abs=1e-9)
            assert got.n_iter > 0


def test_a_label_set_with_other_classes_is_refused_for_the_caller_to_fit_alone():
    x = np.random.default_rng(1).normal(size=(40, 5))
    y = {"a": np.arange(40) % 2}
    one_class = {"a": np.zeros(40, dtype=int)}
    cws = [{"a": class_weights(t["a"], 2)} for t in (y, one_class)]
    with pytest.raises(ValueError, match="other classes present"):
        fit_multinomial_many(
            x, [y, one_class], n_classes={"a": 2}, class_weights=cws, l2=0.1
        )


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    cfg = make_train_config(
        None,
        synthetic={"n_subjects": 3, "n_videos": 6, "trial_s": 10.0},
        protocols=("lovo",),
        permutations=PERM_BATCH + 3,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    return cfg, load_dataset(cfg, progress=False)


class _Handle:
    def __init__(self, ds):
        self.ds = ds

    def get(self):
        return self.ds


def test_a_batch_gives_the_null_of_reruns_one_at_a_time(small):
    cfg, ds = small
    tasks = [
        PermutationTask(j, "lovo", cfg, lab)
        for j, lab in enumerate(permuted_labels(ds, cfg, "lovo"))
    ]
    groups = batches(tasks)
    # Fixed by index, whatever subset is asked: a resumed run forms the same.
    assert [g.indices for g in groups] == [
        tuple(range(PERM_BATCH)),
        tuple(range(PERM_BATCH, PERM_BATCH + 3)),
    ]
    assert [g.indices for g in batches(tasks[PERM_BATCH + 1 :])] == [
        (PERM_BATCH + 1, PERM_BATCH + 2)
    ]
    got = run_permutation_batch(_Handle(ds), PermutationBatch(tuple(tasks[:6])))
    assert [r.index for r in got] == list(range(6))
    for task, res in zip(tasks[:6], got, strict=True):
        alone = run_permutation(_Handle(ds), task)
        for k, v in alone.balanced_accuracy.items():
            assert res.balanced_accuracy[k] == pytest.approx(v, abs=2e-3), (
                task.index,
                k,
            )
