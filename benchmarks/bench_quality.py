"""Per-channel quality rules on real and clean EEG, and what they cost per hop.

1. The real OpenBCI Cyton recording in ``../shared/data/openbci-cyton-sample/``
   (unfiltered: DC offsets of tens of mV, strong 60 Hz mains, blinks, jaw
   clenches) through the live :class:`~emomon.realtime.pipeline.Pipeline`
   (channels named as the Cyton's default placement, Fp1 Fp2 C3 C4 P7 P8 O1 O2;
   the file records none), fed in 10-sample chunks: which windows are flagged,
   when, on which channels and why; a plot of the signal with the flagged
   stretches (``results/quality_openbci.png``).
2. Clean synthetic EEG (the embedded generator, 6 subjects x 4 videos x 60 s,
   replayed back to back as a replay serves them): no rule may fire.
3. Per-hop compute with and without the spectral rules (noisy, line noise) on
   32 channels at 128 Hz: rounds alternate on one pipeline set-up, so both
   see the same machine load.

Usage: python benchmarks/bench_quality.py [--rounds 3]
Results: benchmarks/results/quality.json, results/quality_openbci.png and the
README table.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS,
    ROOT,
    parse_args,
    parser,
    update_readme_table,
    write_result,
)

from emomon.datasets import get_reader  # noqa: E402
from emomon.datasets.openbci import read_openbci_txt  # noqa: E402
from emomon.dsp.layout import DEAP_CHANNELS  # noqa: E402
from emomon.realtime import quality  # noqa: E402
from emomon.realtime.model import load_model  # noqa: E402
from emomon.realtime.pipeline import Pipeline  # noqa: E402

CYTON = ROOT.parent / "shared" / "data" / "openbci-cyton-sample"
CYTON_FILE = CYTON / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"
#: The Cyton's default electrode placement (OpenBCI's documentation).
CYTON_NAMES = ("Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2")


def build_model(path: Path, ch_names, sfreq: float, eeg: np.ndarray) -> Path:
    """A logreg on ``eeg``'s features: the tests' model builder (labels: alpha
    above its median). The quality rules do not depend on the model; the
    pipeline needs one."""
    sys.path.insert(0, str(ROOT))
    from tests.realtime.models import make_model

    return make_model(path, ch_names=ch_names, sfreq=sfreq, eeg=eeg)


def run(model: Path, eeg: np.ndarray, sfreq: float, names, chunk: int = 10):
    """Every window's quality, feeding ``eeg`` in chunks; t_end in s from start."""
    pipe = Pipeline(load_model(model), source_ch_names=names, source_sfreq=sfreq)
    ts = np.arange(eeg.shape[1]) / sfreq
    out = []
    for i in range(0, eeg.shape[1], chunk):
        for p in pipe.process(eeg[:, i : i + chunk], ts[i : i + chunk], arrival=0.0):
            out.append((p.t_lsl + 1.0 / sfreq, p.quality))
    return out


def stretches(windows, hop_s: float, window_s: float) -> list[dict]:
    """Runs of flagged windows: signal time covered, channels and reasons."""
    runs: list[dict] = []
    for t, q in windows:
        if q.ok:
            continue
        why = {c: r for c, r in q.reasons.items() if r in quality.FLAGGING_REASONS}
        if runs and t - runs[-1]["last_end_s"] <= hop_s + 1e-6:
            run_ = runs[-1]
            run_["last_end_s"] = t
            run_["windows"] += 1
            for c, r in why.items():
                run_["channels"].setdefault(c, r)
        else:
            runs.append(
                {"first_end_s": t, "last_end_s": t, "windows": 1, "channels": why}
            )
    for run_ in runs:  # signal covered: from the first window's start
        run_["signal_s"] = [
            round(run_["first_end_s"] - window_s, 2),
            round(run_["last_end_s"], 2),
        ]
        run_["first_end_s"] = round(run_["first_end_s"], 2)
        run_["last_end_s"] = round(run_["last_end_s"], 2)
    return runs


