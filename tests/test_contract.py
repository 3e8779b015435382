"""The model contract as ``emomon info`` prints it."""

from __future__ import annotations

import numpy as np

from emomon.config import FeatureSpec
from emomon.contract import ModelContract


def _contract(metrics: dict) -> ModelContract:
    return ModelContract(
        input_name="features",
        input_kind="flat",
        input_shape=(8,),
        spec=FeatureSpec(),
        ch_names=("Fz", "Cz"),
        sfreq=128.0,
        norm_mean=np.zeros((2, 4)),
        norm_std=np.ones((2, 4)),
        tasks={"valence": ["low", "high"]},
        model="logreg",
        info={"metrics": {"valence": metrics}},
    )


def test_an_interval_is_printed_only_beside_its_permutation_p():
    tested = {"balanced_accuracy": 0.61, "ci95_low": 0.52, "ci95_high": 0.7}
    line = _contract({**tested, "p_value": 0.01}).describe().splitlines()[-1]
    assert "ci95_low 0.520" in line
    assert "p_value 0.010" in line
    # A model exported before issue 15 may carry an interval without a test.
    line = _contract(tested).describe().splitlines()[-1]
    assert "balanced_accuracy 0.610" in line
    assert "ci95" not in line
    assert "not tested" in line
