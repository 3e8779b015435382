"""Training-set augmentation inside a fold: leak-free, seeded, sanity-checked."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from emomon.errors import ConfigError
from emomon.offline import augment as aug_mod
from emomon.offline.augment import augment_fold, mmd_test, sanity_check, strata
from emomon.offline.crossval import protocol_splits
from emomon.offline.dataset import load_dataset
from emomon.offline.tasks import FoldResult, fold_data, fold_tasks
from emomon.offline.trainconfig import make_train_config


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    cfg = make_train_config(
        None,
        synthetic={"n_subjects": 3, "n_videos": 6, "trial_s": 10.0},
        protocols=("lovo",),
        permutations=0,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    return cfg, load_dataset(cfg, progress=False)


@pytest.fixture
def few_gan_steps(monkeypatch):
    # The real generator and training loop, with fewer steps: the leak and
    # seeding properties do not depend on how long it trains.
    monkeypatch.setattr(aug_mod, "_GEN_STEPS", 3)


def _tamper_held_out(ds, test, val):
    """The dataset with the fold's test and validation windows and labels changed."""
    t = ds.table
    rng = np.random.default_rng(99)
    x = t.X.copy()
    out = np.concatenate([test, val])
    x[out] = rng.normal(50.0, 30.0, size=x[out].shape).astype(x.dtype)
    labels = {k: v.copy() for k, v in ds.trial_labels.items()}
    for k in labels:
        trials = np.unique(t.trial[out])
        labels[k][trials] = 1 - labels[k][trials]
    return dataclasses.replace(
        ds, table=dataclasses.replace(t, X=x), trial_labels=labels
    )


@pytest.mark.parametrize(
    ("model", "method"),
    [("logreg", "noise"), ("mlp", "mixup"), ("logreg", "wgan")],
)
def test_added_samples_come_from_the_fold_s_training_windows_only(
    small, few_gan_steps, model, method
):
    base, ds = small
    cfg = make_train_config(base, model=model, augment=method, augment_ratio=0.5)
    splits, _ = protocol_splits(ds, cfg, "lovo")
    task = fold_tasks(splits, cfg)[1]
    if model == "mlp":
        assert task.split.val.size  # there are validation windows to tamper with
    got = fold_data(ds, task)
    n = got.train.size
    assert got.x_train.shape[0] == n + round(0.5 * n)
    assert got.augment["method"] == method
    assert got.augment["n_added"] == round(0.5 * n)
    # Test and validation windows, features and labels, replaced: same samples
    # (logreg trains on the inner validation windows: only mlp has some).
    assert (got.val.size > 0) == (model == "mlp")
    again = fold_data(_tamper_held_out(ds, task.split.test, got.val), task)
    np.testing.assert_array_equal(again.x_train, got.x_train)
    for k in ds.tasks:
        np.testing.assert_array_equal(again.y_train[k], got.y_train[k])
    assert not np.array_equal(again.x_test, got.x_test)  # the tampering took
    # One training window changed: the added samples change (the test can fail).
    x = ds.table.X.copy()
    x[got.train[0]] += 5 * x[got.train].std()
    moved = dataclasses.replace(ds, table=dataclasses.replace(ds.table, X=x))
    x_moved = fold_data(moved, task).x_train
    assert not np.allclose(x_moved[n:], got.x_train[n:])


def test_same_seed_same_samples_other_seed_others(few_gan_steps):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 12)).astype(np.float32)
    y = {"a": np.arange(120) % 2, "b": (np.arange(120) // 2) % 3}
    for method in ("noise", "mixup", "wgan"):
        one = augment_fold(x, y, method=method, ratio=1.0, seed=4)
        two = augment_fold(x, y, method=method, ratio=1.0, seed=4)
        other = augment_fold(x, y, method=method, ratio=1.0, seed=5)
        np.testing.assert_array_equal(one.x, two.x)
        assert not np.allclose(one.x, other.x)
        # Strata kept in the real proportions (each joint label 1/6 here).
        codes, _ = strata(one.y)
        assert np.bincount(codes).tolist() == [20] * 6


def test_mixup_stays_within_the_joint_label():
    x = np.array([[0.0], [1.0], [10.0], [11.0]], dtype=np.float32)
    y = {"a": np.array([0, 0, 1, 1])}
    got = augment_fold(x, y, method="mixup", ratio=25.0, seed=0)
    lo = got.y["a"] == 0
    assert lo.sum() == 50
    assert got.x[lo].min() >= 0
    assert got.x[lo].max() <= 1
    assert got.x[~lo].min() >= 10
    assert got.x[~lo].max() <= 11


def test_mmd_test_tells_a_shift_from_the_same_distribution():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(150, 5)), rng.normal(size=(150, 5))
    same = mmd_test(a, b, n_perm=99, rng=rng)
    shifted = mmd_test(a, b + 1.0, n_perm=99, rng=rng)
    assert same["p"] > 0.05
    assert shifted["p"] == pytest.approx(0.01)
    assert shifted["mmd2"] > same["mmd2"]


def test_sanity_check_noise_samples_teach_a_classifier_that_holds_on_real():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(8), 40)
    y = {"a": (groups % 2).astype(np.int64)}
    x = rng.normal(size=(groups.size, 6)) + 1.5 * y["a"][:, None]
    got = sanity_check(
        x, y, groups, method="noise", ratio=1.0, seed=0, n_classes={"a": 2}
    )
    assert got["n_heldout"] == 120  # 3 of 8 videos (0.4, rounded)
    assert got["n_fit"] == 200
    assert got["tstr"]["a"] > 0.8 > got["chance"]["a"]
    assert got["trtr"]["a"] > 0.8
    assert 1.0 < got["var_ratio"] < 1.3  # noise adds 0.3^2 of the variance
    assert got["class_direction_cos"]["a"] > 0.9
    assert 0 < got["mmd"]["p"] <= 1
    # The class-mean Gaussian reference learns the same class shift here.
    assert got["tstr_reference"]["a"] > 0.8
    assert 0 < got["mmd_reference"]["p"] <= 1


