"""Remake docs/dashboard.png: the dashboard's page during the demo's recording.

The demo's synthetic dataset (8 subjects, seed 1: what ``make demo`` writes),
its held-out subject s08, two trials, written as a FIF recording with two
faults a headset shows: a 0.5 s dropout (NaN) on FC1 and 12 s of a noisy T7.
``emomon stream --source replay --interpolate`` publishes it (paced, 2x) with a
small valence/arousal model trained on it; ``emomon dashboard`` serves the page;
headless Chromium (Debian's, through Playwright) takes the screenshot once the
page shows the window named by ``--at-seq`` (default: one inside the T7 stretch,
T7 interpolated).

    .venv/bin/python benchmarks/tools/dashboard_screenshot.py [--out docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.dashboard.browser import launch, missing_reason  # noqa: E402
from tests.realtime.helpers import free_tcp_port, read_line  # noqa: E402

SF = 128.0
SPEED = 2.0
DROPOUT = ("FC1", 20.0, 0.5)  # channel, start (s), length (s)
NOISY = ("T7", 44.0, 12.0)


def recording(out: Path) -> tuple[Path, np.ndarray, list[str]]:
    """The demo's held-out subject as FIF, faults injected; (path, µV, names)."""
    import mne

    from emomon.datasets import get_reader

    reader = get_reader(
        "synthetic", None, n_subjects=8, n_videos=20, trial_s=30, seed=1
    )
    trials = reader.read_subject("s08")[:2]
    names = list(trials[0].ch_names)
    eeg = np.hstack([np.hstack([t.baseline, t.eeg]) for t in trials]).copy()
    ch, start, length = DROPOUT
    i0 = int(start * SF)
    eeg[names.index(ch), i0 : i0 + int(length * SF)] = np.nan
    ch, start, length = NOISY
    i0, n = int(start * SF), int(length * SF)
    rng = np.random.default_rng(0)
    eeg[names.index(ch), i0 : i0 + n] += 400.0 * rng.standard_normal(n)
    path = out / "demo-s08_raw.fif"
    info = mne.create_info(names, SF, "eeg")
    mne.io.RawArray(eeg * 1e-6, info, verbose="error").save(path, verbose="error")
    return path, eeg, names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    ap.add_argument("--at-seq", type=int, default=200, help="window to show")
    ap.add_argument("--width", type=int, default=1360)
    ap.add_argument("--height", type=int, default=900)
    args = ap.parse_args()
    reason = missing_reason()
    if reason:
        print(f"cannot take the screenshot: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from tests.realtime.models import make_model

    procs: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def emomon(*argv: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emomon.cli", *argv], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(proc)
        return proc

    with tempfile.TemporaryDirectory(prefix="emomon-shot-") as tmp:
        rec, eeg, names = recording(Path(tmp))
        clean = np.nan_to_num(eeg)
        model = make_model(Path(tmp) / "model.onnx", ch_names=names, sfreq=SF,
                           eeg=clean)  # fmt: skip
        address = f"tcp://127.0.0.1:{free_tcp_port()}"
        port = free_tcp_port()
        try:
            dash = emomon("dashboard", "--address", address, "--port", str(port))
            line = read_line(dash.stderr, "emomon dashboard: http", timeout_s=60)
            if not line:
                raise SystemExit("the dashboard did not start")
            url = line.split()[2]
            with sync_playwright() as pw:
                browser = launch(pw)
                page = browser.new_page(
                    viewport={"width": args.width, "height": args.height}
                )
                page.goto(url)
                page.wait_for_function("() => window.emomonDashboard", timeout=10_000)
                emomon(
                    "stream", "--source", "replay", "--file", str(rec),
                    "--model", str(model), "--speed", f"{SPEED:g}",
                    "--interpolate", "--quiet", "--address", address,
                    "--name", "demo-s08",
                )  # fmt: skip
                page.wait_for_function(
                    "n => +document.getElementById('last-seq').textContent >= n",
                    arg=args.at_seq,
                    timeout=120_000,
                )
                page.wait_for_function("() => new Promise(requestAnimationFrame)")
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                shown = page.evaluate(
                    "() => document.getElementById('last-seq').textContent"
                )
                browser.close()
        finally:
            for proc in reversed(procs):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 20
            for proc in procs:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(f"wrote {args.out} (the page at seq {shown})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
