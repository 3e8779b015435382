"""Probe: LOVO logreg on the augmentation experiment's seed-0 set, none vs wgan.

At the library's WGAN steps (1000 since the experiment's table, which used
150), folds in 2 worker processes, no sanity checks; then the same on the
shuffled labels (``--labels random``). Prints pooled balanced accuracy and the
corrected resampled t-test of the per-fold differences. About 100 s per wgan
cross-validation on 2 cores.

Usage: PYTHONPATH=benchmarks python benchmarks/probes/aug_wgan_seed0.py
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor

import exp_augmentation as e
import numpy as np

from emomon.offline.crossval import (
    pool_folds,
    pooled_balanced_accuracy,
    protocol_splits,
)
from emomon.offline.cvcompare import corrected_resampled_t
from emomon.offline.dataset import load_dataset
from emomon.offline.tasks import fit_fold, fold_tasks, torch_threads
from emomon.offline.trainconfig import make_train_config

CASES = ((None, None), ("wgan", None), (None, "random"), ("wgan", "random"))


def _config(method, labels):
    cfg = e.config(0, "logreg", method, None)
    return make_train_config(cfg, labels=labels) if labels else cfg


def job(args):
    method, labels, k = args
    with torch_threads(1):
        cfg = _config(method, labels)
        ds = load_dataset(cfg, progress=False)
        splits, _ = protocol_splits(ds, cfg, "lovo")
        return fit_fold(ds, fold_tasks(splits, cfg)[k], check=False)


def main() -> None:
    sys.argv = sys.argv[:1]
    out = {}
    n = e.SYNTH["n_videos"]
    with ProcessPoolExecutor(2) as pool:
        for method, labels in CASES:
            folds = list(pool.map(job, [(method, labels, k) for k in range(n)]))
            cfg = _config(method, labels)
            ds = load_dataset(cfg, progress=False)
            splits, notes = protocol_splits(ds, cfg, "lovo")
            cv = pool_folds(ds, splits, folds, notes)
            out[method, labels] = (
                pooled_balanced_accuracy(ds, cv),
                e.fold_scores(ds, folds),
            )
            print(method, labels, out[method, labels][0], flush=True)
    a, b = out["wgan", None][1], out[None, None][1]
    for t in e.TASKS:
        d = np.array(a[t]) - np.array(b[t])
        d = d[np.isfinite(d)]
        print(t, corrected_resampled_t(d, test_train_ratio=1 / (n - 1)))


if __name__ == "__main__":
    main()
