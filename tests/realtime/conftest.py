"""Realtime test setup: keep liblsl on this machine and apart from other runs.

liblsl reads its configuration once, lazily, at the first call that needs it, from
the file named by the ``LSLAPICFG`` environment variable if set (then
``./lsl_api.cfg``, ``~/lsl_api/lsl_api.cfg``, ``/etc/lsl_api/lsl_api.cfg``; see
liblsl's ``api_config.cpp`` and https://labstreaminglayer.readthedocs.io/info/
lslapicfg.html). This conftest is imported while pytest collects, before any
test creates an outlet or resolves a stream, and points ``LSLAPICFG`` at a
per-session file that

* resolves on this machine only (``ResolveScope = machine``: queries go to the
  ``MachineAddresses``, ``{127.0.0.1}``) plus a unicast query to
  ``KnownPeers = {127.0.0.1}``, so discovery works where multicast is filtered and
  nothing leaves the loopback interface;
* sets a unique ``SessionID``: liblsl outlets answer only queries of their own
  session, so concurrent test runs (other engineers on the same machine) and real
  lab streams never see each other, on top of the unique stream names per test;
* disables IPv6 and lowers liblsl's stderr log to errors;
* shortens ``UnicastMaxRTT``: with a machine-only or IPv4-only configuration,
  liblsl 1.18's one-shot ``resolve_byprop``/``resolve_bypred`` that finds
  nothing returns only after its timeout *plus* ``UnicastMaxRTT`` (5 s by
  default; measured here), which would slow down every "not found" resolve.
  (:class:`~emomon.realtime.sources.LSLSource` polls a continuous resolver
  instead and is not affected.)

Subprocesses started by the tests inherit the variable, hence the same session.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import uuid
from pathlib import Path

_SESSION = f"emomon-tests-{os.getpid()}-{uuid.uuid4().hex[:8]}"
_CFG_TEXT = f"""\
[ports]
IPv6 = disable

[multicast]
ResolveScope = machine

[lab]
KnownPeers = {{127.0.0.1}}
SessionID = {_SESSION}

[tuning]
UnicastMinRTT = 0.1
UnicastMaxRTT = 0.25

[log]
level = -2
"""


def _write_config() -> Path:
    fd, name = tempfile.mkstemp(prefix="emomon-lsl-", suffix=".cfg")
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(_CFG_TEXT)
    path = Path(name)
    atexit.register(path.unlink, missing_ok=True)
    return path


LSL_CONFIG = _write_config()
os.environ["LSLAPICFG"] = str(LSL_CONFIG)


# -- the live rig: replay -> source -> run_stream -> publisher -> subscriber ----------
# (imported here, after LSLAPICFG is set: liblsl reads its config lazily)
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from emomon.datasets import Trial  # noqa: E402
from emomon.dsp.layout import DEAP_CHANNELS  # noqa: E402
from emomon.realtime.messages import Message  # noqa: E402
from emomon.realtime.model import LoadedModel  # noqa: E402
from emomon.realtime.pipeline import Pipeline  # noqa: E402
from emomon.realtime.publish import Publisher, PublisherSettings  # noqa: E402
from emomon.realtime.replay import Replay, ReplaySession, ReplaySettings  # noqa: E402
from emomon.realtime.sinks import Sink  # noqa: E402
from emomon.realtime.sources import LSLSource  # noqa: E402
from emomon.realtime.sources.base import Source  # noqa: E402
from emomon.realtime.subscribe import Subscriber  # noqa: E402

from .helpers import (  # noqa: E402
    LOOPBACK,
    MAX_ITERATIONS,
    REPO,
    SF,
    StreamThread,
    read_line,
    receive_until,
    session_eeg,
    start_replay,
    synthetic_subject,
)
from .models import make_model  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_trials() -> list[Trial]:
    """Subject s01: 2 videos of (3 s baseline + 10 s), 32 DEAP channels, 128 Hz."""
    return synthetic_subject(trial_s=10)


@pytest.fixture(scope="session")
def deap_model(tmp_path_factory, synthetic_trials) -> Path:
    """A logreg on DEAP's 32 channels at 128 Hz, trained on ``synthetic_trials``."""
    path = tmp_path_factory.mktemp("deap") / "model.onnx"
    eeg = session_eeg(synthetic_trials)
    return make_model(path, ch_names=DEAP_CHANNELS, sfreq=SF, eeg=eeg)


