"""A dead electrode: interpolating it versus predicting on it (issue 12, acceptance 3).

A logreg is trained leak-free (LOVO) on synthetic subjects s01-s04 (32 DEAP
channels, 128 Hz); held-out subject s05's session (4 videos of 3 s baseline +
30 s) is replayed through the live pipeline in process (``ReplaySource``
unpaced, 4-sample chunks -> ``run_stream``), once undamaged and, for each of a
few channels, twice with that channel zeroed from the first sample to the last:

* "as is": the zeroed channel is predicted on. Today's flat-channel check flags
  every such window (no probability at all), so this run switches the check off
  (``flat_uv=0``) to publish what the model makes of the zeroed channel;
* "interpolated": default quality checks with ``interpolate=True``; the channel
  is flagged flat, interpolated from the next hop on, and its windows are
  published once it has been interpolated over a window and the 1 s warm-up
  before it (the first 12 windows after detection stay flagged).

Per window, |dp| = |p_high(damaged run) - p_high(undamaged run)| for the same
window (same last sample), over the windows published in all three runs; median
and 95th percentile per task. Takes about a minute.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import parse_args, parser, update_readme_table, write_result

from emomon.datasets import get_reader
from emomon.realtime.model import load_model
from emomon.realtime.pipeline import PipelineSettings
from emomon.realtime.replay import ReplaySession
from emomon.realtime.sinks import Sink
from emomon.realtime.sources import ReplaySource
from emomon.realtime.stream import StreamSettings, run_stream

SYNTH = {"n_subjects": 5, "n_videos": 4, "trial_s": 30.0}
TRAIN_SUBJECTS = ("s01", "s02", "s03", "s04")
HELD_OUT = "s05"
CHANNELS = ("Fp1", "F8", "C3", "Cz", "T7", "Pz", "O2", "PO4")  # over the scalp
TASKS = ("valence", "arousal")


class _Keep(Sink):
    """Each window's p_high per task (NaN when flagged) and end stamp."""

    nonblocking = True

    def __init__(self) -> None:
        self.t: list[float] = []
        self.p: dict[str, list[float]] = {task: [] for task in TASKS}
        self.interpolated = 0

    def on_prediction(self, message, window) -> None:
        self.t.append(message.t_lsl)
        for task in TASKS:
            tp = message.tasks.get(task)
            p = None if tp is None else tp.p_high  # None: a flagged window
            self.p[task].append(np.nan if p is None else float(p))
        self.interpolated += "interpolated" in window.quality.reasons.values()


def build_model(out: Path) -> Path:
    from emomon.offline.train import TrainConfig, run_training

    cfg = TrainConfig(
        dataset="synthetic",
        synthetic=SYNTH,
        subjects=TRAIN_SUBJECTS,
        model="logreg",
        targets=TASKS,
        n_boot=20,
        n_jobs=1,
        cache_dir=None,
    )
    report = run_training(cfg, out, progress=False)
    return out / report.export.path


def replay(model, session: ReplaySession, eeg: np.ndarray, **settings) -> _Keep:
    keep = _Keep()
    with ReplaySource(dataclasses.replace(session, eeg=eeg), chunk=4) as src:
        run_stream(
            src,
            model,
            sinks=[keep],
            settings=StreamSettings(pipeline=PipelineSettings(**settings)),
        )
    return keep


def _stats(d: np.ndarray) -> dict:
    return {
        "median": round(float(np.median(d)), 4),
        "p95": round(float(np.percentile(d, 95)), 4),
    }


def _cell(stats: dict) -> str:
    return f"{stats['median']:.4f} / {stats['p95']:.3f}"


