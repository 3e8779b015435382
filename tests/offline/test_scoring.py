"""A headline's rules: intervals by exchangeable unit, none without a null."""

from __future__ import annotations

import numpy as np
import pytest

from emomon.offline.metrics import (
    balanced_accuracy,
    cluster_bootstrap_ci,
    cluster_ids,
    predict,
)
from emomon.offline.scoring import (
    fixed_model_null,
    permute_by_unit,
    permute_subjects,
    score_task,
    verdict,
    window_units,
)


def test_verdicts_say_when_the_reruns_cannot_reach_the_threshold():
    assert verdict(None) == "not tested"
    assert verdict(float("nan"), 199) == "not tested"
    # 2 reruns: the smallest p is 1/3, so p = 0.33 says nothing either way.
    assert verdict(1 / 3, 2) == "inconclusive"
    assert verdict(1.0, 19) == "inconclusive"  # 1/20 = 0.05 is not < 0.05
    assert verdict(0.005, 199) == "above chance"
    assert verdict(0.5, 199) == "at chance"
    assert verdict(0.03, 199, alpha=0.01) == "at chance"
    # Reruns that leave the labels as they are score the observed value: with
    # 33 of 199 such, p cannot fall below 34/200 = 0.17.
    assert verdict(0.17, 199, n_fixed=33) == "inconclusive"
    assert verdict(0.04, 199, n_fixed=8) == "above chance"  # 9/200 < 0.05


def _trials(n_subjects: int, n_videos: int) -> tuple[np.ndarray, np.ndarray]:
    subj = np.repeat([f"s{i}" for i in range(n_subjects)], n_videos)
    vid = np.tile([f"v{j}" for j in range(n_videos)], n_subjects)
    return subj, vid


def test_a_subject_permutation_swaps_whole_subjects_and_keeps_each_video_s_labels():
    subj, vid = _trials(5, 6)
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, subj.size)
    for seed in range(5):
        perm = permute_subjects(subj, vid, rng=seed)
        # Every trial takes a trial of the same video ...
        assert (vid[perm] == vid).all()
        # ... from one donor subject per subject.
        for s in np.unique(subj):
            assert np.unique(subj[perm][subj == s]).size == 1
        # So each video keeps the labels people gave it.
        for v in np.unique(vid):
            m = vid == v
            assert sorted(labels[perm][m]) == sorted(labels[m])
    assert any(
        (subj[permute_subjects(subj, vid, rng=s)] != subj).any() for s in range(5)
    )


def test_a_permutation_by_unit_never_mixes_what_it_must_keep():
    subj, vid = _trials(4, 8)
    for seed in range(5):
        video = permute_by_unit("video", subj, vid, rng=seed)
        assert (subj[video] == subj).all()  # a subject keeps its own labels
        # one video permutation for every subject
        maps = {
            s: dict(zip(vid[subj == s], vid[video][subj == s], strict=True))
            for s in np.unique(subj)
        }
        assert len({tuple(sorted(m.items())) for m in maps.values()}) == 1
        trial = permute_by_unit("trial", subj, vid, rng=seed)
        assert (subj[trial] == subj).all()
        assert sorted(trial) == list(range(subj.size))
    with pytest.raises(ValueError, match="unknown exchangeable unit"):
        permute_by_unit("window", subj, vid)


def test_window_units():
    s, v = np.array(["a", "a", "b"]), np.array(["x", "y", "x"])
    assert window_units("video", s, v).tolist() == ["x", "y", "x"]
    assert window_units("subject", s, v).tolist() == ["a", "a", "b"]
    assert window_units("trial", s, v).tolist() == ["a|x", "a|y", "b|x"]


def _video_driven(seed: int = 0):
    """Predictions right or wrong by video, for every subject alike."""
    rng = np.random.default_rng(seed)
    subj, vid = _trials(8, 10)
    windows = 6
    s = np.repeat(subj, windows)
    v = np.repeat(vid, windows)
    video_label = {f"v{j}": j % 2 for j in range(10)}
    y = np.array([video_label[x] for x in v])
    video_right = {f"v{j}": rng.random() < 0.7 for j in range(10)}
    right = np.array([video_right[x] for x in v]) ^ (rng.random(y.size) < 0.05)
    pred = np.where(right, y, 1 - y)
    proba = np.clip(pred + rng.normal(0, 0.1, y.size), 0.01, 0.99) * 0.98 + 0.01
    proba = np.where(pred == 1, np.maximum(proba, 0.51), np.minimum(proba, 0.49))
    return y, np.stack([1 - proba, proba], axis=1), s, v


def test_no_interval_without_a_null_and_the_interval_resamples_the_given_unit():
    y, p, s, v = _video_driven()
    units = window_units("video", s, v)
    alone = score_task(y, p, units=units, unit="video", n_classes=2, null=None)
    assert alone.ci95 == (None, None)
    assert alone.permutation is None
    assert alone.verdict == "not tested"
    assert alone.metrics.balanced_accuracy == pytest.approx(
        balanced_accuracy(y, predict(p))
    )

    null = np.full(199, 0.5)
    scored = score_task(y, p, units=units, unit="video", n_classes=2, null=null)
    assert scored.permutation.n == 199
    assert scored.permutation.p_value == pytest.approx(1 / 200)
    assert scored.verdict == "above chance"
    assert scored.ci95 == pytest.approx(cluster_bootstrap_ci(y, p, units, seed=0))
    # Videos decide right or wrong here, so resampling (subject, video) pairs
    # (the old interval) is far narrower than resampling the 10 videos.
    lo, hi = scored.ci95
    lo_t, hi_t = cluster_bootstrap_ci(y, p, cluster_ids(s, v), seed=0)
    assert hi - lo > 2 * (hi_t - lo_t)


def test_the_fixed_model_null_permutes_whole_trials_against_fixed_predictions():
    y, p, s, v = _video_driven(1)
    trials = cluster_ids(s, v)
    null = fixed_model_null(y, p, trials, n_permutations=50, n_classes=2, seed=4)
    # The same permutations, done the slow way.
    names, first, code = np.unique(trials, return_index=True, return_inverse=True)
    rng = np.random.default_rng(4)
    slow = []
    for _ in range(50):
        lab = y[first][rng.permutation(names.size)]
        slow.append(balanced_accuracy(lab[code], predict(p)))
    assert null == pytest.approx(slow)
    assert 0.3 < np.mean(null) < 0.7
    with pytest.raises(ValueError, match="different labels"):
        fixed_model_null(1 - (np.arange(y.size) % 2), p, trials, n_permutations=3)


def test_loso_whose_labels_no_subject_permutation_changes_is_inconclusive(tmp_path):
    """On the synthetic set every subject gives a video the same label, so
    swapping subjects changes no label: no rerun is fit, each scores the
    observed value, and the test says it cannot decide."""
    from emomon.offline.dataset import load_dataset
    from emomon.offline.evaluate import evaluate_protocol
    from emomon.offline.trainconfig import make_train_config

    cfg = make_train_config(
        None,
        synthetic={"n_subjects": 3, "n_videos": 4, "trial_s": 10.0},
        protocols=("loso",),
        permutations=30,
        n_boot=50,
        cache_dir=str(tmp_path),
    )
    ds = load_dataset(cfg, progress=False)
    res = evaluate_protocol(ds, cfg, "loso", progress=False, executor="serial")
    for task, t in res.tasks.items():
        assert t.permutation.n == 30
        assert t.permutation.n_same == 30, task
        assert set(t.permutation.null) == {t.metrics.balanced_accuracy}
        assert t.p_value == 1.0
        assert t.verdict == "inconclusive"
