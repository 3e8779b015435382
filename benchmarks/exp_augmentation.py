"""Does training-set augmentation help under leave-one-video-out? Tested honestly.

Issue 17, point 2. On the synthetic set, leave-one-video-out (LOVO), logreg
(``--models logreg,mlp`` adds the MLP), with emomon's own folds and fits
(:func:`emomon.offline.tasks.fit_fold`, the code ``emomon train --augment``
runs): no augmentation against Gaussian noise, within-class mixup and the
conditional WGAN-GP (:mod:`emomon.offline.augment`), each adding as many
samples as there are real training windows (ratio 1), made inside each fold
from that fold's training windows only.

1. Sanity checks, per fold (seed 0), before any comparison: a logistic
   regression trained on the method's samples (generated from the training
   windows of most training videos) and tested on the real windows of the
   held-out training videos (TSTR), beside the same classifier trained on the
   real windows (TRTR), and the MMD two-sample test (RBF kernel, 200
   permutations) of generated against held-out real windows, beside real
   against held-out real (the distance the videos' content already makes).
   The gate: TSTR above chance over the folds (one-sided sign-flip test of
   TSTR - chance, p < 0.05) and the samples not collapsed (their variance at
   least ``COLLAPSED_VAR_RATIO`` of the real windows', on average); the MMD
   is reported, not gated (real held-out videos differ from the fitting ones
   too).
2. Comparison with no augmentation, over ``SEEDS`` (each seed: a new synthetic
   set and the run seed), two tests suited to cross-validation:

   (:mod:`emomon.offline.cvcompare`)

   - the corrected resampled t-test (Nadeau & Bengio, Machine Learning 52,
     2003; for repeated k-fold as in Bouckaert & Frank, PAKDD 2004): the J =
     seeds x folds paired differences ``d_j`` of the held-out video's balanced
     accuracy give ``t = mean(d) / sqrt((1/J + n_test/n_train) * var(d))``
     (``var`` with ddof 1), two-sided p from Student's t with J - 1 degrees of
     freedom; the ``n_test/n_train`` term (1/(k-1) for LOVO) corrects the
     variance for the overlap of the training sets;
   - a sign-flip test over held-out videos: the mean of the same differences,
     one per (seed, video), against its null under random sign flips
     (two-sided; :func:`~emomon.offline.cvcompare.sign_flip_test`: exact over
     all 2^J flips up to J = 20, else 10000 seeded draws, as here with J = 36).
     Seeds draw independent synthetic sets, but one seed's folds share most
     of their training videos, so this test is anti-conservative: the tables
     say so, and the corrected t is the one to read.
3. The shuffled-label control with augmentation on, seed 0: emomon's
   ``--labels random`` (the labels shuffled within each subject, so they carry
   nothing about the trial), the same cross-validation with the same
   augmentation. Read it against the control without augmentation (it sits
   below 0.5 on this set, README "shuffled-label control"): a method that
   leaked, or that manufactured signal, would lift it.

Seeds, fixed in this script before it was first run: synthetic and run seeds
``SEEDS = (0, 1, 2)`` (the control's shuffle is seeded by the run seed).

Cost: the WGAN trains 60 generators (36 for the comparison, 12 for the sanity
checks, 12 for the control), about 30 s each on one thread at the library's
1000 generator steps: about 20 minutes on 2 cores with ``--jobs 2``
(``--quick``: seed 0 only, about half). ``--gan-steps N`` sets another length.

Usage: python benchmarks/exp_augmentation.py [--quick] [--models logreg,mlp]
[--gan-steps N] [--from-json] [--no-readme]
Results: benchmarks/results/augmentation.json and the README table
(``augmentation_<models>`` for another ``--models``; ``--from-json`` redraws a
table from its saved results).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import parse_args, parser, update_readme_table, write_result

from emomon.offline.augreport import sanity_summary
from emomon.offline.crossval import pool_folds, pooled_balanced_accuracy
from emomon.offline.cvcompare import corrected_resampled_t, sign_flip_test
from emomon.offline.dataset import Dataset, load_dataset
from emomon.offline.metrics import balanced_accuracy
from emomon.offline.protocols import Split
from emomon.offline.tasks import FoldResult, fit_fold, fold_tasks, torch_threads
from emomon.offline.trainconfig import TrainConfig, make_train_config

SEEDS = (0, 1, 2)
METHODS = (None, "noise", "mixup", "wgan")
TASKS = ("valence", "arousal")
# 12 videos: on 6 (the first runs) the sanity check had no power, a classifier
# trained on real windows of 3 training videos was itself at chance on 2 others
# (TRTR 0.57 / 0.51); on 12, 0.71 / 0.72 (seed 0, mean of the 12 folds).
SYNTH = {"n_subjects": 4, "n_videos": 12, "trial_s": 20.0}


def config(
    seed: int, model: str, method: str | None, cache: Path | None
) -> TrainConfig:
    """LOVO on the synthetic set of ``seed``, augmentation ratio 1."""
    return make_train_config(
        dataset="synthetic",
        synthetic={**SYNTH, "seed": seed},
        protocols=("lovo",),
        model=model,
        seed=seed,
        permutations=0,
        n_boot=0,
        cache_dir=None if cache is None else str(cache),
        augment=method,
        augment_ratio=1.0,
        export=False,
    )


def run_cv(
    ds: Dataset,
    cfg: TrainConfig,
    *,
    check: bool,
    trial_labels: Mapping[str, np.ndarray] | None = None,
) -> tuple[list[Split], list[FoldResult], dict[str, float]]:
    """One LOVO cross-validation: its splits, fold results and pooled scores."""
    from emomon.offline.crossval import protocol_splits

    splits, notes = protocol_splits(ds, cfg, "lovo", trial_labels=trial_labels)
    folds = [
        fit_fold(ds, t, check=check) for t in fold_tasks(splits, cfg, trial_labels)
    ]
    cv = pool_folds(ds, splits, folds, notes, trial_labels=trial_labels)
    return splits, folds, pooled_balanced_accuracy(ds, cv, trial_labels=trial_labels)


def fold_scores(ds: Dataset, folds: Sequence[FoldResult]) -> dict[str, list[float]]:
    """Task -> balanced accuracy of each fold's held-out video (classes present)."""
    win = ds.window_labels()
    out: dict[str, list[float]] = {t: [] for t in TASKS}
    for f in folds:
        for t in TASKS:
            pred = f.proba[t].argmax(axis=1)
            out[t].append(balanced_accuracy(win[t][f.test], pred, n_classes=2))
    return out


