"""The report says whether augmentation helped: the observed run against its twin."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest

from emomon.offline.augreport import (
    AugmentSummary,
    augment_summary,
    sanity_summary,
)
from emomon.offline.crossval import CVResult, protocol_splits
from emomon.offline.dataset import load_dataset
from emomon.offline.evaluate import evaluate_protocol
from emomon.offline.executors import LocalHandle
from emomon.offline.report import format_summary
from emomon.offline.runfolder import TaskStore
from emomon.offline.runreport import ProtocolResult, RunReport, TaskResult
from emomon.offline.tasks import FoldResult, fit_fold, fold_tasks, run_fold
from emomon.offline.trainconfig import make_train_config

# -- a constructed cross-validation, computed by hand --------------------------------
# 12 windows, 3 folds of 4 test windows; n_train 8, 6, 13 (mean 9: n_test/n_train
# = 4/9, not 1/(k-1) = 1/2). Predicted classes with and without augmentation:
Y = np.array([0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1])
WITH = np.array([0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 1, 1])
PLAIN = np.array([0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0])
N_TRAIN = (8, 6, 13)
SANITY = [  # fold 3's TRTR undefined
    {"tstr": 0.60, "trtr": 0.70, "mmd": (0.1, 0.01), "real": (0.05, 0.2), "var": 0.9},
    {"tstr": 0.55, "trtr": 0.65, "mmd": (0.2, 0.03), "real": (0.07, 0.04), "var": 1.1},
    {"tstr": 0.45, "trtr": None, "mmd": (0.3, 0.5), "real": (0.09, 0.6), "var": 1.0},
]


def _proba(pred: np.ndarray) -> np.ndarray:
    return np.eye(2)[pred] * 0.6 + 0.2


def _sanity(s: dict) -> dict:
    return {
        "tstr": {"a": s["tstr"]},
        "trtr": {"a": s["trtr"]},
        "chance": {"a": 0.5},
        "mmd": {"mmd2": s["mmd"][0], "p": s["mmd"][1]},
        "mmd_real": {"mmd2": s["real"][0], "p": s["real"][1]},
        "var_ratio": s["var"],
        # The class-mean Gaussian reference: TSTR 0.1 above the samples',
        # MMD² half theirs.
        "tstr_reference": {"a": s["tstr"] + 0.1},
        "mmd_reference": {"mmd2": s["mmd"][0] / 2, "p": 0.01},
    }


def _cv(*, twin: bool = True, sanity: bool = True) -> CVResult:
    folds = []
    for k in range(3):
        test = np.arange(4 * k, 4 * k + 4)
        folds.append(
            FoldResult(
                fold=f"v{k}",
                index=k,
                seed=k,
                n_train=N_TRAIN[k],
                n_val=0,
                n_test=4,
                test=test,
                proba={"a": _proba(WITH[test])},
                best_epoch={"a": 0},
                augment={"method": "noise", "n_added": N_TRAIN[k]}
                | ({"sanity": _sanity(SANITY[k])} if sanity else {}),
                proba_plain={"a": _proba(PLAIN[test])} if twin else {},
            )
        )
    majority = {"a": np.zeros(12, dtype=np.int64)}
    fold_of = np.repeat(np.arange(3), 4)
    return CVResult({"a": _proba(WITH)}, fold_of >= 0, fold_of, majority, folds, [])


def _summary(cv: CVResult) -> AugmentSummary:
    return augment_summary(cv, Y, task="a", n_classes=2, method="noise", ratio=1.0)


def _student_t2_p(t: float) -> float:
    """Two-sided p of Student's t with 2 df (closed-form CDF)."""
    return 2 * (0.5 - abs(t) / (2 * math.sqrt(2 + t * t)))