def plot(eeg, sfreq, names, windows, window_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import signal

    sos = signal.butter(4, [1.0, 40.0], btype="bandpass", fs=sfreq, output="sos")
    shown = signal.sosfiltfilt(sos, eeg, axis=1)  # display only: zero phase
    t = np.arange(eeg.shape[1]) / sfreq
    fig, ax = plt.subplots(figsize=(14, 7))
    step = 150.0
    colours = {"noisy": "tab:red", "flat": "tab:blue", "railed": "tab:purple"}
    for k, name in enumerate(names):
        off = -k * step
        ax.plot(t, shown[k] + off, lw=0.5, color="k")
        for t_end, q in windows:
            why = q.reasons.get(name)
            if why in colours:
                ax.fill_between(
                    [t_end - window_s, t_end],
                    off - step / 2,
                    off + step / 2,
                    color=colours[why],
                    alpha=0.08,
                    lw=0,
                )
    ax.set_yticks([-k * step for k in range(len(names))], names)
    ax.set_xlabel("time (s)")
    ax.set_xlim(t[0], t[-1])
    ax.set_title(
        "OpenBCI Cyton sample, 1-40 Hz for display; shaded: windows flagged "
        "noisy on that channel (each window's 2 s)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def real_recording(tmp: Path) -> dict:
    eeg, sfreq, _, _ = read_openbci_txt(CYTON_FILE)
    model = build_model(tmp / "cyton.onnx", CYTON_NAMES, sfreq, eeg)
    windows = run(model, eeg, sfreq, CYTON_NAMES)
    spec = load_model(model).contract.spec
    runs = stretches(windows, 0.25, spec.window_s)
    reasons = Counter(r for _, q in windows for r in q.reasons.values())
    line = {
        c: round(sum(q.reasons.get(c) == "line_noise" for _, q in windows)
                 / len(windows), 3)
        for c in CYTON_NAMES
    }  # fmt: skip
    plot(eeg, sfreq, CYTON_NAMES, windows, spec.window_s,
         RESULTS / "quality_openbci.png")  # fmt: skip
    return {
        "file": CYTON_FILE.name,
        "duration_s": round(eeg.shape[1] / sfreq, 2),
        "channels_as": list(CYTON_NAMES),
        "windows": len(windows),
        "flagged": sum(not q.ok for _, q in windows),
        "channel_windows_by_reason": dict(reasons),
        "line_noise_share_by_channel": line,
        "flagged_stretches": runs,
    }


def clean_synthetic(tmp: Path) -> dict:
    trials = []
    for s in range(6):
        trials += get_reader(
            "synthetic", None, n_subjects=6, n_videos=4, trial_s=60
        ).read_subject(f"s{s + 1:02d}")
    model = build_model(
        tmp / "deap.onnx", DEAP_CHANNELS, 128.0, trials[0].eeg[:, : 128 * 60]
    )
    n = found = 0
    for s in range(6):
        eeg = np.hstack(
            [np.hstack([t.baseline, t.eeg]) for t in trials[4 * s : 4 * s + 4]]
        )
        w = run(model, eeg, 128.0, DEAP_CHANNELS)
        n += len(w)
        found += sum(bool(q.reasons) for _, q in w)
    return {
        "subjects": 6,
        "videos": 4,
        "trial_s": 60,
        "windows": n,
        "with_finding": found,
    }


def per_hop_cost(tmp: Path, rounds: int) -> dict:
    trials = get_reader("synthetic", None, n_subjects=1, n_videos=2).read_subject("s01")
    eeg = np.hstack([np.hstack([t.baseline, t.eeg]) for t in trials])[:, : 128 * 120]
    model = build_model(tmp / "cost.onnx", DEAP_CHANNELS, 128.0, eeg)
    loaded = load_model(model)
    ts = np.arange(eeg.shape[1]) / 128.0
    real_call = quality.SpectralMeasure.__call__

    def no_spectral(self, x):  # the rules before: no spectral measure
        z = np.zeros(x.shape[0])
        return z, z

    def hops() -> np.ndarray:
        pipe = Pipeline(loaded, source_ch_names=DEAP_CHANNELS, source_sfreq=128.0)
        per, acc = [], 0.0
        for i in range(0, eeg.shape[1], 4):
            t0 = time.perf_counter()
            preds = pipe.process(eeg[:, i : i + 4], ts[i : i + 4], arrival=ts[i])
            acc += time.perf_counter() - t0
            if preds:
                per.append(acc * 1e3)
                acc = 0.0
        return np.asarray(per[8:])

    with_rules, without = [], []
    try:
        for _ in range(rounds):
            quality.SpectralMeasure.__call__ = no_spectral
            without.append(hops())
            quality.SpectralMeasure.__call__ = real_call
            with_rules.append(hops())
    finally:
        quality.SpectralMeasure.__call__ = real_call

    def pct(a):
        a = np.concatenate(a)
        return {"hops": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 4),
                "p99_ms": round(float(np.percentile(a, 99)), 4)}  # fmt: skip

    return {
        "model": "logreg",
        "channels": 32,
        "sfreq": 128.0,
        "rounds": rounds,
        "without_spectral_rules": pct(without),
        "with": pct(with_rules),
    }


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    args = parse_args(ap)
    with tempfile.TemporaryDirectory() as tmp:
        real = real_recording(Path(tmp))
        print(f"real recording: {real['flagged']} of {real['windows']} flagged")
        for r in real["flagged_stretches"]:
            print(f"  {r['signal_s']} s  {r['windows']} windows  {r['channels']}")
        clean = clean_synthetic(Path(tmp))
        print(f"clean synthetic: {clean}")
        cost = per_hop_cost(Path(tmp), args.rounds)
        print(f"per-hop cost: {cost}")
    write_result("quality", {"openbci": real, "synthetic": clean, "cost": cost})
    if not args.no_readme:
        share = max(real["line_noise_share_by_channel"].values())
        c0, c1 = cost["without_spectral_rules"], cost["with"]
        update_readme_table(
            "quality",
            "| quality rules (PipelineSettings defaults) | value |\n|---|---|\n"
            f"| real Cyton sample ({real['duration_s']} s): windows flagged | "
            f"{real['flagged']} of {real['windows']} "
            f"({len(real['flagged_stretches'])} stretches) |\n"
            f"| real Cyton sample: windows naming line_noise (annotates) | up to "
            f"{share:.0%} per channel |\n"
            f"| clean synthetic EEG ({clean['windows']} windows): any finding | "
            f"{clean['with_finding']} |\n"
            f"| per-hop compute p50 / p99, logreg, 32 ch @ 128 Hz, without / with "
            f"the spectral rules | {c0['p50_ms']:.3f} / {c0['p99_ms']:.3f} ms vs "
            f"{c1['p50_ms']:.3f} / {c1['p99_ms']:.3f} ms |",
        )


if __name__ == "__main__":
    main()
