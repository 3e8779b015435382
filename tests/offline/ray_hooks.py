"""Fold tasks that fail on purpose, for the Ray executor's tests.

Ray workers import this module by name (the test cluster has the tests' root on
its ``PYTHONPATH``). Each hook keeps its marks in the run's ``cache_dir``, a
folder of the test's own, since workers share no memory with the test.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from emomon.offline.executors import DataHandle
from emomon.offline.tasks import FoldResult, FoldTask, run_fold
from emomon.offline.trainconfig import TrainConfig

#: The fold whose worker dies on its first attempt.
DYING_FOLD = 1
#: The fold that raises: the last of LOVO's four on the test set, so the first
#: two (of 2 CPUs) finish, and are saved, before it starts.
RAISING_FOLD = 3


def _marks(task: FoldTask) -> Path:
    assert task.config.cache_dir is not None
    return Path(task.config.cache_dir)


def attempts(folder: Path) -> dict[tuple[int, str], list[int]]:
    """(fold index, fold name) -> the pids of the workers that started it, in
    order (fold names differ between the protocols of the tests)."""
    out: dict[tuple[int, str], list[int]] = {}
    for path in sorted(folder.glob("attempts-*")):
        _, index, name = path.name.split("-", 2)
        out[int(index), name] = [int(x) for x in path.read_text().split()]
    return out


def _count_attempt(task: FoldTask) -> int:
    path = _marks(task) / f"attempts-{task.index:03d}-{task.split.name}"
    with path.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    return len(path.read_text().split())


def dies_once(data: DataHandle, task: FoldTask) -> FoldResult:
    """:func:`run_fold`, but the worker of fold DYING_FOLD (of each protocol)
    SIGKILLs itself on the fold's first attempt (midway: the data resolved,
    nothing returned)."""
    if _count_attempt(task) == 1 and task.index == DYING_FOLD:
        data.get()
        os.kill(os.getpid(), signal.SIGKILL)
    return run_fold(data, task)


class BadFoldError(ValueError):
    """What fold RAISING_FOLD raises."""


def raises(data: DataHandle, task: FoldTask) -> FoldResult:
    """:func:`run_fold`, but fold RAISING_FOLD raises :class:`BadFoldError`."""
    _count_attempt(task)
    if task.index == RAISING_FOLD:
        raise BadFoldError(f"fold {task.split.name} has no usable windows")
    return run_fold(data, task)


def resources(data: DataHandle, config: TrainConfig) -> tuple[dict[str, float], int]:
    """The CPUs Ray gave this task, and torch's threads in the task's setting."""
    import ray

    from emomon.offline.tasks import torch_threads

    with torch_threads(config.task_threads):
        import torch

        threads = torch.get_num_threads()
    return dict(ray.get_runtime_context().get_assigned_resources()), threads
