"""The ``emomon`` command line: parses arguments and calls library functions.

Exit codes: 0 ok, 2 usage or input error (one line naming the culprit),
1 unexpected failure, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from emomon import __version__
from emomon.argtypes import finite_float as _finite_float
from emomon.argtypes import nonneg_float as _nonneg_float
from emomon.argtypes import nonneg_int as _nonneg_int
from emomon.argtypes import positive_float as _positive_float
from emomon.argtypes import positive_int as _positive_int
from emomon.errors import EmomonError


# -- datasets ------------------------------------------------------------------
def cmd_datasets_list(args: argparse.Namespace) -> int:
    from emomon.datasets import READERS, reader_class

    rows = []
    for name in READERS:
        cls = reader_class(name)
        rows.append((name, cls.description, cls.source))
    w = max(len(r[0]) for r in rows)
    for name, desc, source in rows:
        print(f"{name:<{w}}  {desc}")
        print(f"{'':<{w}}  get it: {source}")
    return 0


def cmd_datasets_synth(args: argparse.Namespace) -> int:
    from emomon.datasets.synthetic import SynthParams, write_deap

    params = SynthParams(
        n_subjects=args.subjects,
        n_videos=args.videos,
        seed=args.seed,
        emotion_effect=args.emotion_effect,
        content_effect=args.content_effect,
        trial_s=args.trial_s,
    )
    paths = write_deap(params, args.out)
    print(
        f"wrote {len(paths)} DEAP-format files to {args.out} "
        f"({params.n_videos} videos x 40 channels x "
        f"{int((params.baseline_s + params.trial_s) * params.sfreq)} samples each)"
    )
    print(f"check it: emomon datasets check --dataset deap --data-dir {args.out}")
    return 0


def cmd_datasets_check(args: argparse.Namespace) -> int:
    from emomon.datasets import get_reader
    from emomon.datasets.summary import summarize

    reader = get_reader(args.dataset, args.data_dir)
    print(summarize(reader, progress=not args.quiet).format())
    return 0


# -- train / evaluate / export / info ----------------------------------------------
_TRAIN_KEYS = {
    # CLI dest -> TrainConfig field
    "dataset": "dataset",
    "data_dir": "data_dir",
    "protocol": "protocols",
    "model": "model",
    "targets": "targets",
    "labels": "labels",
    "threshold": "threshold",
    "train_videos": "train_videos",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "patience": "patience",
    "permutations": "permutations",
    "n_boot": "n_boot",
    "seed": "seed",
    "device": "device",
    "jobs": "n_jobs",
    "cache_dir": "cache_dir",
}
_SYNTH_KEYS = {
    "subjects": "n_subjects",
    "videos": "n_videos",
    "emotion_effect": "emotion_effect",
    "content_effect": "content_effect",
    "trial_s": "trial_s",
    "synth_seed": "seed",
}


def _split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _train_config(args: argparse.Namespace):
    """Defaults < --config TOML < command-line options."""
    from emomon.offline.trainconfig import make_train_config

    over = {}
    for dest, key in _TRAIN_KEYS.items():
        v = getattr(args, dest, None)
        if v is None:
            continue
        if key in ("protocols", "targets"):
            v = _split_list(v)
        over[key] = v
    if getattr(args, "no_cache", False):
        over["cache_dir"] = None
    synth = {}
    for dest, key in _SYNTH_KEYS.items():
        v = getattr(args, dest, None)
        if v is not None:
            synth[key] = v
    hp = {}
    if getattr(args, "hparams", None):
        import json

        try:
            hp = json.loads(args.hparams)
        except json.JSONDecodeError as exc:
            raise EmomonError(f"--hparams: not valid JSON ({exc})") from None
        if not isinstance(hp, dict):
            raise EmomonError("--hparams: expected a JSON object")
    cfg = make_train_config(args.config, synthetic=synth, hparams=hp, **over)
    if synth and cfg.dataset != "synthetic":
        raise EmomonError(
            "--subjects/--videos/--emotion-effect/--content-effect/--trial-s only "
            "apply to --dataset synthetic"
        )
    return cfg


def _out_dir(args: argparse.Namespace, cfg) -> Path:
    if args.out is not None:
        return Path(args.out)
    return Path("runs") / f"{cfg.dataset}-{cfg.protocols[0]}-{cfg.model}"


def cmd_train(args: argparse.Namespace) -> int:
    from emomon.offline.report import format_summary
    from emomon.offline.train import run_training

    cfg = _train_config(args)
    out = _out_dir(args, cfg)
    report = run_training(
        cfg, out, progress=not args.quiet, export=False if args.no_export else None
    )
    print(format_summary(report))
    print(f"reports in {out}/ (report.json, per_video.csv, per_subject.csv, *.png)")
    if report.export is not None:
        print(f"inspect the model with: emomon info {out / report.export.path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from emomon.offline.report import format_ablation, format_summary
    from emomon.offline.train import run_ablation, run_training

    labels = _split_list(args.labels) or []
    if labels:
        args.labels = labels[0]  # the config takes one method; the list drives runs
    cfg = _train_config(args)
    out = _out_dir(args, cfg)
    if args.ablate_bands is not None:
        report = run_ablation(
            cfg,
            out,
            bands=_split_list(args.ablate_bands) or [],
            progress=not args.quiet,
        )
        print(format_ablation(report))
    elif len(labels) > 1:
        report = run_ablation(cfg, out, labels=labels, progress=not args.quiet)
        print(format_ablation(report))
    else:
        report = run_training(cfg, out, progress=not args.quiet, export=False)
        print(format_summary(report))
    print(f"reports in {out}/")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from emomon.offline.train import export_run

    done = export_run(args.run_dir, data_dir=args.data_dir, progress=not args.quiet)
    path = Path(args.run_dir) / done.path
    print(
        f"wrote {path} (onnxruntime vs torch max abs difference "
        f"{done.parity_max_abs:.1e}); inspect it with: emomon info {path}"
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from emomon.contract import ModelContract

    contract = ModelContract.from_onnx(args.model)
    if args.json:
        print(contract.to_json())
    else:
        print(contract.describe())
    return 0


def _add_train_options(p: argparse.ArgumentParser, *, evaluate: bool) -> None:
    p.add_argument("--config", type=Path, help="TOML config (configs/*.toml)")
    p.add_argument("--dataset", help="reader name (default synthetic)")
    p.add_argument("--data-dir", type=Path, help="dataset directory")
    p.add_argument(
        "--protocol",
        help="lovo, loso, subject-lovo, seed-split, intra; a comma list runs several "
        "side by side (the first is exported), e.g. lovo,intra (default lovo)",
    )
    p.add_argument("--model", help="logreg, mlp, cnn2d, mtcnn, cnn_transformer")
    p.add_argument(
        "--hparams",
        metavar="JSON",
        help="model hyper-parameters as a JSON object, e.g. '{\"dropout\": 0.3}'",
    )
    p.add_argument("--targets", help="comma list of valence, arousal, class")
    p.add_argument(
        "--labels",
        help="fixed, median, rank or random"
        + ("; a comma list runs the label-reliability experiment" if evaluate else ""),
    )
    p.add_argument(
        "--threshold", type=_finite_float, help="fixed threshold (default midpoint)"
    )
    p.add_argument("--train-videos", choices=["all", "top-bottom"])
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=_positive_float)
    p.add_argument("--patience", type=_positive_int)
    p.add_argument(
        "--permutations", type=_nonneg_int, help="permutation-test reruns (default 0)"
    )
    p.add_argument("--n-boot", type=_nonneg_int, help="bootstrap resamples (1000)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--jobs", type=_positive_int, help="feature worker processes")
    p.add_argument("--cache-dir", help="feature cache (default .emomon_cache)")
    p.add_argument("--no-cache", action="store_true", help="do not cache features")
    p.add_argument("--out", type=Path, help="run directory (default runs/NAME)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("synthetic dataset (--dataset synthetic)")
    g.add_argument("--subjects", type=_positive_int)
    g.add_argument("--videos", type=_positive_int)
    g.add_argument("--emotion-effect", type=_nonneg_float)
    g.add_argument("--content-effect", type=_nonneg_float)
    g.add_argument("--trial-s", type=_positive_float)
    g.add_argument("--synth-seed", type=_nonneg_int)


# -- parser --------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emomon",
        description="Streaming real-time EEG emotion monitor with leak-free "
        "offline evaluation.",
    )
    p.add_argument("--version", action="version", version=f"emomon {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ds = sub.add_parser(
        "datasets", help="list readers, check a data dir, synthesise data"
    )
    dsub = ds.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    lst = dsub.add_parser("list", help="readers and where each dataset comes from")
    lst.set_defaults(func=cmd_datasets_list)

    syn = dsub.add_parser(
        "synth", help="write the synthetic dataset as DEAP .dat files (sNN.dat)"
    )
    syn.add_argument("--out", type=Path, required=True, help="output directory")
    syn.add_argument("--subjects", type=_positive_int, default=8, help="default 8")
    syn.add_argument("--videos", type=_positive_int, default=20, help="default 20")
    syn.add_argument("--seed", type=int, default=0, help="default 0")
    syn.add_argument(
        "--emotion-effect",
        type=_nonneg_float,
        default=1.0,
        help="strength of the real emotion effect (0 disables; default 1)",
    )
    syn.add_argument(
        "--content-effect",
        type=_nonneg_float,
        default=1.0,
        help="strength of the per-video content fingerprint (default 1)",
    )
    syn.add_argument(
        "--trial-s", type=_positive_float, default=60.0, help="trial length (s)"
    )
    syn.set_defaults(func=cmd_datasets_synth)

    chk = dsub.add_parser("check", help="read a data dir and print a summary table")
    chk.add_argument("--dataset", required=True, help="reader name (see datasets list)")
    chk.add_argument("--data-dir", type=Path, default=None, help="dataset directory")
    chk.add_argument("--quiet", action="store_true", help="no progress bar")
    chk.set_defaults(func=cmd_datasets_check)

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
    tr.set_defaults(func=cmd_train)

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
    ev.set_defaults(func=cmd_evaluate)

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
    exp.set_defaults(func=cmd_export)

    info = sub.add_parser("info", help="print the contract of an emomon ONNX model")
    info.add_argument("model", type=Path, help="model.onnx")
    info.add_argument("--json", action="store_true", help="raw contract JSON")
    info.set_defaults(func=cmd_info)

    from emomon.realtime.broker import add_broker_parser
    from emomon.realtime.record import add_recover_parser
    from emomon.realtime.replay import add_replay_parser
    from emomon.realtime.security import add_keys_parser
    from emomon.realtime.stream import add_stream_parser
    from emomon.realtime.subscribe import add_listen_parser

    add_replay_parser(sub)
    add_stream_parser(sub)
    add_recover_parser(sub)
    add_listen_parser(sub)
    add_keys_parser(sub)
    add_broker_parser(sub)
    return p


#: Library parameter named in an error -> the flag that sets it.
_PARAM_FLAGS = {
    "bands": "--ablate-bands",
    "cache_dir": "--cache-dir",
    "data_dir": "--data-dir",
    "dataset": "--dataset",
    "labels": "--labels",
    "no_cache": "--no-cache",
    "no_export": "--no-export",
    "out_dir": "--out",
    "targets": "--targets",
    "threshold": "--threshold",
    "train_videos": "--train-videos",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except EmomonError as exc:
        print(f"emomon: error: {exc.render(_PARAM_FLAGS)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emomon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception:  # noqa: BLE001 - last resort: report the bug, exit 1
        traceback.print_exc()
        print("emomon: unexpected error (a bug): please report it", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
