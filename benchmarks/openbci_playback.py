"""A real Cyton recording played through BrainFlow's playback board (issue 12).

``../shared/data/openbci-cyton-sample/`` holds a real OpenBCI Cyton recording
(8 channels, 250 Hz, about 90 s, unfiltered: DC offsets of tens of millivolts,
strong 60 Hz mains, eye blinks, jaw clenches and an eyes-closed stretch; no
emotion labels). This study does what a user of a Cyton would:

1. converts the OpenBCI GUI file to BrainFlow's file format (the Cyton's 24
   rows: package counter, the 8 EXG rows in µV, the file's Unix timestamps),
   with BrainFlow's own ``DataFilter.write_file``;
2. trains a model for the Cyton's montage, the README's way:
   ``emomon train --dataset synthetic --montage cyton`` (logreg);
3. plays the file with ``emomon stream --source brainflow --board-id
   PLAYBACK_FILE_BOARD --master-board CYTON_BOARD --file ... --record ...``
   (BrainFlow names the channels Fp1 Fp2 C3 C4 P7 P8 O1 O2, the Cyton's
   default placement), and reads what was published from the recording's
   ``predictions.jsonl``;
4. finds the artefacts in the signal independently of emomon's quality rules,
   offline: blinks as frontal (Fp1, Fp2) deflections over 100 µV after a
   0.5-8 Hz band-pass, jaw clenches as muscle power (20-45 Hz, below the
   mains) over five times the channel's median on any channel, both in 0.25 s
   steps;
5. counts the flagged windows per reason and how many of them overlap a blink
   or a clench, and plots the signal, the artefacts found and the flags
   (``results/openbci_playback.png``).

No threshold is changed for this recording: emomon's defaults run. Takes
about two minutes (90 s of playback in real time).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from _common import ROOT, parse_args, parser, write_result
from bench_stream import free_port
from scipy import signal as sps

from emomon.datasets.openbci import read_openbci_txt

SAMPLE = ROOT.parent / "shared" / "data" / "openbci-cyton-sample"
RAW = SAMPLE / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"
SF = 250.0
CHANNELS = ("Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2")
STEP_S = 0.25
PLOT = ROOT / "benchmarks" / "results" / "openbci_playback.png"


def to_brainflow_file(path: Path, out: Path) -> np.ndarray:
    """Write the GUI file as a CYTON_BOARD recording; returns the EXG (8, n) µV."""
    from brainflow.board_shim import BoardIds, BoardShim
    from brainflow.data_filter import DataFilter

    board = BoardIds.CYTON_BOARD.value
    exg, sfreq, _, unix_s = read_openbci_txt(path)  # emomon's reader: µV, Unix s
    assert sfreq == SF, sfreq
    n = exg.shape[1]
    data = np.zeros((BoardShim.get_num_rows(board), n))
    # the file's Sample Index column counts 0-255 without a gap in this file
    data[BoardShim.get_package_num_channel(board)] = np.arange(n) % 256
    data[BoardShim.get_eeg_channels(board)] = exg
    data[BoardShim.get_timestamp_channel(board)] = unix_s
    DataFilter.write_file(np.ascontiguousarray(data), str(out), "w")
    return exg


def _band(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Zero-phase band-pass (offline: for finding and showing artefacts only)."""
    sos = sps.butter(4, [lo, hi], "bandpass", fs=SF, output="sos")
    return sps.sosfiltfilt(sos, x, axis=-1)


