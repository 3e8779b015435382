"""Shared test fixtures: paths to the real sample data under ../shared/data, and
``emomon`` command lines run as subprocesses (``emomon_cli``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
OPENBCI_SAMPLE = (
    SHARED_DATA / "openbci-cyton-sample" / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"
)


@pytest.fixture(scope="session")
def openbci_sample() -> Path:
    """The real OpenBCI Cyton recording; skips when ../shared/data is absent."""
    if not OPENBCI_SAMPLE.exists():
        pytest.skip(
            f"real OpenBCI sample not found at {OPENBCI_SAMPLE} (../shared/data)"
        )
    return OPENBCI_SAMPLE


class Cli:
    """``python -m emomon.cli`` subprocesses, killed at the end of the test."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``emomon *argv``; ``env`` adds to (or replaces) variables of this
        process's environment (``LSLAPICFG`` is inherited unless replaced)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "emomon.cli", *argv],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def finish(proc: subprocess.Popen, timeout_s: float) -> tuple[str, str]:
        """Its (stdout, stderr) once it exits; killed after ``timeout_s``."""
        try:
            return proc.communicate(timeout=timeout_s)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.fixture
def emomon_cli() -> Iterator[Cli]:
    """Starts ``emomon`` command lines; any still running at the end is killed."""
    cli = Cli()
    yield cli
    cli.close()


#: ``raises_one_line(ExcType, *needles)``: a context manager (see the fixture).
RaisesOneLine = Callable[..., contextlib.AbstractContextManager[Any]]


@contextlib.contextmanager
def _raises_one_line(
    exc_type: type[BaseException], *needles: str
) -> Iterator[pytest.ExceptionInfo[Any]]:
    with pytest.raises(exc_type) as excinfo:
        yield excinfo
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg


@pytest.fixture
def raises_one_line() -> RaisesOneLine:
    """``with raises_one_line(DatasetError, "s01.dat", "corrupt"): ...``.

    The block must raise ``ExcType`` whose message is one line containing every
    needle (the exception info is bound by ``as``, as with ``pytest.raises``).
    """
    return _raises_one_line


#: ``emomon train --config configs/eegpt_synthetic.toml`` settings small enough
#: for a test: 2 subjects x 4 videos of 8 s at 256 Hz (one 4 s window per hop).
EEGPT_TRAIN_ARGS = ("--subjects", "2", "--videos", "4", "--trial-s", "8",
                    "--epochs", "1", "--permutations", "0", "--n-boot", "0",
                    "--quiet", "--no-cache")  # fmt: skip


@pytest.fixture(scope="session")
def eegpt_train_args() -> tuple[str, ...]:
    """Options that keep ``emomon train --model eegpt`` small (EEGPT_TRAIN_ARGS)."""
    return EEGPT_TRAIN_ARGS


@pytest.fixture(scope="session")
def eegpt_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised EEGPT encoder in the authors' checkpoint
    layout (``{"state_dict": {"target_encoder.*": ...}}``)."""
    from emomon.models.eegpt import random_encoder, save_checkpoint

    path = tmp_path_factory.mktemp("eegpt-ckpt") / "tiny.ckpt"
    save_checkpoint(random_encoder("tiny", seed=1), path)
    return path


@pytest.fixture(scope="session")
def eegpt_model(tmp_path_factory: pytest.TempPathFactory, eegpt_checkpoint) -> Path:
    """``model.onnx`` of the EEGPT probe trained by ``emomon train`` on the
    synthetic set (tiny encoder), shared by the offline and live tests."""
    import json

    from emomon.cli import main

    out = tmp_path_factory.mktemp("eegpt-run")
    hp = json.dumps({"checkpoint": str(eegpt_checkpoint), "num_heads": 4})
    config = Path(__file__).parent.parent / "configs" / "eegpt_synthetic.toml"
    argv = ["train", "--config", str(config), "--hparams", hp, "--out", str(out)]
    rc = main([*argv, *EEGPT_TRAIN_ARGS])
    assert rc == 0
    return out / "model.onnx"
