"""Live latency against senders emomon did not write: chunked, jittered, BrainFlow.

Each row runs ``emomon stream`` (the README's command, a subprocess, cnn2d model,
32 channels at 128 Hz, hop 0.25 s) against an independent sender and a plain
pyzmq subscriber here (``benchmarks/probes``: pylsl, pyzmq and numpy only):

- LSL senders pushing chunks of 1, 4, 8, 10, 16 and 32 samples, and a jittered
  one (irregular intervals, so irregular chunk sizes, with stalls), each chunk
  stamped with its push time as the stamp of its last sample. **Latency** is
  the user's view: from the sender's push of the chunk that holds a window's
  last sample to the subscriber's receipt of that window's prediction;
- BrainFlow's synthetic board (``--source brainflow --board-id synthetic``, 8
  of its channels, 250 Hz resampled to 128 Hz, logreg model): there is no push
  to time, so latency is the subscriber's receipt minus the window's last
  sample's timestamp as BrainFlow stamped it (mapped to the LSL clock).

Beside it, per row: emomon's own figure (``latency_ms``: from reading the
completing chunk to publication) and the honest wire figure
(``quality.sample_age_ms``: publication minus the sample's timestamp, which
also counts the time a mid-chunk sample waited in the sender's chunk), the
stream process's CPU (share of one core) and the windows flagged.

Targets: push-to-receipt p50 <= 5 ms and p99 <= 15 ms for every LSL sender
(bench_stream.py's end-to-end targets, there for 1-sample chunks); CPU <= 2% of
a core with 1-sample chunks (issue 11).

Usage: python benchmarks/bench_senders.py [--seconds 60] [--rows 1,4,8,jitter,bf]
Results: benchmarks/results/senders.json and the README table.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _common import ROOT, parse_args, parser, update_readme_table, write_result
from bench_stream import build_model, cpu_seconds, free_port

sys.path.insert(0, str(ROOT / "benchmarks" / "probes"))
import wire  # noqa: E402 - a probe script beside the benchmarks, not a package

from emomon.dsp.layout import DEAP_CHANNELS  # noqa: E402

SENDER = ROOT / "benchmarks" / "probes" / "lsl_sender.py"
BF_CHANNELS = ("Fz", "C3", "Cz", "C4", "Pz", "Oz", "F3", "F4")
#: The end-to-end targets of bench_stream.py (same model, same machine), met
#: for every LSL sender; the CPU share of issue 11 for one-sample chunks.
TARGETS = {"p50_ms": 5.0, "p99_ms": 15.0, "cpu_core_share_chunk1": 0.02}
WARMUP_S = 3.0  # predictions of the first seconds (window warm-up) are left out


def brainflow_model(out: Path) -> Path:
    """A logreg model on 8 of the synthetic board's channels at 128 Hz."""
    sys.path.insert(0, str(ROOT))
    from tests.realtime.models import make_model  # the tests' model builder

    return make_model(out / "bf.onnx", ch_names=BF_CHANNELS, sfreq=128.0)