def artefacts(exg: np.ndarray) -> dict[str, np.ndarray]:
    """Per 0.25 s step: blink (Fp1 or Fp2 over 100 µV at 0.5-8 Hz) and clench
    (20-45 Hz power over 5x its median on any channel: muscle, below the mains)."""
    k = int(STEP_S * SF)
    n_step = exg.shape[1] // k
    low = _band(exg, 0.5, 8.0)[:, : n_step * k].reshape(8, n_step, k)
    emg = _band(exg, 20.0, 45.0)[:, : n_step * k].reshape(8, n_step, k)
    front = np.abs(low[:2]).max(axis=(0, 2))
    power = (emg**2).mean(axis=2)
    ratio = (power / np.median(power, axis=1, keepdims=True)).max(axis=0)
    return {
        "t_s": (np.arange(n_step) + 1) * STEP_S,
        "blink": front > 100.0,
        "clench": ratio > 5.0,
        "front_uv": front,
        "emg_ratio": ratio,
    }


def _run(argv: list[str], timeout: float) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "emomon.cli", *argv], cwd=ROOT, capture_output=True,
        text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"emomon {' '.join(argv)}: {proc.stderr[-2000:]}")
    return proc.stderr


def train_cyton_model(out: Path) -> Path:
    _run(["train", "--dataset", "synthetic", "--montage", "cyton", "--model",
          "logreg", "--subjects", "6", "--videos", "8", "--out", str(out),
          "--quiet"], timeout=900)  # fmt: skip
    return out / "model.onnx"


def play(model: Path, recording: Path, session: Path, seconds: float) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emomon.cli", "stream", "--source", "brainflow",
         "--board-id", "PLAYBACK_FILE_BOARD", "--master-board", "CYTON_BOARD",
         "--file", str(recording), "--model", str(model), "--record", str(session),
         "--address", f"tcp://127.0.0.1:{free_port()}", "--quiet",
         "--duration", f"{seconds:.1f}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _, err = proc.communicate(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"emomon stream: {err[-2000:]}")
    return err


def windows(session: Path) -> list[dict]:
    """Each published window: end (s from the first sample), ok, reasons."""
    stamps = np.load(session.with_suffix(".timestamps.npy"))
    out = []
    for line in session.with_suffix(".predictions.jsonl").read_text().splitlines():
        p = json.loads(line)
        q = p["quality"]
        every = q.get("reasons") or {}
        # the channels that flag the window, and why (line_noise only annotates)
        reasons = {c: every.get(c, "bad") for c in q["bad_channels"]}
        notes = sorted(set(every.values()) - set(reasons.values()))
        out.append({"end_s": p["t_lsl"] - stamps[0], "ok": q["ok"],
                    "dropped": q["dropped"], "reasons": reasons,
                    "notes": notes})  # fmt: skip
    return out


def overlap(wins: list[dict], art: dict[str, np.ndarray], window_s: float) -> dict:
    """Flagged windows that hold a blink or a clench, and artefact steps that
    fall in a flagged window."""
    t = art["t_s"]
    any_art = art["blink"] | art["clench"]
    flagged = [w for w in wins if not w["ok"]]
    hits = 0
    for w in flagged:
        inside = (t > w["end_s"] - window_s) & (t <= w["end_s"] + STEP_S)
        hits += bool(any_art[inside].any())
    covered = np.zeros(t.size, dtype=bool)
    for w in flagged:
        covered |= (t > w["end_s"] - window_s) & (t <= w["end_s"] + STEP_S)
    return {
        "flagged_windows": len(flagged),
        "flagged_with_an_artefact": hits,
        "artefact_steps": int(any_art.sum()),
        "artefact_steps_in_a_flagged_window": int((any_art & covered).sum()),
        "clean_steps_in_a_flagged_window": int((~any_art & covered).sum()),
    }


