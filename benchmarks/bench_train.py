"""LOVO training on the 8-subject synthetic set: wall time, speed against the machine.

The default synthetic set (8 subjects x 20 videos x 60 s) is read in memory,
features are computed once (timed separately), then leave-one-video-out is run
with the default training settings (Adam, batch 64, lr 1e-3, up to 30 epochs,
early stopping) for:

- logreg: all 20 folds, wall time with 2 worker processes (the target: < 60 s on 2
  cores), plus each fold's time from a serial run;
- cnn2d and mtcnn: the first ``--cnn-folds`` folds, timed one by one with
  the default one torch thread per task (the full run is ~20x that, divided by
  the workers); on a CUDA machine pass ``--device cuda``;
- training speed against the hardware (``_train_hw.py``): the measured float32
  matmul peak at 1 thread, 2 threads and 2 processes of 1 thread, and per model
  the training windows per second in the same three settings with the fraction
  of that peak reached (training FLOPs = 2 x 3 x forward multiply-adds);
- full DEAP (32 subjects x 40 videos) leave-one-video-out as a formula of the
  measured per-fold times: a fold task's time scales with its training
  windows (32 x 39 against 8 x 19 trials), 40 fold tasks per run and 40 more
  per permutation rerun, spread over W workers of one core each.

- with ``--ray``: the same LOVO tasks (``--ray-model``, default mlp, on
  ``--ray-subjects`` x ``--ray-videos``) serial in this process, then on a local
  Ray cluster of 2 one-CPU workers that this script starts and stops (the data
  put once, workers cold): the wall time of both and their ratio. ``--only-ray``
  times only that row and writes nothing (a quick check: ``--only-ray
  --ray-subjects 3 --ray-videos 4``).

Usage: python benchmarks/bench_train.py [--cnn-folds 1] [--device cpu] [--ray]
Results: benchmarks/results/train.json and the README table.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import shutil
import tempfile
import time

import numpy as np
from _common import parse_args, parser, update_readme_table, write_result
from _train_hw import matmul_peak, training_throughput

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


#: Models of the hardware rows, with the input of the default features
#: (32 channels, 5 bands x DE and PSD; 2 s raw windows at 128 Hz).
HW_MODELS: dict[str, tuple[int, ...]] = {
    "mlp": (320,),
    "cnn2d": (10, 8, 9),
    "mtcnn": (10, 8, 9),
    "cnn_transformer": (32, 256),
}
TASKS = {"valence": 2, "arousal": 2}
#: (processes, threads each) of the hardware rows.
SETTINGS = ((1, 1), (1, 2), (2, 1))
#: Trials a LOVO fold trains on: full DEAP (32 x 39) against this set (8 x 19).
DEAP_SCALE = (32 * 39) / (8 * 19)


def hardware_rows() -> dict:
    """Matmul peak and per-model training throughput in each setting."""
    peak = {f"{p}x{t}": round(matmul_peak(t, processes=p), 1) for p, t in SETTINGS}
    print("matmul peak GFLOP/s (processes x threads):", peak, flush=True)
    models = {}
    for name, shape in HW_MODELS.items():
        # cnn2d fits one network per task: time it as it trains, on one task.
        tasks = {"valence": 2} if name == "cnn2d" else TASKS
        rows = {}
        for p, t in SETTINGS:
            r = training_throughput(name, shape, tasks, threads=t, processes=p)
            r["peak_fraction"] = round(r["train_gflops"] / peak[f"{p}x{t}"], 3)
            rows[f"{p}x{t}"] = r
            print(f"  {name} {p}x{t}: {r}", flush=True)
        models[name] = {"tasks_per_network": list(tasks), "settings": rows}
    return {"matmul_peak_gflops": peak, "models": models}


def deap_formula(fold_s: float, permutations: int, workers: int) -> float:
    """Seconds of a full-DEAP LOVO run: 40 x (1 + P) fold tasks on W workers."""
    return math.ceil(40 * (1 + permutations) / workers) * fold_s * DEAP_SCALE


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--cnn-folds", type=int, default=1)
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
    hw = hardware_rows()

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

        # A fold task as a run executes it: one torch thread (task_threads=1).
        cnn_folds = {}
        for name in ("cnn2d", "mtcnn"):
            cfg = dataclasses.replace(base, model=name, n_jobs=1, task_threads=1)
            ds_grid = load_dataset(cfg, progress=False)
            cnn_folds[name] = per_fold_times(ds_grid, cfg, args.cnn_folds)

    cnn = {}
    for name, folds in cnn_folds.items():
        mean = float(np.mean([r["seconds"] for r in folds]))
        cnn[name] = {
            "task_threads": 1,
            "folds_timed": len(folds),
            "folds": folds,
            "mean_fold_s": round(mean, 1),
            "lovo_20_folds_estimate_s_1_worker": round(20 * mean, 0),
            "deap_lovo_s": {
                f"W={w},P={p}": round(deap_formula(mean, p, w))
                for w in (2, 8, 32)
                for p in (0, 99)
            },
        }
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
        **cnn,
        "hardware": hw,
        **({"ray_vs_serial": ray_row} if ray_row else {}),
        "deap_formula": (
            "T(W workers, P permutations) = ceil(40 (1 + P) / W) x fold_s x "
            f"{DEAP_SCALE:.2f} (32 x 39 / 8 x 19 training trials)"
        ),
        "targets": {"logreg_lovo_wall_s_max": 60.0},
        "meets_targets": bool(t_logreg < 60.0),
    }
    path = write_result("train", result)
    print(f"wrote {path}")
    if not args.no_readme:
        update_readme_table("train", _table(result, logreg_folds, t_logreg, args))


def _hours(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min"


def _table(result: dict, logreg_folds: list, t_logreg: float, args) -> str:
    lf = [r["seconds"] for r in logreg_folds]
    lines = [
        "| LOVO training (8 subj x 20 videos x 60 s, batch 64) | value |",
        "|---|---|",
        f"| logreg, 20 folds, 2 jobs, wall | {t_logreg:.1f} s (target < 60 s) |",
        f"| logreg per fold (serial) | median {np.median(lf):.2f} s, "
        f"max {np.max(lf):.2f} s |",
    ]
    ray_row = result.get("ray_vs_serial")
    if ray_row:
        lines.append(
            f"| {ray_row['model']} LOVO {ray_row['folds']} folds, Ray with 2 "
            f"local workers vs serial | {ray_row['ray_2_workers_wall_s']:.1f} s "
            f"vs {ray_row['serial_wall_s']:.1f} s (x{ray_row['speedup']}) |"
        )
    for name in ("cnn2d", "mtcnn"):
        r = result[name]
        d = r["deap_lovo_s"]
        lines += [
            f"| {name} per fold ({args.device}, 1 thread, {r['folds_timed']} "
            f"timed) | {r['mean_fold_s']:.0f} s (20 folds: "
            f"{_hours(20 * r['mean_fold_s'])} on 1 core, "
            f"{_hours(10 * r['mean_fold_s'])} on 2) |",
            f"| {name}, full DEAP LOVO (formula) | {_hours(d['W=2,P=0'])} on 2 "
            f"cores, {_hours(d['W=32,P=0'])} on 32 workers; with 99 "
            f"permutations {_hours(d['W=32,P=99'])} on 32 |",
        ]
    hw = result["hardware"]
    peak = hw["matmul_peak_gflops"]
    lines += [
        "",
        "| training speed (batch 64) | 1 process x 1 thread | 1 x 2 threads "
        "| 2 processes x 1 thread |",
        "|---|---|---|---|",
        f"| float32 matmul peak (GFLOP/s) | {peak['1x1']} | {peak['1x2']} | "
        f"{peak['2x1']} |",
    ]
    for name, m in hw["models"].items():
        s = m["settings"]
        macs = s["1x1"]["forward_macs_per_window"] / 1e6
        cells = " | ".join(
            f"{s[k]['windows_per_s']:.0f} win/s ({100 * s[k]['peak_fraction']:.0f}%)"
            for k in ("1x1", "1x2", "2x1")
        )
        lines.append(f"| {name} ({macs:.1f} M multiply-adds/window) | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
