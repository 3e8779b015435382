"""Tests of emomon.offline.crossval: fold problems in the user's words."""

from __future__ import annotations

import numpy as np

from emomon.offline.crossval import one_class_notes
from emomon.offline.protocols import Split
from emomon.offline.report import format_summary


def _split(name: str, train: list[int], test: list[int]) -> Split:
    return Split(name, np.array(train), np.array([], dtype=np.int64), np.array(test))


def test_one_class_folds_are_named_per_task() -> None:
    labels = {"valence": np.array([0, 0, 1, 1, 0, 1]), "arousal": np.zeros(6, int)}
    splits = [_split("v01", [0, 1], [2, 3]), _split("v02", [1, 2, 3], [4, 5])]
    notes = one_class_notes(labels, splits, {"valence": ("l", "h"), "arousal": ()})
    assert notes == [
        "valence: 1 of 2 folds trained on one class only (v01): those folds "
        "predict that class for every test window",
        "arousal: 2 of 2 folds trained on one class only (v01, v02): those folds "
        "predict that class for every test window",
    ]
    many = [_split(f"v{k:02d}", [0, 1], [2]) for k in range(7)]
    (line,) = one_class_notes({"valence": labels["valence"]}, many, {"valence": ()})
    assert "(v00, v01, v02, v03 and 3 more)" in line


def test_fold_problems_are_printed_under_the_table() -> None:
    note = "valence: 1 of 2 folds trained on one class only (v01): ..."
    report = {
        "dataset": {"name": "synthetic"},
        "results": {"lovo": {"protocol": "lovo", "notes": [note], "tasks": {}}},
    }
    text = format_summary(report)
    assert f"fold problems:\n  lovo, {note}" in text
