"""Rigs shared by the offline tests."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emomon.offline.runreport import VOLATILE_FIELDS


def _without_volatile(text: str) -> dict:
    assert VOLATILE_FIELDS == ("created", "results.<protocol>.seconds")
    data = json.loads(text)
    assert isinstance(data.pop("created"), str)
    for result in data["results"].values():
        assert result.pop("seconds") >= 0
    return data


@pytest.fixture
def without_volatile() -> Callable[[str], dict]:
    """report.json's text -> its object minus VOLATILE_FIELDS (timing, moment)."""
    return _without_volatile


# -- a local Ray cluster -------------------------------------------------------------
#: The folder whose packages the tests import from (pytest puts it on sys.path:
#: ``offline`` is this package): Ray workers get it too, to import the test hooks.
TESTS_ROOT = Path(__file__).resolve().parents[__name__.count(".")]
RAY_START_S = 90.0  # a deadline for `ray start`, far above its ~4 s
RAY_STOP_S = 40.0  # Ray drains for up to 30 s on SIGTERM


@dataclass(frozen=True)
class RayCluster:
    """A Ray head node these tests started: ``address`` is its ``host:port``."""

    address: str
    temp_dir: Path


def ray_installed() -> bool:
    """Whether Ray is installed (the ``cluster`` extra), without importing it:
    Ray reads its authentication settings once, at its first import."""
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["ray"] is None
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_token() -> Iterator[str]:
    """A token for the test cluster, in this process's environment (so in every
    driver the tests start), never ~/.ray/auth_token: a token there (or none)
    changes nothing. Set before Ray is first imported, as Ray reads its
    authentication settings once."""
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in (*auth, "RAY_AUTH_TOKEN_PATH")}
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.update(auth)
    try:
        yield auth["RAY_AUTH_TOKEN"]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def ray_cluster(ray_token: str) -> Iterator[RayCluster]:
    """A 2-CPU Ray head node on free ports, stopped (only it) at the end.

    Skips without Ray; in CI (``CI=true``) a missing Ray fails, as the dev extra
    installs it. The object store is 200 MB (Ray would take 30% of memory, capped
    by /dev/shm); temp files go to a short folder of its own (Ray's socket paths
    must stay under 108 characters). It takes the token of ``ray_token``.
    """
    if not ray_installed():
        reason = "Ray is not installed (pip install 'emomon[cluster]')"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Ray tests cannot run in CI: {reason}")
        pytest.skip(reason)
    tmp = Path(tempfile.mkdtemp(prefix="emr-", dir="/tmp"))
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(TESTS_ROOT), os.environ.get("PYTHONPATH")) if p
        ),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    cmd = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        f"--port={port}", "--num-cpus=2", "--num-gpus=0",
        "--object-store-memory=200000000", "--include-dashboard=false",
        f"--dashboard-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        "--disable-usage-stats", f"--temp-dir={tmp}",
    ]  # fmt: skip
    log = (tmp / "ray-start.log").open("w")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + RAY_START_S
        while "Ray runtime started" not in (tmp / "ray-start.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "ray start failed:\n" + (tmp / "ray-start.log").read_text()[-3000:]
                )
            time.sleep(0.2)  # polling a log file with a deadline
        yield RayCluster(f"127.0.0.1:{port}", tmp)
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the head node we started: SIGTERM to `ray start`, which stops its
    processes; then SIGKILL its process group (ours: a new session)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(RAY_STOP_S)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of this group only
    if proc.poll() is None:
        proc.wait(10)


# -- one small run on synthetic data with a known emotion effect ----------------------
#: The generator seed of configs/synthetic_effect.toml (seed = 1), fixed by the
#: project before these tests existed; the run seed is TrainConfig's default (0).
#: The content fingerprint is off (content_effect = 0): with it, 20 videos'
#: random per-video patterns correlate with the labels by chance and the model
#: uses them too, so "does the importance map find the effect" would also ask
#: about chance correlations. That choice, and the k of the importance tests,
#: were made after one exploratory run of this config with the fingerprint on.
EFFECT_RUN = {
    "synthetic": {"content_effect": 0.0},
    "permutations": 4,  # few: the null plot is checked, not the p-value
    "importance": 5,
    "n_boot": 50,
    "n_jobs": 1,
}


@pytest.fixture(scope="session")
def effect_run(tmp_path_factory: pytest.TempPathFactory):
    """(report, run folder) of LOVO logreg on configs/synthetic_effect.toml
    (8 subjects x 20 videos, emotion_effect 1) with the overrides of
    :data:`EFFECT_RUN`; about 40 s on two cores, once per session."""
    import dataclasses

    from emomon.offline.train import load_train_config, run_training

    root = tmp_path_factory.mktemp("effect")
    cfg = load_train_config(
        TESTS_ROOT.parent / "configs" / "synthetic_effect.toml",
        cache_dir=str(root / "cache"),
    )
    over = dict(EFFECT_RUN)
    cfg = dataclasses.replace(
        cfg,
        synthetic={**cfg.synthetic, **over.pop("synthetic")},
        **over,
    )
    out = root / "run"
    report = run_training(
        cfg, out, progress=False, export=False, executor="serial", paper_plots=True
    )
    return report, out


#: SEED's film labels (label.mat), positive / neutral / negative.
SEED_FILM_LABELS = (1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1)


def write_seed_feature_dir(
    root: Path,
    *,
    subjects: tuple[int, ...] = (1, 2, 3),
    dates: tuple[str, ...] = ("20131027", "20131030"),
    families: tuple[str, ...] = ("de_LDS", "de_movingAve"),
    effect: float = 0.8,
) -> Path:
    """Write ``root/ExtractedFeatures`` as SEED ships it, holding only ``families``.

    Each session file has ``<family><film>`` (62, n_windows, 5) for films 1-15
    (6-8 windows each), written with scipy.io as the release's MATLAB v5
    files; DE rises by ``effect`` per class step (negative < neutral <
    positive) in every channel and band, so a classifier has something to find.
    """
    import numpy as np
    from scipy.io import savemat

    folder = root / "ExtractedFeatures"
    folder.mkdir(parents=True, exist_ok=True)
    savemat(folder / "label.mat", {"label": np.asarray([SEED_FILM_LABELS])})
    rng = np.random.default_rng(7)
    for subject in subjects:
        for date in dates:
            variables = {}
            for film, label in enumerate(SEED_FILM_LABELS, start=1):
                n_win = 6 + film % 3
                base = rng.normal(10.0, 1.0, (62, n_win, 5)) + effect * label
                for k, fam in enumerate(families):
                    variables[f"{fam}{film}"] = base + 0.1 * k
            savemat(folder / f"{subject}_{date}.mat", variables)
    return root