def test_summary_numbers_match_a_hand_computation():
    got = _summary(_cv())
    # Pooled over the 12 windows, as the headline: 5/6 of each class right with
    # augmentation, 4/6 without (the folds' mean would be 8/9 and 1/2).
    assert got.balanced_accuracy_with == pytest.approx(5 / 6)
    assert got.balanced_accuracy_without == pytest.approx(2 / 3)
    # Per fold: 1 - 1/2, 5/6 - 1/2, 5/6 - 1/2.
    np.testing.assert_allclose(got.fold_differences, [1 / 2, 1 / 3, 1 / 3])
    assert got.mean_difference == pytest.approx(7 / 18)
    assert got.test_train_ratio == pytest.approx(4 / 9)
    # var(d, ddof 1) = 1/108; t = mean / sqrt((1/J + 4/9) var), 2 df.
    t = (7 / 18) / math.sqrt((1 / 3 + 4 / 9) / 108)
    assert got.corrected_t == pytest.approx(t)
    assert got.corrected_p == pytest.approx(_student_t2_p(t))
    assert got.corrected_p < 0.05  # 0.044: with n_test/n_train = 1/2, 0.047
    assert got.verdict == "helped"
    # All positive: only the identity and its mirror are as extreme (2 of 8).
    assert got.sign_flip_p == pytest.approx(2 / 8)
    assert got.sign_flip_exact
    s = got.sanity
    assert s is not None
    assert (s.n_folds, s.tstr_above_chance) == (3, 2)
    assert s.tstr_mean == pytest.approx(1.6 / 3)
    assert s.trtr_mean == pytest.approx(0.675)  # the undefined one left out
    assert s.chance == 0.5
    # One-sided flips of (0.1, 0.05, -0.05) with sum >= 0.1: 3 of 8.
    assert s.tstr_p == pytest.approx(3 / 8)
    assert not s.passed
    assert (s.mmd2_mean, s.mmd2_real_mean) == (pytest.approx(0.2), pytest.approx(0.07))
    assert (s.mmd_below, s.mmd_real_below) == (2, 1)
    assert s.var_ratio_mean == pytest.approx(1.0)
    assert s.tstr_reference_mean == pytest.approx(1.9 / 3)
    assert s.mmd2_reference_mean == pytest.approx(0.1)
    # TRTR (0.2, 0.15 above chance): one-sided 1 of 4, so real windows do not
    # pass either: the check cannot tell, rather than the generator failed.
    assert s.trtr_p == pytest.approx(1 / 4)
    assert (got.sanity_status, got.evidence) == ("inconclusive", False)


def test_hurt_missing_twin_and_unchecked_sanity():
    cv = _cv()
    swapped = [  # the twin is now the augmented run: the same difference, negated
        dataclasses.replace(f, proba=f.proba_plain, proba_plain=f.proba)
        for f in cv.folds
    ]
    hurt = _summary(dataclasses.replace(cv, folds=swapped, proba={"a": _proba(PLAIN)}))
    assert hurt.verdict == "hurt"
    assert hurt.mean_difference == pytest.approx(-7 / 18)
    no_twin = _summary(_cv(twin=False))
    assert no_twin.verdict == "not compared"
    assert no_twin.balanced_accuracy_without is None
    assert no_twin.balanced_accuracy_with == pytest.approx(5 / 6)
    unchecked = _summary(_cv(sanity=False))
    assert unchecked.sanity is None
    assert unchecked.sanity_status == "not checked"
    assert not unchecked.evidence


def test_sanity_passes_when_tstr_is_above_chance_in_enough_folds():
    rows = [{"sanity": _sanity(SANITY[0])}] * 5
    s = sanity_summary(rows, task="a")
    assert s is not None
    assert s.tstr_p == pytest.approx(1 / 32)  # all 5 above: 1 flip of 32
    assert s.passed
    # Three folds cannot pass, however good: the one-sided p is at least 1/8.
    assert not sanity_summary(rows[:3], task="a").passed
    # TSTR at chance where real windows pass (5 of 5 folds above): FAILED.
    blind = [{"sanity": _sanity({**SANITY[0], "tstr": 0.45})}] * 5
    f = sanity_summary(blind, task="a")
    assert f is not None
    assert (f.trtr_p, f.passed) == (pytest.approx(1 / 32), False)
    assert AugmentSummary(method="wgan", ratio=1.0, sanity=f).sanity_status == (
        "FAILED"
    )
    # Collapsed samples (variance 0.3 of the real windows') fail however well
    # they classify: what they add is shrinkage towards the class means.
    huddled = [{"sanity": _sanity({**SANITY[0], "var": 0.3})}] * 5
    c = sanity_summary(huddled, task="a")
    assert c is not None
    assert c.tstr_p == pytest.approx(1 / 32)
    assert (c.collapsed, c.passed) == (True, False)
    assert AugmentSummary(method="wgan", ratio=1.0, sanity=c).sanity_status == (
        "FAILED: collapsed"
    )
    assert sanity_summary([{"method": "noise"}], task="a") is None


