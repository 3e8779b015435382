"""Soak: hours of EEG through the live chain at replay speed, checked end to end.

``emomon replay --speed 10 --loop`` serves a synthetic 32-channel recording over
LSL; ``emomon stream`` (a cnn2d model) reads it and publishes on ZeroMQ; a
subscriber here reads every message. The default run is the equivalent of 2 h
of EEG at 10x (12 min wall). Thresholds (issue 5):

- zero dropped samples (the stream's own count, last status);
- every ``seq`` delivered to the reading subscriber (no gaps, no restarts);
- resident memory growth of the stream process < 10 MB after warm-up (RSS
  sampled every 5 s; growth = last sample - first sample after ``--warmup``);
- latency p99 stable: first vs last 10% of predictions after warm-up within 20%.

Latency is receive time minus the LSL time of the window's last sample.
Warm-up (default 60 s wall) covers start-up: connecting, the filters' warm-up
and the first, slow onnxruntime runs.

Usage: python benchmarks/soak.py [--eeg-hours 2] [--speed 10]
Results: benchmarks/results/soak.json and a README line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from _common import ROOT, parse_args, parser, update_readme_table, write_result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _by_tenth(x: np.ndarray) -> list[list[float]]:
    return [
        [round(float(np.percentile(c, 50)), 2), round(float(np.percentile(c, 99)), 2)]
        for c in np.array_split(x, 10)
    ]


def soak(model: Path, *, eeg_hours: float, speed: float, warmup_s: float) -> dict:
    import pylsl

    from emomon.realtime.subscribe import Subscriber

    name = f"soak-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "emomon.cli"]
    replay = subprocess.Popen(
        [*cli, "replay", "--dataset", "synthetic", "--speed", str(speed), "--loop",
         "--name", name, "--no-markers"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT,
    )  # fmt: skip
    stream = subprocess.Popen(
        [*cli, "stream", "--source", "lsl", "--name", name, "--model", str(model),
         "--address", f"tcp://127.0.0.1:{port}", "--quiet", "--timeout", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        cwd=ROOT,
    )  # fmt: skip
    sub = Subscriber(f"tcp://127.0.0.1:{port}")
    wall_s = eeg_hours * 3600.0 / speed
    seqs: list[int] = []
    lat_ms: list[float] = []
    in_stream_ms: list[float] = []  # the stream's own: publish - sample arrival
    rss: list[tuple[float, float]] = []
    last_status: dict = {}
    restarts = 0
    t_first = None
    start_deadline = time.monotonic() + 120.0
    next_rss = 0.0
    next_report = 0.0
    try:
        while True:
            now = time.monotonic()
            if t_first is None and now > start_deadline:
                raise RuntimeError("the stream published no prediction in 120 s")
            if t_first is not None and now - t_first >= wall_s:
                break
            if stream.poll() is not None:
                raise RuntimeError(f"the stream exited early: {stream.stderr.read()}")
            if t_first is not None and now >= next_rss:
                rss.append((now - t_first, _rss_mb(stream.pid)))
                next_rss = now + 5.0
            if t_first is not None and now >= next_report:
                done = (now - t_first) / wall_s
                print(f"  {100 * done:5.1f}%  predictions {len(seqs)}  "
                      f"rss {rss[-1][1]:.1f} MB", flush=True)  # fmt: skip
                next_report = now + 60.0
            msg = sub.recv(timeout_s=0.2)
            if msg is None:
                continue
            if msg.kind == "status":
                last_status = msg.payload
            elif msg.kind == "prediction":
                if t_first is None:
                    t_first = time.monotonic()
                    cpu0 = _cpu_s(stream.pid)
                seqs.append(int(msg.payload["seq"]))
                if time.monotonic() - t_first >= warmup_s:
                    lat_ms.append((pylsl.local_clock() - msg.payload["t_lsl"]) * 1e3)
                    in_stream_ms.append(float(msg.payload["latency_ms"]))
        cpu = (_cpu_s(stream.pid) - cpu0) / (time.monotonic() - t_first)
        restarts = sub.restarts if hasattr(sub, "restarts") else 0
        missed = sum(sub.missed.values())
    finally:
        stream.send_signal(signal.SIGTERM)
        try:
            stream.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stream.kill()
        replay.send_signal(signal.SIGTERM)
        try:
            replay.wait(timeout=30)
        except subprocess.TimeoutExpired:
            replay.kill()
        # The final status ("stopped") carries the last counts.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            msg = sub.recv(timeout_s=0.2)
            if msg is not None and msg.kind == "status":
                last_status = msg.payload
        sub.close()

    s = np.asarray(seqs)
    gaps = int(np.sum(np.diff(s) - 1)) if s.size > 1 else 0
    lat = np.asarray(lat_ms)
    k = max(1, lat.size // 10)
    p99_first = float(np.percentile(lat[:k], 99))
    p99_last = float(np.percentile(lat[-k:], 99))
    after = [m for t, m in rss if t >= warmup_s]
    growth = after[-1] - after[0] if len(after) > 1 else float("nan")
    dropped = int(last_status.get("dropped", -1))
    out = {
        "eeg_hours": eeg_hours,
        "speed": speed,
        "wall_s": round(wall_s, 1),
        "predictions": int(s.size),
        "expected_predictions": round(eeg_hours * 3600.0 / 0.25),
        "seq_gaps": gaps,
        "missed_by_subscriber": int(missed),
        "publisher_restarts": int(restarts),
        "dropped_samples": dropped,
        "samples": int(last_status.get("samples", -1)),
        "rss_mb_after_warmup": round(after[0], 2) if after else None,
        "rss_mb_end": round(after[-1], 2) if after else None,
        "rss_growth_mb": round(growth, 2),
        "rss_trace_mb": [[round(t, 1), round(m, 2)] for t, m in rss],
        "latency_p50_ms": round(float(np.percentile(lat, 50)), 2),
        "latency_p99_first_10pct_ms": round(p99_first, 2),
        "latency_p99_last_10pct_ms": round(p99_last, 2),
        "latency_p99_change": round(p99_last / p99_first - 1.0, 3),
        # Drift or noise: p50/p99 of each tenth, end to end and in the stream.
        "latency_by_tenth_ms": _by_tenth(lat),
        "in_stream_latency_by_tenth_ms": _by_tenth(np.asarray(in_stream_ms)),
        "cpu_core_share": round(cpu, 4),
    }
    out["checks"] = {
        "zero_dropped": dropped == 0,
        "every_seq_delivered": gaps == 0 and missed == 0,
        "rss_growth_lt_10mb": bool(growth < 10.0),
        "latency_p99_within_20pct": bool(abs(p99_last / p99_first - 1.0) <= 0.2),
    }
    out["meets_targets"] = all(out["checks"].values())
    return out


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--eeg-hours", type=float, default=2.0)
    ap.add_argument("--speed", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=60.0, help="wall seconds")
    ap.add_argument("--model", type=Path, help="default: train a small cnn2d")
    args = parse_args(ap)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from bench_stream import build_model

            model = build_model(Path(tmp) / "cnn2d")
        result = soak(
            model, eeg_hours=args.eeg_hours, speed=args.speed, warmup_s=args.warmup
        )
    result = {"config": {"channels": 32, "sfreq": 128.0, "model": "cnn2d",
                         "hop_s": 0.25}, **result}  # fmt: skip
    path = write_result("soak", result)
    print(f"wrote {path}")
    summary = {k: v for k, v in result.items() if k != "rss_trace_mb"}
    print(summary)
    if not args.no_readme:
        c = result["checks"]
        yes = {True: "yes", False: "no"}
        update_readme_table(
            "soak",
            "| soak: "
            f"{result['eeg_hours']:g} h of EEG at {result['speed']:g}x "
            f"({result['wall_s'] / 60:.0f} min) | value | target | met |\n"
            "|---|---|---|---|\n"
            f"| dropped samples | {result['dropped_samples']} | 0 | "
            f"{yes[c['zero_dropped']]} |\n"
            f"| predictions / seq gaps / missed by subscriber | "
            f"{result['predictions']} / {result['seq_gaps']} / "
            f"{result['missed_by_subscriber']} | every seq | "
            f"{yes[c['every_seq_delivered']]} |\n"
            f"| RSS growth after warm-up | {result['rss_growth_mb']:.2f} MB | "
            f"< 10 MB | {yes[c['rss_growth_lt_10mb']]} |\n"
            f"| latency p99, first vs last 10% | "
            f"{result['latency_p99_first_10pct_ms']:.1f} vs "
            f"{result['latency_p99_last_10pct_ms']:.1f} ms | within 20% | "
            f"{yes[c['latency_p99_within_20pct']]} |",
        )


if __name__ == "__main__":
    main()
