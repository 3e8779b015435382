"""The dashboard's rigs: headless Chromium, ``emomon dashboard`` as a subprocess,
a plain ZeroMQ subscriber, models and a recording with a bad stretch.

The browser is Debian's ``chromium`` driven by Playwright (``browser.py``).
Without one the browser tests skip, saying why; in CI (``CI=true``) a missing
browser fails them instead: ``.ci/run`` installs it.

Every wait is bounded by a deadline and a count, and blocks in a library call
(a process wait, a socket poll, Playwright's own polling); nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from emomon.dsp.layout import DEAP_CHANNELS
from tests.realtime.helpers import (
    MAX_ITERATIONS,
    SF,
    free_tcp_port,
    read_line,
    session_eeg,
    synthetic_subject,
)

from .browser import launch, missing_reason

#: The three classes of SEED's task, as the 3-class test model names them.
SEED_CLASSES = ("negative", "neutral", "positive")
#: Where the injected bad stretch starts and how long it lasts (s of recording).
BAD_START_S, BAD_LEN_S = 12.0, 0.4
BAD_CHANNEL = "FC1"


# -- models and a recording --------------------------------------------------------
@pytest.fixture(scope="session")
def dash_trials():
    """Synthetic subject s01: 2 videos of (3 s baseline + 10 s), DEAP's 32 channels."""
    return synthetic_subject(trial_s=10)


@pytest.fixture(scope="session")
def va_model(tmp_path_factory, dash_trials) -> Path:
    """A valence/arousal logreg on DEAP's channels (binary tasks)."""
    from tests.realtime.models import make_model

    path = tmp_path_factory.mktemp("dash-va") / "model.onnx"
    return make_model(
        path, ch_names=DEAP_CHANNELS, sfreq=SF, eeg=session_eeg(dash_trials)
    )


@pytest.fixture(scope="session")
def class3_model(tmp_path_factory, dash_trials) -> Path:
    """A 3-class model (task ``class``: negative, neutral, positive), as SEED's."""
    from tests.realtime.models import make_model

    path = tmp_path_factory.mktemp("dash-3class") / "model.onnx"
    return make_model(
        path,
        ch_names=DEAP_CHANNELS,
        sfreq=SF,
        eeg=session_eeg(dash_trials),
        tasks={"class": SEED_CLASSES},
    )


@pytest.fixture(scope="session")
def bad_recording(tmp_path_factory, dash_trials) -> Path:
    """The subject as a FIF file (26 s), with a NaN stretch on one channel:
    the windows that hold it are flagged (``quality.ok`` false)."""
    import mne

    eeg = session_eeg(dash_trials).copy()
    start = int(BAD_START_S * SF)
    eeg[DEAP_CHANNELS.index(BAD_CHANNEL), start : start + int(BAD_LEN_S * SF)] = np.nan
    info = mne.create_info(list(DEAP_CHANNELS), SF, "eeg")
    path = tmp_path_factory.mktemp("dash-rec") / "bad_raw.fif"
    mne.io.RawArray(eeg * 1e-6, info, verbose="error").save(path, verbose="error")
    return path


def run_async(scenario: Callable[[], Awaitable[Any]], *, timeout_s: float) -> Any:
    """Run ``scenario()`` (a coroutine function) to the end in a thread of its own.

    Playwright's sync API keeps an event loop in the test's thread (the session's
    browser), where ``asyncio.run`` is refused; a thread has none. What the
    scenario raises is raised here. Objects the test made (a Publisher) move to
    that thread and back: the thread's start and join are the barriers ZeroMQ
    asks for.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(asyncio.wait_for(scenario(), timeout_s))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            box["error"] = exc

    th = threading.Thread(target=target, name="async-scenario", daemon=True)
    th.start()
    th.join(timeout_s + 10.0)
    assert not th.is_alive(), "the async scenario did not end"
    if "error" in box:
        raise box["error"]
    return box.get("result")


# -- the browser -------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (skips without one, fails in CI)."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(f"browser tests need a browser: {reason}")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = launch(pw)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A fresh page; its script errors are in ``page.emomon_errors``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    pg.emomon_errors = errors
    yield pg
    context.close()


def text_of(pg: Any, element_id: str) -> str:
    """The text of the page element ``#element_id``."""
    return str(
        pg.evaluate(f"() => document.getElementById('{element_id}').textContent")
    )


def wait_page(pg: Any, js: str, *, timeout_s: float, arg: Any = None) -> Any:
    """Playwright polls ``js`` in the page until it is truthy (bounded)."""
    return pg.wait_for_function(js, arg=arg, timeout=timeout_s * 1000).json_value()


