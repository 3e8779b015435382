"""Where training tasks run: in this process, in worker processes, on a cluster.

A :class:`FoldExecutor` runs pure tasks (:mod:`emomon.offline.tasks`): functions
of a data handle and a small task record. The executor owns how the data reaches
the tasks: :meth:`FoldExecutor.share` turns the dataset into a handle once, and
every task resolves the handle with ``handle.get()``. In this process the handle
holds the dataset itself; for worker processes the features are written once to a
temporary folder and memory-mapped by each task, so no task pickles the dataset
and workers keep no global state. The cluster executor,
:class:`~emomon.offline.ray_executor.RayExecutor` (``make_executor("ray",
ray_address=...)``), is one more class in its own module, imported only when
asked: its ``share`` puts the dataset in the cluster's object store.

Tasks fix their own seed and torch thread count, so every executor gives the
same results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from emomon.errors import ConfigError
from emomon.offline.dataset import Dataset

__all__ = [
    "EXECUTORS",
    "DataHandle",
    "FileHandle",
    "FoldExecutor",
    "LocalHandle",
    "ProcessExecutor",
    "SerialExecutor",
    "SharedHandles",
    "check_executor",
    "make_executor",
    "run_executor",
]

#: Names :func:`make_executor` takes.
EXECUTORS: tuple[str, ...] = ("auto", "serial", "process", "ray")

#: Below this many (window x task) units a run stays in this process: starting a
#: worker costs seconds (each imports torch).
MIN_PARALLEL_WORK = 50_000

T = TypeVar("T")
R = TypeVar("R")


class DataHandle(Protocol):
    """How a task reaches the dataset; picklable where tasks run elsewhere."""

    def get(self) -> Dataset:
        """Return the dataset."""
        ...


@dataclasses.dataclass(frozen=True)
class LocalHandle:
    """The dataset itself, for tasks that run in this process."""

    data: Dataset

    def get(self) -> Dataset:
        """Return the dataset."""
        return self.data


class FileHandle:
    """A dataset written to ``folder``, read back on demand.

    The feature array is memory-mapped from ``X.npy``, the rest unpickled from
    ``rest.pkl``.

    Resolved once per handle object; a pickled copy (one per task in a worker)
    resolves again, which costs a file open, not a copy of the features.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = str(folder)
        self._data: Dataset | None = None

    @classmethod
    def write(cls, data: Dataset, folder: str | Path) -> FileHandle:
        """Write ``data`` under ``folder`` (created) and return its handle."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        x = data.table.X
        np.save(folder / "X.npy", x, allow_pickle=False)
        empty = np.empty((0, *x.shape[1:]), dtype=x.dtype)
        rest = dataclasses.replace(data, table=dataclasses.replace(data.table, X=empty))
        with (folder / "rest.pkl").open("wb") as fh:
            pickle.dump(rest, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return cls(folder)

    def get(self) -> Dataset:
        """Return the dataset (features read-only, memory-mapped)."""
        if self._data is None:
            folder = Path(self.folder)
            with (folder / "rest.pkl").open("rb") as fh:
                rest: Dataset = pickle.load(fh)  # noqa: S301 - our own file
            x = np.load(folder / "X.npy", mmap_mode="r")
            table = dataclasses.replace(rest.table, X=x)
            self._data = dataclasses.replace(rest, table=table)
        return self._data

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "_data": None}


class SharedHandles:
    """The handle of each dataset an executor shared, found by identity.

    An executor that copies the dataset somewhere (a file, an object store)
    makes the copy once per dataset object, however often it is shared.
    """

    def __init__(self) -> None:
        self._pairs: list[tuple[Dataset, DataHandle]] = []

    def get(self, data: Dataset, make: Callable[[Dataset], DataHandle]) -> DataHandle:
        """Return the handle of ``data``, made by ``make(data)`` the first time."""
        for known, handle in self._pairs:
            if known is data:
                return handle
        handle = make(data)
        self._pairs.append((data, handle))
        return handle

    def __len__(self) -> int:
        return len(self._pairs)

    def clear(self) -> None:
        """Forget every handle (the executor removes the copies)."""
        self._pairs.clear()


class FoldExecutor(ABC):
    """Runs pure tasks over a shared dataset; a context manager.

    Subclasses implement :meth:`share` and :meth:`map`; :meth:`close` releases
    what they hold (workers, shared copies).
    """

    #: Name in :data:`EXECUTORS` (or a new one).
    name: ClassVar[str]

    @abstractmethod
    def share(self, data: Dataset) -> DataHandle:
        """Return a handle through which tasks reach ``data``.

        Sharing the same object again returns the same handle.
        """

    @abstractmethod
    def map(
        self,
        fn: Callable[[DataHandle, T], R],
        data: DataHandle,
        tasks: Sequence[T],
        *,
        ordered: bool = True,
    ) -> Iterator[R]:
        """Yield ``fn(data, task)`` for every task.

        In task order, or with ``ordered=False`` as the tasks finish (a caller
        that saves each result at once loses less to a crash).

        ``fn`` must be a module-level function and the tasks picklable where the
        executor runs them in other processes. Closing the iterator early cancels
        the tasks that have not started.
        """

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release workers and shared copies."""

    def __enter__(self) -> FoldExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(FoldExecutor):
    """Runs each task in this process, one after the other."""

    name = "serial"

    def __init__(self) -> None:
        self._shared: tuple[Dataset, LocalHandle] | None = None

    def share(self, data: Dataset) -> DataHandle:
        """Return a :class:`LocalHandle` of ``data`` (reused for the same object)."""
        if self._shared is None or self._shared[0] is not data:
            self._shared = (data, LocalHandle(data))
        return self._shared[1]

    def map(
        self,
        fn: Callable[[DataHandle, T], R],
        data: DataHandle,
        tasks: Sequence[T],
        *,
        ordered: bool = True,
    ) -> Iterator[R]:
        """Yield ``fn(data, task)`` for every task, run here one after the other.

        They finish in task order, so ``ordered`` changes nothing.
        """
        for task in tasks:
            yield fn(data, task)


