"""``make demo``: the emomon chain on the embedded synthetic dataset.

Steps: write the synthetic dataset as real DEAP ``.dat`` files, read it back with
the DEAP reader and print its summary, then print the features of one trial.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from emomon.config import FeatureSpec
from emomon.datasets import get_reader
from emomon.datasets.summary import summarize
from emomon.datasets.synthetic import SynthParams, write_deap
from emomon.dsp.layout import to_grid
from emomon.offline.features import trial_features


def _step(n: int, text: str) -> None:
    print(f"\n== {n}. {text}", flush=True)


def format_trial_features(values: np.ndarray, ch_names, spec: FeatureSpec) -> str:
    """Mean features over windows for a few channels, as a text table."""
    show = [c for c in ("Fp1", "F3", "F4", "Cz", "Pz", "O1", "O2") if c in ch_names]
    idx = [list(ch_names).index(c) for c in show] or list(range(min(6, len(ch_names))))
    mean = values.mean(axis=0)
    head = f"{'channel':<8}" + "".join(f"{n:>11}" for n in spec.feature_names)
    lines = [head]
    for i in idx:
        lines.append(f"{ch_names[i]:<8}" + "".join(f"{v:>11.3f}" for v in mean[i]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emomon.demo", description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    ap.add_argument("--subjects", type=int, default=8)
    ap.add_argument("--videos", type=int, default=20)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    data_dir = args.out / "synthetic-deap"
    params = SynthParams(n_subjects=args.subjects, n_videos=args.videos, seed=0)
    _step(1, f"synthetic dataset -> {data_dir} (DEAP .dat format)")
    paths = write_deap(params, data_dir)
    print(f"wrote {len(paths)} files: {paths[0].name} .. {paths[-1].name}")

    _step(2, "read back with the DEAP reader: summary")
    reader = get_reader("deap", data_dir)
    print(summarize(reader, progress=False).format())

    _step(3, "features of one trial (DE and log10 PSD, 2 s windows, 0.5 s hop)")
    spec = FeatureSpec()
    trial = reader.read_subject(reader.subjects()[0])[0]
    tf = trial_features(trial, spec)
    print(
        f"subject {trial.subject} video {trial.video}: {tf.values.shape[0]} windows x "
        f"{tf.values.shape[1]} channels x {tf.values.shape[2]} features; "
        f"ratings {trial.ratings}"
    )
    print(format_trial_features(tf.values, trial.ch_names, spec))
    grid = to_grid(tf.values, trial.ch_names)
    print(f"brain-map layout: {grid.shape} (windows, features, 8, 9)")

    print(f"\ndemo finished in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
