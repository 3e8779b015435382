"""``emomon train | evaluate | export``: leak-free runs, experiments, the ONNX export.

The three verbs share the training options: defaults < ``--config`` TOML <
command-line options, assembled into one :class:`~emomon.offline.train.TrainConfig`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emomon.cli._options import add_dataset_option_argument
from emomon.cli.argtypes import (
    finite_float,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
)
from emomon.errors import EmomonError

#: Option dest -> TrainConfig field.
_TRAIN_KEYS = {
    "dataset": "dataset",
    "data_dir": "data_dir",
    "protocol": "protocols",
    "model": "model",
    "targets": "targets",
    "labels": "labels",
    "threshold": "threshold",
    "train_videos": "train_videos",
    "augment": "augment",
    "augment_ratio": "augment_ratio",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "patience": "patience",
    "permutations": "permutations",
    "importance": "importance",
    "n_boot": "n_boot",
    "seed": "seed",
    "device": "device",
    "jobs": "n_jobs",
    "task_threads": "task_threads",
    "montage": "montage",
    "cache_dir": "cache_dir",
}
#: Option dest -> key of TrainConfig.synthetic (SynthParams field).
_SYNTH_KEYS = {
    "subjects": "n_subjects",
    "videos": "n_videos",
    "emotion_effect": "emotion_effect",
    "content_effect": "content_effect",
    "trial_s": "trial_s",
    "synth_seed": "seed",
}


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


#: Library parameter -> flag: TrainConfig fields and the keywords of
#: run_training / run_ablation / export_run (``seed`` is the run's, not the
#: synthetic generator's).
FLAGS: dict[str, str] = {
    **{key: _flag(dest) for dest, key in _SYNTH_KEYS.items() if key != "seed"},
    **{key: _flag(dest) for dest, key in _TRAIN_KEYS.items()},
    "no_cache": "--no-cache",
    "no_export": "--no-export",
    "hparams": "--hparams",
    "dataset_options": "--dataset-option",
    "config": "--config",
    "out_dir": "--out",
    "resume": "--resume",
    "overwrite": "--overwrite",
    "bands": "--ablate-bands",
    "run_dir": "RUN_DIR",
    "executor": "--executor",
    "ray_address": "--ray-address",
}


def _split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _train_config(args: argparse.Namespace) -> Any:
    """Build the run's TrainConfig: defaults < --config TOML < command-line options."""
    import json

    from emomon.offline.trainconfig import make_train_config

    over = {}
    for dest, key in _TRAIN_KEYS.items():
        v = getattr(args, dest)
        if v is None:
            continue
        if key in ("protocols", "targets"):
            v = _split_list(v)
        over[key] = v
    if args.no_cache:
        over["cache_dir"] = None
    synth = {}
    for dest, key in _SYNTH_KEYS.items():
        v = getattr(args, dest)
        if v is not None:
            synth[key] = v
    hp = {}
    if args.hparams:
        try:
            hp = json.loads(args.hparams)
        except json.JSONDecodeError as exc:
            raise EmomonError(f"--hparams: not valid JSON ({exc})") from None
        if not isinstance(hp, dict):
            raise EmomonError("--hparams: expected a JSON object")
    cfg = make_train_config(
        args.config,
        synthetic=synth,
        hparams=hp,
        dataset_options=dict(args.reader_options),
        **over,
    )
    if synth and cfg.dataset != "synthetic":
        raise EmomonError(
            "--subjects/--videos/--emotion-effect/--content-effect/--trial-s only "
            "apply to --dataset synthetic"
        )
    return cfg


def _print_montage(report: Any) -> None:
    """Print which of the montage's channels the run used, and which it lacked."""
    from emomon.dsp.montage import describe_pick

    d = report.dataset
    if d is not None and d.montage:
        print(describe_pick(d.montage, d.name or "?"))


def _out_dir(args: argparse.Namespace, cfg: Any) -> Path:
    from emomon.offline.trainconfig import default_run_dir

    return Path(args.out) if args.out is not None else default_run_dir(cfg)


def _executor_args(args: argparse.Namespace) -> dict[str, Any]:
    return {"executor": args.executor, "ray_address": args.ray_address}


