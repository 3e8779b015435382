"""What the default permutation test of logreg costs, cold, and what batching saves.

1. The user's view: ``emomon train --model logreg --protocol lovo`` on the
   synthetic set (default 6 subjects x 12 videos x 60 s) in a fresh process with
   an empty feature cache, with the default test (199 reruns) and with
   ``--permutations 0``; the difference is the test's cost.
2. emomon's view, in this process on one core (one BLAS thread, as a task
   runs): seconds per rerun fitting the label sets one at a time (scipy's
   L-BFGS-B per fold, :func:`~emomon.offline.tasks.run_permutation`) and 25 at
   a time (:func:`~emomon.offline.permbatch.run_permutation_batch`), and the
   largest difference between their balanced accuracies on the same reruns.
3. Full DEAP (32 subjects x 40 videos x 60 s, 40 folds) as a formula of the
   batched rerun: scaled by folds x training trials (matrix products over the
   windows dominate a fit), on 2 one-core workers.

Usage: python benchmarks/bench_permutations.py [--subjects 6] [--videos 12]
Results: benchmarks/results/permutations.json and the README table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import parse_args, parser, update_readme_table, write_result


def cold(args, tmp: Path, permutations: int | None) -> float:
    """Wall time of one cold ``emomon train`` (default permutations when None)."""
    cmd = [
        sys.executable, "-m", "emomon.cli", "train", "--model", "logreg",
        "--protocol", "lovo", "--subjects", str(args.subjects),
        "--videos", str(args.videos), "--cache-dir", str(tmp / "cache"),
        "--out", str(tmp / "run"), "--quiet",
    ]  # fmt: skip
    if permutations is not None:
        cmd += ["--permutations", str(permutations)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=tmp, capture_output=True)
    wall = time.perf_counter() - t0
    report = json.loads((tmp / "run" / "report.json").read_text())
    perm = report["results"]["lovo"]["tasks"]["valence"]["permutation"]
    assert (perm or {}).get("n", 0) == (199 if permutations is None else 0)
    return wall


def per_rerun(args, n_single: int) -> dict[str, float]:
    """Seconds per rerun, one label set at a time and 25 at a time (one core)."""
    from emomon.offline.dataset import load_dataset
    from emomon.offline.evaluate import permuted_labels
    from emomon.offline.linear import blas_threads
    from emomon.offline.permbatch import PERM_BATCH, PermutationBatch
    from emomon.offline.permbatch import run_permutation_batch as batch
    from emomon.offline.tasks import PermutationTask, run_permutation
    from emomon.offline.trainconfig import make_train_config

    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_train_config(
            None,
            synthetic={"n_subjects": args.subjects, "n_videos": args.videos},
            protocols=("lovo",),
            cache_dir=tmp,
        )
        ds = load_dataset(cfg, progress=False)

    class Handle:
        def get(self):
            return ds

    tasks = [
        PermutationTask(j, "lovo", cfg, lab)
        for j, lab in enumerate(permuted_labels(ds, cfg, "lovo")[:PERM_BATCH])
    ]
    with blas_threads(1):
        t0 = time.perf_counter()
        single = [run_permutation(Handle(), t) for t in tasks[:n_single]]
        t_single = (time.perf_counter() - t0) / n_single
        t0 = time.perf_counter()
        many = batch(Handle(), PermutationBatch(tuple(tasks)))
        t_batch = (time.perf_counter() - t0) / len(tasks)
    diff = max(
        abs(a.balanced_accuracy[k] - b.balanced_accuracy[k])
        for a, b in zip(single, many, strict=False)
        for k in a.balanced_accuracy
    )
    return {
        "single_s": t_single,
        "batch_s": t_batch,
        "max_abs_balanced_accuracy_diff": diff,
        "n_windows": int(ds.table.X.shape[0]),
    }


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--subjects", type=int, default=6)
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--single", type=int, default=8, help="reruns timed one by one")
    args = parse_args(ap)

    walls = {}
    for name, perms in (("none", 0), ("default", None)):
        with tempfile.TemporaryDirectory() as tmp:
            walls[name] = cold(args, Path(tmp), perms)
        print(f"cold train, permutations {name}: {walls[name]:.1f} s", flush=True)
    rr = per_rerun(args, args.single)
    print(rr, flush=True)
    folds = args.videos
    trials = args.subjects * (args.videos - 1)
    scale = (40 * 32 * 39) / (folds * trials)
    deap_rerun = rr["batch_s"] * scale
    deap_199_h = 199 * deap_rerun / 2 / 3600
    result = {
        "config": {
            "dataset": f"synthetic {args.subjects} subjects x {args.videos} videos "
            "x 60 s (seed 0)",
            "command": "emomon train --model logreg --protocol lovo (cold: fresh "
            "process, empty feature cache; report, plots and model.onnx written)",
            "per_rerun": "in process, one BLAS thread; single = run_permutation "
            "(scipy L-BFGS-B per fold), batch = run_permutation_batch (25 label "
            "sets, linear_batch.fit_multinomial_many)",
            "deap_formula": "batch s per rerun x (40 folds x 32 x 39 training "
            "trials) / (folds x training trials here); 199 reruns on 2 workers",
        },
        "cold_wall_s": {k: round(v, 2) for k, v in walls.items()},
        "test_cost_s": round(walls["default"] - walls["none"], 2),
        "per_rerun": {
            k: round(v, 4) if isinstance(v, float) else v for k, v in rr.items()
        },  # fmt: skip
        "batch_speedup": round(rr["single_s"] / rr["batch_s"], 2),
        "deap_per_rerun_s": round(deap_rerun, 1),
        "deap_199_hours_on_2": round(deap_199_h, 2),
    }
    path = write_result("permutations", result)
    print(f"wrote {path}")
    if not args.no_readme:
        update_readme_table(
            "permutations",
            f"| logreg LOVO permutation test ({args.subjects} subj x {args.videos} "
            "videos x 60 s) | value |\n"
            "|---|---|\n"
            f"| `emomon train --model logreg --protocol lovo`, cold, default 199 "
            f"reruns / `--permutations 0` | {walls['default']:.1f} s / "
            f"{walls['none']:.1f} s |\n"
            f"| cost of the test (user's view) | {result['test_cost_s']:.1f} s |\n"
            f"| one rerun, label sets one at a time / 25 at a time (one core) | "
            f"{rr['single_s']:.2f} s / {rr['batch_s']:.2f} s "
            f"(x{result['batch_speedup']:.1f}) |\n"
            f"| largest balanced-accuracy difference, batched vs one at a time | "
            f"{rr['max_abs_balanced_accuracy_diff']:.1e} |\n"
            f"| full DEAP LOVO, 199 reruns (formula) | {deap_rerun:.0f} s a rerun; "
            f"{deap_199_h:.1f} h on 2 cores |",
        )


if __name__ == "__main__":
    main()
