"""emomon's linear path against a plain scipy + scikit-learn script, cold.

``emomon train --model logreg --protocol lovo --permutations 0`` on the
synthetic set (default 6 subjects x 12 videos) in a fresh process with an
empty feature cache (a new cache folder each run; the final model is trained
and exported and the report and plots written, as a user's run does), against
``benchmarks/probes/linear_script.py`` (the same recordings, features, folds
and penalty in scipy / numpy / scikit-learn), each run as its own process. The
two alternate, the order flipping every repeat, and the table gives the medians:
the ratio emomon / script (target <= 1.0) and both pooled balanced accuracies
(target: within 0.01).

Usage: python benchmarks/bench_linear.py [--subjects 6] [--videos 12] [--repeats 3]
Results: benchmarks/results/linear.json and the README table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, parse_args, parser, update_readme_table, write_result

from emomon.models import model_hparams

SCRIPT = ROOT / "benchmarks" / "probes" / "linear_script.py"
TASKS = ("valence", "arousal")


def run_emomon(args, tmp: Path) -> tuple[float, dict[str, float]]:
    """Wall time and pooled balanced accuracy of one cold ``emomon train``."""
    out = tmp / "run"
    cmd = [
        sys.executable, "-m", "emomon.cli", "train",
        "--model", "logreg", "--protocol", "lovo", "--permutations", "0",
        "--subjects", str(args.subjects), "--videos", str(args.videos),
        "--cache-dir", str(tmp / "cache"), "--out", str(out), "--quiet",
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=tmp, capture_output=True)
    wall = time.perf_counter() - t0
    report = json.loads((out / "report.json").read_text())
    tasks = report["results"]["lovo"]["tasks"]
    return wall, {t: tasks[t]["metrics"]["balanced_accuracy"] for t in TASKS}


def run_script(args, tmp: Path) -> tuple[float, dict[str, float]]:
    """Wall time and pooled balanced accuracy of one run of the plain script."""
    cmd = [
        sys.executable, str(SCRIPT),
        "--subjects", str(args.subjects), "--videos", str(args.videos),
        "--l2", str(args.l2),
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=True, cwd=tmp, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return wall, json.loads(done.stdout.strip().splitlines()[-1])["balanced_accuracy"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--subjects", type=int, default=6)
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    args = parse_args(ap)
    args.l2 = model_hparams("logreg")["l2"]

    runs: dict[str, list[dict]] = {"emomon": [], "script": []}
    for r in range(args.repeats):
        order = ("emomon", "script") if r % 2 == 0 else ("script", "emomon")
        for who in order:
            with tempfile.TemporaryDirectory() as tmp:
                fn = run_emomon if who == "emomon" else run_script
                wall, acc = fn(args, Path(tmp))
            runs[who].append({"wall_s": round(wall, 2), "balanced_accuracy": acc})
            print(f"repeat {r + 1} {who}: {wall:.2f} s {acc}", flush=True)

    med = {w: float(np.median([x["wall_s"] for x in v])) for w, v in runs.items()}
    acc = {w: v[-1]["balanced_accuracy"] for w, v in runs.items()}
    diff = max(abs(acc["emomon"][t] - acc["script"][t]) for t in TASKS)
    ratio = med["emomon"] / med["script"]
    result = {
        "config": {
            "dataset": f"synthetic {args.subjects} subjects x {args.videos} videos "
            "x 60 s (seed 0)",
            "command": "emomon train --model logreg --protocol lovo "
            "--permutations 0 (cold: fresh process, empty feature cache; "
            "report, plots and model.onnx written)",
            "script": "benchmarks/probes/linear_script.py (scipy.signal features, "
            "sklearn StandardScaler + LogisticRegression lbfgs per fold)",
            "l2": args.l2,
            "repeats": args.repeats,
        },
        "runs": runs,
        "median_wall_s": med,
        "ratio_emomon_to_script": round(ratio, 3),
        "balanced_accuracy": acc,
        "max_abs_accuracy_diff": round(diff, 4),
        "targets": {"ratio_max": 1.0, "accuracy_diff_max": 0.01},
        "meets_targets": bool(ratio <= 1.0 and diff <= 0.01),
    }
    path = write_result("linear", result)
    print(f"wrote {path}")
    if not args.no_readme:
        a, b = acc["emomon"], acc["script"]
        update_readme_table(
            "linear",
            f"| logreg LOVO, cold ({args.subjects} subj x {args.videos} videos, "
            f"median of {args.repeats}) | value |\n"
            "|---|---|\n"
            f"| `emomon train --model logreg --protocol lovo`, wall | "
            f"{med['emomon']:.1f} s |\n"
            f"| plain scipy + scikit-learn script, wall | {med['script']:.1f} s |\n"
            f"| ratio emomon / script | {ratio:.2f} (target <= 1.0) |\n"
            f"| pooled balanced accuracy valence, emomon / script | "
            f"{a['valence']:.3f} / {b['valence']:.3f} |\n"
            f"| pooled balanced accuracy arousal, emomon / script | "
            f"{a['arousal']:.3f} / {b['arousal']:.3f} (target: within 0.01) |",
        )


if __name__ == "__main__":
    main()