class LiveRig:
    """A publisher and a subscriber on 127.0.0.1, plus what a test starts around
    them: replays (served from threads), LSL sources and stream threads, all
    stopped and closed in reverse order by :meth:`close`.

    Parameters
    ----------
    publisher : PublisherSettings, optional
        Default: loopback, an OS-chosen port.
    topics : sequence of str, optional
        Topics of the subscriber; default both.
    """

    def __init__(
        self,
        *,
        publisher: PublisherSettings | None = None,
        topics: Sequence[str] | None = None,
    ) -> None:
        self._cleanup: list[Callable[[], None]] = []
        self.pub = Publisher(publisher or PublisherSettings(address=LOOPBACK))
        self._cleanup.append(self.pub.close)
        kw = {} if topics is None else {"topics": tuple(topics)}
        self.sub = Subscriber(self.pub.endpoint, **kw)
        self._cleanup.append(self.sub.close)
        self.msgs: list[Message] = []
        self._threads: dict[int, threading.Thread] = {}

    def subscribed(self, n: int | None = None, timeout_s: float = 5.0) -> None:
        """Wait until the publisher saw ``n`` subscriptions (default: the
        subscriber's topics), so that nothing sent from now on is missed."""
        n = len(self.sub.topics) if n is None else n
        deadline = time.monotonic() + timeout_s
        for _ in range(MAX_ITERATIONS):
            if self.pub.stats.subscribe_events >= n:
                return
            assert time.monotonic() < deadline, f"subscriptions: {self.pub.stats}"
            self.pub.poll_subscriptions(timeout_s=0.05)

    def replay(
        self,
        trials: list[Trial] | ReplaySession,
        settings: ReplaySettings,
        *,
        file: Path | None = None,
        start: bool = True,
    ) -> Replay:
        """An open replay (its outlets exist), pushed from a thread unless
        ``start`` is false (then :meth:`start_replay` does it)."""
        rep = Replay(trials, settings=settings, file=file)
        rep.open()
        self._cleanup.append(lambda: self.vanish(rep))
        if start:
            self.start_replay(rep)
        return rep

    def start_replay(self, rep: Replay) -> None:
        th, _ = start_replay(rep)
        self._threads[id(rep)] = th

    def vanish(self, rep: Replay) -> None:
        """Destroy a replay's outlets (the sender quits); wait for its thread."""
        rep.close()
        th = self._threads.pop(id(rep), None)
        if th is not None:
            th.join(5.0)
            assert not th.is_alive(), "the replay thread did not stop"

    def lsl(self, name: str, **kw: Any) -> LSLSource:
        """An opened :class:`LSLSource` (5 s to find the stream)."""
        kw.setdefault("timeout_s", 5.0)
        src = LSLSource(name, **kw)
        src.open()
        self._cleanup.append(src.close)
        return src

    def stream(
        self,
        source: Source,
        model: Path | LoadedModel | Pipeline,
        *,
        sinks: Sequence[Sink] = (),
        **settings: Any,
    ) -> StreamThread:
        """A started :class:`StreamThread` publishing through the rig."""
        run = StreamThread(source, model, sinks=[self.pub, *sinks], **settings)

        def stop() -> None:
            run.stop.set()
            run._th.join(10.0)

        self._cleanup.append(stop)
        return run.start()

    def replay_and_stream(
        self,
        trials: list[Trial] | ReplaySession,
        settings: ReplaySettings,
        model: Path | LoadedModel | Pipeline,
        *,
        source: dict[str, Any] | None = None,
        **stream: Any,
    ) -> tuple[Replay, LSLSource, StreamThread]:
        """The usual set-up: ``trials`` served over LSL, the subscriber
        subscribed, an :class:`LSLSource` on the replay's stream (its name and
        source_id; ``source`` adds keyword arguments) and a stream thread on it
        (``stream``: :class:`StreamSettings` fields)."""
        rep = self.replay(trials, settings)
        self.subscribed()
        kw = {"source_id": settings.source_id} if settings.source_id else {}
        src = self.lsl(settings.name, **{**kw, **(source or {})})
        return rep, src, self.stream(src, model, **stream)

    def receive_until(
        self, done: Callable[[list[Message]], bool], *, timeout_s: float
    ) -> list[Message]:
        """Receive into :attr:`msgs` until ``done(msgs)`` or the deadline."""
        return receive_until(self.sub, done, timeout_s=timeout_s, into=self.msgs)

    def close(self) -> None:
        """Stop and close everything, newest first (idempotent)."""
        while self._cleanup:
            self._cleanup.pop()()