def _stream(argv: list[str], address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emomon.cli", "stream", *argv,
         "--address", address, "--quiet"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def _row(
    preds: list[dict], lat: np.ndarray, cpu: tuple[float, float], label: str
) -> dict[str, object]:
    inside = np.array([p["latency_ms"] for p in preds], dtype=float)
    age = np.array(
        [p["quality"].get("sample_age_ms", np.nan) for p in preds], dtype=float
    )
    return {
        "sender": label,
        "push_to_receipt": wire.summary(lat),
        "in_process": wire.summary(inside),
        "sample_age": wire.summary(age[np.isfinite(age)]),
        "cpu_core_share": round(cpu[0], 4),
        "cpu_main_thread_share": round(cpu[1], 4),
        "flagged": int(sum(not p["quality"]["ok"] for p in preds)),
        "predictions": len(preds),
    }


def lsl_row(model: Path, mode: list[str], seconds: float, label: str) -> dict:
    name = f"bench-senders-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "push.json"
        sender = subprocess.Popen(
            [sys.executable, str(SENDER), "--name", name, "--channels",
             ",".join(DEAP_CHANNELS), *mode, "--seconds", str(seconds + WARMUP_S),
             "--log", str(log)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert sender.stdout.readline().strip() == "ready"
        address = f"tcp://127.0.0.1:{free_port()}"
        proc = _stream(
            ["--source", "lsl", "--name", name, "--model", str(model),
             "--timeout", "60"], address,
        )  # fmt: skip
        n = int((seconds + WARMUP_S - 2.0) / 0.25) - 2
        try:
            preds, cpu = _receive_with_cpu(address, proc, n, seconds + 90)
            deadline = time.monotonic() + 60
            while not log.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            push_log = json.loads(log.read_text())
        finally:
            err = _stop(proc)
            sender.stdin.close()
            sender.wait(timeout=30)
            sender.stdout.close()
    if "Traceback" in err:
        raise RuntimeError(err)
    lat = wire.push_to_receipt(push_log, preds)
    return _row(preds, lat, cpu, label)


def _receive_with_cpu(
    address: str, proc: subprocess.Popen, n: int, timeout_s: float
) -> tuple[list[dict], tuple[float, float]]:
    """Predictions after the warm-up, and the stream's CPU share over them.

    The share of the whole process and of its main thread alone (emomon's loop:
    reads, pipeline, model, publication); the other threads are liblsl's
    receiver (or BrainFlow's board thread) and ZeroMQ's I/O thread.
    """
    first: list[float] = []  # receipt of the first prediction (LSL clock)
    span: list[tuple[float, float, float]] = []  # (monotonic s, CPU s, main CPU s)

    def on_message(p: dict) -> None:
        if not first:
            first.append(p["t_recv"])
        elif p["t_recv"] >= first[0] + WARMUP_S:
            mark = (time.monotonic(), cpu_seconds(proc.pid),
                    cpu_seconds(proc.pid, thread=proc.pid))  # fmt: skip
            span[1:] = [mark]
            if len(span) == 1:  # the first mark after the warm-up starts it
                span.insert(0, span[0])

    preds = wire.receive(address, n=n, timeout_s=timeout_s, on_message=on_message)
    if len(span) < 2 or span[1][0] <= span[0][0]:
        raise RuntimeError(f"only {len(preds)} predictions received")
    (w0, c0, m0), (w1, c1, m1) = span
    keep = [p for p in preds if p["t_recv"] >= first[0] + WARMUP_S]
    return keep, ((c1 - c0) / (w1 - w0), (m1 - m0) / (w1 - w0))


def brainflow_row(model: Path, seconds: float) -> dict:
    address = f"tcp://127.0.0.1:{free_port()}"
    proc = _stream(
        ["--source", "brainflow", "--board-id", "synthetic", "--model", str(model)],
        address,
    )
    n = int((seconds + WARMUP_S - 2.0) / 0.25) - 2
    try:
        preds, cpu = _receive_with_cpu(address, proc, n, seconds + 90)
    finally:
        err = _stop(proc)
    if "Traceback" in err:
        raise RuntimeError(err)
    lat = np.array([(p["t_recv"] - p["t_lsl"]) * 1e3 for p in preds])
    return _row(preds, lat, cpu, "BrainFlow synthetic board (250 Hz)")


ROWS = {
    "1": ["--chunk", "1"],
    "4": ["--chunk", "4"],
    "8": ["--chunk", "8"],
    "10": ["--chunk", "10"],
    "16": ["--chunk", "16"],
    "32": ["--chunk", "32"],
    "jitter": ["--jitter"],
}


def _label(key: str) -> str:
    if key == "jitter":
        return "LSL, jittered (2-60 ms, 5% stalls of 100-200 ms)"
    return f"LSL, {key}-sample chunks"


def _table(rows: list[dict], seconds: float) -> str:
    def pair(d: dict) -> str:
        return f"{d['p50_ms']:.2f} / {d['p99_ms']:.2f}"

    lines = [
        f"| sender ({seconds:.0f} s each; 32 ch @ 128 Hz, cnn2d) | push to receipt "
        "p50 / p99 (ms) | in emomon p50 / p99 | sample age at publication p50 / "
        "p99 | CPU (core): all / emomon's loop | flagged |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['sender']} | {pair(r['push_to_receipt'])} | "
            f"{pair(r['in_process'])} | {pair(r['sample_age'])} | "
            f"{100 * r['cpu_core_share']:.1f}% / "
            f"{100 * r['cpu_main_thread_share']:.1f}% | "
            f"{r['flagged']}/{r['predictions']} |"
        )
    lines.append(
        f"| target | <= {TARGETS['p50_ms']:g} / <= {TARGETS['p99_ms']:g} | - | - | "
        f"<= {100 * TARGETS['cpu_core_share_chunk1']:g}% (1-sample chunks) | - |"
    )
    return "\n".join(lines)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rows", default="1,4,8,10,16,32,jitter,bf")
    args = parse_args(ap)
    keys = args.rows.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            model = pool.submit(build_model, Path(tmp) / "cnn2d").result()
            bf = pool.submit(brainflow_model, Path(tmp)).result()
        rows = []
        for key in keys:
            if key == "bf":
                row = brainflow_row(bf, args.seconds)
            else:
                row = lsl_row(model, ROWS[key], args.seconds, _label(key))
            rows.append(row)
            print(json.dumps(row), flush=True)
    lsl = [r for r in rows if r["sender"].startswith("LSL")]
    chunk1 = next((r for r in rows if r["sender"] == _label("1")), None)
    result = {
        "config": {"channels": 32, "sfreq": 128.0, "hop_s": 0.25, "model": "cnn2d",
                   "seconds_per_row": args.seconds, "warmup_s": WARMUP_S},
        "rows": rows,
        "targets": TARGETS,
    }  # fmt: skip
    result["meets_targets"] = bool(
        all(
            r["push_to_receipt"]["p50_ms"] <= TARGETS["p50_ms"]
            and r["push_to_receipt"]["p99_ms"] <= TARGETS["p99_ms"]
            for r in lsl
        )
        and (
            chunk1 is None
            or chunk1["cpu_core_share"] <= TARGETS["cpu_core_share_chunk1"]
        )
    )
    path = write_result("senders", result)
    print(f"wrote {path}; meets targets: {result['meets_targets']}")
    if not args.no_readme:
        update_readme_table("senders", _table(rows, args.seconds))


if __name__ == "__main__":
    main()
