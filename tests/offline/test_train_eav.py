"""``emomon train --dataset eav --targets class`` on files in the release layout."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from emomon.cli import main
from emomon.contract import ModelContract
from emomon.datasets.eav import CHANNELS, CLASSES
from emomon.offline.holdout import HOLDOUTS, shared_trial_folds
from emomon.offline.protocols import (
    LEAKY_PROTOCOLS,
    WINDOW_CUT_PROTOCOLS,
    check_split,
    make_splits,
)
from emomon.offline.runreport import DatasetInfo
from tests.datasets.eav_files import write_eav_subject

pytestmark = pytest.mark.integration


def test_train_eav_lovo_and_authors_split_exports(tmp_path, capsys):
    """Subject 2 has the Video folder, subject 1 not (the option decides there);
    lovo and the authors' split run, and the exported model says its channel
    names are assumed. With 3 windows a trial and 2 trials a class, the authors'
    cut (4 of 6 windows) splits a trial, so this run is measured LEAKY."""
    data = tmp_path / "data"
    for n in (1, 2):
        write_eav_subject(data / "EAV", n, n_times=2000, n_trials=20, seed=n)
    shutil.rmtree(data / "EAV" / "subject1" / "Video")
    run = tmp_path / "run"
    argv = ["train", "--dataset", "eav", "--data-dir", str(data), "--targets",
            "class", "--model", "logreg", "--permutations", "0", "--protocol",
            "lovo,eav-authors", "--no-cache", "--quiet", "--out", str(run)]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 2  # subject 1 has no Video names: the option is named
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "listening_rows=even" in err[0]

    assert main([*argv, "--dataset-option", "listening_rows=even"]) == 0
    out = capsys.readouterr().out
    assert "eav-authors (LEAKY)" in out
    assert "channel names ASSUMED" in out
    assert "lovo (LEAKY)" not in out
    report = json.loads((run / "report.json").read_text())
    assert report["dataset"]["channels_assumed"] is True
    assert DatasetInfo.from_dict(report["dataset"]).channels_assumed is True
    assert "channels_assumed" not in DatasetInfo(name="deap").to_dict()
    assert report["dataset"]["class_balance"]["class"] == [4] * 5
    assert report["dataset"]["n_videos"] == 10  # t001, t003, .. shared by both
    assert report["results"]["eav-authors"]["leaky"] is True
    assert report["results"]["lovo"]["leaky"] is False
    contract = ModelContract.from_onnx(run / "model.onnx")
    assert contract.tasks == {"class": list(CLASSES)}
    assert contract.ch_names == CHANNELS
    assert contract.info["channels_assumed"] is True
    assert "ASSUMED" in contract.describe()


def test_authors_split_is_chronological_per_subject_and_class():
    """Per subject and class, the first 56/80 of the windows in recorded order
    train; with 3 windows a trial and 2 trials a class the cut splits a trial."""
    assert "eav-authors" not in LEAKY_PROTOCOLS  # leaky when measured so
    assert "eav-authors" in WINDOW_CUT_PROTOCOLS
    assert HOLDOUTS["eav-authors"].unit == "trial"
    subjects, videos, trials, labels = [], [], [], []
    for s in ("1", "2"):
        for k in range(10):  # trial k: class k % 5, 3 windows
            for _ in range(3):
                subjects.append(s)
                videos.append(f"t{k:03d}")
                trials.append(f"{s}/{k}")
                labels.append(k % 5)
    splits = make_splits(
        "eav-authors",
        subjects=subjects,
        videos=videos,
        trials=np.array([int(t.replace("/", "")) for t in trials]),
        labels=labels,
        val_fraction=0.0,
    )
    assert [s.name for s in splits] == ["1", "2"]
    lab = np.asarray(labels)
    for sp in splits:
        check_split(sp, "eav-authors", subjects=subjects, videos=videos, trials=trials)
        assert {subjects[i] for i in np.concatenate([sp.train, sp.test])} == {sp.name}
        for c in range(5):
            tr, te = sp.train[lab[sp.train] == c], sp.test[lab[sp.test] == c]
            assert (tr.size, te.size) == (4, 2)  # 6 * 56 // 80 = 4
            assert tr.max() < te.min()  # earlier windows train
        # Trial 5 + c (second of its class): 1 window trains, 2 test.
        assert {videos[i] for i in sp.test} == {f"t{k:03d}" for k in range(5, 10)}
    # Without labels each subject's windows are one group: 30 * 56 // 80 = 21.
    plain = make_splits(
        "eav-authors", subjects=subjects, videos=videos, trials=trials, val_fraction=0
    )
    assert [(s.train.size, s.test.size) for s in plain] == [(21, 9), (21, 9)]
    assert all(s.train.max() < s.test.min() for s in plain)


def test_authors_cut_falls_between_trials_on_the_release_layout():
    """20 trials a class with equal window counts (the release: 20 listening
    trials per class, 4 chunks each): 56/80 of a class's windows is exactly
    14 trials, so no trial is split and the run is not marked leaky; one longer
    trial moves the cut into a trial, and the run is measured leaky."""

    def table(n_win):
        subjects, videos, trials, labels = [], [], [], []
        for k in range(100):  # trial k: class k % 5
            for _ in range(n_win(k)):
                subjects.append("1")
                videos.append(f"t{k:03d}")
                trials.append(k)
                labels.append(k % 5)
        return {"subjects": subjects, "videos": videos, "trials": np.array(trials),
                "labels": labels}  # fmt: skip

    even = table(lambda k: 4)
    (sp,) = make_splits("eav-authors", **even, val_fraction=0.0)
    assert shared_trial_folds([sp], even["trials"]) == 0
    assert sp.train.size == 5 * 14 * 4
    odd = table(lambda k: 6 if k == 0 else 4)  # class 0: 82 windows, cut at 57
    (sp,) = make_splits("eav-authors", **odd, val_fraction=0.0)
    assert shared_trial_folds([sp], odd["trials"]) == 1


def test_an_ablation_title_carries_the_runs_measured_mark():
    from emomon.offline.runreport import Ablation, ProtocolResult
    from emomon.offline.tables import ablation_title

    abl = Ablation(kind="bands", protocol="eav-authors")
    split = ProtocolResult.from_dict({"leaky": True}, name="eav-authors")
    whole = ProtocolResult.from_dict({"leaky": False}, name="eav-authors")
    assert ablation_title(abl, split) == "Band ablation (eav-authors, LEAKY)"
    assert ablation_title(abl, whole) == "Band ablation (eav-authors)"
    assert ablation_title(abl) == "Band ablation (eav-authors)"  # the declaration
    assert ablation_title(Ablation(kind="bands", protocol="intra")).endswith(
        "(intra, LEAKY)"
    )