def plot(exg: np.ndarray, art: dict, wins: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(exg.shape[1]) / SF
    shown = sps.sosfiltfilt(
        sps.butter(4, [1.0, 40.0], "bandpass", fs=SF, output="sos"), exg
    )
    fig, axes = plt.subplots(3, 1, figsize=(13, 8), sharex=True,
                             gridspec_kw={"height_ratios": [4, 1.2, 1.5]})  # fmt: skip
    ax = axes[0]
    for i, ch in enumerate(CHANNELS):
        ax.plot(t, shown[i] - 200.0 * i, lw=0.5, color="k")
        ax.text(-1.0, -200.0 * i, ch, ha="right", va="center", fontsize=8)
    ax.set_yticks([])
    ax.set_title(
        "Cyton recording, 1-40 Hz (offline, for display); 200 µV between traces"
    )
    for name, color in (("blink", "tab:blue"), ("clench", "tab:red")):
        on = art[name]
        for s in art["t_s"][on]:
            axes[1].axvspan(s - STEP_S, s, color=color, alpha=0.6, lw=0)
    axes[1].set_yticks([])
    axes[1].set_title("artefacts found offline: blinks (blue), jaw clenches (red)")
    reasons = sorted({r for w in wins for r in w["reasons"].values()} | {"dropped"})
    rows = {r: i for i, r in enumerate(reasons)}
    for w in wins:
        if w["ok"]:
            continue
        why = set(w["reasons"].values()) or {"dropped"}
        for r in why:
            axes[2].plot([w["end_s"] - STEP_S, w["end_s"]], [rows[r]] * 2, lw=6,
                         color="tab:orange", solid_capstyle="butt")  # fmt: skip
    axes[2].set_yticks(range(len(reasons)), reasons)
    axes[2].set_ylim(-0.5, len(reasons) - 0.5)
    axes[2].set_title(
        "windows emomon flagged (at each window's last 0.25 s), by reason"
    )
    axes[2].set_xlabel("time in the recording (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = parser(__doc__)
    parse_args(ap)
    if not RAW.is_file():
        raise SystemExit(f"{RAW}: not found (the shared OpenBCI sample)")
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        recording = where / "cyton.csv"
        exg = to_brainflow_file(RAW, recording)
        model = train_cyton_model(where / "run")
        seconds = exg.shape[1] / SF
        summary = play(model, recording, where / "session.fif", seconds + 1.0)
        wins = windows(where / "session.fif")
    art = artefacts(exg)
    window_s = 2.0
    reasons = Counter(
        r for w in wins if not w["ok"] for r in set(w["reasons"].values())
    )
    per_channel = Counter(
        f"{ch}:{r}" for w in wins if not w["ok"] for ch, r in w["reasons"].items()
    )
    result = {
        "recording": str(RAW.relative_to(ROOT.parent)),
        "windows": len(wins),
        "flagged": sum(not w["ok"] for w in wins),
        "flagged_by_reason": dict(reasons),
        "flagged_by_channel_and_reason": dict(per_channel.most_common()),
        "dropped_samples": int(sum(w["dropped"] for w in wins)),
        "windows_with_line_noise_noted": sum("line_noise" in w["notes"] for w in wins),
        "overlap": overlap(wins, art, window_s),
        "blink_steps": int(art["blink"].sum()),
        "clench_steps": int(art["clench"].sum()),
        "flagged_spans_s": _spans([w["end_s"] for w in wins if not w["ok"]]),
        "blink_spans_s": _spans(list(art["t_s"][art["blink"]])),
        "clench_spans_s": _spans(list(art["t_s"][art["clench"]])),
        "stream_summary": summary.strip().splitlines()[-1:],
        "plot": str(PLOT.relative_to(ROOT)),
    }
    plot(exg, art, wins, PLOT)
    path = write_result("openbci_playback", result)
    print(json.dumps({k: v for k, v in result.items() if "spans" not in k}, indent=1))
    print(f"wrote {path} and {PLOT}")


def _spans(times: list[float], gap: float = 0.3) -> list[list[float]]:
    """Merge times (s) closer than ``gap`` into [first, last] spans."""
    out: list[list[float]] = []
    for t in sorted(times):
        if out and t - out[-1][1] <= gap:
            out[-1][1] = round(t, 2)
        else:
            out.append([round(t, 2), round(t, 2)])
    return out


if __name__ == "__main__":
    main()
