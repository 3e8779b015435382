"""RunReport: the report.json of main at 70c53bf still loads, reads the same, and
writes back the same text (plus the schema version)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from emomon.errors import ConfigError
from emomon.offline.holdout import HOLDOUTS
from emomon.offline.report import format_ablation, format_summary, write_report
from emomon.offline.runreport import (
    SCHEMA_VERSION,
    Headline,
    RunReport,
    TaskResult,
)
from emomon.offline.tables import LEAKY_NOTE

DATA = Path(__file__).parent / "data"
CAPTURED = ["train", "ablation"]


def _captured(name: str) -> tuple[str, str]:
    text = (DATA / f"report_70c53bf_{name}.json").read_text(encoding="utf-8")
    summary = (DATA / f"report_70c53bf_{name}.summary.txt").read_text("utf-8")
    return text, summary


def _rows(text: str) -> list[list[str]]:
    """The cells of every table row of a printed summary (2+ spaces apart)."""
    return [
        re.split(r"\s{2,}", line.strip())
        for line in text.splitlines()
        if re.search(r"\s(valence|arousal)\s", line)
    ]


@pytest.mark.parametrize("name", CAPTURED)
def test_captured_report_loads_with_the_same_summary(name: str) -> None:
    text, summary = _captured(name)
    report = RunReport.from_json(text)
    assert "schema_version" not in json.loads(text)  # written before the field
    # What emomon printed for the run at 70c53bf (the summary, then the ablation).
    parts = [format_summary(report), format_ablation(report)]
    printed = "\n\n".join(p for p in parts if p)
    # The same numbers, cell by cell, but for what issue 15 changed on purpose:
    # intervals of old reports resampled (subject, video) pairs, not the
    # protocol's exchangeable unit, so they are not shown; a verdict takes the
    # number of reruns into account (2 cannot reach p < 0.05: inconclusive).
    old_rows, new_rows = _rows(summary), _rows(printed)
    assert len(new_rows) == len(old_rows) > 0
    for old, new in zip(old_rows, new_rows, strict=True):
        ci = old.index(next(c for c in old if c.startswith("[") or c == "-"))
        assert new[ci] == "-"
        assert new[:ci] + new[ci + 1 : -1] == old[:ci] + old[ci + 1 : -1]
        p = None if old[-2] == "-" else float(old[-2])
        assert new[-1] == {None: "not tested"}.get(p, "inconclusive")
    # The footnotes: the old ones (the LEAKY mark now says what leaks) and new
    # ones; the fold problems are now printed under the table.
    old_note = "LEAKY (videos shared by train and test)"
    for line in summary.replace(old_note, LEAKY_NOTE).splitlines():
        if (
            line
            and not _rows(line)
            and not line.startswith(("-", "protocol", "setting"))
        ):
            assert line in printed.splitlines()
    notes = report.results["lovo"].notes
    head, problems, tail = printed.partition("\n\nfold problems:\n")
    assert tail.startswith("\n".join(f"  lovo, {n}" for n in notes) + "\n\n")
    assert bool(problems) == bool(notes)


@pytest.mark.parametrize("name", CAPTURED)
def test_captured_report_writes_back_the_same_text(name: str) -> None:
    text, _ = _captured(name)
    report = RunReport.from_json(text)
    again = report.to_json()
    assert RunReport.from_json(again) == report
    # The same text plus the schema version and each protocol's declaration
    # (what it holds out; content_dependent from the declaration: the old
    # report did not measure it).
    d = json.loads(again)
    assert d.pop("schema_version") == SCHEMA_VERSION
    for name_, r in d["results"].items():
        assert r.pop("content_dependent") is HOLDOUTS[name_].shares_videos
        assert r.pop("holds_out") is None
        assert r.pop("exchangeable") is None
        # Issue 15: the unit an interval resampled (unknown here) and the
        # verdict, which now weighs the number of reruns.
        for t in r["tasks"].values():
            assert t["ci95"].pop("resamples") is None
            assert t.pop("verdict") in ("not tested", "inconclusive")
            if t["permutation"] is not None:
                assert t["permutation"].pop("n_same") == 0
    for row in (d.get("ablation") or {}).get("rows", []):
        assert row.pop("n_permutations") is None
        assert row.pop("ci_unit") is None
    assert json.dumps(d, indent=2, ensure_ascii=False) + "\n" == text


def test_captured_train_report_typed_fields() -> None:
    report = RunReport.from_json(_captured("train")[0])
    assert list(report.results) == ["lovo", "intra"]
    lovo, intra = report.results["lovo"], report.results["intra"]
    assert not lovo.leaky
    assert intra.leaky
    assert intra.label == "intra (LEAKY)"
    valence = lovo.tasks["valence"]
    assert valence.classes == ("low", "high")
    assert valence.metrics.confusion is not None
    assert sum(map(sum, valence.metrics.confusion)) == valence.metrics.n == 204
    assert valence.per_video[0].balanced_accuracy is None  # a one-class video
    assert valence.permutation is not None
    assert valence.permutation.n == 2
    assert report.export is not None
    assert report.export.path == "model.onnx"
    assert report.config is not None
    assert report.config["protocols"] == [
        "lovo",
        "intra",
    ]
    head = report.headline()
    assert list(head) == ["valence", "arousal"]
    assert head["valence"] == Headline(
        valence.metrics.balanced_accuracy,
        valence.metrics.auc,
        valence.ci95[0],
        valence.ci95[1],
        valence.permutation.p_value,
    )


def test_captured_ablation_report_typed_fields() -> None:
    report = RunReport.from_json(_captured("ablation")[0])
    assert report.ablation is not None
    assert (report.ablation.kind, report.ablation.protocol) == ("bands", "lovo")
    settings = [r.setting for r in report.ablation.rows]
    assert settings == [s for s in ("all", "theta", "alpha", "beta", "gamma")
                        for _ in range(2)]  # fmt: skip
    assert report.export is None
    assert report.headline()["valence"].p_value is None  # no permutation test


def test_report_of_a_newer_emomon_is_refused() -> None:
    data = json.loads(_captured("train")[0])
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ConfigError, match="newer"):
        RunReport.from_dict(data)


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", b"\xff\xfe"])
def test_text_that_is_not_a_report_is_a_config_error(text: str | bytes) -> None:
    with pytest.raises(ConfigError, match="not a report"):
        RunReport.from_json(text)


def test_missing_p_value_is_recomputed_from_the_null() -> None:
    task = TaskResult.from_dict(
        {
            "metrics": {"balanced_accuracy": 0.6},
            "permutation": {"null": [0.7, 0.5, None]},  # None counts as >= 0.6
        }
    )
    assert task.permutation is not None
    assert task.permutation.n == 3
    assert task.p_value == pytest.approx((1 + 2) / (1 + 3))
    assert not task.above_chance


def test_write_report_takes_the_typed_report(tmp_path: Path) -> None:
    report = RunReport.from_json(_captured("train")[0])
    paths = write_report(report, tmp_path, plots=False)
    assert [p.name for p in paths] == [
        "report.json",
        "per_video.csv",
        "per_subject.csv",
        "per_fold.csv",
    ]
    written = (tmp_path / "report.json").read_text(encoding="utf-8")
    assert written == report.to_json() + "\n"
    header = (tmp_path / "per_fold.csv").read_text().splitlines()[0]
    assert header.split(",")[-1] == "n_val"  # the fold rows' extra key
