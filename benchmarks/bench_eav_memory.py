"""Peak memory of reading one full-size EAV subject (issue 16: never two copies).

Writes one synthetic subject in the real layout and size (``seg1`` (10000, 30,
200) float64, 480 MB, ``scipy.io.savemat`` v5; the label (10, 200) and the 200
Video names) into a temporary folder, then reads it with ``EavReader`` in a fresh
subprocess (``condition=listening`` and ``both``) and records that process's
peak resident memory (``VmHWM``) minus its resident memory after the imports.
One copy of the array is 480 MB; two would show as about 960 MB. Takes about
half a minute and ~0.5 GB of temporary disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import parse_args, parser, update_readme_table, write_result
from scipy.io import savemat

EMOTIONS = ("Neutral", "Sadness", "Anger", "Happiness", "Calmness")
N_TIMES, N_CH, N_TRIALS = 10_000, 30, 200

_CHILD = """
import json, sys, time
from emomon.datasets import get_reader
# VmHWM, not ru_maxrss: the latter keeps the parent's size from before exec.
def status_mb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
before = status_mb("VmRSS")
t0 = time.perf_counter()
trials = get_reader("eav", sys.argv[1], condition=sys.argv[2]).read_subject("1")
dt = time.perf_counter() - t0
print(json.dumps({"n_trials": len(trials), "read_s": dt, "rss_before_mb": before,
                  "peak_rss_mb": status_mb("VmHWM"), "held_rss_mb": status_mb("VmRSS"),
                  "views": all(not t.eeg.flags.owndata for t in trials)}))
"""


def write_subject(root: Path) -> None:
    folder = root / "EAV" / "subject1"
    (folder / "EEG").mkdir(parents=True)
    (folder / "Video").mkdir()
    rng = np.random.default_rng(0)
    seg = rng.normal(0.0, 10.0, (N_TIMES, N_CH, N_TRIALS))
    savemat(folder / "EEG" / "subject1_eeg.mat", {"seg1": seg})
    del seg
    rows = [2 * ((k // 2) % 5) + k % 2 for k in range(N_TRIALS)]
    label = np.zeros((10, N_TRIALS))
    label[rows, np.arange(N_TRIALS)] = 1
    savemat(folder / "EEG" / "subject1_eeg_label.mat", {"label": label})
    for k, r in enumerate(rows):
        cond = "Listening" if r % 2 == 0 else "Speaking"
        name = f"{k + 1:03d}_Trial_{k % 20 + 1:02d}_{cond}_{EMOTIONS[r // 2]}.mp4"
        (folder / "Video" / name).touch()


def main() -> None:
    args = parse_args(parser(__doc__))
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_subject(Path(tmp))
        write_s = time.perf_counter() - t0
        for condition in ("listening", "both"):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, tmp, condition],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            r["read_peak_mb"] = r["peak_rss_mb"] - r["rss_before_mb"]
            runs[condition] = r
    array_mb = N_TIMES * N_CH * N_TRIALS * 8 / 2**20
    path = write_result(
        "eav_memory", {"array_mb": array_mb, "write_s": write_s, "runs": runs}
    )
    rows = [
        f"| {c} | {r['n_trials']} | {r['read_s']:.1f} | {r['read_peak_mb']:.0f} "
        f"| {r['views']} |"
        for c, r in runs.items()
    ]
    table = "\n".join(
        [
            f"One EAV subject, `seg1` (10000, 30, 200) float64 = {array_mb:.0f} MiB:",
            "",
            "| condition | trials | read (s) | peak memory of the read (MiB) | "
            "trials are views |",
            "| --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    print(table)
    print(f"wrote {path}")
    if not args.no_readme:
        update_readme_table("eav_memory", table)


if __name__ == "__main__":
    main()
