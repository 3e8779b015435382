from __future__ import annotations

import numpy as np
import pytest

from emomon.dsp.layout import DEAP_CHANNELS
from emomon.dsp.normalize import InputBuilder, fit_zscore, model_input


@pytest.mark.parametrize("layout", ["flat", "grid", "eeg"])
@pytest.mark.parametrize("n_windows", [1, 3])
def test_input_builder_equals_model_input(layout, n_windows):
    rng = np.random.default_rng(0)
    ch = list(DEAP_CHANNELS[:30]) + ["X1", "X2"]  # two channels off the grid
    train = rng.normal(size=(20, len(ch), 8)) * 3 + 1
    mean, std = fit_zscore(train, layout=layout)
    build = InputBuilder(mean=mean, std=std, layout=layout, ch_names=ch, n_features=8)
    for _ in range(3):  # the reused one-window buffer must not keep old values
        v = rng.normal(size=(n_windows, len(ch), 8))
        expected = model_input(v, mean=mean, std=std, layout=layout, ch_names=ch)
        got = build(v)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