def main() -> None:
    args = parse_args(parser(__doc__))
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_model(Path(tmp) / "run")
        model = load_model(path)
    trials = get_reader("synthetic", None, **SYNTH).read_subject(HELD_OUT)
    session = ReplaySession.from_trials(trials)
    ref = replay(model, session, session.eeg)
    n = len(ref.t)
    rows = []
    everything: dict[str, list[np.ndarray]] = {"as_is": [], "interpolated": []}
    for ch in CHANNELS:
        eeg = session.eeg.copy()
        eeg[session.ch_names.index(ch)] = 0.0
        flagged = replay(model, session, eeg)  # today's default: all flagged
        as_is = replay(model, session, eeg, flat_uv=0.0)
        interp = replay(model, session, eeg, interpolate=True)
        # The same windows in every run (stamps start at each run's open).
        for run in (as_is, interp, flagged):
            rel = np.subtract(run.t, run.t[0])
            assert np.allclose(rel, np.subtract(ref.t, ref.t[0]), atol=1e-6)
        both = np.ones(n, dtype=bool)
        for run in (ref, as_is, interp):
            for task in TASKS:
                both &= np.isfinite(np.asarray(run.p[task]))
        row = {
            "channel": ch,
            "windows": n,
            "compared": int(both.sum()),
            "flagged_default": int(np.isnan(flagged.p[TASKS[0]]).sum()),
            "flagged_interpolated": int(np.isnan(interp.p[TASKS[0]]).sum()),
            "published_interpolated": interp.interpolated,
        }
        smaller = {}
        for task in TASKS:
            p_ref = np.asarray(ref.p[task])[both]
            for name, run in (("as_is", as_is), ("interpolated", interp)):
                d = np.abs(np.asarray(run.p[task])[both] - p_ref)
                row[f"{name}_{task}"] = _stats(d)
                everything[name].append(d)
            a, b = row[f"as_is_{task}"], row[f"interpolated_{task}"]
            smaller[task] = bool(b["median"] < a["median"] and b["p95"] < a["p95"])
        row["interpolation_smaller"] = smaller
        rows.append(row)
        print(
            f"{ch}: |dp| median / p95, as is vs interpolated: "
            + "; ".join(
                f"{task} {_cell(row[f'as_is_{task}'])} vs "
                f"{_cell(row[f'interpolated_{task}'])}"
                for task in TASKS
            )
            + f" ({row['compared']} of {n} windows)",
            flush=True,
        )
    pooled = {name: _stats(np.concatenate(d)) for name, d in everything.items()}
    result = {
        "config": {
            "synthetic": SYNTH,
            "train_subjects": list(TRAIN_SUBJECTS),
            "replayed_subject": HELD_OUT,
            "model": "logreg",
            "protocol": "lovo",
            "channels": 32,
            "sfreq": float(session.sfreq),
            "hop_s": PipelineSettings().hop_s,
            "session_s": round(session.duration_s, 2),
            "zeroed_channels": list(CHANNELS),
        },
        "measure": "per window |p_high(damaged) - p_high(undamaged)|, windows "
        "published in all three runs; as_is = flat check off (flat_uv=0), "
        "interpolated = default checks + interpolate=True",
        "rows": rows,
        "pooled": pooled,
        "pooled_smaller": bool(
            pooled["interpolated"]["median"] < pooled["as_is"]["median"]
            and pooled["interpolated"]["p95"] < pooled["as_is"]["p95"]
        ),
        "seconds": round(time.monotonic() - t_start, 1),
    }
    out = write_result("interpolation", result)
    print(f"pooled: as is {_cell(pooled['as_is'])}, interpolated "
          f"{_cell(pooled['interpolated'])}")  # fmt: skip
    print(f"wrote {out} ({result['seconds']} s)")
    if not args.no_readme:
        lines = [
            f"| zeroed channel ({n} windows of {session.duration_s:.0f} s; abs(Δp) "
            "median / p95) | valence, as is | valence, interpolated | arousal, as is "
            "| arousal, interpolated |",
            "|---|---|---|---|---|",
        ]
        for r in rows:
            cells = " | ".join(
                _cell(r[f"{name}_{task}"])
                for task in TASKS
                for name in ("as_is", "interpolated")
            )
            lines.append(f"| {r['channel']} ({r['compared']} compared) | {cells} |")
        lines += [
            "",
            f"| pooled over the {len(CHANNELS)} channels and both tasks | as is | "
            "interpolated |",
            "|---|---|---|",
            f"| abs(Δp) median / p95 | {_cell(pooled['as_is'])} | "
            f"{_cell(pooled['interpolated'])} |",
        ]
        update_readme_table("interpolation", "\n".join(lines))


if __name__ == "__main__":
    main()