def _report(summary: AugmentSummary) -> RunReport:
    task = TaskResult(classes=("low", "high"), augment=summary)
    proto = ProtocolResult(protocol="lovo", leaky=False, tasks={"a": task})
    return RunReport(emomon_version="t", results={"lovo": proto})


def _block(text: str) -> str:
    """The console's augmentation block, unwrapped."""
    start = text.index("augmentation noise")
    lines = text[start:].splitlines()
    assert all(len(line) <= 98 for line in lines)
    return " ".join(line.strip() for line in lines)


def test_console_block_gives_the_verdict_and_the_sanity_status():
    got = _block(format_summary(_report(_summary(_cv()))))
    assert got.startswith(
        "augmentation noise (ratio 1): lovo a 0.833 with, 0.667 without, diff +0.389 "
        "(corrected p 0.044; sign-flip p 0.250, ignores fold overlap): helped; "
        "generator sanity inconclusive (TSTR 0.53 vs TRTR 0.68, chance 0.50; above "
        "chance in 2/3 folds, p 0.375 taking folds as independent; MMD² 0.200 vs "
        "real-real 0.070; class-mean Gaussian reference TSTR 0.63, MMD² 0.100;"
    )
    assert got.endswith(
        "real windows are not above chance there either, p 0.250, so the check "
        "cannot tell): the comparison is not evidence about samples that pass."
    )
    unchecked = _block(format_summary(_report(_summary(_cv(sanity=False)))))
    assert "generator sanity not checked (augment_check false)" in unchecked
    good = [{"sanity": _sanity(SANITY[0])}] * 5
    passing = dataclasses.replace(
        _summary(_cv()), sanity=sanity_summary(good, task="a")
    )
    assert passing.sanity_status == "passed"
    assert _block(format_summary(_report(passing))).endswith(
        "the comparison stands for samples that pass (the minimum, not realism: read "
        "the MMD beside the reference's)."
    )
    assert "augmentation" not in format_summary(_report(None))  # type: ignore[arg-type]


def test_summary_round_trips_through_report_json():
    report = _report(_summary(_cv()))
    text = report.to_json()
    assert RunReport.from_json(text) == report
    d = json.loads(text)["results"]["lovo"]["tasks"]["a"]["augment"]
    assert d["verdict"] == "helped"
    assert d["sanity_status"] == "inconclusive"
    assert d["evidence"] is False
    assert "anti-conservative" in d["sign_flip_note"]
    unchecked = _report(_summary(_cv(sanity=False)))
    assert RunReport.from_json(unchecked.to_json()) == unchecked
    assert TaskResult.from_dict({"augment": "junk"}).augment is None


# -- the twin in a real run ---------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = make_train_config(
        None,
        synthetic={"n_subjects": 2, "n_videos": 4, "trial_s": 10.0},
        protocols=("lovo",),
        permutations=0,
        n_boot=0,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    return cfg, load_dataset(cfg, progress=False)


