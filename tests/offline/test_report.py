"""Tests of emomon.offline.report: report.json, CSV tables, PNG plots, text tables."""

from __future__ import annotations

import csv
import json
import math
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emomon.offline.metrics import group_table
from emomon.offline.report import (
    ABLATION_COLUMNS,
    FOLD_COLUMNS,
    GROUP_COLUMNS,
    format_ablation,
    format_summary,
    to_jsonable,
    verdict,
    write_report,
)

NAN = float("nan")
VIDEOS = ["v01", "v02", "v03", "v10", "v04"]  # unsorted; v10 after v04 naturally
SUBJECTS = ["s01", "s02", "s03"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _group_rows(
    names: list[str], rng: np.random.Generator, *, nan_rows: int
) -> list[dict[str, Any]]:
    rows = []
    for i, name in enumerate(names):
        one_class = i < nan_rows  # a group with a single true class: no bal.acc/AUC
        rows.append(
            {
                "group": name,
                "n": np.int64(920),  # numpy scalars, as a runner may leave them
                "accuracy": np.float64(rng.uniform(0.2, 0.9)),
                "balanced_accuracy": NAN if one_class else float(rng.uniform(0.4, 0.7)),
                "auc": NAN if one_class else float(rng.uniform(0.4, 0.7)),
                "mean_p_high": float(rng.uniform(0.3, 0.7)),
                "majority_true": i % 2,
            }
        )
    return rows


def _task(
    *,
    bal: float,
    p_value: float | None,
    majority: float,
    folds: list[str],
    seed: int,
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "classes": ["low", "high"],
        "metrics": {
            "n": 4600,
            "accuracy": bal + 0.01,
            "balanced_accuracy": bal,
            "auc": NAN if seed == 3 else 0.53,
            "f1": 0.5,
            "f1_macro": 0.51,
            "confusion": np.array([[1200, 1100], [1000, 1300]]),
        },
        # As a run writes it: an interval (by video) only beside a p-value.
        "ci95": {"balanced_accuracy": (bal - 0.05, bal + 0.04), "resamples": "video"}
        if p_value is not None
        else {"balanced_accuracy": (NAN, NAN), "resamples": None},
        "majority_baseline": {"accuracy": majority, "balanced_accuracy": majority},
        "permutation": None
        if p_value is None
        else {"n": 20, "p_value": p_value, "null": list(rng.uniform(0.45, 0.55, 20))},
        "above_chance": p_value is not None and p_value < 0.05,
        "per_video": _group_rows(VIDEOS, rng, nan_rows=2),
        "per_subject": _group_rows(SUBJECTS, rng, nan_rows=0),
        "per_fold": [
            {
                "fold": f,
                "n_train": 3680,
                "n_test": 920,
                "balanced_accuracy": NAN if i == 0 else 0.5,
                "accuracy": 0.5,
                "best_epoch": 7,
            }
            for i, f in enumerate(folds)
        ],
    }


def make_report() -> dict[str, Any]:
    """A realistic report: LOVO (tested) and leaky intra (untested), 2 tasks."""
    intra_folds = ["fold0", "fold1", "fold2"]
    return {
        "emomon_version": "0.1.0",
        "created": "2026-11-21T14:00:00",
        "config": {"protocols": ["lovo", "intra"], "lr": 1e-3, "seed": 0},
        "dataset": {
            "name": "deap",
            "n_subjects": 3,
            "n_videos": 5,
            "n_trials": 15,
            "n_windows": 4600,
            "ch_names": ["Fp1", "Fp2"],
            "sfreq": 128.0,
        },
        "results": {
            "lovo": {
                "protocol": "lovo",
                "leaky": False,
                "n_folds": 5,
                "model": "logreg",
                "labels": "fixed",
                "tasks": {
                    "valence": _task(
                        bal=0.52, p_value=0.43, majority=0.0, folds=VIDEOS, seed=1
                    ),
                    "arousal": _task(
                        bal=0.61, p_value=1 / 21, majority=0.0, folds=VIDEOS, seed=2
                    ),
                },
            },
            "intra": {
                "protocol": "intra",
                "leaky": True,
                "n_folds": 3,
                "model": "logreg",
                "labels": "fixed",
                "tasks": {
                    "valence": _task(
                        bal=0.83, p_value=None, majority=0.5, folds=intra_folds, seed=3
                    ),
                    "arousal": _task(
                        bal=0.86, p_value=None, majority=0.5, folds=intra_folds, seed=4
                    ),
                },
            },
        },
        "ablation": {
            "kind": "bands",
            "rows": [
                {
                    "setting": band,
                    "task": task,
                    "balanced_accuracy": 0.5 + 0.01 * i,
                    "ci95": [0.45, 0.6] if band != "gamma" else [NAN, NAN],
                    "p_value": None if band == "theta" else (0.01 if i == 3 else 0.4),
                    "majority_balanced_accuracy": 0.0,
                }
                for i, band in enumerate(["theta", "alpha", "beta", "gamma"])
                for task in ("valence", "arousal")
            ],
        },
        "export": {"path": "model.onnx", "parity_max_abs": 1.2e-7},
    }


EXPECTED = {
    "report.json",
    "per_video.csv",
    "per_subject.csv",
    "per_fold.csv",
    "ablation.csv",
    "per_video_lovo.png",
    "per_video_intra.png",
    "confusion_lovo.png",
    "confusion_intra.png",
    "per_subject_lovo.png",  # the paper plots its data allows (paperplots)
    "per_subject_intra.png",
    "null_lovo.png",
    "protocols.png",
    "ablation.png",
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("report")
    return out, write_report(make_report(), out / "run", paper_plots=True)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _strict_json(text: str) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------- files


def test_write_report_writes_all_files(written: tuple[Path, list[Path]]) -> None:
    out, paths = written
    out = out / "run"
    assert {p.name for p in paths} == EXPECTED
    assert len(paths) == len(EXPECTED)
    assert {p.name for p in out.iterdir()} == EXPECTED
    assert all(p.parent == out for p in paths)
    assert paths[0].name == "report.json"  # tables before plots


def test_report_json_is_strict_and_complete(written: tuple[Path, list[Path]]) -> None:
    out, _ = written
    text = (out / "run" / "report.json").read_text(encoding="utf-8")
    assert "NaN" not in text
    assert "Infinity" not in text
    data = _strict_json(text)
    assert list(data["results"]) == ["lovo", "intra"]  # run order kept
    assert data["dataset"]["sfreq"] == 128.0
    valence = data["results"]["lovo"]["tasks"]["valence"]
    assert valence["per_video"][0]["balanced_accuracy"] is None
    assert valence["per_video"][0]["n"] == 920
    assert valence["metrics"]["confusion"] == [[1200, 1100], [1000, 1300]]
    assert valence["ci95"]["balanced_accuracy"] == pytest.approx([0.47, 0.56])
    assert data["results"]["intra"]["tasks"]["valence"]["permutation"] is None
    assert data["results"]["intra"]["tasks"]["valence"]["metrics"]["auc"] is None
    assert data["ablation"]["rows"][6]["ci95"] == [None, None]
    assert text.startswith('{\n  "emomon_version": "0.1.0"')  # indent 2


def test_group_csvs(written: tuple[Path, list[Path]]) -> None:
    out, _ = written
    for name, groups in (("per_video.csv", VIDEOS), ("per_subject.csv", SUBJECTS)):
        cols, rows = _read_csv(out / "run" / name)
        assert cols == list(GROUP_COLUMNS)
        assert len(rows) == 2 * 2 * len(groups)  # protocols x tasks x groups
        keys = {(r["protocol"], r["task"], r["group"]) for r in rows}
        assert len(keys) == len(rows)
        assert {r["protocol"] for r in rows} == {"lovo", "intra"}
        assert {r["task"] for r in rows} == {"valence", "arousal"}
        assert {r["group"] for r in rows} == set(groups)
        assert all(r["n"] == "920" for r in rows)
        assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
        assert {r["majority_true"] for r in rows} <= {"0", "1"}
    _, rows = _read_csv(out / "run" / "per_video.csv")
    blanks = [r for r in rows if r["balanced_accuracy"] == ""]
    assert len(blanks) == 2 * 2 * 2  # the NaN rows are blank, not "nan"
    assert all(r["auc"] == "" for r in blanks)


def test_fold_and_ablation_csvs(written: tuple[Path, list[Path]]) -> None:
    out, _ = written
    cols, rows = _read_csv(out / "run" / "per_fold.csv")
    assert cols == list(FOLD_COLUMNS)
    assert len(rows) == 2 * (len(VIDEOS) + 3)
    lovo = [r for r in rows if r["protocol"] == "lovo" and r["task"] == "valence"]
    assert [r["fold"] for r in lovo] == VIDEOS
    assert lovo[0]["balanced_accuracy"] == ""
    assert lovo[1]["balanced_accuracy"] == "0.5"
    cols, rows = _read_csv(out / "run" / "ablation.csv")
    assert cols == list(ABLATION_COLUMNS)
    assert len(rows) == 8
    assert {r["kind"] for r in rows} == {"bands"}
    alpha = next(r for r in rows if r["setting"] == "alpha")
    assert (float(alpha["ci95_low"]), float(alpha["ci95_high"])) == (0.45, 0.6)
    theta = next(r for r in rows if r["setting"] == "theta")
    assert theta["p_value"] == ""


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_pngs_are_valid(written: tuple[Path, list[Path]]) -> None:
    out, paths = written
    pngs = [p for p in paths if p.suffix == ".png"]
    assert len(pngs) == 9
    for png in pngs:
        width, height = _png_size(png)
        assert width >= 500, png.name
        assert height >= 300, png.name
        assert png.stat().st_size > 10_000, png.name


# ------------------------------------------------------------------ text tables


def test_verdict() -> None:
    assert verdict(0.049) == "above chance"
    assert verdict(1 / 21) == "above chance"
    assert verdict(0.05) == "at chance"
    assert verdict(0.9) == "at chance"
    assert verdict(None) == "not tested"
    assert verdict(NAN) == "not tested"


def _row(summary: str, protocol: str, task: str) -> str:
    (line,) = [
        ln
        for ln in summary.splitlines()
        if ln.startswith(protocol + " ") and task in ln
    ]
    return line


def test_format_summary() -> None:
    summary = format_summary(make_report())
    assert all(len(line) < 100 for line in summary.splitlines())
    assert "deap" in summary
    assert "LEAKY" in summary
    lovo_v = _row(summary, "lovo", "valence")
    assert lovo_v.endswith("at chance")
    assert "0.430" in lovo_v
    assert "[0.470, 0.560]" in lovo_v
    assert "0.00/0.00" in lovo_v
    lovo_a = _row(summary, "lovo", "arousal")
    assert lovo_a.endswith("above chance")
    assert "0.048" in lovo_a
    for task in ("valence", "arousal"):
        intra = _row(summary, "intra (LEAKY)", task)
        assert intra.endswith("not tested")
        assert "0.50/0.50" in intra
    assert "lovo (LEAKY)" not in summary
    assert summary.count("above chance") == 2  # arousal row + the footnote
    assert "model.onnx" in summary
    # aligned: every table row has the verdict column at the same offset
    lines = summary.splitlines()
    header = next(ln for ln in lines if ln.startswith("protocol"))
    table = [ln for ln in lines if ln.startswith(("lovo ", "intra "))]
    assert len(table) == 4
    assert {ln.rfind("  ") + 2 for ln in table} == {header.index("verdict")}


def test_format_summary_p_rounding_never_crosses_alpha() -> None:
    report = make_report()
    task = report["results"]["lovo"]["tasks"]["valence"]
    task["permutation"]["p_value"] = 50 / 1001  # 0.04995 < 0.05
    line = _row(format_summary(report), "lovo", "valence")
    assert line.endswith("above chance")
    assert "0.050 " not in line


def test_format_ablation() -> None:
    text = format_ablation(make_report())
    lines = text.splitlines()
    assert lines[0] == "Band ablation"
    assert all(len(line) < 100 for line in lines)
    rows = [ln for ln in lines if ln.startswith(("theta", "alpha", "beta", "gamma"))]
    assert len(rows) == 8
    assert all(r.endswith("not tested") for r in rows if r.startswith("theta"))
    assert all(r.endswith("above chance") for r in rows if r.startswith("gamma"))
    assert all(r.endswith("at chance") for r in rows if r.startswith(("alpha", "beta")))
    report = make_report()
    report["ablation"]["kind"] = "labels"
    report["ablation"]["protocol"] = "lovo"
    assert format_ablation(report).startswith("Label reliability (lovo)\n")
    del report["ablation"]
    assert format_ablation(report) == ""


# ------------------------------------------------------------------ robustness


def test_round_trip_through_json_gives_same_summary(
    written: tuple[Path, list[Path]],
) -> None:
    out, _ = written
    loaded = _strict_json((out / "run" / "report.json").read_text(encoding="utf-8"))
    assert format_summary(loaded) == format_summary(make_report())
    assert format_ablation(loaded) == format_ablation(make_report())


def test_minimal_report_without_optional_parts(tmp_path: Path) -> None:
    """One protocol, missing sections, None values: no crash, no extra files."""
    report = {
        "results": {
            "loso": {
                "protocol": "loso",
                "tasks": {
                    "valence": {
                        "metrics": {"balanced_accuracy": None, "confusion": None},
                        "permutation": {"n": 10, "p_value": None},
                        "per_video": [{"group": "v1", "accuracy": None}],
                    },
                    "arousal": {},
                },
            }
        }
    }
    paths = write_report(report, tmp_path)
    assert {p.name for p in paths} == {
        "report.json",
        "per_video.csv",
        "per_subject.csv",
        "per_fold.csv",
        "per_video_loso.png",
    }
    _, rows = _read_csv(tmp_path / "per_video.csv")
    assert rows == [
        {c: "" for c in GROUP_COLUMNS}
        | {"protocol": "loso", "task": "valence", "group": "v1"}
    ]
    assert _read_csv(tmp_path / "per_subject.csv") == (list(GROUP_COLUMNS), [])
    summary = format_summary(report)
    assert "not tested" in summary
    assert "(LEAKY)" not in summary
    assert format_summary({}).endswith("p < 0.05.")


def test_group_table_rows_and_recomputed_p_value(tmp_path: Path) -> None:
    """Rows straight from metrics.group_table (``true_majority``); p from the null."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 1, 0], 25)
    proba = rng.uniform(size=y.size)
    videos = np.repeat(["v1", "v2", "v3", "v4"], 25)
    report = make_report()
    task = report["results"]["lovo"]["tasks"]["valence"]
    task["per_video"] = group_table(y, proba, videos)
    task["permutation"] = {"n": 4, "null": [0.9, 0.1, 0.2, 0.3]}  # no p_value
    write_report(report, tmp_path, plots=False)
    assert not list(tmp_path.glob("*.png"))
    cols, rows = _read_csv(tmp_path / "per_video.csv")
    assert cols[: len(GROUP_COLUMNS)] == list(GROUP_COLUMNS)
    assert "pred_majority" in cols
    assert "true_majority" not in cols
    mine = [r for r in rows if r["protocol"] == "lovo" and r["task"] == "valence"]
    assert [r["majority_true"] for r in mine] == ["0", "1", "1", "0"]
    # observed 0.52: one of four null values is >= -> p = (1 + 1) / (1 + 4) = 0.4
    assert "0.400" in _row(format_summary(report), "lovo", "valence")


def test_to_jsonable() -> None:
    obj = {
        1: (np.float32(0.5), np.inf, -np.inf, NAN),
        "a": np.array([[1, 2]], dtype=np.int16),
        "b": {np.bool_(True), "x"},
        "p": Path("model.onnx"),
    }
    out = to_jsonable(obj)
    assert out == {
        "1": [0.5, None, None, None],
        "a": [[1, 2]],
        "b": [True, "x"],
        "p": "model.onnx",
    }
    json.dumps(out, allow_nan=False)
    assert math.isnan(obj[1][3])  # input untouched


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, emomon.offline.report; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
