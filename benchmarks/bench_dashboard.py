"""The dashboard under load: N streams at 4 Hz via a broker, a page open all along.

Publishers (the project's ``Publisher``, connecting) send predictions (5% of
them flagged, with channel findings), a status a second and each stream's
description into a real ``emomon broker`` (in process); ``emomon dashboard``
runs as a subprocess on the broker's backend; headless Chromium (Debian's,
through Playwright) keeps its page open and switches stream every 30 s.

Measured:

- page lag: publication time (``t_pub``) to the moment the page has drawn the
  prediction (its own clock, the same machine's), for the selected stream; and
  to its arrival on the page, for every stream;
- the page's buffers (rows per stream; bounded by the history) and JS heap;
- the dashboard's resident memory (``/proc/PID/status``) over time: flat once
  its backlog is full (``--history`` seconds), judged on the last half;
- what a closed tab leaves: the server's open tabs, sockets and event-loop
  tasks (``/healthz``) after the page is closed, against before it opened;
- the dashboard's counters: predictions received, missed (seq gaps), messages
  a slow tab lost.

Writes benchmarks/results/dashboard.json and the README table (bench:dashboard).
The acceptance run (issue 13) is the default: 8 streams, 600 s:

    .venv/bin/python benchmarks/bench_dashboard.py
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, parse_args, parser, update_readme_table, write_result

sys.path.insert(0, str(ROOT))

from emomon.dsp.layout import DEAP_CHANNELS  # noqa: E402
from emomon.realtime.broker import Broker  # noqa: E402
from emomon.realtime.messages import prediction_message, status_message  # noqa: E402
from emomon.realtime.meta import describe  # noqa: E402
from emomon.realtime.publish import Publisher, PublisherSettings  # noqa: E402
from tests.dashboard.browser import launch, missing_reason  # noqa: E402
from tests.realtime.helpers import free_tcp_port, read_line  # noqa: E402

LAG_LIMIT_MS = 1000.0  # the "page lag under 1 s"
RSS_FLAT_MB = 5.0  # growth allowed over the last half of the run
SWITCH_S = 30.0  # the page's selected stream changes this often
HOP_S = 0.25


class Streams(threading.Thread):
    """N streams published at ``rate`` Hz into the broker's frontend (one thread:
    a Publisher is created, used and closed in one thread)."""

    def __init__(self, frontend: str, n: int, rate: float) -> None:
        super().__init__(name="publishers", daemon=True)
        self.frontend, self.n, self.rate = frontend, n, rate
        self.stop = threading.Event()
        self.names = [f"bench-{i:02d}" for i in range(n)]
        self.sent = 0
        self.flagged = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc

    def _run(self) -> None:
        rng = random.Random(0)
        pubs = [
            Publisher(PublisherSettings(address=self.frontend, connect=True))
            for _ in self.names
        ]
        try:
            for pub, name in zip(pubs, self.names, strict=True):
                pub.publish_meta(
                    describe(
                        stream=name, model="bench", ch_names=DEAP_CHANNELS,
                        tasks={"valence": ["low", "high"], "arousal": ["low", "high"]},
                        sfreq=128.0, model_sfreq=128.0, window_s=2.0, hop_s=HOP_S,
                    )
                )  # fmt: skip
            period = 1.0 / self.rate
            t0 = time.monotonic()
            # streams staggered over one period, as independent headsets are
            due = [t0 + period * i / self.n for i in range(self.n)]
            seq = [0] * self.n
            status_seq = [0] * self.n
            next_status = [t0] * self.n
            v = [0.5] * self.n
            a = [0.5] * self.n
            while not self.stop.is_set():
                i = min(range(self.n), key=due.__getitem__)
                wait = due[i] - time.monotonic()
                if wait > 0 and self.stop.wait(wait):
                    break
                now = time.monotonic()
                pub, name = pubs[i], self.names[i]
                if now >= next_status[i]:
                    pub.publish_status(
                        status_message(
                            seq=status_seq[i], stream=name, state="connected",
                            samples=int(128 * (now - t0)), dropped=0,
                            buffer_lag_s=0.002, uptime_s=now - t0,
                            predictions=seq[i],
                        )
                    )  # fmt: skip
                    status_seq[i] += 1
                    next_status[i] += 1.0
                ok = rng.random() > 0.05
                v[i] = min(1.0, max(0.0, v[i] + rng.gauss(0, 0.05)))
                a[i] = min(1.0, max(0.0, a[i] + rng.gauss(0, 0.05)))
                tasks = {
                    "valence": (v[i] if ok else None, ("high" if v[i] > 0.5 else "low")
                                if ok else None),
                    "arousal": (a[i] if ok else None, ("high" if a[i] > 0.5 else "low")
                                if ok else None),
                }  # fmt: skip
                bad = rng.choice(DEAP_CHANNELS)
                quality = (
                    {"ok": True, "bad_channels": [], "dropped": 0}
                    if ok
                    else {"ok": False, "bad_channels": [bad], "dropped": 0,
                          "reasons": {bad: "noisy"}}
                )  # fmt: skip
                pub.publish_prediction(
                    prediction_message(
                        seq=seq[i], stream=name, t_lsl=now, window_s=2.0,
                        tasks=tasks, quality=quality, latency_ms=1.5, model="bench",
                    )
                )  # fmt: skip
                seq[i] += 1
                self.sent += 1
                self.flagged += not ok
                due[i] += period
                pub.poll()  # serve late joiners (the dashboard re-subscribing)
        finally:
            for pub in pubs:
                pub.close()


def idle(proc: subprocess.Popen, wait_s: float) -> None:
    """A bounded wait that ends early if the dashboard exits (a poll's tick)."""
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        pass


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}healthz", timeout=5) as r:
        return json.loads(r.read())


