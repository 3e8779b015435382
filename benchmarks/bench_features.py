"""Feature-extraction throughput on a DEAP-sized synthetic set.

Writes 32 subjects x 40 videos x 40 channels x 63 s at 128 Hz as real DEAP ``.dat``
files, then times emomon's extraction (DE + PSD, 4 bands, 2 s window, 0.5 s hop)
from those files with the real DEAP reader, 2 worker processes, no cache. In the
same run a naive reference -- a fresh ``scipy.signal.lfilter`` band-pass designed and
run per window, per channel, per band, with Python loops, as published DEAP
pipelines do -- is timed on a subset, and the throughputs are compared.

Usage: python benchmarks/bench_features.py [--subjects 32 --videos 40 --jobs 2]
Results: benchmarks/results/features.json and the README table.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _common import parse_args, parser, update_readme_table, write_result
from scipy import signal

from emomon.config import FeatureSpec
from emomon.datasets import get_reader
from emomon.datasets.synthetic import SynthParams, write_deap
from emomon.offline.features import load_features, trial_features


def naive_features(eeg: np.ndarray, sfreq: float, spec: FeatureSpec) -> np.ndarray:
    """The per-window reference: fresh filter per window, Python loops."""
    win_n = int(round(spec.window_s * sfreq))
    hop_n = int(round(spec.hop_s * sfreq))
    seg_n = int(round(spec.welch_seg_s * sfreq))
    rows = []
    for start in range(0, eeg.shape[1] - win_n + 1, hop_n):
        win_rows = []
        for ch in range(eeg.shape[0]):
            w = eeg[ch, start : start + win_n]
            feats = []
            for band in spec.bands:
                b, a = signal.butter(
                    spec.filter_order, [band.lo, band.hi], btype="bandpass", fs=sfreq
                )
                y = signal.lfilter(b, a, w)
                feats.append(0.5 * np.log(2 * np.pi * np.e * np.var(y, ddof=1)))
            f, p = signal.welch(w, fs=sfreq, nperseg=seg_n)
            for band in spec.bands:
                m = (f >= band.lo) & (f <= band.hi)
                feats.append(np.log10(np.trapezoid(p[m], f[m])))
            win_rows.append(feats)
        rows.append(win_rows)
    return np.asarray(rows)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--subjects", type=int, default=32)
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--naive-trials", type=int, default=2)
    args = parse_args(ap)

    spec = FeatureSpec(window_s=2.0, hop_s=0.5)
    params = SynthParams(n_subjects=args.subjects, n_videos=args.videos, seed=0)
    with tempfile.TemporaryDirectory(prefix="emomon-bench-") as tmp:
        t0 = time.perf_counter()
        write_deap(params, Path(tmp))
        t_write = time.perf_counter() - t0
        reader = get_reader("deap", tmp)

        t0 = time.perf_counter()
        table = load_features(
            reader, spec=spec, cache_dir=None, n_jobs=args.jobs, progress=False
        )
        t_ours = time.perf_counter() - t0
        n_trials = table.n_trials
        trials = reader.read_subject(reader.subjects()[0])[: args.naive_trials]

    n_ch = len(table.ch_names)
    n_samples = trials[0].eeg.shape[1] + trials[0].baseline.shape[1]
    ch_samples = n_trials * n_ch * n_samples
    ours_rate = ch_samples / t_ours

    # Single-core emomon on the naive subset, for a like-for-like per-core figure.
    t0 = time.perf_counter()
    for t in trials:
        trial_features(t, spec)
    t_ours_subset = time.perf_counter() - t0

    t0 = time.perf_counter()
    for t in trials:
        naive_features(np.hstack([t.baseline, t.eeg]), t.sfreq, spec)
    t_naive = time.perf_counter() - t0
    subset_ch_samples = len(trials) * n_ch * n_samples
    naive_rate = subset_ch_samples / t_naive
    result = {
        "config": {
            "subjects": args.subjects,
            "videos": args.videos,
            "channels": n_ch,
            "samples_per_trial": n_samples,
            "sfreq": 128.0,
            "spec": spec.to_dict(),
            "jobs": args.jobs,
        },
        "write_dat_s": round(t_write, 2),
        "emomon": {
            "wall_s": round(t_ours, 2),
            "channel_samples": ch_samples,
            "channel_samples_per_s": round(ours_rate),
            "windows": int(table.X.shape[0]),
        },
        "emomon_single_core_subset": {
            "trials": len(trials),
            "wall_s": round(t_ours_subset, 3),
            "channel_samples_per_s": round(subset_ch_samples / t_ours_subset),
        },
        "naive_reference": {
            "trials": len(trials),
            "wall_s": round(t_naive, 2),
            "channel_samples_per_s": round(naive_rate),
        },
        "speedup_vs_naive": round(ours_rate / naive_rate, 1),
        "speedup_vs_naive_single_core": round(t_naive / t_ours_subset, 1),
        "targets": {"wall_s_max": 60.0, "speedup_min": 20.0},
    }
    result["meets_targets"] = bool(t_ours < 60.0 and result["speedup_vs_naive"] >= 20.0)
    path = write_result("features", result)
    print(f"wrote {path}")
    print(
        f"emomon: {n_trials} trials in {t_ours:.1f} s "
        f"({ours_rate / 1e6:.1f} M channel-samples/s, {args.jobs} jobs); "
        f"naive: {naive_rate / 1e6:.3f} M/s; speedup {result['speedup_vs_naive']}x"
    )
    if not args.no_readme:
        update_readme_table(
            "features",
            "| feature extraction (DE+PSD, 4 bands, 2 s / 0.5 s) | value |\n"
            "|---|---|\n"
            f"| DEAP-sized set ({args.subjects} subj x {args.videos} trials x "
            f"{n_ch} ch x {n_samples / 128:.0f} s), wall, {args.jobs} jobs "
            f"| {t_ours:.1f} s (target < 60 s) |\n"
            f"| throughput | {ours_rate / 1e6:.1f} M channel-samples/s |\n"
            f"| naive per-window lfilter reference | {naive_rate / 1e6:.3f} M "
            "channel-samples/s |\n"
            f"| speedup | {result['speedup_vs_naive']}x (target >= 20x); "
            f"single core {result['speedup_vs_naive_single_core']}x |",
        )


if __name__ == "__main__":
    main()
