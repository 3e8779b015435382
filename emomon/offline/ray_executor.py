"""Folds and permutation runs on a Ray cluster: the ``ray`` executor.

Ray (``pip install 'emomon[cluster]'``) is imported only when a
:class:`RayExecutor` is made, and the executor connects only to the cluster it
is given: an address (``host:port`` of the head node, as ``ray start --head``
prints it) or ``auto`` (the cluster of this machine, or ``RAY_ADDRESS``), never
an address-less ``ray.init()``, which would silently attach to whatever
cluster the machine knows or start one.

How a run uses the cluster:

- :meth:`RayExecutor.share` puts the dataset in the object store once
  (``ray.put``); tasks receive a :class:`RayHandle` holding only the object's
  reference and read the dataset from the store of their node (NumPy arrays
  without a copy), so no task argument carries the data;
- each task asks Ray for ``task_threads`` CPUs, the torch thread count the task
  fixes itself, so Ray never runs more threads on a node than it has CPUs;
- a task whose worker process dies (killed, out of memory, its node lost) is
  run again, up to :data:`MAX_RETRIES` times; a task that raises is not retried
  and fails the run with its own exception;
- results come back as tasks finish (``ordered=False``), so the run folder
  saves each at once and ``--resume`` continues a run that stopped.

Every node needs the same emomon (and torch) installed in the Python that runs
Ray.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from emomon.errors import ConfigError, EmomonError, literal
from emomon.offline.dataset import Dataset
from emomon.offline.executors import DataHandle, FoldExecutor, SharedHandles

__all__ = [
    "CLUSTER_EXTRA",
    "MAX_RETRIES",
    "ClusterError",
    "RayExecutor",
    "RayHandle",
    "import_ray",
]

#: How to install Ray with emomon.
CLUSTER_EXTRA = "pip install 'emomon[cluster]'"
#: Reruns of a task whose worker died (system failures only, never exceptions).
MAX_RETRIES = 3
#: Seconds to wait for the head node's port before giving up on an address
#: (``ray.init`` itself retries an unreachable address for minutes).
CONNECT_TIMEOUT_S = 5.0

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class ClusterError(EmomonError):
    """The cluster could not run a task (its worker died on every attempt)."""


def import_ray() -> Any:
    """Import Ray, or say how to install it.

    Raises
    ------
    ConfigError
        When Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "{executor} ray needs Ray, which is not installed: " + CLUSTER_EXTRA,
            params=("executor",),
        ) from None
    return ray


class RayHandle:
    """A dataset in Ray's object store: only its reference travels with a task.

    Resolved once per handle object (``ray.get`` on the task's node).
    """

    def __init__(self, ref: Any) -> None:
        self.ref = ref
        self._data: Dataset | None = None

    def get(self) -> Dataset:
        """Return the dataset (arrays read-only, shared with the object store)."""
        if self._data is None:
            import ray

            self._data = ray.get(self.ref)
        return self._data

    def __getstate__(self) -> dict[str, Any]:
        return {"ref": self.ref, "_data": None}


def _run(fn: Callable[[DataHandle, T], R], data: DataHandle, task: T) -> R:
    """Run ``fn(data, task)`` on a worker: the remote body of every task."""
    return fn(data, task)