def summarise_sanity(folds: Sequence[FoldResult]) -> dict[str, Any]:
    """Mean and range over folds of the sanity checks; folds above chance."""
    rows = [f.augment["sanity"] for f in folds]
    out: dict[str, Any] = {"n_folds": len(rows)}
    for t in TASKS:
        for key in ("tstr", "trtr"):
            v = [r[key][t] for r in rows if r[key][t] is not None]
            out[f"{key}_{t}"] = {
                "mean": float(np.mean(v)),
                "min": float(np.min(v)),
                "max": float(np.max(v)),
            }
        # The gate is the library's (what a run's report says): TSTR above
        # chance over the folds (one-sided sign flip) and not collapsed.
        gate = sanity_summary([{"sanity": r} for r in rows], task=t)
        assert gate is not None
        out[f"tstr_above_chance_{t}"] = gate.tstr_above_chance
        out[f"tstr_p_{t}"] = gate.tstr_p
        out[f"passed_{t}"] = gate.passed
        out["collapsed"] = gate.collapsed
        out[f"tstr_reference_{t}"] = gate.tstr_reference_mean
    out["var_ratio"] = {
        "mean": float(np.mean([r["var_ratio"] for r in rows])),
        "min": float(np.min([r["var_ratio"] for r in rows])),
        "max": float(np.max([r["var_ratio"] for r in rows])),
    }
    for t in TASKS:
        v = [r["class_direction_cos"][t] for r in rows]
        v = [c for c in v if c is not None]
        out[f"cos_{t}"] = {
            "mean": float(np.mean(v)) if v else math.nan,
            "min": float(np.min(v)) if v else math.nan,
            "max": float(np.max(v)) if v else math.nan,
        }
    for key in ("mmd", "mmd_real", "mmd_reference"):
        if not all(key in r for r in rows):
            continue  # results from before the reference
        out[key] = {
            "mmd2_mean": float(np.mean([r[key]["mmd2"] for r in rows])),
            "p_max": float(np.max([r[key]["p"] for r in rows])),
            "n_p_below_0.05": sum(r[key]["p"] < 0.05 for r in rows),
        }
    out["per_fold"] = rows
    return out


