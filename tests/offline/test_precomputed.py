"""Training on a dataset's precomputed features (SEED ``ExtractedFeatures``).

The files are written in the release's layout with scipy.io (MATLAB v5), holding
only the DE families, as a user's trimmed copy would.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from emomon.cli import main
from emomon.config import FeatureSpec
from emomon.contract import ModelContract
from emomon.errors import ConfigError, DatasetError, ModelError
from emomon.offline.dataset import load_dataset
from emomon.offline.trainconfig import make_train_config

from .conftest import SEED_FILM_LABELS, write_seed_feature_dir


@pytest.fixture(scope="module")
def de_only(tmp_path_factory: pytest.TempPathFactory):
    """An ExtractedFeatures folder with de_LDS* and de_movingAve* only."""
    return write_seed_feature_dir(tmp_path_factory.mktemp("seedfeat"))


def _cfg(root, **over):
    base = {"dataset": "seed-features", "data_dir": str(root), "cache_dir": None}
    return make_train_config(**{**base, **over})


def test_train_seed_split_exports_and_stream_refuses_the_model(
    de_only, tmp_path, capsys
):
    """The issue's command trains on DE alone, exports, and stream refuses it."""
    run = tmp_path / "run"
    argv = ["train", "--dataset", "seed-features", "--data-dir", str(de_only),
            "--protocol", "seed-split", "--model", "logreg", "--permutations", "0",
            "--no-cache", "--quiet", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "precomputed features de_LDS (not causal: offline only)" in out
    report = json.loads((run / "report.json").read_text())
    # No --targets: SEED has class labels and no ratings.
    assert list(report["results"]["seed-split"]["tasks"]) == ["class"]
    pre = report["dataset"]["precomputed"]
    assert pre["reader"] == "seed-features"
    assert pre["families"] == ["de_LDS"]
    assert pre["causal"] is False
    assert pre["bands"][0] == ["delta", 1.0, 3.0]
    # One fold per subject and session: films 1-9 train, 10-15 test.
    rows = (run / "per_fold.csv").read_text().splitlines()[1:]
    folds = {r.split(",")[2] for r in rows}
    assert folds == {f"{s}/{d}" for s in "123" for d in ("20131027", "20131030")}
    # films 1-9 (6-8 windows each) train, films 10-15 test
    assert {tuple(r.split(",")[3:5]) for r in rows} == {("63", "42")}
    task = report["results"]["seed-split"]["tasks"]["class"]
    assert task["metrics"]["balanced_accuracy"] > 0.9  # the written effect is found

    contract = ModelContract.from_onnx(run / "model.onnx")
    assert contract.spec.precomputed == "seed-features"
    assert contract.spec.kinds == ("de_LDS",)
    assert contract.spec.causal is False
    assert contract.input_shape == (62 * 5,)
    with pytest.raises(ModelError, match="precomputed") as ei:
        contract.require_live(source="m.onnx")
    assert "\n" not in str(ei.value)

    argv = ["stream", "--model", str(run / "model.onnx"), "--source", "lsl"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "precomputed by dataset 'seed-features' (de_LDS)" in err[0]
    assert "cannot be computed live" in err[0]


def test_reads_only_the_chosen_families_in_spec_order(de_only, monkeypatch):
    import emomon.datasets._seedfamily as family  # SEED's and SEED-IV's loads

    asked: list[str] = []
    real = family.load_mat

    def spy(path, expected, names=None):
        asked.extend(names or ["<all>"])
        return real(path, expected, names)

    monkeypatch.setattr(family, "load_mat", spy)
    ds = load_dataset(
        _cfg(
            de_only, model="logreg", dataset_options={"features": "de_movingAve,de_LDS"}
        ),
        progress=False,
    )
    data_vars = {n for n in asked if n != "label"}
    assert data_vars == {
        f"{f}{i}" for f in ("de_LDS", "de_movingAve") for i in range(1, 16)
    }
    t = ds.table
    assert t.spec.kinds == ("de_movingAve", "de_LDS")
    assert t.spec.feature_names[:2] == ("de_movingAve_delta", "de_movingAve_theta")
    assert t.X.shape[1:] == (62, 10)
    # the writer adds 0.1 to the second family it writes (de_movingAve)
    np.testing.assert_allclose(t.X[:, :, :5] - t.X[:, :, 5:], 0.1, atol=1e-9)
    assert ds.tasks["class"] == ["negative", "neutral", "positive"]
    first = t.trial == 0
    np.testing.assert_allclose(t.t_end[first], np.arange(1, first.sum() + 1) * 1.0)
    assert set(t.trial_session) == {"20131027", "20131030"}
    film = np.array([int(v[-2:]) for v in t.trial_video])
    labels = ds.trial_labels["class"]
    np.testing.assert_array_equal(labels, np.array(SEED_FILM_LABELS)[film - 1] + 1)


def test_grid_layout_for_map_models_and_lovo_by_film(de_only):
    from emomon.offline.crossval import protocol_splits

    ds = load_dataset(_cfg(de_only, model="cnn2d", protocols=("lovo",)), progress=False)
    assert ds.layout == "grid"
    assert ds.table.spec.layout == "grid"
    splits, _ = protocol_splits(ds, _cfg(de_only, model="cnn2d"), "lovo")
    assert len(splits) == 15
    video = ds.table.video
    for s in splits:
        held = set(video[s.test])
        assert held == {s.name}
        assert held.isdisjoint(video[np.concatenate([s.train, s.val])])
        # every subject's and session's trials of the film are held out
        assert len(set(ds.table.trial[s.test])) == 3 * 2


def test_missing_family_and_settings_that_cannot_apply_are_refused(de_only, capsys):
    base = ["train", "--dataset", "seed-features", "--data-dir", str(de_only),
            "--permutations", "0", "--no-cache", "--quiet"]  # fmt: skip
    cases = [
        (["-o", "features=de_LDS,psd_LDS"], "missing variable(s) psd_LDS1"),
        (["-o", "features=de_fancy"], "de_fancy"),
        (["--montage", "cyton"], "--montage needs EEG"),
        (["--model", "cnn_transformer"], "reads raw EEG"),
        (["--protocol", "seed-split", "--model", "logreg", "-o", "nope=1"], "nope"),
    ]
    for extra, needle in cases:
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, (extra, err)
        assert needle in err[0], (extra, err[0])
    ablate = ["evaluate", *base[1:], "--ablate-bands", "--out", "unused"]
    assert main(ablate) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--ablate-bands: a band ablation computes the features again" in line
    with pytest.raises(ConfigError, match="features.bands does not apply"):
        load_dataset(
            _cfg(de_only, features=FeatureSpec(bands=(("a", 8.0, 12.0),))),
            progress=False,
        )


def test_seed_split_needs_a_dataset_that_has_one(tmp_path, capsys):
    argv = ["train", "--dataset", "synthetic", "--subjects", "2", "--videos", "4",
            "--trial-s", "6", "--protocol", "seed-split", "--permutations", "0",
            "--no-cache", "--quiet", "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--protocol seed-split: dataset 'synthetic' has no customary split" in err[0]


def test_spec_round_trip_and_digest_of_computed_specs_unchanged():
    computed = FeatureSpec()
    assert "precomputed" not in computed.to_dict()  # old digests and caches stay
    pre = FeatureSpec(
        bands=(("delta", 1.0, 3.0),), kinds=("de_LDS",), precomputed="seed-features",
        window_s=1.0, hop_s=1.0, car=False, layout="flat",
    )  # fmt: skip
    assert FeatureSpec.from_dict(pre.to_dict()) == pre
    with pytest.raises(ConfigError):
        FeatureSpec(kinds=("de_LDS",))  # a family name needs precomputed
    from emomon.datasets import FeatureTrial
    from emomon.offline.precomputed import precomputed_spec

    no_edges = FeatureTrial(
        "1", "film01", {"de_LDS": np.ones((2, 1, 1))}, ("a", "b"), ("delta",), 1.0
    )
    with pytest.raises(DatasetError, match="band edges"):
        precomputed_spec(no_edges, reader="x", layout="flat")
