"""Run folders: refused, replaced, resumed after SIGKILL, never left empty."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from emomon.cli import main
from emomon.errors import ConfigError
from emomon.offline.dataset import load_dataset
from emomon.offline.runfolder import MANIFEST, Manifest, RunFolder, data_digest
from emomon.offline.train import run_training
from emomon.offline.trainconfig import TrainConfig

REPO = Path(__file__).resolve().parents[2]
CFG = TrainConfig(
    dataset="synthetic",
    synthetic={"n_subjects": 3, "n_videos": 4, "trial_s": 10.0},
    epochs=3,
    n_boot=20,
    permutations=0,
    export=False,
)
#: A run of a few seconds: 6 LOVO folds, then 6 permutation runs of 6 folds each.
ARGS = ["--subjects", "3", "--videos", "6", "--trial-s", "10", "--permutations",
        "6", "--n-boot", "20", "--no-export", "--quiet", "--jobs", "1"]  # fmt: skip


def _cfg(tmp_path: Path, **kw) -> TrainConfig:
    return dataclasses.replace(CFG, cache_dir=str(tmp_path / "cache"), **kw)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_non_empty_folder_is_refused_before_the_data_loads(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    rc = main(["train", "--dataset", "deap", "--data-dir", str(tmp_path / "missing"),
               "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 2
    line = _error_line(capsys)  # the folder, not the missing data, is named
    assert "already holds files" in line
    assert "--resume" in line
    assert "--overwrite" in line
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("keep me")
    rc = main(["train", *ARGS, "--out", str(home), "--overwrite"])
    assert rc == 2
    assert "no emomon manifest.json" in _error_line(capsys)
    assert (home / ".bashrc").read_text() == "keep me"


def test_overwrite_leaves_no_file_of_the_earlier_run(tmp_path):
    cfg = _cfg(tmp_path, protocols=("lovo", "intra"))
    out = tmp_path / "run"
    run_training(cfg, out, progress=False)
    before = {p.name for p in out.iterdir()}
    assert {"protocols.png", "confusion_intra.png", MANIFEST} <= before
    with pytest.raises(ConfigError, match=r'mode="resume"'):
        run_training(cfg, out, progress=False)  # not without a mode
    run_training(_cfg(tmp_path), out, progress=False, mode="overwrite")
    after = {p.name for p in out.iterdir()}
    assert not {"protocols.png", "confusion_intra.png", "per_video_intra.png"} & after
    assert list((out / "tasks" / "main").iterdir()) == [out / "tasks/main/lovo"]
    report = json.loads((out / "report.json").read_text())
    assert list(report["results"]) == ["lovo"]


def test_a_run_stopped_before_a_task_finished_leaves_no_folder(tmp_path, monkeypatch):
    import emomon.offline.evaluate as evaluate

    def interrupted(data, task):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "run_fold", interrupted)
    out = tmp_path / "deep" / "run"
    with pytest.raises(KeyboardInterrupt):
        run_training(_cfg(tmp_path), out, progress=False)
    assert not out.exists()
    assert (tmp_path / "deep").is_dir()  # only what the run created goes
    # A refused config creates nothing either.
    with pytest.raises(ConfigError):
        run_training(_cfg(tmp_path, protocols=("nope",)), out, progress=False)
    assert not out.exists()


def test_resume_refuses_another_config_or_other_data(tmp_path, capsys):
    out = tmp_path / "run"
    base = [*ARGS, "--permutations", "0", "--cache-dir", str(tmp_path / "c")]
    assert main(["train", *base, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", *base, "--out", str(out), "--resume", "--epochs", "7"]) == 2
    line = _error_line(capsys)
    assert "cannot resume" in line
    assert "config epochs changed" in line
    assert "--overwrite" in line
    rc = main(["train", *base, "--out", str(out), "--resume", "--synth-seed", "9"])
    assert rc == 2
    assert "the data differ" in _error_line(capsys)
    # Where the data and cache live is not the run's identity.
    moved = [*base[:-1], str(tmp_path / "c2")]
    assert main(["train", *moved, "--out", str(out), "--resume"]) == 0


def test_manifest_differences_and_digest(tmp_path):
    ds = load_dataset(_cfg(tmp_path))
    a = Manifest("train", {"epochs": 3, "n_jobs": 1}, data_digest(ds), "1", 1)
    same = dataclasses.replace(a, config={"epochs": 3, "n_jobs": 4})
    assert a.differences(same) == []  # n_jobs changes no result
    b = dataclasses.replace(a, config={"epochs": 4}, emomon_version="2")
    assert a.differences(b) == [
        "emomon 2 wrote it (this is 1)",
        "config epochs changed",
    ]
    flipped = dataclasses.replace(
        ds, trial_labels={k: 1 - v for k, v in ds.trial_labels.items()}
    )
    assert data_digest(flipped) != data_digest(ds)
    assert data_digest(dataclasses.replace(ds)) == data_digest(ds)
    assert np.isfinite(ds.table.X).all()


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        RunFolder(tmp_path / "f" / "run")


@pytest.mark.integration
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_report(
    tmp_path, without_volatile
):
    """SIGKILL ``emomon train`` once some permutation runs have landed; ``--resume``
    keeps them (their files are not rewritten) and the report equals an
    uninterrupted run's apart from the volatile fields."""
    # mlp: one task per permutation run, each landing on its own (logreg's
    # land 25 at a time: see the next test).
    common = [*ARGS, "--model", "mlp", "--epochs", "3"]
    common += ["--cache-dir", str(tmp_path / "cache")]
    ref = tmp_path / "ref"
    assert main(["train", *common, "--out", str(ref)]) == 0

    out = tmp_path / "killed"
    perms = out / "tasks" / "main" / "lovo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emomon.cli", "train", *common, "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(perms.glob("perm-*.json"))) >= 2:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    kept = {p.name: p.stat().st_mtime_ns for p in perms.glob("*.json")}
    assert 8 <= len(kept) < 12  # 6 folds and 2..5 of the 6 permutation runs
    assert not (out / "report.json").exists()
    assert not list(out.rglob(".*.tmp"))  # no half-written result

    assert main(["train", *common, "--out", str(out), "--resume"]) == 0
    for name, mtime in kept.items():
        assert (perms / name).stat().st_mtime_ns == mtime, name  # not redone
    assert len(list(perms.glob("*.json"))) == 12
    got = without_volatile((out / "report.json").read_text())
    assert got == without_volatile((ref / "report.json").read_text())
    for name in ("per_video.csv", "per_subject.csv", "per_fold.csv"):
        assert (out / name).read_text() == (ref / name).read_text(), name