def test_the_twin_is_the_run_without_augmentation_fold_by_fold(tiny):
    base, ds = tiny
    aug = make_train_config(base, augment="noise", augment_check=False)
    splits, _ = protocol_splits(ds, base, "lovo")
    for with_aug, without in zip(
        fold_tasks(splits, aug), fold_tasks(splits, base), strict=True
    ):
        got = run_fold(LocalHandle(ds), with_aug)
        plain = fit_fold(ds, without)
        assert not plain.proba_plain
        assert got.augment["n_added"] == got.n_train  # ratio 1
        for task in ds.tasks:
            np.testing.assert_array_equal(got.proba_plain[task], plain.proba[task])
        # The augmented fit differs (so the twin is not the augmented model).
        assert any(not np.array_equal(got.proba[t], plain.proba[t]) for t in ds.tasks)
        # A permutation rerun (fit_fold's default) fits no twin.
        assert not fit_fold(ds, with_aug).proba_plain
        back = FoldResult.from_dict(json.loads(json.dumps(got.to_dict())))
        for task in ds.tasks:
            np.testing.assert_array_equal(back.proba_plain[task], got.proba_plain[task])
    old = plain.to_dict()
    assert "proba_plain" not in old  # written only with a twin
    assert FoldResult.from_dict(old).proba_plain == {}


def test_the_twin_of_an_early_stopped_model_keeps_its_validation_windows(tiny):
    # The MLP holds inner-validation windows out and stops on them: the twin
    # must see the same ones, and the same seeded minibatch order.
    base, ds = tiny
    mlp = make_train_config(base, model="mlp", epochs=2)
    aug = make_train_config(mlp, augment="mixup", augment_check=False)
    splits, _ = protocol_splits(ds, mlp, "lovo")
    with_aug, without = fold_tasks(splits, aug)[0], fold_tasks(splits, mlp)[0]
    got = run_fold(LocalHandle(ds), with_aug)
    plain = fit_fold(ds, without)
    assert got.n_val == plain.n_val > 0
    for task in ds.tasks:
        np.testing.assert_array_equal(got.proba_plain[task], plain.proba[task])


def test_report_compares_against_the_run_without_augmentation(tiny, tmp_path):
    base, ds = tiny
    aug_cfg = make_train_config(base, augment="noise")
    plain = evaluate_protocol(ds, base, "lovo", progress=False, executor="serial")
    store = TaskStore(tmp_path / "tasks")
    aug = evaluate_protocol(
        ds, aug_cfg, "lovo", progress=False, executor="serial", store=store
    )
    for task, t in aug.tasks.items():
        a, p = t.augment, plain.tasks[task]
        assert a is not None
        assert p.augment is None
        assert "augment" not in p.to_dict()  # reports without it keep their layout
        assert (a.method, a.ratio) == ("noise", 1.0)
        assert a.balanced_accuracy_with == t.metrics.balanced_accuracy
        assert a.balanced_accuracy_without == p.metrics.balanced_accuracy
        expect = [
            w.balanced_accuracy - o.balanced_accuracy
            for w, o in zip(t.per_fold, p.per_fold, strict=True)
        ]
        np.testing.assert_allclose(a.fold_differences, expect, atol=1e-12)
        n_test = np.mean([r.n_test for r in t.per_fold])
        assert a.test_train_ratio == pytest.approx(
            n_test / np.mean([r.n_train for r in t.per_fold])
        )
        assert a.verdict in ("helped", "hurt", "no significant difference")
        assert a.sanity is not None
        assert a.sanity.n_folds == len(t.per_fold)
    # A fold saved before the twin existed is rerun on resume, not kept without it.
    path = tmp_path / "tasks" / "fold-000.json"
    rec = json.loads(path.read_text())
    del rec["proba_plain"]
    path.write_text(json.dumps(rec))
    others = {p: p.stat().st_mtime_ns for p in path.parent.glob("fold-*.json")}
    del others[path]
    assert others
    again = evaluate_protocol(
        ds, aug_cfg, "lovo", progress=False, executor="serial", store=store
    )
    assert "proba_plain" in json.loads(path.read_text())
    # ... and only it: the folds saved with their twin are kept, not refit.
    assert {p: p.stat().st_mtime_ns for p in others} == others
    for task, t in again.tasks.items():
        assert t.augment == aug.tasks[task].augment
    text = format_summary(RunReport(results={"lovo": aug}))
    verdicts = re.findall(r"\): (helped|hurt|no significant difference);", text)
    assert len(verdicts) == len(aug.tasks)