#: Every chart's series labels and data, as uPlot holds them.
CHART_DATA_JS = """() => {
  const out = {};
  for (const [task, u] of Object.entries(window.emomonDashboard.charts)) {
    out[task] = {labels: u.series.map(s => s.label),
                 data: u.data.map(a => Array.from(a))};
  }
  return out;
}"""


# -- emomon dashboard as the user runs it ------------------------------------------
@dataclass
class DashboardProc:
    """A running ``emomon dashboard`` subprocess."""

    proc: subprocess.Popen
    url: str
    port: int
    cli: Any  # the emomon_cli fixture that started it

    def health(self) -> dict[str, Any]:
        """Its ``/healthz`` counters."""
        with urllib.request.urlopen(f"{self.url}healthz", timeout=5) as r:
            return json.loads(r.read())

    def interrupt(self, timeout_s: float = 20.0) -> tuple[int, str]:
        """Ctrl-C; its exit code and stderr."""
        self.proc.send_signal(signal.SIGINT)
        _, err = self.cli.finish(self.proc, timeout_s)
        return self.proc.returncode, err


@pytest.fixture
def dashboard(emomon_cli) -> Callable[..., DashboardProc]:
    """Starts ``emomon dashboard --address ADDRESS --port PORT`` (default a free
    port) and returns once it serves (its announce line); killed at the end if
    still running."""

    def start(address: str, *extra: str, port: int | None = None) -> DashboardProc:
        port = free_tcp_port() if port is None else port
        proc = emomon_cli.start(
            "dashboard", "--address", address, "--port", str(port), *extra
        )
        line = read_line(proc.stderr, "emomon dashboard: http", timeout_s=60.0)
        if not line:
            _, err = emomon_cli.finish(proc, 10.0)
            pytest.fail(f"emomon dashboard did not start: {err}")
        url = line.split()[2]
        assert url == f"http://127.0.0.1:{port}/", line
        return DashboardProc(proc=proc, url=url, port=port, cli=emomon_cli)

    return start


def idle(proc: subprocess.Popen, wait_s: float = 0.05) -> None:
    """A bounded wait that ends early if ``proc`` exits (a poll loop's tick)."""
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        pass


def poll_until(
    condition: Callable[[], Any],
    *,
    timeout_s: float,
    tick: Callable[[], object],
    what: str,
) -> Any:
    """Call ``tick`` (a bounded wait) until ``condition()`` is truthy; its value.

    Fails the test, naming ``what``, at the deadline.
    """
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            break
        tick()
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


# -- a plain ZeroMQ subscriber (pyzmq only) ----------------------------------------
@dataclass
class PlainSub:
    """A raw pyzmq SUB socket: what any app sees, without emomon's Subscriber."""

    address: str
    payloads: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = zmq.Context.instance().socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 100_000)
        for topic in (b"emomon.prediction.v1", b"emomon.status.v1"):
            self.sock.setsockopt(zmq.SUBSCRIBE, topic)
        self.sock.connect(self.address)

    def recv(self, timeout_s: float = 0.05) -> bool:
        """Receive what arrives within ``timeout_s`` (bounded); whether any did."""
        got = False
        if not self.sock.poll(int(timeout_s * 1000) + 1):
            return False
        for _ in range(10_000):
            try:
                topic, data = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            payload = json.loads(data)
            payload["_topic"] = topic.decode()
            self.payloads.append(payload)
            got = True
        return got

    def predictions(self, stream: str | None = None) -> list[dict[str, Any]]:
        return [
            p
            for p in self.payloads
            if p["_topic"] == "emomon.prediction.v1"
            and (stream is None or p["stream"] == stream)
        ]

    def stopped(self, stream: str, *, after: int = 0) -> bool:
        """Whether ``stream`` published a ``stopped`` status (among the
        payloads received from index ``after`` on)."""
        return any(
            p["_topic"] == "emomon.status.v1"
            and p["stream"] == stream
            and p["state"] == "stopped"
            for p in self.payloads[after:]
        )

    def close(self) -> None:
        self.sock.close(linger=0)


@pytest.fixture
def plain_sub() -> Iterator[Callable[[str], PlainSub]]:
    """Makes :class:`PlainSub` sockets, closed at the end of the test."""
    subs: list[PlainSub] = []

    def make(address: str) -> PlainSub:
        sub = PlainSub(address)
        subs.append(sub)
        return sub

    yield make
    for sub in subs:
        sub.close()
