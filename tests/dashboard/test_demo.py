"""``make demo DASHBOARD=1``: the demo prints the dashboard's address, the page
shows the live step, and it keeps serving until Ctrl-C (a small demo)."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.realtime.helpers import free_tcp_port, read_line

from .conftest import idle, poll_until

REPO = Path(__file__).resolve().parents[2]


def _make_demo_command(**variables: str) -> str:
    """The demo's command line as ``make -n demo`` prints it (nothing is run)."""
    done = subprocess.run(
        ["make", "-n", "demo", *(f"{k}={v}" for k, v in variables.items())],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [ln for ln in done.stdout.splitlines() if "emomon.cli demo" in ln]
    return line


def test_make_demo_passes_dashboard_on():
    assert "--dashboard" not in _make_demo_command()
    assert "--dashboard" not in _make_demo_command(DASHBOARD="0")
    assert _make_demo_command(DASHBOARD="1").rstrip(" \\").endswith("--dashboard")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.URLError:
        return 0, b""


@pytest.mark.integration
@pytest.mark.slow
def test_demo_with_dashboard_serves_until_ctrl_c(tmp_path, emomon_cli):
    port = free_tcp_port()
    proc = emomon_cli.start(
        "demo", "--out", str(tmp_path / "demo"), "--subjects", "3", "--videos", "4",
        "--trial-s", "10", "--replay-trials", "1", "--speed", "10", "--dashboard",
        "--dashboard-port", str(port),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    line = read_line(proc.stdout, "dashboard: http", timeout_s=60)
    assert line.startswith(f"dashboard: {url} (open it now"), line
    # it answers at once, long before the live step
    status, page = _get(url)
    assert status == 200
    assert b'id="last-seq"' in page
    # the demo runs to its end, then the page stays
    line = read_line(proc.stdout, "dashboard still serving", timeout_s=240)
    assert line == f"dashboard still serving at {url}; Ctrl-C to stop\n", line
    health = json.loads(_get(f"{url}healthz")[1])
    assert health["streams"] == 1
    assert health["points"] > 10  # the live step's predictions, kept
    poll_until(
        lambda: _get(url)[0] == 200,
        timeout_s=10,
        tick=lambda: idle(proc),
        what="the page after the demo",
    )
    assert proc.poll() is None  # still serving
    proc.send_signal(signal.SIGINT)
    out, err = emomon_cli.finish(proc, 30.0)
    assert proc.returncode == 0, err
    assert out.rstrip().endswith("dashboard stopped")
    assert "interrupted" not in err
    assert _get(url)[0] == 0  # the port is closed