def test_gaussian_reference_keeps_two_moments_and_nothing_else():
    from emomon.offline.augment import _gaussian_reference

    rng = np.random.default_rng(3)
    n = 4000
    y = {"a": rng.integers(0, 2, n), "b": rng.integers(0, 2, n)}
    # Feature 0: class a shifts it; feature 1: bimodal (+-3) within every class,
    # correlated with feature 2.
    f1 = rng.choice((-3.0, 3.0), n) + 0.3 * rng.normal(size=n)
    x = np.stack(
        [2.0 * y["a"] + rng.normal(size=n), f1, 0.5 * f1 + rng.normal(size=n)], axis=1
    )
    want = {"a": np.repeat([0, 1], 3000), "b": np.tile([0, 1], 3000)}
    ref = _gaussian_reference(x, y, want, rng=np.random.default_rng(0))
    assert ref.shape == (6000, 3)
    hi, lo = want["a"] == 1, want["a"] == 0
    assert ref[hi, 0].mean() - ref[lo, 0].mean() == pytest.approx(2.0, abs=0.1)
    real_cov = np.cov(x[:, 1:].T)
    assert np.cov(ref[lo][:, 1:].T) == pytest.approx(real_cov, rel=0.1)
    # ... but not the shape: real windows never sit near 0 on feature 1.
    assert np.mean(np.abs(x[:, 1]) < 1) < 0.01
    assert np.mean(np.abs(ref[:, 1]) < 1) > 0.15


def test_fold_result_keeps_the_augment_record():
    res = FoldResult(
        fold="v1",
        index=0,
        seed=0,
        n_train=3,
        n_val=0,
        n_test=1,
        test=np.array([3]),
        proba={"a": np.array([[0.2, 0.8]])},
        best_epoch={"a": 0},
        augment={"method": "noise", "n_added": 3, "sanity": {"tstr": {"a": 0.7}}},
    )
    back = FoldResult.from_dict(res.to_dict())
    assert back.augment == res.augment
    bare = dataclasses.replace(res, augment={})
    assert "augment" not in bare.to_dict()


def test_config_refuses_unknown_method_raw_eeg_model_and_bad_ratio():
    assert make_train_config(None, augment="none").augment is None  # as TOML says
    with pytest.raises(ConfigError, match="unknown augment 'gan'"):
        make_train_config(None, augment="gan")
    with pytest.raises(ConfigError, match="reads raw EEG"):
        make_train_config(None, augment="noise", model="cnn_transformer")
    with pytest.raises(ConfigError, match="augment_ratio must be > 0"):
        make_train_config(None, augment="noise", augment_ratio=0.0)


def test_a_run_with_augment_reports_each_fold_s_samples_and_checks(tmp_path):
    from emomon.cli import build_parser

    args = build_parser().parse_args(
        ["train", "--augment", "mixup", "--augment-ratio", "0.5"]
    )
    assert (args.augment, args.augment_ratio) == ("mixup", 0.5)
    from emomon.offline.train import train

    report = train(
        dataset="synthetic",
        synthetic={"n_subjects": 2, "n_videos": 4, "trial_s": 10.0},
        n_boot=0,
        permutations=1,
        cache_dir=None,
        export=False,
        augment="mixup",
        augment_ratio=0.5,
        out_dir=tmp_path / "run",
    )
    rows = report.main.tasks["valence"].per_fold
    assert len(rows) == 4
    for row in rows:
        assert row.augment["n_added"] == round(0.5 * row.n_train)
        sanity = row.augment["sanity"]
        assert set(sanity["tstr"]) == {"valence", "arousal"}
        assert 0 < sanity["mmd"]["p"] <= 1
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["config"]["augment"] == "mixup"
    fold = saved["results"]["lovo"]["tasks"]["valence"]["per_fold"][0]
    assert fold["augment"]["method"] == "mixup"
    assert report.main.tasks["valence"].permutation is not None


def test_a_wgan_run_takes_the_worker_processes_asked_for():
    # Weighed by windows alone, a small logreg run stays in one process; with a
    # generator trained per fold (about 30 s each) it must not (issue 17: a
    # user's 8-fold run took 8 min serially on 2 cores with --jobs 2).
    from emomon.offline.evaluate import parallel_work
    from emomon.offline.executors import MIN_PARALLEL_WORK

    kw = {"n_windows": 1184, "n_folds": 8, "todo_folds": 8, "todo_perms": []}
    plain = make_train_config(dataset="synthetic", model="logreg")
    n_win, n_tasks = parallel_work(plain, **kw)
    assert n_win * n_tasks < MIN_PARALLEL_WORK
    for method, heavy in (("noise", False), ("wgan", True)):
        cfg = make_train_config(plain, augment=method)
        n_win, n_tasks = parallel_work(cfg, **kw)
        assert n_tasks == 8
        assert (n_win * n_tasks >= MIN_PARALLEL_WORK) is heavy
