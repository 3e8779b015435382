"""``emomon train --montage``: a model for the user's headset, from real
DEAP-format files (the montage's channels picked, the rest named)."""

from __future__ import annotations

import json

import pytest

from emomon.cli import main
from emomon.contract import ModelContract
from emomon.datasets.synthetic import SynthParams, write_deap
from emomon.offline.trainconfig import make_train_config

pytestmark = pytest.mark.integration

FAST = ["--epochs", "3", "--n-boot", "10", "--jobs", "1", "--quiet"]


@pytest.fixture(scope="module")
def deap_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("deap")
    write_deap(SynthParams(n_subjects=2, n_videos=4, trial_s=8.0, seed=5), d)
    return d


def _train(deap_dir, tmp_path, *argv):
    return main(["train", "--dataset", "deap", "--data-dir", str(deap_dir),
                 "--permutations", "0", "--out", str(tmp_path / "run"), "--cache-dir",
                 str(tmp_path / "cache"), *FAST, *argv])  # fmt: skip


def test_the_shared_channels_in_the_montage_order_and_the_missing_named(
    deap_dir, tmp_path, capsys
):
    rc = _train(deap_dir, tmp_path, "--montage", "brainflow:synthetic")
    out = capsys.readouterr().out
    assert rc == 0, out
    line = (
        "montage brainflow:synthetic: trained on 10 of its 16 channels (Fz, C3, Cz, "
        "C4, Pz, Oz, F7, F3, F4, F8); dataset deap lacks 6 (PO7, PO8, F5, F1, F2, F6)"
    )
    assert line in out.splitlines()
    run = tmp_path / "run"
    report = json.loads((run / "report.json").read_text())
    assert report["config"]["montage"] == "brainflow:synthetic"
    assert report["dataset"]["ch_names"] == ["Fz", "C3", "Cz", "C4", "Pz", "Oz",
                                             "F7", "F3", "F4", "F8"]  # fmt: skip
    m = report["dataset"]["montage"]
    assert m["missing"] == ["PO7", "PO8", "F5", "F1", "F2", "F6"]
    assert len(m["ch_names"]) == 16
    assert "BrainFlow 5.23.0" in m["source"]
    contract = ModelContract.from_onnx(run / "model.onnx")
    assert contract.ch_names == tuple(report["dataset"]["ch_names"])
    assert contract.info["montage"] == m
    assert "montage       brainflow:synthetic (16 ch; lacking PO7 PO8 F5 F1 F2 F6" in (
        contract.describe()
    )
    # emomon export rebuilds the same model from the run's config
    assert main(["export", str(run), "--quiet"]) == 0
    assert ModelContract.from_onnx(run / "model.onnx").ch_names == contract.ch_names


def test_the_montage_in_a_toml_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[train]\ndataset = "deap"\nmontage = "cyton"\n')
    assert make_train_config(path).montage == "cyton"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--montage", "muse"],
         "--montage muse (TP9, AF7, AF8, TP10) shares no channel with dataset deap "
         "(Fp1, AF3, F3, F7, FC5, FC1, C3, T7, ... (32 in all)); emomon does not "
         "substitute nearby electrodes: train on data recorded with these channels"),
        (["--montage", "Fz,C3,Cz", "--model", "cnn2d"],
         "--montage Fz,C3,Cz (Fz, C3, Cz) has 3 of its 3 channels in dataset deap "
         "and on the 8x9 map (Fz, C3, Cz); --model cnn2d reads the map and needs "
         "at least 4 there and at least 50% of the montage's channels; use a flat "
         "model (logreg, mlp) on the shared channels instead"),
        (["--montage", "brainflow:ganglion"],
         "BrainFlow's description of GANGLION_BOARD names none of its 4 EEG "
         "channels; pass --montage as a comma list of the electrodes on its 4 "
         "inputs, in order (e.g. Fp1,Fp2,O1,O2)"),
        (["--montage", "cyotn"], "unknown montage 'cyotn' for --montage; use "
         "brainflow:BOARD"),
    ],
)  # fmt: skip
def test_each_refusal_is_one_line_and_exit_2(deap_dir, tmp_path, capsys, argv, line):
    rc = _train(deap_dir, tmp_path, *argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"emomon: error: {line}"), err[0]
    assert not (tmp_path / "run").exists()  # refused before any run dir


def test_evaluate_takes_the_montage_too(deap_dir, tmp_path, capsys):
    rc = main(["evaluate", "--dataset", "deap", "--data-dir", str(deap_dir),
               "--out", str(tmp_path / "ev"), "--no-cache", "--montage", "cyton",
               "--permutations", "0", *FAST])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    assert (
        "montage cyton: trained on 8 of its 8 channels (Fp1, Fp2, C3, C4, P7, P8, "
        "O1, O2); dataset deap has them all"
    ) in out.splitlines()
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["dataset"]["ch_names"] == ["Fp1", "Fp2", "C3", "C4", "P7", "P8",
                                             "O1", "O2"]  # fmt: skip
    assert not (tmp_path / "ev" / "model.onnx").exists()
