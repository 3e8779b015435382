"""Fold tasks and executors: pure tasks, shared data, and the same report from
every executor."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import socket
from pathlib import Path

import numpy as np
import pytest

from emomon.errors import ConfigError
from emomon.offline.crossval import protocol_splits
from emomon.offline.dataset import Dataset, load_dataset
from emomon.offline.executors import (
    FileHandle,
    ProcessExecutor,
    SerialExecutor,
    make_executor,
)
from emomon.offline.runreport import RunReport
from emomon.offline.tasks import FoldResult, FoldTask, fold_tasks, run_fold
from emomon.offline.train import run_training
from emomon.offline.trainconfig import TrainConfig

CFG = TrainConfig(
    dataset="synthetic",
    synthetic={"n_subjects": 3, "n_videos": 4, "trial_s": 10.0},
    model="mlp",  # one network per task: two fits per fold
    epochs=3,
    permutations=2,
    n_boot=20,
    n_jobs=2,
)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    cache = tmp_path_factory.mktemp("cache")
    return load_dataset(dataclasses.replace(CFG, cache_dir=str(cache)))


def _tasks(ds: Dataset) -> list[FoldTask]:
    splits, _ = protocol_splits(ds, CFG, "lovo")
    return fold_tasks(splits, CFG)


def _assert_same_folds(a: list[FoldResult], b: list[FoldResult]) -> None:
    assert [r.fold for r in a] == [r.fold for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra.best_epoch == rb.best_epoch
        np.testing.assert_array_equal(ra.test, rb.test)
        assert ra.proba.keys() == rb.proba.keys() == {"valence", "arousal"}
        for task in ra.proba:
            np.testing.assert_array_equal(ra.proba[task], rb.proba[task])


def test_fold_task_is_pure(ds: Dataset) -> None:
    """The same task twice gives the same result, whatever ran in between."""
    tasks = _tasks(ds)
    with SerialExecutor() as ex:
        data = ex.share(ds)
        assert ex.share(ds) is data  # shared once
        first = list(ex.map(run_fold, data, tasks))
        again = list(ex.map(run_fold, data, tasks[::-1]))[::-1]
    _assert_same_folds(first, again)
    assert [r.seed for r in first] == [CFG.seed + k for k in range(len(tasks))]
    assert {r.worker for r in first} == {f"{socket.gethostname()}:{os.getpid()}"}


def test_fold_result_round_trips_through_json(ds: Dataset) -> None:
    with SerialExecutor() as ex:
        (res,) = ex.map(run_fold, ex.share(ds), _tasks(ds)[:1])
    text = json.dumps(res.to_dict(), allow_nan=False)
    back = FoldResult.from_dict(json.loads(text))
    _assert_same_folds([res], [back])
    assert back.to_dict() == res.to_dict()
    with pytest.raises(ValueError, match="version"):
        FoldResult.from_dict({**res.to_dict(), "version": 99})


def test_file_handle_pickles_without_the_data(ds: Dataset, tmp_path: Path) -> None:
    handle = FileHandle.write(ds, tmp_path / "shared")
    np.testing.assert_array_equal(handle.get().table.X, ds.table.X)
    blob = pickle.dumps(handle)
    assert len(blob) < 500  # the folder's name, never the features
    copy = pickle.loads(blob)
    got = copy.get()
    np.testing.assert_array_equal(got.table.X, ds.table.X)
    np.testing.assert_array_equal(got.table.trial, ds.table.trial)
    assert got.tasks == ds.tasks
    assert got.layout == ds.layout
    assert not got.table.X.flags.writeable  # memory-mapped, read-only


def test_small_jobs_stay_serial() -> None:
    def kind(**kw: int) -> str:
        with make_executor("auto", **kw) as ex:
            return ex.name

    assert kind(n_jobs=2, n_windows=200, n_tasks=4) == "serial"  # small
    assert kind(n_jobs=1, n_windows=10**6, n_tasks=20) == "serial"  # one job
    assert kind(n_jobs=4, n_windows=10**6, n_tasks=1) == "serial"  # one task
    with make_executor("auto", n_jobs=4, n_windows=10**5, n_tasks=3) as ex:
        assert isinstance(ex, ProcessExecutor)
        assert ex.n_workers == 3
    with pytest.raises(ConfigError, match="unknown executor 'dask'"):
        make_executor("dask", n_jobs=2, n_windows=1, n_tasks=1)


@pytest.mark.integration
@pytest.mark.slow
def test_worker_processes_give_the_same_folds(ds: Dataset) -> None:
    tasks = _tasks(ds)
    with SerialExecutor() as ex:
        serial = list(ex.map(run_fold, ex.share(ds), tasks))
    with ProcessExecutor(2) as ex:
        spawned = list(ex.map(run_fold, ex.share(ds), tasks))
        shared = ex._tmp
        assert shared is not None
        assert shared.is_dir()
    assert not shared.exists()  # closing removes the shared copy
    pids = {int(r.worker.rsplit(":", 1)[1]) for r in spawned}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2
    _assert_same_folds(serial, spawned)


@pytest.mark.integration
@pytest.mark.slow
def test_serial_and_process_runs_write_the_same_report(
    tmp_path: Path, without_volatile
) -> None:
    """Folds and permutation runs in worker processes: the same report.json as in
    this process, apart from the volatile fields."""
    cfg = dataclasses.replace(CFG, cache_dir=str(tmp_path / "cache"))
    texts = {}
    for kind in ("serial", "process"):
        report = run_training(
            cfg, tmp_path / kind, progress=False, export=False, executor=kind
        )
        texts[kind] = (tmp_path / kind / "report.json").read_text(encoding="utf-8")
        # A new run's report.json reads back as the report it was written from.
        assert RunReport.from_json(texts[kind]) == report
        assert report.to_json() + "\n" == texts[kind]
    serial, process = (without_volatile(texts[k]) for k in ("serial", "process"))
    assert serial == process
    lovo = serial["results"]["lovo"]["tasks"]
    assert lovo["valence"]["permutation"]["n"] == 2
    assert len(lovo["arousal"]["per_fold"]) == 4
    for name in ("per_video.csv", "per_subject.csv", "per_fold.csv"):
        a = (tmp_path / "serial" / name).read_text()
        assert a == (tmp_path / "process" / name).read_text(), name


def test_a_task_trains_with_the_configs_torch_threads(ds, monkeypatch):
    """task_threads sets torch's thread count during a task, and restores it."""
    import torch

    import emomon.offline.tasks as tasks_module

    seen: list[int] = []
    real = tasks_module.fit_fold

    def spy(data, task, **kw):
        seen.append(torch.get_num_threads())
        return real(data, task, **kw)

    monkeypatch.setattr(tasks_module, "fit_fold", spy)
    before = torch.get_num_threads()
    task = _tasks(ds)[0]
    for n in (1, 2):
        cfg = dataclasses.replace(CFG, task_threads=n)
        run_fold(SerialExecutor().share(ds), dataclasses.replace(task, config=cfg))
    assert seen == [1, 2]
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError, match="task_threads must be >= 1"):
        TrainConfig(task_threads=0)