def test_resume_reruns_a_partial_logreg_batch_and_keeps_what_was_saved(
    tmp_path, without_volatile
):
    """Logreg's permutation reruns land 25 at a time; a run that died inside a
    batch (some of its results saved) resumes by rerunning that batch whole,
    keeps the saved files, and gives the uninterrupted report."""
    from emomon.offline.permbatch import PERM_BATCH

    cfg = _cfg(tmp_path, permutations=PERM_BATCH + 5)
    ref = tmp_path / "ref"
    run_training(cfg, ref, progress=False)
    out = tmp_path / "died"
    run_training(cfg, out, progress=False)
    perms = out / "tasks" / "main" / "lovo"
    # As if the run died after 3 results of the second batch: the others and
    # the report never landed.
    for j in range(PERM_BATCH + 3, PERM_BATCH + 5):
        (perms / f"perm-{j:04d}.json").unlink()
    (out / "report.json").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in perms.glob("perm-*.json")}
    assert len(kept) == PERM_BATCH + 3
    run_training(cfg, out, progress=False, mode="resume")
    for name, mtime in kept.items():
        assert (perms / name).stat().st_mtime_ns == mtime, name  # not rewritten
    assert len(list(perms.glob("perm-*.json"))) == PERM_BATCH + 5
    got = without_volatile((out / "report.json").read_text())
    assert got == without_volatile((ref / "report.json").read_text())


def test_cuda_without_cuda_is_one_line_and_no_folder(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA and a GPU: --device cuda is valid here")
    out = tmp_path / "run"
    rc = main(["train", *ARGS, "--device", "cuda", "--out", str(out)])
    assert rc == 2
    line = _error_line(capsys)
    assert line.startswith("emomon: error: --device cuda: torch ")
    assert "use cpu (or auto)" in line
    assert not out.exists()