def pct(x: list[float], q: float) -> float | None:
    return round(float(np.percentile(x, q)), 1) if x else None


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--rate", type=float, default=4.0, help="predictions/s/stream")
    ap.add_argument("--duration", type=float, default=600.0, help="seconds")
    ap.add_argument(
        "--history", type=float, default=300.0, help="dashboard --history (s)"
    )
    ap.add_argument("--sample", type=float, default=5.0, help="s between samples")
    args = parse_args(ap)
    reason = missing_reason()
    if reason:
        raise SystemExit(f"bench_dashboard needs a browser: {reason}")
    from playwright.sync_api import sync_playwright

    cap_rows = math.ceil(args.history * args.rate) + 64 + 64  # rows + breaks
    with Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as broker:
        broker.start()
        port = free_tcp_port()
        dash = subprocess.Popen(
            [sys.executable, "-m", "emomon.cli", "dashboard", "--address",
             broker.backend_endpoint, "--port", str(port), "--history",
             f"{args.history:g}"],
            cwd=ROOT, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        streams = Streams(broker.frontend_endpoint, args.streams, args.rate)
        try:
            line = read_line(dash.stderr, "emomon dashboard: http", timeout_s=60)
            if not line:
                raise SystemExit("the dashboard did not start")
            url = line.split()[2]
            streams.start()
            deadline = time.monotonic() + 30
            while health(url)["streams"] < args.streams:
                if time.monotonic() > deadline:
                    raise SystemExit(f"streams not seen: {health(url)}")
                idle(dash, 0.1)
            before = health(url)
            samples: list[dict[str, Any]] = []
            shown: list[float] = []
            received: list[float] = []
            with sync_playwright() as pw:
                browser = launch(pw)
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(url)
                page.wait_for_function("() => window.emomonDashboard", timeout=10_000)
                t0 = time.monotonic()
                next_switch = t0 + SWITCH_S
                k = 0
                while time.monotonic() - t0 < args.duration:
                    page.wait_for_timeout(args.sample * 1000)
                    if streams.error is not None:
                        raise streams.error
                    if time.monotonic() >= next_switch:
                        k += 1
                        name = json.dumps(streams.names[k % args.streams])
                        page.evaluate(f"() => window.emomonDashboard.select({name})")
                        next_switch += SWITCH_S
                    lags = page.evaluate("() => window.emomonDashboard.takeLags()")
                    m = page.evaluate("() => window.emomonDashboard.metrics()")
                    h = health(url)
                    shown += lags["shown"]
                    received += lags["received"]
                    samples.append({
                        "t_s": round(time.monotonic() - t0, 1),
                        "rss_mb": round(rss_mb(dash.pid), 2),
                        "heap_mb": round((m["heap"] or 0) / 2**20, 2),
                        "rows_max": max(m["buffers"].values(), default=0),
                        "lag_shown_p99_ms": pct(lags["shown"], 99),
                        "tabs": h["tabs"], "tasks": h["tasks"], "points": h["points"],
                    })  # fmt: skip
                    print(json.dumps(samples[-1]), flush=True)
                # the publishers stop; the page has all they sent, then closes
                streams.stop.set()
                streams.join(10)
                during = health(url)
                t_end = time.monotonic()
                while during["predictions"] + during["missed"] < streams.sent:
                    if time.monotonic() - t_end > 10:
                        break
                    idle(dash, 0.05)
                    during = health(url)
                page.wait_for_function(
                    "() => new Promise(r => requestAnimationFrame(() => r(true)))"
                )
                lags = page.evaluate("() => window.emomonDashboard.takeLags()")
                shown += lags["shown"]
                received += lags["received"]
                final_metrics = page.evaluate("() => window.emomonDashboard.metrics()")
                context.close()  # the tab goes away
                t_close = time.monotonic()
                after = health(url)
                while not (
                    after["tabs"] == 0
                    and after["websockets"] == 0
                    and after["tasks"] == before["tasks"]
                ):
                    if time.monotonic() - t_close > 30:
                        break
                    idle(dash, 0.05)
                    after = health(url)
                cleanup_s = time.monotonic() - t_close
                browser.close()
        finally:
            streams.stop.set()
            streams.join(10)
            dash.send_signal(signal.SIGINT)
            try:
                dash.wait(20)
            except subprocess.TimeoutExpired:
                dash.kill()
    report(args, samples, shown, received, final_metrics, before, during, after,
           cleanup_s, streams, errors, cap_rows)  # fmt: skip


def report(args, samples, shown, received, metrics, before, during, after,
           cleanup_s, streams, errors, cap_rows) -> None:  # fmt: skip
    rss = np.array([s["rss_mb"] for s in samples])
    t = np.array([s["t_s"] for s in samples])
    half = t >= t[-1] / 2
    growth = float(rss[half].max() - rss[half].min()) if half.any() else math.nan
    slope = float(np.polyfit(t[half], rss[half], 1)[0] * 60) if half.sum() > 2 else 0.0
    rows_max = max(s["rows_max"] for s in samples)
    closed_clean = (
        after["tabs"] == 0
        and after["websockets"] == 0
        and after["tasks"] == before["tasks"]
    )
    result = {
        "streams": args.streams,
        "rate_hz": args.rate,
        "duration_s": args.duration,
        "history_s": args.history,
        "published": streams.sent,
        "flagged": streams.flagged,
        "dashboard": {
            "predictions_received": during["predictions"],
            "missed": during["missed"],
            "tab_dropped": during["tab_dropped"],
            "inbox_dropped": during["inbox_dropped"],
        },
        "page_lag_shown_ms": {
            "n": len(shown), "p50": pct(shown, 50), "p95": pct(shown, 95),
            "p99": pct(shown, 99), "max": round(max(shown), 1) if shown else None,
        },
        "page_lag_received_ms": {
            "n": len(received), "p50": pct(received, 50), "p99": pct(received, 99),
            "max": round(max(received), 1) if received else None,
        },
        "page_rows_max": rows_max,
        "page_rows_cap": cap_rows,
        "page_heap_mb": {"first": samples[0]["heap_mb"], "last": samples[-1]["heap_mb"],
                         "max": max(s["heap_mb"] for s in samples)},
        "server_rss_mb": {
            "first": float(rss[0]), "last": float(rss[-1]), "max": float(rss.max()),
            "last_half_growth": round(growth, 2),
            "last_half_slope_mb_per_min": round(slope, 3),
        },
        "closed_tab": {
            "before": {k: before[k] for k in ("tabs", "websockets", "tasks")},
            "with_tab": {k: during[k] for k in ("tabs", "websockets", "tasks")},
            "after": {k: after[k] for k in ("tabs", "websockets", "tasks")},
            "cleanup_s": round(cleanup_s, 2),
        },
        "page_errors": errors,
        "final_page_metrics": metrics,
        "samples": samples,
    }  # fmt: skip
    p99 = result["page_lag_shown_ms"]["p99"]
    verdict = {
        "lag_under_1s": p99 is not None and p99 < LAG_LIMIT_MS,
        "buffers_bounded": rows_max <= cap_rows,
        "memory_flat": growth < RSS_FLAT_MB,
        "closed_tab_clean": closed_clean,
        "nothing_missed": during["missed"] == 0 and during["tab_dropped"] == 0,
        "no_page_errors": not errors,
    }
    result["verdict"] = verdict
    path = write_result("dashboard", result)
    print(f"wrote {path}")
    print(json.dumps(verdict))
    if not args.no_readme:
        lag, rl = result["page_lag_shown_ms"], result["page_lag_received_ms"]
        mem = result["server_rss_mb"]
        ok = {True: "yes", False: "**no**"}
        table = "\n".join([
            f"{args.streams} streams at {args.rate:g} Hz through `emomon broker`, "
            f"{args.duration / 60:g} min, one page open (history {args.history:g} s); "
            f"`benchmarks/bench_dashboard.py` ({time.strftime('%Y-%m-%d')}, "
            f"{os.cpu_count()} cores):",
            "",
            "| measure | value | target met |",
            "|---|---|---|",
            f"| page lag, publication -> drawn (selected stream) | p50 {lag['p50']} "
            f"ms, p99 {lag['p99']} ms, max {lag['max']} ms ({lag['n']} windows) | "
            f"{ok[verdict['lag_under_1s']]} (< 1 s) |",
            f"| page lag, publication -> arrived (all streams) | p50 {rl['p50']} ms, "
            f"p99 {rl['p99']} ms ({rl['n']} windows) | |",
            f"| page rows per stream, max | {rows_max} (cap {cap_rows}) | "
            f"{ok[verdict['buffers_bounded']]} |",
            f"| page JS heap | {result['page_heap_mb']['first']} -> "
            f"{result['page_heap_mb']['last']} MB (max "
            f"{result['page_heap_mb']['max']}) | |",
            f"| dashboard RSS | {mem['first']:.1f} -> {mem['last']:.1f} MB; last half "
            f"+{mem['last_half_growth']} MB ({mem['last_half_slope_mb_per_min']} "
            f"MB/min) | {ok[verdict['memory_flat']]} (< {RSS_FLAT_MB:g} MB) |",
            f"| after the tab closed: tabs, sockets, tasks | "
            f"{after['tabs']}, {after['websockets']}, {after['tasks']} (before the "
            f"page: {before['tasks']} tasks; with it: {during['tasks']}) in "
            f"{cleanup_s:.2f} s | {ok[closed_clean]} |",
            f"| received / missed / lost by the tab | {during['predictions']} / "
            f"{during['missed']} / {during['tab_dropped']} of {streams.sent} "
            f"published | {ok[verdict['nothing_missed']]} |",
        ])  # fmt: skip
        update_readme_table("dashboard", table)


if __name__ == "__main__":
    main()