def _lost_worker(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose worker or node died (on every attempt)."""
    names = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError")
    return tuple(
        getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n)
    )


def _check_reachable(address: str) -> None:
    """Refuse an address whose head port does not answer, in seconds, not minutes."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"{{ray_address}} {literal(address)}: expected HOST:PORT (the head "
            "node's address, as `ray start --head` prints it) or auto",
            params=("ray_address",),
        )
    try:
        where = (host.strip("[]"), int(port))  # [::1]:6379 too
        with socket.create_connection(where, timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{{ray_address}} {literal(address)}: no Ray cluster answers there "
            f"({literal(exc.strerror or type(exc).__name__)}); start one with "
            "`ray start --head` and pass the address it prints",
            params=("ray_address",),
        ) from None


class RayExecutor(FoldExecutor):
    """Runs tasks on the Ray cluster at ``address``; a context manager.

    Parameters
    ----------
    address : str
        ``host:port`` of the cluster's head node, or ``auto``: the cluster
        running on this machine (or named by ``RAY_ADDRESS``). Ignored when this
        process is already connected to a cluster (``ray.init`` called by the
        caller): that connection is used and left open.
    cpus_per_task : int
        CPUs Ray reserves for each task: the config's ``task_threads``.
    max_retries : int
        Reruns of a task whose worker died.

    Raises
    ------
    ConfigError
        When Ray is not installed, or no cluster answers at ``address``.
    """

    name = "ray"

    def __init__(
        self, address: str, *, cpus_per_task: int = 1, max_retries: int = MAX_RETRIES
    ) -> None:
        if cpus_per_task < 1:
            raise ConfigError(f"cpus_per_task must be >= 1, got {cpus_per_task}")
        ray = import_ray()
        self.address = address
        self.cpus_per_task = cpus_per_task
        self.max_retries = max_retries
        self._owns = not ray.is_initialized()
        if self._owns:
            self._connect(ray, address)
        self._remote = ray.remote(_run).options(
            num_cpus=cpus_per_task, max_retries=max_retries, retry_exceptions=False
        )
        self._shared = SharedHandles()

    @staticmethod
    def _connect(ray: Any, address: str) -> None:
        if address != "auto":
            _check_reachable(address)
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        except ConnectionError as exc:  # auto without a cluster, a wrong token
            # The first sentence of Ray's reason (a token error is a paragraph).
            why = str(exc.__cause__ or exc).strip().split(". ")[0].splitlines()[0]
            raise ConfigError(
                f"{{ray_address}} {literal(address)}: cannot connect to a Ray "
                f"cluster ({literal(why)}); start one with `ray start --head`, "
                "or give this machine the cluster's token",
                params=("ray_address",),
            ) from exc
        log.info("connected to the Ray cluster at %s", address)

    def share(self, data: Dataset) -> DataHandle:
        """Put ``data`` in the object store once; return a handle to it."""
        import ray

        return self._shared.get(data, lambda d: RayHandle(ray.put(d)))

    def map(
        self,
        fn: Callable[[DataHandle, T], R],
        data: DataHandle,
        tasks: Sequence[T],
        *,
        ordered: bool = True,
    ) -> Iterator[R]:
        """Submit ``fn(data, task)`` for every task to the cluster; yield results.

        Parameters
        ----------
        fn : callable
            A module-level function (workers import it).
        data : DataHandle
            From :meth:`share`.
        tasks : sequence
        ordered : bool
            In task order, or (False) as the tasks finish.

        Yields
        ------
        result
            One per task. Closing the iterator early cancels the rest.

        Raises
        ------
        Exception
            The exception a task raised (the first to come back), as itself.
        ClusterError
            When a task's worker died on each of its ``1 + max_retries``
            attempts.
        """
        import ray

        pending = [self._remote.remote(fn, data, task) for task in tasks]
        try:
            while pending:
                if ordered:
                    ref = pending.pop(0)
                else:
                    done, pending = ray.wait(pending, num_returns=1)
                    ref = done[0]
                yield self._get(ray, ref)
        finally:
            for ref in pending:
                ray.cancel(ref)  # queued ones never start; running ones stop

    def _get(self, ray: Any, ref: Any) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, Exception) and not isinstance(
                cause, ray.exceptions.RayError
            ):
                # The task's own exception, in its words; the remote traceback
                # stays attached as its cause.
                raise cause from exc
            raise
        except _lost_worker(ray) as e:
            raise ClusterError(
                f"a Ray worker died on each of {1 + self.max_retries} attempts "
                f"at a task ({literal(type(e).__name__)}); see the cluster's logs "
                "(out of memory?)"
            ) from e

    def close(self) -> None:
        """Drop the shared datasets; disconnect from a cluster this executor joined."""
        self._shared.clear()
        if self._owns:
            import ray

            if ray.is_initialized():
                ray.shutdown()
            self._owns = False