def _set_gan_steps(steps: int) -> None:
    """Set the WGAN's generator steps in a worker (a module constant)."""
    from emomon.offline import augment

    augment._GEN_STEPS = steps


def run_job(job: tuple[str, str | None, int, str]) -> dict[str, Any]:
    """One cross-validation: (model, method, seed, "cv" or "control")."""
    model, method, seed, kind = job
    t0 = time.perf_counter()
    with torch_threads(1):
        cfg = config(seed, model, method, None)
        if kind == "control":
            # emomon's shuffled-label control (--labels random): the labels
            # shuffled within each subject, seeded by the run seed.
            cfg = make_train_config(cfg, labels="random")
        ds = load_dataset(cfg, progress=False)
        check = kind == "cv" and method is not None and seed == SEEDS[0]
        _, folds, pooled = run_cv(ds, cfg, check=check)
        out: dict[str, Any] = {"job": list(job), "pooled": pooled}
        if kind == "cv":
            out["fold_ba"] = fold_scores(ds, folds)
        if check:
            out["sanity"] = summarise_sanity(folds)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"{model} {method or 'none'} seed {seed} {kind}: {pooled} "
          f"({out['seconds']:.0f} s)", flush=True)  # fmt: skip
    return out


def sanity_job(args: tuple[str, int]) -> dict[str, Any]:
    """The WGAN's sanity checks on one fold of seed 0, without a comparison."""
    from emomon.offline.augment import sanity_check
    from emomon.offline.crossval import protocol_splits
    from emomon.offline.tasks import fold_data

    method, k = args
    t0 = time.perf_counter()
    with torch_threads(1):
        cfg = config(SEEDS[0], "logreg", None, None)
        ds = load_dataset(cfg, progress=False)
        splits, _ = protocol_splits(ds, cfg, "lovo")
        task = fold_tasks(splits, cfg)[k]
        fd = fold_data(ds, task)  # the real training part, as a fold forms it
        got = sanity_check(
            fd.x_train,
            fd.y_train,
            ds.table.video[fd.train],
            method=method,
            ratio=1.0,
            seed=task.seed,
            n_classes={t: len(c) for t, c in ds.tasks.items()},
        )
    got["fold"] = splits[k].name
    got["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"sanity {method} fold {k}: {got['seconds']} s", flush=True)
    return got


def sanity_only(jobs: int, gan_steps: int, readme: bool) -> None:
    """``--sanity-only``: the WGAN's per-fold checks at ``gan_steps``, seed 0."""
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.perf_counter()
    with ProcessPoolExecutor(
        jobs, initializer=_set_gan_steps, initargs=(gan_steps,)
    ) as pool:
        rows = list(
            pool.map(sanity_job, [("wgan", k) for k in range(SYNTH["n_videos"])])
        )
    payload = {
        "seed": SEEDS[0],
        "synthetic": SYNTH,
        "gan_steps": gan_steps,
        "seconds": round(time.perf_counter() - t0, 1),
        "per_fold": rows,
    }
    path = write_result("augmentation_sanity", payload)
    lines = [
        f"WGAN sanity checks alone, {gan_steps} generator steps, seed "
        f"{SEEDS[0]}, logreg's folds ({payload['seconds']:.0f} s on {jobs} "
        "processes):",
        "",
        "| fold | TSTR v / a | TRTR v / a | reference TSTR v / a "
        "| variance gen / real | class cos v / a "
        "| MMD² gen vs real (p) | MMD² real vs real (p) | MMD² reference vs real (p) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:

        def pair(d: Mapping[str, Any]) -> str:
            return " / ".join("-" if d[t] is None else f"{d[t]:.2f}" for t in TASKS)

        lines.append(
            f"| {r['fold']} | {pair(r['tstr'])} | {pair(r['trtr'])} | "
            f"{pair(r['tstr_reference'])} | "
            f"{r['var_ratio']:.2f} | {pair(r['class_direction_cos'])} | "
            f"{r['mmd']['mmd2']:.3f} ({r['mmd']['p']:.3f}) | "
            f"{r['mmd_real']['mmd2']:.3f} ({r['mmd_real']['p']:.3f}) | "
            f"{r['mmd_reference']['mmd2']:.3f} ({r['mmd_reference']['p']:.3f}) |"
        )
    table = "\n".join(lines)
    print(table)
    print(f"wrote {path}")
    if readme:
        update_readme_table("augmentation_sanity", table)


def main() -> None:
    from concurrent.futures import ProcessPoolExecutor

    ap = parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="seed 0 only")
    ap.add_argument("--models", default="logreg", help="comma list: logreg,mlp")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (2)")
    ap.add_argument(
        "--gan-steps",
        type=int,
        default=None,
        help="WGAN generator steps (default: the library's)",
    )
    ap.add_argument(
        "--sanity-only",
        action="store_true",
        help="only the WGAN's per-fold sanity checks (seed 0)",
    )
    ap.add_argument(
        "--from-json",
        action="store_true",
        help="only render the table of the saved results (no run)",
    )
    args = parse_args(ap)
    # logreg alone: "augmentation"; other model lists get their own file/table.
    result = (
        "augmentation"
        if args.models == "logreg"
        else ("augmentation_" + args.models.replace(",", "_"))
    )
    if args.from_json:
        import json

        from _common import RESULTS

        table = render(json.loads((RESULTS / f"{result}.json").read_text()))
        print(table)
        if not args.no_readme:
            update_readme_table(result, table)
        return
    seeds = SEEDS[:1] if args.quick else SEEDS
    models = tuple(args.models.split(","))
    t0 = time.perf_counter()
    # The WGAN's jobs first: the longest, so the workers finish together.
    jobs = [
        (model, method, seed, kind)
        for method in METHODS[::-1]
        for model in models
        for seed in seeds
        for kind in ("cv", "control")
        if kind == "cv" or seed == seeds[0]
    ]
    from emomon.offline import augment

    gan_steps = args.gan_steps or augment._GEN_STEPS
    if args.sanity_only:
        sanity_only(args.jobs, gan_steps, not args.no_readme)
        return
    with ProcessPoolExecutor(
        args.jobs, initializer=_set_gan_steps, initargs=(gan_steps,)
    ) as pool:
        done = list(pool.map(run_job, jobs))
    results: dict[str, Any] = {}
    for model in models:
        res: dict[str, Any] = {"pooled": {}, "fold_ba": {}, "sanity": {}}
        res["control"] = {}
        for method in METHODS:
            name = method or "none"
            mine = {
                (j["job"][2], j["job"][3]): j
                for j in done
                if j["job"][0] == model and j["job"][1] == method
            }
            res["pooled"][name] = [mine[(s, "cv")]["pooled"] for s in seeds]
            res["fold_ba"][name] = [mine[(s, "cv")]["fold_ba"] for s in seeds]
            res["control"][name] = [mine[(seeds[0], "control")]["pooled"]]
            if "sanity" in mine[(seeds[0], "cv")]:
                res["sanity"][name] = mine[(seeds[0], "cv")]["sanity"]
        res["tests"] = compare(res["fold_ba"], n_folds=SYNTH["n_videos"])
        results[model] = res
    seconds = time.perf_counter() - t0
    payload = {
        "seeds": list(seeds),
        "synthetic": SYNTH,
        "methods": [m or "none" for m in METHODS],
        "augment_ratio": 1.0,
        "gan_steps": gan_steps,
        "protocol": "lovo",
        "jobs": args.jobs,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(sum(j["seconds"] for j in done), 1),
        "results": results,
    }
    path = write_result(result, payload)
    table = render(payload)
    print(table)
    print(f"wrote {path} in {seconds:.0f} s")
    if not args.no_readme:
        update_readme_table(result, table)


def compare(
    fold_ba: Mapping[str, list[dict[str, list[float]]]], *, n_folds: int
) -> dict[str, Any]:
    """Each method against none: mean difference, corrected t and sign-flip p."""
    out: dict[str, Any] = {}
    for name, runs in fold_ba.items():
        if name == "none":
            continue
        out[name] = {}
        for t in TASKS:
            a = np.concatenate([r[t] for r in runs])
            b = np.concatenate([r[t] for r in fold_ba["none"]])
            ok = np.isfinite(a) & np.isfinite(b)
            d = a[ok] - b[ok]
            out[name][t] = {
                "mean_diff": float(d.mean()),
                "n": int(d.size),
                "nadeau_bengio": corrected_resampled_t(
                    d, test_train_ratio=1 / (n_folds - 1)
                ),
                "sign_flip": sign_flip_test(d),
            }
    return out


def render(payload: Mapping[str, Any]) -> str:
    """The README tables: sanity checks, then the comparison."""
    seeds = payload["seeds"]
    syn = payload["synthetic"]
    lines = [
        f"Synthetic set ({syn['n_subjects']} subjects x "
        f"{syn['n_videos']} videos, {syn['trial_s']:g} s trials), LOVO, ratio 1 "
        "(as many added samples as training windows); WGAN "
        f"{payload['gan_steps']} generator steps; "
        f"seeds {', '.join(map(str, seeds))}; {payload['seconds']:.0f} s on "
        f"{payload['jobs']} processes ({payload['cpu_seconds']:.0f} CPU s).",
        "",
    ]
    for model, res in payload["results"].items():
        lines += [
            f"**{model}: sanity checks** (seed {seeds[0]}, per fold, mean "
            "[min, max] over folds; chance 0.5; MMD p: folds with p < 0.05)",
            "",
            "| method | TSTR valence | TSTR arousal | TRTR valence | TRTR arousal "
            "| TSTR > chance: folds (one-sided sign-flip p), v / a "
            "| MMD gen vs real: p<0.05 | MMD real vs real: "
            "p<0.05 | variance gen / real | class direction cos (v / a) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, s in res["sanity"].items():

            def cell(key: str, s: Mapping[str, Any] = s) -> str:
                v = s[key]
                return f"{v['mean']:.3f} [{v['min']:.2f}, {v['max']:.2f}]"

            n = s["n_folds"]
            gen, real = s["mmd"], s["mmd_real"]
            lines.append(
                f"| {name} | {cell('tstr_valence')} | {cell('tstr_arousal')} | "
                f"{cell('trtr_valence')} | {cell('trtr_arousal')} | "
                + " / ".join(
                    f"{s[f'tstr_above_chance_{t}']}/{n} (p {s[f'tstr_p_{t}']:.2g}, "
                    + (
                        "passes"
                        if s[f"passed_{t}"]
                        else ("FAILS: collapsed" if s.get("collapsed") else "FAILS")
                    )
                    + ")"
                    for t in TASKS
                )
                + " | "
                f"{gen['n_p_below_0.05']}/{n} (MMD² {gen['mmd2_mean']:.3f}) | "
                f"{real['n_p_below_0.05']}/{n} (MMD² {real['mmd2_mean']:.3f}) | "
                f"{cell('var_ratio')} | {s['cos_valence']['mean']:.2f} / "
                f"{s['cos_arousal']['mean']:.2f} |"
            )
        lines += [
            "",
            f"**{model}: against no augmentation** (pooled balanced accuracy, "
            "mean over seeds; Δ: mean paired difference of the held-out videos' "
            "balanced accuracy; p: Nadeau-Bengio corrected t / sign flip over "
            "(seed, video), exact up to 20 units, else 10000 draws, which takes "
            "one seed's overlapping folds as independent (anti-conservative); "
            "control: the same run on emomon's shuffled labels (`--labels random`, "
            f"shuffled within each subject), augmentation on, seed {seeds[0]})",
            "",
            "| method | valence | Δ | p (NB / flip) | arousal | Δ | p (NB / flip) "
            "| control valence | control arousal |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, runs in res["pooled"].items():
            row = [name]
            for t in TASKS:
                row.append(f"{np.mean([r[t] for r in runs]):.3f}")
                if name == "none":
                    row += ["", ""]
                else:
                    c = res["tests"][name][t]
                    row += [
                        f"{c['mean_diff']:+.3f}",
                        f"{c['nadeau_bengio']['p']:.2g} / {c['sign_flip']['p']:.2g}",
                    ]
            row += [
                f"{np.mean([r[t] for r in res['control'][name]]):.3f}" for t in TASKS
            ]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
