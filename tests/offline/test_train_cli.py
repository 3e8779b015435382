"""``emomon train`` / ``evaluate`` / ``info`` on real DEAP-format files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from emomon.cli import main
from emomon.contract import ModelContract

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deap_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("deap")
    rc = main(
        [
            "datasets",
            "synth",
            "--out",
            str(d),
            "--subjects",
            "3",
            "--videos",
            "4",
            "--trial-s",
            "12",
        ]
    )
    assert rc == 0
    return d


def test_train_on_deap_dir_with_defaults_writes_reports_and_model(
    deap_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # default cache and run dirs land here
    rc = main(
        [
            "train",
            "--permutations",
            "0",
            "--dataset",
            "deap",
            "--data-dir",
            str(deap_dir),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    run = tmp_path / "runs" / "deap-lovo-logreg"
    for name in ("report.json", "per_video.csv", "per_subject.csv", "model.onnx"):
        assert (run / name).is_file(), name
    assert len(list(run.glob("*.png"))) >= 2
    report = json.loads((run / "report.json").read_text())
    assert report["dataset"]["n_subjects"] == 3
    assert report["dataset"]["n_videos"] == 4
    with open(run / "per_video.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["group"] for r in rows} == {"v01", "v02", "v03", "v04"}
    assert "lovo" in out
    assert "valence" in out
    assert "arousal" in out

    contract = ModelContract.from_onnx(run / "model.onnx")
    assert contract.model == "logreg"
    assert contract.info["protocol"] == "lovo"
    assert len(contract.ch_names) == 32
    assert contract.sfreq == 128.0
    assert list(contract.tasks) == ["valence", "arousal"]
    sess = ort.InferenceSession(str(run / "model.onnx"))
    x = np.zeros((3, *contract.input_shape), np.float32)
    probs = sess.run(None, {contract.input_name: x})
    assert [o.name for o in sess.get_outputs()] == ["valence", "arousal"]
    np.testing.assert_allclose(probs[0].sum(axis=1), 1.0, atol=1e-6)

    assert main(["info", str(run / "model.onnx")]) == 0
    info = capsys.readouterr().out
    assert "logreg" in info
    assert "Fp1" in info
    assert "valence: low/high" in info


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn2d", "mtcnn", "cnn_transformer", "mlp"])
def test_every_model_trains_and_exports_through_the_cli(deap_dir, tmp_path, model):
    rc = main(
        [
            "train",
            "--permutations",
            "0",
            "--dataset",
            "deap",
            "--data-dir",
            str(deap_dir),
            "--model",
            model,
            "--epochs",
            "1",
            "--n-boot",
            "20",
            "--quiet",
            "--cache-dir",
            str(tmp_path / "c"),
            "--out",
            str(tmp_path / "r"),
            "--hparams",
            '{"channels": [8, 8, 8]}' if model in ("cnn2d", "mtcnn") else "{}",
        ]
    )
    assert rc == 0
    contract = ModelContract.from_onnx(tmp_path / "r" / "model.onnx")
    assert contract.model == model
    expected = {
        "cnn2d": "grid",
        "mtcnn": "grid",
        "cnn_transformer": "eeg",
        "mlp": "flat",
    }
    assert contract.input_kind == expected[model]


def _settings(run: Path) -> list[str]:
    """The settings of an ablation run, in table order (ablation.csv)."""
    with open(run / "ablation.csv") as f:
        return list(dict.fromkeys(r["setting"] for r in csv.DictReader(f)))


def test_evaluate_band_ablation_and_label_reliability(deap_dir, tmp_path, capsys):
    common = [
        "--dataset",
        "deap",
        "--data-dir",
        str(deap_dir),
        "--epochs",
        "3",
        "--n-boot",
        "20",
        "--quiet",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    rc = main(
        [
            "evaluate",
            "--permutations",
            "0",
            *common,
            "--ablate-bands",
            "--out",
            str(tmp_path / "b"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    settings = _settings(tmp_path / "b")
    bands = ("theta", "alpha", "beta", "gamma")
    # each band alone, and leave-one-band-out beside it
    assert settings == ["all", *(s for b in bands for s in (b, f"all but {b}"))]
    for s in settings:
        assert f"\n{s} " in out
    assert (tmp_path / "b" / "ablation.png").is_file()
    rc = main(
        [
            "evaluate",
            "--permutations",
            "0",
            *common,
            "--labels",
            "fixed,rank,random",
            "--out",
            str(tmp_path / "l"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    for method in ("fixed", "rank", "random"):
        assert method in out
    with open(tmp_path / "l" / "ablation.csv") as f:
        assert len(list(csv.DictReader(f))) == 6  # 3 methods x 2 tasks
    # both experiments asked for: both run, in one table (not bands alone)
    rc = main(
        [
            "evaluate",
            "--permutations",
            "0",
            *common,
            "--ablate-bands",
            "alpha",
            "--labels",
            "fixed,random",
            "--out",
            str(tmp_path / "bl"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("Band ablation and label reliability (lovo)")
    assert _settings(tmp_path / "bl") == [
        "all, labels fixed",
        "alpha",
        "all but alpha",
        "labels random",
    ]


def test_export_of_an_evaluate_run_is_the_model_train_exports(
    deap_dir, tmp_path, capsys
):
    """``evaluate`` then ``export`` gives the same model as ``train`` (same config
    and seed), with the run's headline metrics in its contract."""
    common = ["--dataset", "deap", "--data-dir", str(deap_dir), "--quiet",
              "--n-boot", "20", "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    assert (
        main(["evaluate", "--permutations", "0", *common, "--out", str(tmp_path / "e")])
        == 0
    )
    assert not (tmp_path / "e" / "model.onnx").exists()
    assert main(["export", str(tmp_path / "e"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'e' / 'model.onnx'}" in out
    assert (
        main(["train", "--permutations", "0", *common, "--out", str(tmp_path / "t")])
        == 0
    )

    exported = ModelContract.from_onnx(tmp_path / "e" / "model.onnx")
    trained = ModelContract.from_onnx(tmp_path / "t" / "model.onnx")
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["export"]["path"] == "model.onnx"
    assert report["export"]["parity_max_abs"] < 1e-4
    assert exported.info["metrics"] == trained.info["metrics"]
    bacc = report["results"]["lovo"]["tasks"]["valence"]["metrics"]
    assert exported.info["metrics"]["valence"]["balanced_accuracy"] == pytest.approx(
        bacc["balanced_accuracy"]
    )
    assert exported.ch_names == trained.ch_names
    assert exported.spec == trained.spec
    np.testing.assert_array_equal(exported.norm_mean, trained.norm_mean)
    x = np.random.default_rng(0).standard_normal((4, *exported.input_shape))
    a, b = (
        ort.InferenceSession(str(tmp_path / d / "model.onnx")).run(
            None, {exported.input_name: x.astype(np.float32)}
        )
        for d in ("e", "t")
    )
    for pa, pb in zip(a, b, strict=True):
        np.testing.assert_allclose(pa, pb, atol=1e-6)


def test_export_refuses_runs_it_cannot_reproduce(deap_dir, tmp_path, capsys):
    # no report
    assert main(["export", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "report.json not found" in err
    # the data changed since the run: a second dir with 2 subjects instead of 3
    run = tmp_path / "r"
    assert main(["evaluate", "--dataset", "deap", "--data-dir", str(deap_dir),
                 "--permutations", "0", "--quiet", "--n-boot", "5", "--out", str(run),
                 "--cache-dir", str(tmp_path / "c")]) == 0  # fmt: skip
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    for name in ("s01.dat", "s02.dat"):
        (fewer / name).write_bytes((deap_dir / name).read_bytes())
    capsys.readouterr()
    assert main(["export", str(run), "--data-dir", str(fewer), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "no longer matches" in err
    assert "n_subjects" in err
    assert not (run / "model.onnx").exists()
    # an ablation run has no single model
    (run / "report.json").write_text(json.dumps({"ablation": {}, "config": {}}))
    assert main(["export", str(run)]) == 2
    assert "ablation run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--dataset", "deep"], "unknown dataset 'deep'"),
        (["--protocol", "lovoo"], "unknown protocol 'lovoo'"),
        (["--model", "cnn3d"], "unknown model 'cnn3d'"),
        (["--labels", "median-ish"], "unknown labels"),
    ],
)
def test_bad_names_exit_2_with_one_line(deap_dir, tmp_path, capsys, args, needle):
    argv = [
        "train",
        "--permutations",
        "0",
        "--dataset",
        "deap",
        "--data-dir",
        str(deap_dir),
        "--quiet",
        "--out",
        str(tmp_path / "r"),
        *args,
    ]
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert needle in err


def test_empty_data_dir_exits_2(tmp_path, capsys):
    rc = main(["train", "--dataset", "deap", "--data-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert str(tmp_path) in err


def test_protocol_that_cannot_split_exits_2(tmp_path, capsys):
    d = tmp_path / "one"
    assert (
        main(
            [
                "datasets",
                "synth",
                "--out",
                str(d),
                "--subjects",
                "2",
                "--videos",
                "1",
                "--trial-s",
                "6",
            ]
        )
        == 0
    )
    capsys.readouterr()
    rc = main(
        [
            "train",
            "--permutations",
            "0",
            "--dataset",
            "deap",
            "--data-dir",
            str(d),
            "--quiet",
            "--cache-dir",
            str(tmp_path / "c"),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert "lovo" in err
    assert "video" in err


def test_info_on_a_file_that_is_not_an_emomon_model(tmp_path, capsys):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not onnx at all")
    assert main(["info", str(bad)]) == 2
    assert "x.onnx" in capsys.readouterr().err


def test_the_final_fit_and_export_show_progress(tmp_path, capsys):
    """After the last fold's bar the final model's steps are on stderr too."""
    out = tmp_path / "run"
    rc = main(["train", "--subjects", "3", "--videos", "4", "--trial-s", "10",
               "--permutations", "0", "--n-boot", "20", "--out", str(out),
               "--cache-dir", str(tmp_path / "c")])  # fmt: skip
    assert rc == 0
    err = capsys.readouterr().err.replace("\r", "\n")
    final = [line for line in err.splitlines() if line.startswith("final logreg")]
    assert final, err[-2000:]
    assert "exporting model.onnx" in final[-1]
    assert "100%" in final[-1]
    assert (out / "model.onnx").is_file()