class ProcessExecutor(FoldExecutor):
    """Runs tasks in ``n_workers`` spawned worker processes.

    Workers are spawned, not forked (forking a process that already runs torch
    threads can deadlock), on the first :meth:`map`, and live until
    :meth:`close`. Shared datasets are written to a temporary folder that
    :meth:`close` removes.
    """

    name = "process"

    def __init__(self, n_workers: int) -> None:
        if n_workers < 1:
            raise ConfigError(f"n_workers must be >= 1, got {n_workers}")
        self.n_workers = n_workers
        self._pool: Any = None
        self._tmp: Path | None = None
        self._shared = SharedHandles()

    def share(self, data: Dataset) -> DataHandle:
        """Write ``data`` to the temporary folder once; return its file handle."""
        return self._shared.get(data, self._write)

    def _write(self, data: Dataset) -> FileHandle:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="emomon-share-"))
        return FileHandle.write(data, self._tmp / str(len(self._shared)))

    def map(
        self,
        fn: Callable[[DataHandle, T], R],
        data: DataHandle,
        tasks: Sequence[T],
        *,
        ordered: bool = True,
    ) -> Iterator[R]:
        """Submit ``fn(data, task)`` for every task to the workers; yield results.

        In task order, or with ``ordered=False`` as they finish. The worker pool
        starts on the first call. Closing the iterator early cancels the tasks
        that have not started.
        """
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=self.n_workers, mp_context=mp.get_context("spawn")
            )
        futures = [self._pool.submit(fn, data, task) for task in tasks]
        try:
            if ordered:
                for future in futures:
                    yield future.result()
            else:
                from concurrent.futures import as_completed

                for future in as_completed(futures):
                    yield future.result()
        finally:
            for future in futures:
                future.cancel()  # no-op for the finished and the running ones

    def close(self) -> None:
        """Shut the workers down and remove the shared copies."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._shared.clear()


def make_executor(
    kind: str,
    *,
    n_jobs: int,
    n_windows: int,
    n_tasks: int,
    task_threads: int = 1,
    ray_address: str | None = None,
) -> FoldExecutor:
    """Make the executor ``kind`` for ``n_tasks`` tasks over ``n_windows`` windows.

    Parameters
    ----------
    kind : {"auto", "serial", "process", "ray"}
        ``auto``: worker processes only when there are at least two jobs and two
        tasks and at least :data:`MIN_PARALLEL_WORK` (window x task) units, else
        this process (small jobs stay serial). ``ray``: the Ray cluster at
        ``ray_address`` (:class:`~emomon.offline.ray_executor.RayExecutor`).
    n_jobs : int
        Most worker processes to use.
    n_windows, n_tasks : int
        Size of the work.
    task_threads : int
        Torch threads of each task: the CPUs Ray reserves per task.
    ray_address : str, optional
        For ``ray`` only, and required there: ``host:port`` of the cluster's
        head node, or ``auto`` for the cluster on this machine.

    Returns
    -------
    FoldExecutor
        A new executor; the caller closes it.

    Raises
    ------
    ConfigError
        On an unknown ``kind``, a missing or misplaced ``ray_address``, Ray not
        installed, or no cluster at ``ray_address``.
    """
    check_executor(kind, ray_address)
    if kind == "ray":
        from emomon.offline.ray_executor import RayExecutor

        assert ray_address is not None  # check_executor
        return RayExecutor(ray_address, cpus_per_task=task_threads)
    if kind == "auto":
        small = n_jobs < 2 or n_tasks < 2 or n_windows * n_tasks < MIN_PARALLEL_WORK
        kind = "serial" if small else "process"
    if kind == "serial":
        return SerialExecutor()
    return ProcessExecutor(max(1, min(n_jobs, n_tasks)))


def check_executor(kind: str, ray_address: str | None = None) -> None:
    """Refuse an unknown executor, ``ray`` without an address, an address without it.

    Raises
    ------
    ConfigError
        Naming ``executor`` or ``ray_address``.
    """
    if kind not in EXECUTORS:
        raise ConfigError(
            f"unknown {{executor}} {kind!r}; choose from {', '.join(EXECUTORS)}",
            params=("executor",),
        )
    if kind == "ray" and not ray_address:
        # Never an address-less ray.init(): it attaches to whatever cluster the
        # machine knows, or starts one.
        raise ConfigError(
            "{executor} ray needs {ray_address}: the head node's HOST:PORT (as "
            "`ray start --head` prints it), or auto for the cluster on this machine",
            params=("executor", "ray_address"),
        )
    if kind != "ray" and ray_address is not None:
        raise ConfigError(
            "{ray_address} is for {executor} ray only",
            params=("executor", "ray_address"),
        )


@contextlib.contextmanager
def run_executor(
    executor: FoldExecutor | str, *, task_threads: int, ray_address: str | None
) -> Iterator[FoldExecutor | str]:
    """Give the executor of a whole run: join a cluster once, before the data loads.

    Yields the caller's executor as it is, a new
    :class:`~emomon.offline.ray_executor.RayExecutor` for ``"ray"`` (shared by
    every protocol of the run, so the data goes to the object store once; closed
    afterwards), and another name as it is (each protocol makes its own, sized to
    its tasks).

    Raises
    ------
    ConfigError
        As :func:`make_executor`.
    """
    if isinstance(executor, FoldExecutor):
        yield executor
        return
    check_executor(executor, ray_address)
    if executor != "ray":
        yield executor
        return
    with make_executor(
        "ray",
        n_jobs=1,
        n_windows=0,
        n_tasks=0,
        task_threads=task_threads,
        ray_address=ray_address,
    ) as ex:
        yield ex
