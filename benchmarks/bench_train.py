"""LOVO wall time for logreg and cnn2d on the 8-subject synthetic set.

The default synthetic set (8 subjects x 20 videos x 60 s) is read in memory,
features are computed once (timed separately), then leave-one-video-out is run
with the default training settings (Adam, batch 64, lr 1e-3, up to 30 epochs,
early stopping) for:

- logreg: all 20 folds, wall time with 2 worker processes (the target: < 60 s on 2
  cores), plus each fold's time from a serial run;
- cnn2d: the first ``--cnn2d-folds`` folds, timed one by one (the full run is
  ~20x that); on a CUDA machine pass ``--device cuda``;
- with ``--ray``: the same LOVO tasks (``--ray-model``, default mlp, on
  ``--ray-subjects`` x ``--ray-videos``) serial in this process, then on a local
  Ray cluster of 2 one-CPU workers that this script starts and stops (the data
  put once, workers cold): the wall time of both and their ratio. ``--only-ray``
  times only that row and writes nothing (a quick check: ``--only-ray
  --ray-subjects 3 --ray-videos 4``).

Usage: python benchmarks/bench_train.py [--cnn2d-folds 2] [--device cpu] [--ray]
Results: benchmarks/results/train.json and the README table.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import tempfile
import time

import numpy as np
from _common import parse_args, parser, update_readme_table, write_result

from emomon.offline.crossval import protocol_splits
from emomon.offline.dataset import load_dataset
from emomon.offline.evaluate import evaluate_protocol
from emomon.offline.executors import SerialExecutor
from emomon.offline.tasks import fold_tasks, run_fold
from emomon.offline.trainconfig import TrainConfig


def per_fold_times(ds, cfg, n_folds: int | None) -> list[dict]:
    """Run fold tasks one by one in this process and time each (each with the
    config's task_threads torch threads)."""
    splits, _ = protocol_splits(ds, cfg, "lovo")
    tasks = fold_tasks(splits[:n_folds], cfg)
    rows = []
    with SerialExecutor() as ex:
        for res in ex.map(run_fold, ex.share(ds), tasks):
            rows.append(
                {
                    "fold": res.fold,
                    "seconds": round(res.seconds, 2),
                    "n_train": res.n_train,
                    "best_epochs": dict(res.best_epoch),
                }
            )
            print(f"  {cfg.model} fold {res.fold}: {res.seconds:.2f} s", flush=True)
    return rows


def ray_vs_serial(args) -> dict:
    """LOVO of ``--ray-model`` serial, then on a local 2-CPU Ray cluster."""
    # A token of its own (else Ray writes one to ~/.ray/auth_token), set before
    # Ray's first import, when it reads its authentication settings.
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    import ray

    from emomon.offline.ray_executor import RayExecutor

    with tempfile.TemporaryDirectory() as cache:
        cfg = TrainConfig(
            dataset="synthetic",
            synthetic={
                "n_subjects": args.ray_subjects,
                "n_videos": args.ray_videos,
                "seed": 1,
            },
            protocols=("lovo",),
            model=args.ray_model,
            n_boot=0,
            cache_dir=cache,
            device=args.device,
            task_threads=1,
        )
        ds = load_dataset(cfg, progress=False)
        t0 = time.perf_counter()
        serial = evaluate_protocol(ds, cfg, "lovo", progress=False, executor="serial")
        t_serial = time.perf_counter() - t0
        # A new local cluster ("local": never one this machine already runs).
        ray_tmp = tempfile.mkdtemp(prefix="emr-", dir="/tmp")  # short socket paths
        try:
            ray.init(
                address="local",
                num_cpus=2,
                include_dashboard=False,
                object_store_memory=200_000_000,
                logging_level="WARNING",
                _temp_dir=ray_tmp,  # not /tmp/ray, which `auto` would find
            )
            address = ray.get_runtime_context().gcs_address
            t0 = time.perf_counter()
            with RayExecutor(address, cpus_per_task=cfg.task_threads) as ex:
                on_ray = evaluate_protocol(ds, cfg, "lovo", progress=False, executor=ex)
            t_ray = time.perf_counter() - t0
        finally:
            ray.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)
    same = all(serial.tasks[t].metrics == on_ray.tasks[t].metrics for t in serial.tasks)
    row = {
        "model": cfg.model,
        "subjects_x_videos": f"{args.ray_subjects}x{args.ray_videos}",
        "windows": int(ds.table.X.shape[0]),
        "folds": serial.n_folds,
        "serial_wall_s": round(t_serial, 2),
        "ray_2_workers_wall_s": round(t_ray, 2),
        "speedup": round(t_serial / t_ray, 2),
        "same_metrics": same,
    }
    print(
        f"{cfg.model} LOVO {row['folds']} folds: serial {t_serial:.1f} s, "
        f"Ray 2 local workers {t_ray:.1f} s (x{row['speedup']}), same "
        f"metrics: {same}"
    )
    return row


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--cnn2d-folds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ray", action="store_true", help="add the Ray vs serial row")
    ap.add_argument("--only-ray", action="store_true", help="only that row; no files")
    ap.add_argument("--ray-model", default="mlp")
    ap.add_argument("--ray-subjects", type=int, default=8)
    ap.add_argument("--ray-videos", type=int, default=20)
    args = parse_args(ap)
    if args.only_ray:
        ray_vs_serial(args)
        return
    ray_row = ray_vs_serial(args) if args.ray else None

    with tempfile.TemporaryDirectory() as cache:
        base = TrainConfig(
            dataset="synthetic",
            synthetic={"n_subjects": 8, "n_videos": 20, "seed": 1},
            protocols=("lovo",),
            n_boot=200,
            cache_dir=cache,
            device=args.device,
        )
        t0 = time.perf_counter()
        logreg = dataclasses.replace(base, model="logreg", n_jobs=2)
        ds_flat = load_dataset(logreg, progress=False)
        t_feat = time.perf_counter() - t0
        print(f"features (flat): {t_feat:.1f} s, {ds_flat.table.X.shape[0]} windows")

        t0 = time.perf_counter()
        res = evaluate_protocol(ds_flat, logreg, "lovo", progress=False)
        t_logreg = time.perf_counter() - t0
        print(f"logreg LOVO 20 folds, 2 jobs: {t_logreg:.1f} s")
        serial = dataclasses.replace(logreg, n_jobs=1)
        logreg_folds = per_fold_times(ds_flat, serial, None)

        # serial, on both cores: the run the table's cnn2d row has always timed
        cnn = dataclasses.replace(base, model="cnn2d", n_jobs=1, task_threads=2)
        ds_grid = load_dataset(cnn, progress=False)
        cnn_folds = per_fold_times(ds_grid, cnn, args.cnn2d_folds)

    cnn_mean = float(np.mean([r["seconds"] for r in cnn_folds]))
    result = {
        "config": {
            "dataset": "synthetic 8 subjects x 20 videos x 60 s (seed 1)",
            "windows": int(ds_flat.table.X.shape[0]),
            "batch_size": base.batch_size,
            "epochs_max": base.epochs,
            "patience": base.patience,
            "device": args.device,
        },
        "features_s": round(t_feat, 2),
        "logreg": {
            "lovo_wall_s_2_jobs": round(t_logreg, 2),
            "folds": logreg_folds,
            "balanced_accuracy": {
                t: r.metrics.balanced_accuracy for t, r in res.tasks.items()
            },
        },
        "cnn2d": {
            "folds_timed": len(cnn_folds),
            "folds": cnn_folds,
            "mean_fold_s": round(cnn_mean, 1),
            "lovo_20_folds_estimate_s": round(20 * cnn_mean, 0),
        },
        **({"ray_vs_serial": ray_row} if ray_row else {}),
        "targets": {"logreg_lovo_wall_s_max": 60.0},
        "meets_targets": bool(t_logreg < 60.0),
    }
    path = write_result("train", result)
    print(f"wrote {path}")
    if not args.no_readme:
        lf = [r["seconds"] for r in logreg_folds]
        update_readme_table(
            "train",
            "| LOVO training (8 subj x 20 videos x 60 s, batch 64) | value |\n"
            "|---|---|\n"
            f"| logreg, 20 folds, 2 jobs, wall | {t_logreg:.1f} s (target < 60 s) |\n"
            f"| logreg per fold (serial) | median {np.median(lf):.2f} s, "
            f"max {np.max(lf):.2f} s |\n"
            f"| cnn2d per fold ({args.device}, {len(cnn_folds)} folds timed) | "
            f"{cnn_mean:.0f} s (20 folds ~ {20 * cnn_mean / 60:.0f} min) |"
            + (
                f"\n| {ray_row['model']} LOVO {ray_row['folds']} folds, Ray with 2 "
                f"local workers vs serial | {ray_row['ray_2_workers_wall_s']:.1f} s "
                f"vs {ray_row['serial_wall_s']:.1f} s (x{ray_row['speedup']}) |"
                if ray_row
                else ""
            ),
        )


if __name__ == "__main__":
    main()
