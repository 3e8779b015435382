"""An EEG sender written with pylsl and numpy only, as a lab's app or driver pushes.

Nothing of emomon is imported: the latency benchmark and the integration tests
measure emomon against a sender it did not write. Samples are "acquired" on a
regular grid (``sfreq``) and pushed in chunks, each ``push_chunk`` given the push
time as the timestamp of its last sample (liblsl back-dates the others by the
nominal period; pylsl ``push_chunk`` docstring), as most LSL apps do:

- ``--chunk N``: every N samples, when the chunk's last sample is due;
- ``--jitter``: at irregular intervals (mostly 2-60 ms, now and then a stall of
  100-200 ms), pushing every sample acquired by then, so chunk sizes vary too;
- ``--plan MODE:SECONDS,...``: those modes one after the other on the same
  sample grid and outlet (MODE: a chunk size or ``jitter``), so one consumer
  meets them all; ``--seconds`` is then the plan's total.

Pushing starts once a consumer has connected; after the last push the outlet
stays until stdin is closed. The push log goes to ``--log`` as JSON: for every
chunk its push time (``pylsl.local_clock()``, just before ``push_chunk``, the
stamp of its last sample), its size and the index of its plan segment (always 0
without ``--plan``).

Usage: python lsl_sender.py --name X --channels Fp1,AF3,...
       [--chunk 8 | --jitter | --plan 1:12,jitter:9.5]
       [--sfreq 128] [--seconds 30] [--log push.json] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import pylsl


def _outlet(name: str, channels: list[str], sfreq: float) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "EEG", len(channels), sfreq, "float32", name)
    chans = info.desc().append_child("channels")
    for ch in channels:
        c = chans.append_child("channel")
        c.append_child_value("label", ch)
        c.append_child_value("unit", "microvolts")
        c.append_child_value("type", "EEG")
    # chunk_size 0: each push goes out as one chunk, at once
    return pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60)


def _signal(rng: np.random.Generator, n_ch: int, k0: int, n: int, sf: float):
    t = (k0 + np.arange(n)) / sf
    alpha = 10.0 * np.sin(2 * np.pi * 10.0 * t)[:, None]
    return (alpha + rng.normal(0.0, 15.0, (n, n_ch))).astype(np.float32)


def _sleep_until(t: float) -> None:
    left = t - pylsl.local_clock()
    if left > 0:
        time.sleep(left)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--channels", required=True, help="comma-separated labels")
    ap.add_argument("--sfreq", type=float, default=128.0)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--chunk", type=int)
    mode.add_argument("--jitter", action="store_true")
    mode.add_argument("--plan", help="MODE:SECONDS,... (MODE: a chunk size or jitter)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--wait-consumer", type=float, default=60.0)
    ap.add_argument("--log", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    channels = args.channels.split(",")
    sf = args.sfreq
    rng = np.random.default_rng(args.seed)
    outlet = _outlet(args.name, channels, sf)
    print("ready", flush=True)
    if not outlet.wait_for_consumers(args.wait_consumer):
        print("no consumer", file=sys.stderr, flush=True)
        return 1
    # segments: (chunk size, or None for jitter; the sample index it ends at)
    if args.plan:
        plan, end = [], 0
        for item in args.plan.split(","):
            m, secs = item.split(":")
            end += int(float(secs) * sf)
            plan.append((None if m == "jitter" else int(m), end))
    else:
        plan = [(None if args.jitter else args.chunk, int(args.seconds * sf))]
    pushes: list[float] = []
    sizes: list[int] = []
    segments: list[int] = []
    t0 = pylsl.local_clock()
    k = 0
    for seg, (chunk, total) in enumerate(plan):
        while k < total:
            if chunk is None:
                stall = rng.random() < 0.05
                gap = rng.uniform(0.1, 0.2) if stall else rng.uniform(0.002, 0.06)
                _sleep_until(pylsl.local_clock() + gap)
                n = min(int((pylsl.local_clock() - t0) * sf) - k, total - k)
                if n <= 0:
                    continue
            else:
                n = min(chunk, total - k)
                _sleep_until(t0 + (k + n) / sf)
            data = _signal(rng, len(channels), k, n, sf)
            t_push = pylsl.local_clock()
            outlet.push_chunk(data, timestamp=t_push)
            pushes.append(t_push)
            sizes.append(n)
            segments.append(seg)
            k += n
    if args.log:  # whole or not at all: readers wait for the file
        with open(args.log + ".part", "w", encoding="utf-8") as f:
            log = {"sfreq": sf, "t_push": pushes, "n": sizes, "segment": segments}
            json.dump(log, f)
        os.replace(args.log + ".part", args.log)
    print("done", flush=True)
    sys.stdin.read()  # keep the outlet until the caller closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main())
