"""The ``emomon`` CLI: datasets verbs, exit codes and one-line errors."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emomon.cli import main


def _synth(out: Path, *extra: str) -> int:
    return main(
        [
            "datasets",
            "synth",
            "--out",
            str(out),
            "--subjects",
            "2",
            "--videos",
            "4",
            "--trial-s",
            "10",
            *extra,
        ]
    )


def test_datasets_list_names_every_reader_and_source(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("deap", "dreamer", "amigos", "seed", "openbci", "mne", "synthetic"):
        assert name in out
    assert "eecs.qmul.ac.uk" in out


def test_synth_writes_real_deap_files(tmp_path, capsys):
    out = tmp_path / "D"
    rc = main(
        ["datasets", "synth", "--out", str(out), "--subjects", "2", "--videos", "4"]
    )
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["s01.dat", "s02.dat"]
    for name in ("s01.dat", "s02.dat"):
        with open(out / name, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        assert d["data"].shape == (4, 40, 8064)
        assert d["labels"].shape == (4, 4)
        assert np.isfinite(d["data"]).all()
        assert ((d["labels"] >= 1) & (d["labels"] <= 9)).all()
    capsys.readouterr()
    assert (
        main(
            [
                "datasets",
                "check",
                "--dataset",
                "deap",
                "--data-dir",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    summary = capsys.readouterr().out
    assert "subjects" in summary
    assert "2 (s01 .. s02)" in summary
    assert "trials" in summary
    assert " 8" in summary
    assert "128" in summary
    assert "valence (1-9)" in summary


def test_truncated_dat_exits_2_naming_the_file(tmp_path, capsys):
    out = tmp_path / "D"
    assert _synth(out) == 0
    blob = (out / "s02.dat").read_bytes()
    (out / "s02.dat").write_bytes(blob[: len(blob) // 3])
    capsys.readouterr()
    rc = main(
        ["datasets", "check", "--dataset", "deap", "--data-dir", str(out), "--quiet"]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert "s02.dat" in err


def test_missing_data_dir_exits_2_and_says_where_to_get_it(tmp_path, capsys):
    rc = main(
        ["datasets", "check", "--dataset", "deap", "--data-dir", str(tmp_path / "nope")]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert "nope" in err
    assert "does not exist" in err
    assert "deap" in err.lower()
    assert "eecs.qmul.ac.uk" in err


def test_empty_data_dir_exits_2(tmp_path, capsys):
    rc = main(["datasets", "check", "--dataset", "deap", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert str(tmp_path) in err or tmp_path.name in err


def test_unknown_dataset_exits_2_listing_choices(tmp_path, capsys):
    rc = main(["datasets", "check", "--dataset", "deep", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "deep" in err
    assert "deap" in err


@pytest.mark.parametrize(
    "args",
    [["--subjects", "0"], ["--videos", "x"], ["--emotion-effect", "-1"]],
)
def test_out_of_range_synth_values_exit_2(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as exc:
        main(["datasets", "synth", "--out", str(tmp_path), *args])
    assert exc.value.code == 2
    assert args[0] in capsys.readouterr().err


@pytest.mark.integration
def test_console_entry_point_runs(tmp_path):
    exe = Path(sys.executable).with_name("emomon")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "emomon.cli"]
    res = subprocess.run(
        [
            *cmd,
            "datasets",
            "check",
            "--dataset",
            "deap",
            "--data-dir",
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert res.stderr.startswith("emomon: error:")


def test_train_seed5_raw_cnt_lovo_exports(tmp_path, capsys, monkeypatch):
    """SEED-V from Neuroscan .cnt (written by the tests, read by MNE) trains by film.

    The film times are shrunk to 3.2 s (the reader's default is the published
    hour-long table); one subject keeps the run short.
    """
    import json

    from emomon.datasets import seed5
    from tests.datasets import seedv

    spans = seedv.short_spans(film_s=3.2, gap_s=0.2)
    monkeypatch.setattr(seed5, "SESSION_SPANS", spans)
    data = tmp_path / "SEED-V"
    seedv.write_session(data, 1, 1, seedv.session_counts(spans[1]))
    out = tmp_path / "run"
    args = ["train", "--dataset", "seed5", "--data-dir", str(data)]
    args += ["--targets", "class", "--model", "logreg", "--permutations", "0"]
    args += ["--protocol", "lovo", "--dataset-option", "sfreq=250", "--n-boot", "20"]
    args += ["--no-cache", "--quiet", "--jobs", "1", "--out", str(out)]
    assert main(args) == 0
    assert (out / "model.onnx").is_file()
    report = json.loads((out / "report.json").read_text())
    assert float(report["config"]["dataset_options"]["sfreq"]) == 250.0
    info = report["dataset"]
    assert info["name"] == "seed5"
    assert info["sfreq"] == 250.0
    assert (info["n_videos"], len(info["ch_names"])) == (15, 62)
    assert info["class_balance"]["class"] == [3, 3, 3, 3, 3]
    capsys.readouterr()
    assert main(["datasets", "list"]) == 0
    listing = capsys.readouterr().out
    assert "seed5 " in listing
    assert "seed5-features" in listing


def test_train_seed5_features_needs_trust_then_exports_a_precomputed_model(
    tmp_path, capsys
):
    """SEED-V's pickled DE .npz: refused without the trust option, then trained."""
    import json

    from emomon.contract import ModelContract
    from tests.datasets import seedv

    de = seedv.de_trials(n_windows=2)
    seedv.write_npz(tmp_path / "SEED-V", 1, de, seedv.de_labels(de))
    out = tmp_path / "run"
    args = ["train", "--dataset", "seed5-features"]
    args += ["--data-dir", str(tmp_path / "SEED-V"), "--targets", "class"]
    args += ["--model", "logreg", "--permutations", "0", "--protocol", "lovo"]
    args += ["--n-boot", "20", "--no-cache", "--quiet", "--jobs", "1"]
    args += ["--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "1_123.npz" in err[0]
    assert "trust_pickle=yes" in err[0]
    assert main([*args, "--dataset-option", "trust_pickle=yes"]) == 0
    report = json.loads((out / "report.json").read_text())
    pre = report["dataset"]["precomputed"]
    assert pre["reader"] == "seed5-features"
    assert pre["families"] == ["de"]
    assert pre["bands"][-1] == ["gamma", 31.0, 50.0]
    assert report["dataset"]["n_videos"] == 45
    contract = ModelContract.from_onnx(out / "model.onnx")
    assert contract.spec.precomputed == "seed5-features"
    assert contract.spec.causal is False
    assert contract.spec.window_s == 4.0