@pytest.fixture
def live_rig() -> Iterator[Callable[..., LiveRig]]:
    """Makes :class:`LiveRig` objects (keyword arguments as its own), closed at
    the end of the test whatever happened."""
    rigs: list[LiveRig] = []

    def make(**kw: Any) -> LiveRig:
        rig = LiveRig(**kw)
        rigs.append(rig)
        return rig

    yield make
    for rig in reversed(rigs):
        rig.close()


# -- independent senders (benchmarks/probes: pylsl and numpy only) ---------------------
PROBES = REPO / "benchmarks" / "probes"


def load_probe(name: str) -> Any:
    """Import ``benchmarks/probes/<name>.py`` (not a package) as a module."""
    import importlib.util

    path = PROBES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"probe_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Senders:
    """``benchmarks/probes/lsl_sender.py`` processes, stopped at the end of the test."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, channels: Sequence[str], *argv: str) -> subprocess.Popen:
        """Start a sender; returns once its outlet exists (it waits for a consumer)."""
        proc = subprocess.Popen(
            [sys.executable, str(PROBES / "lsl_sender.py"), "--name", name,
             "--channels", ",".join(channels), *argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        return proc

    def close(self) -> None:
        for proc in self.procs:
            stop_by_stdin(proc)


@pytest.fixture
def lsl_senders() -> Iterator[Senders]:
    """Starts independent LSL senders; all are stopped at the end of the test."""
    senders = Senders()
    yield senders
    senders.close()


@pytest.fixture(scope="session")
def wire_probe() -> Any:
    """``benchmarks/probes/wire.py``: a plain pyzmq subscriber and latency matching."""
    return load_probe("wire")


# -- a sender we did not write: MNE-LSL's PlayerLSL in its own process ---------------
PLAYER_SCRIPT = Path(__file__).with_name("play_with_mne_lsl.py")


@pytest.fixture
def mne_lsl_player(tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts ``play_with_mne_lsl.py``: ``start(eeg_uv, ch_names, name)`` plays
    ``eeg_uv`` (channels x samples, µV, at :data:`SF`) with MNE-LSL's
    ``PlayerLSL`` defaults as stream ``name`` and returns once it plays; every
    player is stopped (:func:`stop_by_stdin`) at the end."""
    procs: list[subprocess.Popen] = []

    def start(eeg_uv: np.ndarray, ch_names: Sequence[str], name: str):
        where = tmp_path / f"player-{len(procs)}"
        where.mkdir()
        np.save(where / "eeg.npy", eeg_uv)
        proc = subprocess.Popen(
            [sys.executable, str(PLAYER_SCRIPT), str(where / "eeg.npy"), f"{SF:g}",
             ",".join(ch_names), name, str(where)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # LSLAPICFG is inherited
        )  # fmt: skip
        procs.append(proc)
        line = read_line(proc.stdout, timeout_s=60.0)
        if line != "playing\n":
            _, err = stop_by_stdin(proc)
            pytest.fail(f"the MNE-LSL player did not start: {line!r} {err}")
        return proc

    yield start
    for proc in procs:
        stop_by_stdin(proc)


def stop_by_stdin(proc: subprocess.Popen) -> tuple[str, str]:
    """Close a helper process's stdin (the probe senders and the MNE-LSL player
    stop at its end) and reap it, killed after 10 s; its (stdout, stderr)."""
    if proc.returncode is not None:
        return "", ""
    try:
        return proc.communicate(timeout=10.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()
