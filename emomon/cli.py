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
from emomon.errors import EmomonError


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def _positive_float(text: str) -> float:
    v = _nonneg_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return v


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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except EmomonError as exc:
        print(f"emomon: error: {exc}", file=sys.stderr)
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