def run_train(args: argparse.Namespace) -> int:
    """``emomon train``: cross-validate, report, export model.onnx."""
    from emomon.offline.report import format_summary
    from emomon.offline.train import run_training

    cfg = _train_config(args)
    out = _out_dir(args, cfg)
    report = run_training(
        cfg,
        out,
        progress=not args.quiet,
        export=False if args.no_export else None,
        mode=args.mode,
        paper_plots=args.paper_plots,
        **_executor_args(args),
    )
    _print_montage(report)
    print(format_summary(report))
    print(f"reports in {out}/ (report.json, per_video.csv, per_subject.csv, *.png)")
    if report.export is not None:
        print(f"inspect the model with: emomon info {out / report.export.path}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """``emomon evaluate``: cross-validate and report; band and label experiments."""
    from emomon.offline.report import format_ablation, format_summary
    from emomon.offline.train import run_ablation, run_training

    labels = _split_list(args.labels) or []
    if labels:
        args.labels = labels[0]  # the config takes one method; the list drives runs
    cfg = _train_config(args)
    out = _out_dir(args, cfg)
    if args.ablate_bands is not None or len(labels) > 1:
        # bands and label methods together: one table (run_ablation)
        report = run_ablation(
            cfg,
            out,
            bands=None
            if args.ablate_bands is None
            else _split_list(args.ablate_bands) or [],
            labels=labels if len(labels) > 1 else None,
            progress=not args.quiet,
            mode=args.mode,
            paper_plots=args.paper_plots,
            **_executor_args(args),
        )
        print(format_ablation(report))
    else:
        report = run_training(
            cfg,
            out,
            progress=not args.quiet,
            export=False,
            mode=args.mode,
            paper_plots=args.paper_plots,
            **_executor_args(args),
        )
        _print_montage(report)
        print(format_summary(report))
    print(f"reports in {out}/")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """``emomon export``: the final model of an earlier run as model.onnx."""
    from emomon.offline.train import export_run

    done = export_run(args.run_dir, data_dir=args.data_dir, progress=not args.quiet)
    path = Path(args.run_dir) / done.path
    print(
        f"wrote {path} (onnxruntime vs torch max abs difference "
        f"{done.parity_max_abs:.1e}); inspect it with: emomon info {path}"
    )
    return 0


def _add_train_options(p: argparse.ArgumentParser, *, evaluate: bool) -> None:
    p.add_argument("--config", type=Path, help="TOML config (configs/*.toml)")
    p.add_argument("--dataset", help="reader name (default synthetic)")
    p.add_argument("--data-dir", type=Path, help="dataset directory")
    add_dataset_option_argument(p)
    p.add_argument(
        "--protocol",
        help="lovo, loso, subject-lovo, seed-split, intra, eav-authors; a comma list "
        "runs several "
        "side by side (the first is exported), e.g. lovo,intra (default lovo)",
    )
    p.add_argument("--model", help="logreg, mlp, cnn2d, mtcnn, cnn_transformer, eegpt")
    p.add_argument(
        "--hparams",
        metavar="JSON",
        help="model hyper-parameters as a JSON object, e.g. '{\"dropout\": 0.3}'",
    )
    p.add_argument(
        "--targets",
        help="comma list of valence, arousal, class (default: valence,arousal where "
        "the dataset has ratings, else class)",
    )
    p.add_argument(
        "--labels",
        help="fixed, median, rank or random"
        + ("; a comma list runs the label-reliability experiment" if evaluate else ""),
    )
    p.add_argument(
        "--threshold", type=finite_float, help="fixed threshold (default midpoint)"
    )
    p.add_argument("--train-videos", choices=["all", "top-bottom"])
    p.add_argument(
        "--augment",
        choices=["none", "noise", "mixup", "wgan"],
        help="add synthetic training samples inside each fold, made from its "
        "training windows only: Gaussian noise, within-class mixup, or a "
        "conditional WGAN-GP of the band features; the report compares the "
        "run with the same folds fitted without it and says whether it helped, "
        "and whether the generator passed its sanity checks; wgan trains a "
        "generator (about 30 s on one core) in every fold of every permutation "
        "rerun, so give it few --permutations, and a second one per observed "
        "fold for the sanity checks; default none",
    )
    p.add_argument(
        "--augment-ratio",
        type=positive_float,
        help="samples added per real training window (default 1.0)",
    )
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--patience", type=positive_int)
    p.add_argument(
        "--permutations",
        type=nonneg_int,
        help="permutation-test reruns, labels shuffled by the protocol's "
        "exchangeable unit (default: 199 for logreg, fit 25 at a time, its cost "
        "in README 'Permutation reruns of logreg'; 0 for neural models, whose "
        "reruns retrain every fold). Without a test the report shows no "
        "interval and says 'not tested'",
    )
    p.add_argument(
        "--paper-plots",
        action="store_true",
        help="also draw the paper plots (scalp maps of the band features and of "
        "the importance, per subject, ROC, permutation null, learning curves; "
        "2-3 s a protocol); their data is in report.json either way",
    )
    p.add_argument(
        "--importance",
        type=nonneg_int,
        help="permutation importance: shuffles per channel x band of each fold's "
        "held-out windows, for the importance scalp map (default 0 = off: "
        "5 about doubles a cold logreg run)",
    )
    p.add_argument("--n-boot", type=nonneg_int, help="bootstrap resamples (1000)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--jobs",
        type=positive_int,
        help="worker processes for features, folds and permutations (default 2)",
    )
    p.add_argument(
        "--executor",
        choices=["auto", "serial", "process", "ray"],
        default="auto",
        help="where folds and permutations train: auto (worker processes for "
        "large jobs, --jobs of them), serial, process, or ray (a Ray cluster: "
        "needs --ray-address and pip install 'emomon[cluster]')",
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="with --executor ray: the head node's HOST:PORT (as `ray start "
        "--head` prints it), or auto for the cluster on this machine",
    )
    p.add_argument(
        "--task-threads",
        type=positive_int,
        help="torch threads per fold (default 1; the same value gives the same "
        "report with any --jobs)",
    )
    p.add_argument(
        "--montage",
        metavar="M",
        help="train for a headset: brainflow:BOARD (e.g. brainflow:synthetic, "
        "brainflow:cyton_daisy), cyton, cyton-daisy, epoc, insight, muse, or a "
        "comma list of channels (Fp1,Fp2,C3,...); uses the channels the dataset "
        "shares with it (with --dataset synthetic the data is recorded with it)",
    )
    p.add_argument("--cache-dir", help="feature cache (default .emomon_cache)")
    p.add_argument("--no-cache", action="store_true", help="do not cache features")
    p.add_argument("--out", type=Path, help="run directory (default runs/NAME)")
    m = p.add_mutually_exclusive_group()
    m.add_argument(
        "--resume",
        action="store_const",
        const="resume",
        dest="mode",
        help="continue the run in --out (same config and data): finished folds "
        "and permutations are kept",
    )
    m.add_argument(
        "--overwrite",
        action="store_const",
        const="overwrite",
        dest="mode",
        help="replace the earlier emomon run in --out (refused for a folder "
        "that is not an emomon run)",
    )
    p.set_defaults(mode="new")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("synthetic dataset (--dataset synthetic)")
    g.add_argument("--subjects", type=positive_int)
    g.add_argument("--videos", type=positive_int)
    g.add_argument("--emotion-effect", type=nonneg_float)
    g.add_argument("--content-effect", type=nonneg_float)
    g.add_argument("--trial-s", type=positive_float)
    g.add_argument("--synth-seed", type=nonneg_int)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``train``, ``evaluate`` and ``export`` on ``sub``.

    Returns the ``train`` parser.
    """
    tr = sub.add_parser(
        "train",
        help="cross-validate leak-free, write reports, export model.onnx",
        description="Leak-free cross-validation (with majority baseline, bootstrap "
        "CIs and an optional permutation test), reports, and an ONNX export of a "
        "final model trained on all data. Example: emomon train --dataset deap "
        "--data-dir ~/data/deap --protocol lovo --model cnn2d --out runs/deap",
    )
    _add_train_options(tr, evaluate=False)
    tr.add_argument("--no-export", action="store_true", help="skip model.onnx")
    tr.set_defaults(func=run_train, flags=FLAGS)

    ev = sub.add_parser(
        "evaluate",
        help="cross-validate and report (no export); band and label experiments",
    )
    _add_train_options(ev, evaluate=True)
    ev.add_argument(
        "--ablate-bands",
        nargs="?",
        const="",
        metavar="BANDS",
        help="run with each band alone (optionally a comma list of bands)",
    )
    ev.set_defaults(func=run_evaluate, flags=FLAGS)

    exp = sub.add_parser(
        "export",
        help="export model.onnx for an earlier evaluate / train --no-export run",
        description="Train the final model on all data with the run's config (no "
        "cross-validation again) and write RUN_DIR/model.onnx; its contract carries "
        "the run's headline metrics. Example: emomon evaluate --dataset deap "
        "--data-dir ~/data/deap --out runs/deap && emomon export runs/deap",
    )
    exp.add_argument("run_dir", type=Path, help="directory with the run's report.json")
    exp.add_argument(
        "--data-dir", type=Path, default=None, help="the data, if it moved since"
    )
    exp.add_argument("--quiet", action="store_true", help="no progress bars")
    exp.set_defaults(func=run_export, flags=FLAGS)
    return tr
