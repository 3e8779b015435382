import warnings

import numpy as np
import pytest

from emomon.dsp.interpolate import (
    InterpolationError,
    Interpolator,
    InterpolatorSettings,
    fit_sphere,
    interpolate_bads,
    spline_matrix,
)
from emomon.dsp.layout import DEAP_CHANNELS, EMOTIV_CHANNELS
from emomon.dsp.positions import UnknownPositionError, positions
from emomon.errors import EmomonError

CYTON = ("Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2")


def _mne_interpolate(x_uv, names, bads):
    """MNE's own interpolate_bads on a Raw with the standard_1005 montage."""
    import mne

    info = mne.create_info(list(names), 128.0, "eeg")
    raw = mne.io.RawArray(x_uv * 1e-6, info, verbose="error")  # MNE works in volts
    with warnings.catch_warnings():
        # The montage's rename (MNE 1.13) and, for small montages, MNE's
        # "Only N head digitization points ... fitting may be inaccurate".
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        raw.set_montage("standard_1005")
        raw.info["bads"] = list(bads)
        raw.interpolate_bads(reset_bads=True, verbose="error")
    return raw.get_data() * 1e6


@pytest.mark.parametrize(
    ("names", "bads"),
    [
        (DEAP_CHANNELS, ["Cz"]),
        (DEAP_CHANNELS, ["Fp1", "O2", "T7", "PO4"]),
        (EMOTIV_CHANNELS, ["F3", "T8", "O1"]),
        (CYTON, ["C3", "O2"]),
        (CYTON, ["Fp2"]),
    ],
)
def test_matches_mne_interpolate_bads_to_1e6(names, bads):
    rng = np.random.default_rng(len(names) + len(bads))
    # EEG-like amplitudes, spatially correlated through a common component.
    x = rng.standard_normal((len(names), 512)) * 15 + rng.standard_normal(512) * 30
    ours = interpolate_bads(x, names, bads)
    theirs = _mne_interpolate(x, names, bads)
    assert np.abs(ours - theirs).max() < 1e-6  # µV
    good = [i for i, n in enumerate(names) if n not in bads]
    np.testing.assert_array_equal(ours[good], x[good])  # good rows untouched
    bad = [names.index(b) for b in bads]
    assert np.abs(ours[bad] - x[bad]).max() > 1.0  # the bad rows did change


def test_the_sphere_fits_the_head_and_splines_keep_constants():
    pos = positions(DEAP_CHANNELS)
    origin, radius = fit_sphere(pos)
    assert 0.07 < radius < 0.12  # metres
    assert np.linalg.norm(origin[:2]) < 0.02  # near the head frame's axis
    w = spline_matrix(pos[1:], pos[:1], origin=origin)
    assert w.shape == (1, 31)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    # A potential that is linear in space is interpolated closely.
    field = (pos - origin) @ np.array([1.0, 2.0, 0.5]) * 1e3
    assert abs((w @ field[1:])[0] - field[0]) < 0.1 * np.ptp(field)


def test_too_few_positions_and_unknown_names_are_refused():
    with pytest.raises(InterpolationError, match="at least 4 electrode positions"):
        fit_sphere(positions(["Fp1", "Cz", "Oz"]))
    with pytest.raises(UnknownPositionError, match="'EXG1'"):
        Interpolator(InterpolatorSettings(ch_names=("Fp1", "Cz", "Oz", "EXG1")))
    with pytest.raises(InterpolationError, match="at least 4 channels"):
        Interpolator(InterpolatorSettings(ch_names=("Fp1", "Cz", "Oz")))
    with pytest.raises(InterpolationError, match="not in ch_names"):
        interpolate_bads(np.zeros((8, 4)), CYTON, ["Cz"])
    with pytest.raises(EmomonError, match="max_share"):
        InterpolatorSettings(ch_names=CYTON, max_share=1.0)
    with pytest.raises(EmomonError, match="release_windows"):
        InterpolatorSettings(ch_names=CYTON, release_windows=0)


def test_max_share_is_a_quarter():
    assert InterpolatorSettings(ch_names=CYTON).max_bad == 2
    assert InterpolatorSettings(ch_names=EMOTIV_CHANNELS).max_bad == 3
    assert InterpolatorSettings(ch_names=DEAP_CHANNELS).max_bad == 8
    interp = Interpolator(InterpolatorSettings(ch_names=CYTON))
    assert interp.update([1, 6]) == (1, 6)
    assert interp.update([1, 2, 6]) == ()  # three of eight: none interpolated
    assert interp.bad_set == (1, 2, 6)
    x = np.arange(8 * 5, dtype=float).reshape(8, 5)
    np.testing.assert_array_equal(interp.process(x), x)


def test_chunked_processing_equals_the_offline_interpolation():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 300)) * 20
    interp = Interpolator(InterpolatorSettings(ch_names=CYTON))
    interp.update([2, 7])
    out = np.hstack([interp.process(x[:, i : i + 37]) for i in range(0, 300, 37)])
    np.testing.assert_allclose(
        out, interpolate_bads(x, CYTON, ["C3", "O2"]), rtol=0, atol=1e-9
    )
    assert interp.n_seen == 300


def test_hysteresis_keeps_a_flickering_channel_and_caches_matrices():
    interp = Interpolator(InterpolatorSettings(ch_names=CYTON, release_windows=3))
    x = np.ones((8, 10))
    for k in range(40):  # flagged every other window: never released
        interp.process(x)
        assert interp.update([4] if k % 2 == 0 else []) == (4,)
    assert interp.matrices_built == 1
    # Released after 3 clean windows in a row, then back: the cached matrix.
    assert interp.update([]) == (4,)
    assert interp.update([]) == ()
    assert interp.update([4]) == (4,)
    assert interp.update([4, 5]) == (4, 5)
    assert interp.update([5]) == (4, 5)
    assert interp.matrices_built == 2
    assert interp.update([]) == (4, 5)
    assert interp.update([]) == (5,)  # channel 4's third clean window
    assert interp.update([]) == ()  # and channel 5's
    assert interp.matrices_built == 3
    assert interp.update([4]) == (4,)  # seen before: from the cache
    assert interp.matrices_built == 3


def test_covered_and_touched_follow_the_samples():
    interp = Interpolator(InterpolatorSettings(ch_names=CYTON, release_windows=1))
    x = np.ones((8, 100))
    interp.process(x)  # samples 0-99: nothing interpolated
    interp.update([3])  # from sample 100 on
    interp.process(x)  # 100-199
    assert interp.covered(100) == (3,)
    assert interp.covered(99) == ()
    assert interp.touched(50, 100) == ()
    assert interp.touched(50, 101) == (3,)
    interp.update([])  # released at 200
    interp.process(x)  # 200-299
    assert interp.covered(100) == ()
    assert interp.touched(150, 250) == (3,)
    assert interp.touched(200, 300) == ()
    interp.reset()
    assert interp.n_seen == 0
    assert interp.touched(0, 1) == ()
