"""The paper plots: drawn from report.json alone, and drawing the report's numbers."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from emomon.offline.figdata import (
    ROC_MAX_POINTS,
    FigureData,
    LearningCurve,
    RocCurve,
    roc_points,
)
from emomon.offline.metrics import roc_auc, summarize
from emomon.offline.paperplots import (
    draw_feature_maps,
    draw_importance,
    draw_learning_curves,
    draw_null,
    draw_per_subject,
    draw_roc,
    write_paper_plots,
)
from emomon.offline.runreport import (
    GroupRow,
    Metrics,
    Permutation,
    ProtocolResult,
    RunReport,
    TaskResult,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def _lines(fig, label_start: str):
    return [
        line
        for ax in fig.axes
        for line in ax.get_lines()
        if str(line.get_label()).startswith(label_start)
    ]


# ------------------------------------------------------------------ ROC points


@pytest.mark.parametrize("n", [7, 60, 3000])
def test_roc_area_is_the_mann_whitney_auc_with_ties(n: int) -> None:
    rng = np.random.default_rng(n)
    y = rng.integers(0, 2, n)
    y[:2] = (0, 1)  # both classes
    score = np.round(rng.normal(size=n) + 0.8 * y, 1)  # many ties
    fpr, tpr = roc_points(y == 1, score, max_points=10**6)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert (np.diff(fpr) >= 0).all()
    assert (np.diff(tpr) >= 0).all()
    assert _trapezoid(fpr, tpr) == pytest.approx(roc_auc(y, score), abs=1e-12)


def test_thinned_roc_keeps_its_ends_and_nearly_its_area() -> None:
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 20_000)
    score = rng.normal(size=y.size) + y
    fpr, tpr = roc_points(y == 1, score)
    assert fpr.size <= ROC_MAX_POINTS
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert _trapezoid(fpr, tpr) == pytest.approx(roc_auc(y, score), abs=2e-3)
    assert roc_points(np.ones(3, bool), np.arange(3.0))[0].size == 0  # one class


# ------------------------------------------------------ hand-made report tasks


def _task(y: np.ndarray, p: np.ndarray, classes, *, null=None, figures=True):
    from emomon.offline.figdata import _roc

    m = Metrics.from_dict(summarize(y, p, n_classes=len(classes)))
    perm = None
    if null is not None:
        perm = Permutation(len(null), 1.0 / (len(null) + 1), tuple(null))
    subjects = tuple(
        GroupRow(f"s{i:02d}", n=10, accuracy=0.5 + 0.04 * i, balanced_accuracy=v)
        for i, v in enumerate((0.55, None, 0.71))
    )
    return TaskResult(
        classes=tuple(classes),
        metrics=m,
        permutation=perm,
        per_subject=subjects,
        figures=FigureData(roc=_roc(y, p, list(classes))) if figures else None,
    )


def _protocol(**tasks) -> ProtocolResult:
    return ProtocolResult(protocol="lovo", leaky=False, tasks=tasks)


def test_binary_roc_draws_the_reports_auc() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    p1 = 1 / (1 + np.exp(-(rng.normal(size=300) + y)))
    task = _task(y, np.stack([1 - p1, p1], 1), ("low", "high"))
    fig = draw_roc(_protocol(valence=task))
    (line,) = _lines(fig, "high vs low")
    assert f"AUC = {task.metrics.auc:.3f}" in line.get_label()
    x, yy = line.get_data()
    assert _trapezoid(np.asarray(x), np.asarray(yy)) == pytest.approx(
        task.metrics.auc, abs=1e-12
    )


def test_multiclass_roc_is_one_vs_rest_with_the_reports_mean() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3)) + 1.2 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    task = _task(y, p, ("negative", "neutral", "positive"))
    fig = draw_roc(_protocol(**{"class": task}))
    curves = task.figures.roc
    assert [c.label for c in curves] == [
        "negative vs rest",
        "neutral vs rest",
        "positive vs rest",
    ]
    assert np.mean([c.auc for c in curves]) == pytest.approx(task.metrics.auc)
    for c, line in zip(curves, _lines(fig, ""), strict=False):
        assert line.get_label() == f"{c.label}: AUC = {c.auc:.3f}"
    assert f"mean one-vs-rest AUC = {task.metrics.auc:.3f}" in fig.axes[0].get_title()


def test_null_histogram_marks_the_observed_value() -> None:
    y = np.array([0, 1] * 20)
    p = np.tile([[0.3, 0.7], [0.4, 0.6]], (20, 1))
    task = _task(y, p, ("low", "high"), null=[0.45, 0.52, None, 0.61, 0.5])
    fig = draw_null(_protocol(valence=task))
    ax = fig.axes[0]
    (obs,) = _lines(fig, "observed")
    assert obs.get_xdata()[0] == task.metrics.balanced_accuracy
    assert "n = 5 permutations" in ax.get_title()
    assert "p = " in ax.get_title()
    assert "1 undefined" in ax.get_title()
    assert sum(patch.get_height() for patch in ax.patches) == 4  # None left out
    (chance,) = _lines(fig, "chance")
    assert chance.get_xdata()[0] == 0.5


def test_an_old_report_without_figures_draws_what_it_can(tmp_path) -> None:
    y = np.array([0, 1] * 20)
    p = np.tile([[0.3, 0.7], [0.4, 0.6]], (20, 1))
    task = _task(y, p, ("low", "high"), null=[0.5, 0.55], figures=False)
    d = json.loads(RunReport(results={"lovo": _protocol(valence=task)}).to_json())
    assert "figures" not in d["results"]["lovo"]["tasks"]["valence"]
    result = d["results"]["lovo"]
    for draw in (draw_feature_maps, draw_importance, draw_roc, draw_learning_curves):
        assert draw(result) is None
    fig = draw_per_subject(result)
    bars = [b.get_height() for b in fig.axes[0].patches]
    assert bars == pytest.approx([0.55, 0.0, 0.71])  # subject 2: one class, n/a
    assert any(t.get_text() == "n/a" for t in fig.axes[0].texts)
    paths = write_paper_plots(result, tmp_path, stem="lovo")
    assert sorted(p.name for p in paths) == ["null_lovo.png", "per_subject_lovo.png"]
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in paths)


def test_learning_curves_mark_the_epoch_kept() -> None:
    curves = (
        LearningCurve(
            "v01", 2, (1, 2, 3), (0.7, 0.6, 0.5), (0.8, 0.6, 0.7), (0.5, 0.7, 0.6)
        ),
        LearningCurve(
            "v02", 3, (1, 2, 3), (0.7, 0.5, 0.4), (0.9, 0.8, 0.7), (0.4, 0.5, 0.6)
        ),
    )
    task = TaskResult(classes=("low", "high"), figures=FigureData(learning=curves))
    fig = draw_learning_curves(
        ProtocolResult(
            protocol="loso",
            leaky=False,
            content_dependent=True,
            tasks={"valence": task},
        )
    )
    ax_loss, ax_acc = fig.axes[:2]
    kept = [ln for ln in ax_loss.get_lines() if ln.get_marker() == "o"]
    assert [(ln.get_xdata()[0], ln.get_ydata()[0]) for ln in kept] == [
        (2, 0.6),
        (3, 0.7),
    ]
    kept = [ln for ln in ax_acc.get_lines() if ln.get_marker() == "o"]
    assert [(ln.get_xdata()[0], ln.get_ydata()[0]) for ln in kept] == [
        (2, 0.7),
        (3, 0.6),
    ]
    assert ax_loss.get_xlabel() == "Epoch"
    assert "nats" in ax_loss.get_ylabel()
    # LOSO shares videos: the title says so, as every plot of a marked protocol.
    assert "SHARES VIDEOS" in fig._suptitle.get_text()


def test_figures_round_trip_through_report_json() -> None:
    fd = FigureData(
        roc=(RocCurve("high vs low", 0.75, (0.0, 0.5, 1.0), (0.0, 1.0, 1.0)),),
        learning=(LearningCurve("v01", 1, (1.0,), (0.5,)),),
    )
    report = RunReport(
        results={
            "lovo": _protocol(valence=TaskResult(classes=("low", "high"), figures=fd))
        }
    )
    back = RunReport.from_json(report.to_json())
    assert back.to_dict() == report.to_dict()
    assert back.results["lovo"].tasks["valence"].figures == fd
    bad = json.loads(report.to_json())
    bad["results"]["lovo"]["tasks"]["valence"]["figures"] = "junk"
    assert RunReport.from_dict(bad).results["lovo"].tasks["valence"].figures is None


# --------------------------------------------------- the run with a known effect


@pytest.mark.slow
def test_run_writes_the_paper_plots_from_its_report(effect_run, tmp_path) -> None:
    report, out = effect_run
    for kind in (
        "features_topomap",
        "importance_topomap",
        "per_subject",
        "roc",
        "null",
    ):
        png = out / f"{kind}_lovo.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, kind
        assert png.stat().st_size > 10_000, kind
    assert not (out / "learning_curves_lovo.png").exists()  # logreg: no epochs
    # Drawn again from report.json alone: the same plots.
    data = json.loads((out / "report.json").read_text())
    again = write_paper_plots(data["results"]["lovo"], tmp_path, stem="lovo")
    assert len(again) == 5


@pytest.mark.slow
def test_roc_drawn_equals_the_reports_auc(effect_run) -> None:
    report, _ = effect_run
    result = report.results["lovo"]
    fig = draw_roc(result)
    lines = _lines(fig, "high vs low")
    for line, task in zip(lines, ("valence", "arousal"), strict=True):
        t = result.tasks[task]
        assert (
            re.search(r"AUC = (\d\.\d{3})", line.get_label())[1]
            == f"{t.metrics.auc:.3f}"
        )
        assert t.figures.roc[0].auc == t.metrics.auc
        x, y = (np.asarray(v) for v in line.get_data())
        # 2720 windows: the curve is thinned to ROC_MAX_POINTS, its area within
        # 1/ROC_MAX_POINTS of the AUC the legend prints.
        assert _trapezoid(x, y) == pytest.approx(
            t.metrics.auc, abs=1.0 / ROC_MAX_POINTS
        )


@pytest.mark.slow
def test_null_drawn_marks_the_observed_balanced_accuracy(effect_run) -> None:
    report, _ = effect_run
    result = report.results["lovo"]
    fig = draw_null(result)
    for ax, task in zip(fig.axes, ("valence", "arousal"), strict=True):
        t = result.tasks[task]
        (obs,) = [
            ln for ln in ax.get_lines() if str(ln.get_label()).startswith("observed")
        ]
        assert obs.get_xdata()[0] == t.metrics.balanced_accuracy
        assert f"n = {t.permutation.n} permutations" in ax.get_title()
        assert t.permutation.n == 4


def test_feature_maps_of_several_classes_are_each_class_minus_the_rest() -> None:
    from emomon.offline.figdata import _contrast

    rng = np.random.default_rng(8)
    ch = ("Fp1", "Fz", "Cz", "Pz", "O1", "X9")  # X9 has no 10-05 position
    y = np.repeat([0, 1, 2], 50)
    X = rng.normal(size=(150, len(ch), 8))
    X[y == 2, 2, 1] += 3.0  # class 2: higher DE alpha at Cz
    names = [
        f"{k}_{b}" for k in ("de", "psd") for b in ("theta", "alpha", "beta", "gamma")
    ]
    c = _contrast(
        X,
        y,
        feature_names=names,
        kinds=["de", "psd"],
        bands=["theta", "alpha", "beta", "gamma"],
        ch_names=ch,
        classes=["negative", "neutral", "positive"],
    )
    assert [r.label for r in c.rows] == [
        "negative - rest",
        "neutral - rest",
        "positive - rest",
    ]
    assert [(r.n_a, r.n_b) for r in c.rows] == [(50, 100)] * 3
    diff = np.array(c.rows[2].diff)
    want = X[y == 2, 2, 1].mean() - X[y != 2, 2, 1].mean()
    assert diff[2, 1] == pytest.approx(want)
    assert np.unravel_index(np.argmax(np.abs(diff)), diff.shape) == (2, 1)
    task = TaskResult(
        classes=("negative", "neutral", "positive"), figures=FigureData(contrast=c)
    )
    fig = draw_feature_maps(_protocol(**{"class": task}))
    assert (
        len([ax for ax in fig.axes if ax.get_title() == "alpha"]) == 3
    )  # a row per class
    assert any("X9" in t.get_text() for t in fig.texts)  # named, not drawn
