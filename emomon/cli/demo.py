"""``emomon demo`` (``make demo``): the whole chain on synthetic data, end to end."""

from __future__ import annotations

import argparse
from pathlib import Path

from emomon.cli._options import add_synthetic_size_arguments
from emomon.cli.argtypes import positive_float, positive_int

#: One line for ``emomon --help``.
HELP = "the whole chain on synthetic data: train, replay, stream, score"
DESCRIPTION = (
    "Write the synthetic dataset as DEAP files, train a logreg "
    "leak-free on all subjects but one and export model.onnx, replay the "
    "held-out subject over LSL, stream it through the model to ZeroMQ and "
    "score the predictions live against the replay's markers."
)

#: Library parameter -> flag (:func:`~emomon.demo.run_demo`).
FLAGS: dict[str, str] = {
    "out_dir": "--out",
    "n_subjects": "--subjects",
    "n_videos": "--videos",
    "trial_s": "--trial-s",
    "replay_trials": "--replay-trials",
    "speed": "--speed",
}


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns 0."""
    from emomon.demo import run_demo
    from emomon.realtime.lslconfig import quiet_liblsl

    quiet_liblsl()  # liblsl's own log off the console (before liblsl reads its config)
    run_demo(
        args.out,
        write=_say,
        n_subjects=args.subjects,
        n_videos=args.videos,
        trial_s=args.trial_s,
        replay_trials=args.replay_trials,
        speed=args.speed,
    )
    return 0


def _say(text: str) -> None:
    """Print one piece of the demo's narrative at once (progress bars interleave)."""
    print(text, flush=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``demo`` to ``p``."""
    p.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="output (demo_out)"
    )
    add_synthetic_size_arguments(p, trial_s=30.0)
    p.add_argument(
        "--replay-trials",
        type=positive_int,
        default=8,
        help="trials of the held-out subject replayed live (default 8)",
    )
    p.add_argument(
        "--speed", type=positive_float, default=10.0, help="replay speed (10x)"
    )
