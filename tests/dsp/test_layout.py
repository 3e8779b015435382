import numpy as np

from emomon.dsp.layout import (
    DEAP_CHANNELS,
    EMOTIV_CHANNELS,
    GRID_ROWS,
    canonical_name,
    grid_positions,
    to_flat,
    to_grid,
)


def test_every_deap_channel_has_a_unique_cell():
    pos = grid_positions(DEAP_CHANNELS)
    assert (pos >= 0).all()
    assert len({tuple(p) for p in pos}) == 32
    assert sum(n is not None for row in GRID_ROWS for n in row) == 32


def test_grid_places_values_and_leaves_absent_electrodes_zero():
    feats = np.arange(2 * 14 * 3, dtype=float).reshape(2, 14, 3) + 1
    grid = to_grid(feats, EMOTIV_CHANNELS)
    assert grid.shape == (2, 3, 8, 9)
    # AF3 is row 0 col 2; F8 is row 1 col 8.
    i_af3, i_f8 = EMOTIV_CHANNELS.index("AF3"), EMOTIV_CHANNELS.index("F8")
    np.testing.assert_array_equal(grid[:, :, 0, 2], feats[:, i_af3, :])
    np.testing.assert_array_equal(grid[:, :, 1, 8], feats[:, i_f8, :])
    assert np.count_nonzero(grid[0, 0]) == 14  # Fz, Cz, ... absent stay zero


def test_unknown_channels_are_off_map():
    pos = grid_positions(["Fp1", "EXG3"])
    assert tuple(pos[1]) == (-1, -1)
    grid = to_grid(np.ones((1, 2, 1)), ["Fp1", "EXG3"])
    assert grid.sum() == 1.0


def test_flat_is_feature_major():
    feats = np.arange(24, dtype=float).reshape(1, 3, 8)
    flat = to_flat(feats)
    assert flat.shape == (1, 24)
    assert flat[0, 1 * 3 + 2] == feats[0, 2, 1]


def test_canonical_names():
    assert canonical_name("FP1") == "Fp1"
    assert canonical_name("FZ") == "Fz"
    assert canonical_name("FPZ") == "Fpz"
    assert canonical_name("POZ") == "POz"
    assert canonical_name(" o2 ") == "O2"
    assert canonical_name("CB1") == "CB1"
