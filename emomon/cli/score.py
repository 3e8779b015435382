"""``emomon score``: score a recorded live session against its markers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emomon.cli.argtypes import nonneg_int

#: One line for ``emomon --help``.
HELP = "score a `stream --record` session against its recorded markers"
DESCRIPTION = (
    "Per task: balanced accuracy, accuracy and AUC of the live predictions "
    "against the labels of the recorded trial markers, with the offline "
    "report's code: a permutation test of the fixed model (the trials' labels "
    "shuffled among the session's trials, the predictions fixed), the 95% "
    "interval resampling trials only beside it, 'inconclusive' when the "
    "permutations cannot reach p < 0.05. Beside it, the same windows recomputed "
    "offline from the recorded EEG (the offline feature path and the model), "
    "then the latency (sender push -> prediction, this machine's LSL clock) and "
    "the flagged windows. Example: emomon score session.fif"
)

#: Library parameter -> flag (:func:`emomon.livescore.score_session`).
FLAGS: dict[str, str] = {
    "path": "RECORDING",
    "model": "--model",
    "permutations": "--permutations",
    "n_boot": "--n-boot",
    "seed": "--seed",
}


def run(args: argparse.Namespace) -> int:
    """Score the recording, print the report (and write ``--json``); returns 0."""
    from emomon.livescore import format_session_score, score_session

    score = score_session(
        args.path,
        model=args.model,
        permutations=args.permutations,
        n_boot=args.n_boot,
        seed=args.seed,
        offline=not args.live_only,
    )
    print(format_session_score(score), flush=True)
    if args.json is not None:
        args.json.write_text(
            json.dumps(score.to_dict(), indent=2, allow_nan=False) + "\n",
            encoding="utf-8",
        )
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``score`` to ``p``."""
    p.add_argument(
        "path",
        type=Path,
        metavar="RECORDING",
        help="session.fif written by `emomon stream --record` with markers",
    )
    p.add_argument(
        "--model",
        type=Path,
        help="the model.onnx the session ran (default: the file the recording "
        "names; checked against the predictions' model id)",
    )
    p.add_argument(
        "--permutations",
        type=nonneg_int,
        default=999,
        help="label permutations of the null (default %(default)s: p can reach "
        "0.001; milliseconds each, the model is not rerun; every distinct "
        "arrangement once, the exact test, when the trials allow no more); 0: "
        "not tested, no interval",
    )
    p.add_argument(
        "--n-boot",
        type=nonneg_int,
        default=1000,
        help="bootstrap resamples of the trials (default %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of permutations and bootstrap"
    )
    p.add_argument(
        "--live-only",
        action="store_true",
        help="skip the offline recomputation from the recorded EEG",
    )
    p.add_argument("--json", type=Path, help="also write the numbers as JSON here")
