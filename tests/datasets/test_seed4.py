"""SeedIVReader / SeedIVFeaturesReader on small files in SEED-IV's exact layout."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import whosmat

from emomon.datasets import get_reader
from emomon.datasets.base import FeatureTrial
from emomon.datasets.seed import CH_NAMES as SEED_CH_NAMES
from emomon.datasets.seed4 import SeedIVFeaturesReader, SeedIVReader
from emomon.errors import ConfigError, DatasetError

from .writers import seed4_eeg, seed4_features, write_seed4_session, write_shuffled_mat

#: The per-session labels as the issue and the release's loaders state them.
LABEL_TEXT = {
    "1": "1,2,3,0,2,0,0,1,0,1,2,1,1,1,2,3,2,2,3,3,0,3,0,3",
    "2": "2,1,3,0,0,2,0,2,3,3,2,3,2,0,1,1,2,1,0,3,0,1,3,1",
    "3": "1,2,2,1,3,3,3,1,1,2,1,0,2,3,3,0,2,3,0,0,2,0,1,0",
}
NAMES = ("neutral", "sad", "fear", "happy")


def _labels(session: str) -> list[str]:
    return [NAMES[int(v)] for v in LABEL_TEXT[session].split(",")]


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory):
    """Subject 1 in all three sessions, 2 in session 1, 10 in session 2."""
    root = tmp_path_factory.mktemp("seed4")
    raw = root / "eeg_raw_data"
    files = {
        ("1", "1_20160518.mat"): seed4_eeg(seed=1),
        ("2", "1_20161125.mat"): seed4_eeg(seed=2),
        ("3", "1_20161126.mat"): seed4_eeg(seed=3),
        ("1", "2_20150915.mat"): seed4_eeg(seed=4),
        ("2", "10_20151023.mat"): seed4_eeg(seed=5),
    }
    for k, ((session, name), trials) in enumerate(files.items()):
        write_seed4_session(raw, session, name, trials, initials="cz", seed=k)
    return root, files


def test_file_order_is_shuffled(raw_root):
    """The files hold their trials out of order: only reading by name is right."""
    root, _ = raw_root
    for path in (root / "eeg_raw_data").glob("*/*.mat"):
        names = [n for n, _, _ in whosmat(path)]
        numbers = [int(n.rsplit("eeg", 1)[1]) for n in names]
        assert sorted(numbers) == list(range(1, 25))
        assert numbers != sorted(numbers), path


def test_reads_sessions_trials_and_labels_by_name(raw_root):
    root, files = raw_root
    reader = get_reader("seed4", root)
    assert isinstance(reader, SeedIVReader)
    assert reader.subjects() == ["1", "2", "10"]
    assert [(s, p.name) for s, p in reader.sessions("1")] == [
        ("1", "1_20160518.mat"),
        ("2", "1_20161125.mat"),
        ("3", "1_20161126.mat"),
    ]
    assert [p.parent.name for p in reader.files("1")] == ["1", "2", "3"]
    trials = reader.read_subject("1")
    assert len(trials) == 72
    dates = {"1": "20160518", "2": "20161125", "3": "20161126"}
    for k, t in enumerate(trials):
        session, i = str(k // 24 + 1), k % 24 + 1
        assert t.session == session
        assert t.video == f"s{session}t{i:02d}"
        assert t.label == _labels(session)[i - 1]
        assert t.subject == "1"
        assert t.sfreq == 200.0
        assert t.meta["variable"] == f"cz_eeg{i}"
        assert t.meta["date"] == dates[session]
        written = files[(session, f"1_{dates[session]}.mat")][i - 1]
        assert t.eeg.shape == (62, 20 + i)
        np.testing.assert_array_equal(t.eeg, written)  # µV, unconverted
    assert trials[0].ch_names == SEED_CH_NAMES  # SEED's cap, 10-20 spelling
    assert reader.channel_names("1") == SEED_CH_NAMES
    # The same film is the same video for every subject; other sessions' are not.
    other = reader.read_subject("10")
    assert [t.video for t in other] == [f"s2t{i:02d}" for i in range(1, 25)]
    assert [t.label for t in other] == _labels("2")
    # eeg_raw_data itself works too.
    assert SeedIVReader(root / "eeg_raw_data").subjects() == ["1", "2", "10"]
    assert SeedIVReader(root / "eeg_raw_data").read_subject("02")[5].video == "s1t06"


def test_classes_and_the_trial_split(raw_root):
    root, _ = raw_root
    reader = get_reader("seed4", root)
    assert reader.classes == NAMES
    assert reader.session_split == (16, 24)
    labels = [t.label for t in reader.read_subject("1")]
    assert set(labels) == set(NAMES)
    # The customary test part (trials 17-24) of session 1 has no sad trial, as
    # the module docstring warns: 2 neutral, 2 fear, 4 happy.
    test_part = labels[16:24]
    assert sorted(test_part) == sorted(["fear"] * 2 + ["happy"] * 4 + ["neutral"] * 2)


# -- errors ----------------------------------------------------------------------


def test_missing_trial_variable(tmp_path, raises_one_line):
    trials = seed4_eeg()
    write_seed4_session(tmp_path / "eeg_raw_data", "2", "4_20151111.mat", trials[:23])
    with raises_one_line(DatasetError, "4_20151111.mat", "<initials>_eeg24"):
        get_reader("seed4", tmp_path).read_subject("4")


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        (np.zeros((61, 40)), "(61, 40)"),
        (np.zeros((62, 40, 1)), "(62, 40, 1)"),
        (np.full((62, 40), np.nan), "NaN/inf"),
    ],
)
def test_wrong_shape_and_nonfinite(tmp_path, bad, needle, raises_one_line):
    trials = seed4_eeg()
    trials[16] = bad
    write_seed4_session(tmp_path, "3", "5_20160406.mat", trials, initials="ww")
    with raises_one_line(DatasetError, "5_20160406.mat", "ww_eeg17", needle):
        SeedIVReader(tmp_path).read_subject("5")


def test_two_prefixes_for_one_trial(tmp_path, raises_one_line):
    """Two variables claiming one trial are refused, not chosen by key order."""
    trials = seed4_eeg()
    variables = {f"cz_eeg{i}": x for i, x in enumerate(trials, start=1)}
    variables["ab_eeg7"] = trials[0]
    write_shuffled_mat(tmp_path / "1" / "6_20150507.mat", variables)
    with raises_one_line(DatasetError, "6_20150507.mat", "ab_eeg7 and cz_eeg7"):
        SeedIVReader(tmp_path).read_subject("6")


def test_two_files_of_one_subject_in_a_session(tmp_path, raises_one_line):
    for name in ("7_20150715.mat", "7_20150716.mat"):
        write_seed4_session(tmp_path, "1", name, seed4_eeg(n_samples=2))
    reader = SeedIVReader(tmp_path)
    assert reader.subjects() == ["7"]
    with raises_one_line(DatasetError, "7_20150716.mat", "7_20150715.mat", "session"):
        reader.read_subject("7")


def test_missing_dir_empty_dir_unknown_subject_and_option(tmp_path, raises_one_line):
    with raises_one_line(DatasetError, "nope", "does not exist", "seed-iv"):
        SeedIVReader(tmp_path / "nope")
    (tmp_path / "eeg_raw_data" / "1").mkdir(parents=True)
    with raises_one_line(
        DatasetError, "no SEED-IV session files", "eeg_raw_data/{1,2,3}"
    ):
        SeedIVReader(tmp_path).subjects()
    write_seed4_session(tmp_path / "eeg_raw_data", "1", "3_20150919.mat", seed4_eeg())
    with raises_one_line(DatasetError, "SEED-IV subject '9' not found", "found: 3"):
        SeedIVReader(tmp_path).read_subject("9")
    with raises_one_line(ConfigError, "seed4", "no option(s) features"):
        get_reader("seed4", tmp_path, features="de_LDS")


# -- precomputed features --------------------------------------------------------


@pytest.fixture(scope="module")
def feature_root(tmp_path_factory):
    """Files holding only de_LDS and de_movingAve, variables in shuffled order."""
    root = tmp_path_factory.mktemp("seed4f")
    files = {
        ("1", "1_20160518.mat"): seed4_features(seed=1),
        ("3", "1_20161126.mat"): seed4_features(seed=2),
        ("2", "2_20151012.mat"): seed4_features(seed=3),
    }
    for k, ((session, name), variables) in enumerate(files.items()):
        write_shuffled_mat(root / "eeg_feature_smooth" / session / name, variables, k)
    return root, files


def test_features_default_de_lds_by_name(feature_root, monkeypatch):
    import emomon.datasets._seedfamily as family

    root, files = feature_root
    asked: list[list[str]] = []
    real = family.load_mat

    def recording(path, expected, variable_names=None):
        asked.append(list(variable_names))
        return real(path, expected, variable_names)

    monkeypatch.setattr(family, "load_mat", recording)
    reader = get_reader("seed4-features", root)
    assert isinstance(reader, SeedIVFeaturesReader)
    assert reader.precomputed
    assert reader.classes == NAMES
    assert reader.session_split == (16, 24)
    assert reader.subjects() == ["1", "2"]
    out = reader.read_subject("1")
    # Only the de_LDS variables were asked of the files, none of de_movingAve.
    assert asked == [[f"de_LDS{i}" for i in range(1, 25)]] * 2
    assert len(out) == 48
    for k, ft in enumerate(out):
        session, i = ("1", "3")[k // 24], k % 24 + 1
        assert isinstance(ft, FeatureTrial)
        assert ft.video == f"s{session}t{i:02d}"
        assert ft.session == session
        assert ft.label == _labels(session)[i - 1]
        assert list(ft.features) == ["de_LDS"]
        written = files[
            (session, f"1_{'20160518' if session == '1' else '20161126'}.mat")
        ]
        np.testing.assert_array_equal(ft.features["de_LDS"], written[f"de_LDS{i}"])
        assert ft.features["de_LDS"].shape == (62, 2 + i % 3, 5)
        assert ft.window_s == 4.0
        assert ft.sfreq == 200.0
        assert ft.bands == ("delta", "theta", "alpha", "beta", "gamma")
        assert ft.band_edges == ((1, 4), (4, 8), (8, 14), (14, 31), (31, 50))
        assert ft.ch_names == SEED_CH_NAMES
    assert reader.cache_token()["options"] == {"features": "de_LDS"}


def test_features_option_as_a_comma_list(feature_root, raises_one_line):
    root, files = feature_root
    reader = get_reader("seed4-features", root, features="de_movingAve, de_LDS")
    ft = reader.read_subject("2")[20]
    assert list(ft.features) == ["de_movingAve", "de_LDS"]
    np.testing.assert_array_equal(
        ft.features["de_movingAve"], files[("2", "2_20151012.mat")]["de_movingAve21"]
    )
    assert ft.video == "s2t21"
    assert ft.label == _labels("2")[20]
    # A family the files do not hold: one line naming the file and the variable.
    reader = SeedIVFeaturesReader(root / "eeg_feature_smooth", features=["psd_LDS"])
    with raises_one_line(DatasetError, "1_20160518.mat", "psd_LDS1", "missing"):
        reader.read_subject("1")
    with raises_one_line(DatasetError, "seed4-features", "dasm_LDS", "psd_movingAve"):
        SeedIVFeaturesReader(root, features="de_LDS,dasm_LDS")
    with raises_one_line(DatasetError, "(none given)"):
        SeedIVFeaturesReader(root, features=" , ")
    with raises_one_line(ConfigError, "seed4-features", "no option(s) smooth"):
        SeedIVFeaturesReader(root, smooth="LDS")


def test_bad_feature_files(tmp_path, raises_one_line):
    feats = seed4_features()
    folder = tmp_path / "eeg_feature_smooth" / "2"
    write_shuffled_mat(
        folder / "1_20151012.mat", {**feats, "de_LDS4": np.ones((62, 5))}
    )
    write_shuffled_mat(
        folder / "2_20151012.mat", {**feats, "de_LDS9": np.ones((62, 7, 5))}
    )
    write_shuffled_mat(
        folder / "3_20151101.mat", {**feats, "de_LDS3": np.full((62, 2, 5), np.inf)}
    )
    reader = SeedIVFeaturesReader(tmp_path, features="de_LDS,de_movingAve")
    with raises_one_line(DatasetError, "1_20151012.mat", "de_LDS4", "(62, 5)"):
        reader.read_subject("1")
    with raises_one_line(DatasetError, "2_20151012.mat", "trial 9", "different"):
        reader.read_subject("2")
    with raises_one_line(DatasetError, "3_20151101.mat", "de_LDS3", "NaN/inf"):
        reader.read_subject("3")
    # The broken de_LDS4 is never read when only de_movingAve is asked for.
    ok = SeedIVFeaturesReader(tmp_path, features="de_movingAve").read_subject("1")
    assert len(ok) == 24


# -- training ---------------------------------------------------------------------


def _raw_dir(root):
    for k, name in enumerate(("1_20160518.mat", "2_20150915.mat")):
        trials = seed4_eeg(n_samples=600, seed=k)  # 3 s: one 2 s window each
        write_seed4_session(root / "eeg_raw_data", "1", name, trials, seed=k)


def _feature_dir(root):
    for k, name in enumerate(("1_20160518.mat", "2_20150915.mat")):
        path = root / "eeg_feature_smooth" / "1" / name
        write_shuffled_mat(
            path, seed4_features(seed=k), k
        )  # trial i: 2 + i % 3 windows


@pytest.mark.parametrize(
    ("dataset", "write"), [("seed4", _raw_dir), ("seed4-features", _feature_dir)]
)
def test_train_lovo_and_seed_split_export(tmp_path, capsys, dataset, write):
    """``emomon train --dataset seed4[-features] --targets class`` runs LOVO by film
    and seed-split (trials 1-16 train, 17-24 test, per subject and session) and
    exports a 4-class model."""
    import csv
    import json

    from emomon.cli import main
    from emomon.contract import ModelContract

    root = tmp_path / "SEED_IV"
    write(root)
    run = tmp_path / "run"
    argv = ["train", "--dataset", dataset, "--data-dir", str(root),
            "--targets", "class", "--model", "logreg", "--permutations", "0",
            "--protocol", "lovo,seed-split", "--n-boot", "0", "--jobs", "1",
            "--no-cache", "--quiet", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    report = json.loads((run / "report.json").read_text())
    assert list(report["results"]) == ["lovo", "seed-split"]
    with (run / "per_fold.csv").open() as f:
        rows = list(csv.DictReader(f))
    lovo = [r["fold"] for r in rows if r["protocol"] == "lovo"]
    assert lovo == [f"s1t{i:02d}" for i in range(1, 25)]  # one fold per film
    split = [r for r in rows if r["protocol"] == "seed-split"]
    # One fold per subject and session, tested on trials 17-24 only (their
    # windows: one per raw trial, 2 + i % 3 per feature trial).
    n_test = 8 if dataset == "seed4" else sum(2 + i % 3 for i in range(17, 25))
    n_train = 16 if dataset == "seed4" else sum(2 + i % 3 for i in range(1, 17))
    assert [(r["fold"], int(r["n_train"]), int(r["n_test"])) for r in split] == [
        ("1/1", n_train, n_test),
        ("2/1", n_train, n_test),
    ]
    contract = ModelContract.from_onnx(run / "model.onnx")
    assert list(contract.tasks["class"]) == list(NAMES)
    assert contract.ch_names == SEED_CH_NAMES
    if dataset == "seed4-features":
        assert contract.spec.precomputed == "seed4-features"
        assert contract.spec.kinds == ("de_LDS",)
        assert contract.spec.window_s == 4.0
        edges = [(b.lo, b.hi) for b in contract.spec.bands]
        assert edges == [(1, 4), (4, 8), (8, 14), (14, 31), (31, 50)]
        assert contract.spec.causal is False
    else:
        assert contract.spec.causal is True
