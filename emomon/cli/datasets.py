"""``emomon datasets list | synth | check``: readers, synthetic data, a data check."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emomon.cli._options import (
    add_dataset_option_argument,
    add_synthetic_size_arguments,
)
from emomon.cli.argtypes import nonneg_float

#: Library parameter -> flag (reader and :class:`SynthParams` keywords).
FLAGS: dict[str, str] = {
    "dataset": "--dataset",
    "data_dir": "--data-dir",
    "out_dir": "--out",
    "n_subjects": "--subjects",
    "n_videos": "--videos",
    "seed": "--seed",
    "emotion_effect": "--emotion-effect",
    "content_effect": "--content-effect",
    "trial_s": "--trial-s",
    "reader_options": "--dataset-option",
}


def run_list(args: argparse.Namespace) -> int:
    """``emomon datasets list``: each reader, what it reads, where to get it."""
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


def run_synth(args: argparse.Namespace) -> int:
    """``emomon datasets synth``: write the synthetic dataset as DEAP files."""
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


def run_check(args: argparse.Namespace) -> int:
    """``emomon datasets check``: read a data dir, print its summary table."""
    from emomon.datasets import get_reader
    from emomon.datasets.summary import summarize

    reader = get_reader(args.dataset, args.data_dir, **dict(args.reader_options))
    print(summarize(reader, progress=not args.quiet).format())
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``datasets`` and its actions on ``sub`` (argparse subparsers)."""
    ds = sub.add_parser(
        "datasets", help="list readers, check a data dir, synthesise data"
    )
    dsub = ds.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    lst = dsub.add_parser("list", help="readers and where each dataset comes from")
    lst.set_defaults(func=run_list, flags=FLAGS)

    syn = dsub.add_parser(
        "synth", help="write the synthetic dataset as DEAP .dat files (sNN.dat)"
    )
    syn.add_argument("--out", type=Path, required=True, help="output directory")
    add_synthetic_size_arguments(syn, trial_s=60.0)
    syn.add_argument("--seed", type=int, default=0, help="default 0")
    syn.add_argument(
        "--emotion-effect",
        type=nonneg_float,
        default=1.0,
        help="strength of the real emotion effect (0 disables; default 1)",
    )
    syn.add_argument(
        "--content-effect",
        type=nonneg_float,
        default=1.0,
        help="strength of the per-video content fingerprint (default 1)",
    )
    syn.set_defaults(func=run_synth, flags=FLAGS)

    chk = dsub.add_parser("check", help="read a data dir and print a summary table")
    chk.add_argument("--dataset", required=True, help="reader name (see datasets list)")
    chk.add_argument("--data-dir", type=Path, default=None, help="dataset directory")
    chk.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dataset_option_argument(chk)
    chk.set_defaults(func=run_check, flags=FLAGS)
    return ds
