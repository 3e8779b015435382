import math

import numpy as np
import pytest
from scipy import signal

from emomon.dsp.resample import ResamplerSettings, StreamResampler, resample

RATES = [(250.0, 128.0), (256.0, 128.0), (128.0, 128.0), (200.0, 128.0), (100.0, 128.0)]
RATE_IDS = ["250-128", "256-128", "identity", "200-128-seed", "100-128-up"]


def _chunked(res, x, rng, max_chunk=60):
    outs, i = [], 0
    sizes = [0, 1, 1, 0, 2, 1]  # always exercise empty and single-sample chunks
    while i < x.shape[1]:
        n = sizes.pop(0) if sizes else int(rng.integers(0, max_chunk))
        if rng.random() < 0.2:
            n = int(rng.integers(0, 2))
        outs.append(res.process(x[:, i : i + n]))
        assert outs[-1].shape[0] == x.shape[0]
        i += n
    return np.concatenate(outs, axis=1)


def _reference(x, s):
    """Direct definition: first-sample padding, zero-stuffing, FIR, decimation."""
    pad = math.ceil(s.n_taps / s.up) + 1
    xp = np.concatenate([np.repeat(x[:, :1], pad, axis=1), x], axis=1)
    u = np.zeros((x.shape[0], xp.shape[1] * s.up))
    u[:, :: s.up] = xp
    v = signal.fftconvolve(u, s.taps[None, :], axes=1)
    n_out = math.ceil(x.shape[1] * s.up / s.down)
    return v[:, pad * s.up + s.down * np.arange(n_out)]


@pytest.mark.parametrize(("f_in", "f_out"), RATES, ids=RATE_IDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_any_chunking_gives_the_one_shot_output(f_in, f_out, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, int(3 * f_in))) * 20 + 300.0
    s = ResamplerSettings(f_in, f_out, 3)
    one = StreamResampler(s).process(x)
    res = StreamResampler(s)
    chunked = _chunked(res, x, rng)
    assert one.shape == (3, math.ceil(x.shape[1] * s.up / s.down))
    assert res.n_in == x.shape[1]
    assert res.n_out == one.shape[1]
    np.testing.assert_array_equal(chunked, one)  # bit-identical


@pytest.mark.parametrize(("f_in", "f_out"), [RATES[0], RATES[3], RATES[4]])
def test_matches_the_direct_definition(f_in, f_out):
    x = np.random.default_rng(5).standard_normal((2, int(4 * f_in))) * 30 - 150.0
    s = ResamplerSettings(f_in, f_out, 2)
    np.testing.assert_allclose(
        resample(x, sfreq_in=f_in, sfreq_out=f_out), _reference(x, s), atol=1e-9
    )


def test_identity_returns_the_input_unchanged():
    s = ResamplerSettings(128.0, 128, 2)
    assert s.is_identity
    assert s.n_taps == 1
    assert s.delay_s == 0.0
    res = StreamResampler(s)
    x = np.random.default_rng(0).standard_normal((2, 50))
    assert res.process(x) is x
    assert res.process(x[:, :0]).shape == (2, 0)
    assert res.n_out == res.n_in == 50
    np.testing.assert_array_equal(s.output_positions(10, 5), np.arange(10, 15))


def test_design_is_flat_to_45_hz_and_stops_from_the_output_nyquist():
    for f_in in (250.0, 256.0, 200.0):
        s = ResamplerSettings(f_in, 128.0, 1)
        h = s.taps
        assert h.size % 2 == 1
        np.testing.assert_array_equal(h, h[::-1])  # linear phase
        sums = [h[r :: s.up].sum() for r in range(s.up)]
        np.testing.assert_allclose(sums, 1.0, rtol=0, atol=1e-12)
        w, resp = signal.freqz(h / s.up, worN=2**17, fs=f_in * s.up)
        db = 20 * np.log10(np.abs(resp) + 1e-300)
        assert np.abs(db[w <= 45.0]).max() < 0.01  # 0.1 dB asked; ~0.001 dB
        assert s.stopband_hz == 64.0
        assert s.passband_hz == 48.0
        assert -db[w >= s.stopband_hz].max() >= s.stopband_db


def test_250_to_128_numbers():
    s = ResamplerSettings(250.0, 128.0, 1)
    assert (s.up, s.down) == (64, 125)
    assert s.sfreq_out_actual == 128.0
    assert s.delay_s == pytest.approx((s.n_taps - 1) / 2 / 16000.0)
    assert 0.1 < s.delay_s < 0.2


def test_sine_keeps_amplitude_and_phase_at_the_mapped_times():
    f_in, f_sig, t0 = 250.0, 10.0, 1234.5
    s = ResamplerSettings(f_in, 128.0, 1)
    x = np.sin(2 * np.pi * f_sig * np.arange(int(6 * f_in)) / f_in)[None, :]
    res = StreamResampler(s)
    y = _chunked(res, x, np.random.default_rng(3), max_chunk=40)[0]
    t = s.output_times(0, y.size, t0=t0)  # input sample 0 at t0
    np.testing.assert_allclose(np.diff(t), 1 / 128.0, rtol=1e-12)
    ref = np.sin(2 * np.pi * f_sig * (t - t0))
    tail = slice(128, None)  # after the start transient (1 s)
    gain = np.dot(y[tail], ref[tail]) / np.dot(ref[tail], ref[tail])
    assert abs(gain - 1) < 0.005
    assert np.abs(y[tail] - ref[tail]).max() < 1e-3  # phase matches the mapping
    # The delay matters: ignoring it would be far off.
    naive = np.sin(2 * np.pi * f_sig * np.arange(y.size) / 128.0)
    assert np.abs(y[tail] - naive[tail]).max() > 0.5


def test_tone_above_output_nyquist_is_removed():
    f_in = 250.0
    n = np.arange(int(5 * f_in))
    x = np.vstack(
        [np.sin(2 * np.pi * 80.0 * n / f_in), np.sin(2 * np.pi * 20 * n / f_in)]
    )
    y = resample(x, sfreq_in=f_in, sfreq_out=128.0)[:, 128:]  # after the transient
    rms = np.sqrt(np.mean(y**2, axis=1))
    assert 20 * np.log10(rms[0] / np.sqrt(0.5)) < -40.0  # would alias to 48 Hz
    assert rms[1] == pytest.approx(np.sqrt(0.5), rel=1e-3)  # 20 Hz passes


@pytest.mark.parametrize(("f_in", "f_out"), [RATES[0], RATES[1], RATES[3], RATES[4]])
def test_dc_offset_gives_no_transient(f_in, f_out):
    x = np.full((2, int(2 * f_in)), 1000.0)
    res = StreamResampler(ResamplerSettings(f_in, f_out, 2))
    y = _chunked(res, x, np.random.default_rng(0))
    assert y.shape[1] > 0
    assert np.abs(y - 1000.0).max() < 1e-9


def test_reset_forgets_history():
    x = np.random.default_rng(4).standard_normal((2, 300)) + 50.0
    res = StreamResampler(ResamplerSettings(250.0, 128.0, 2))
    a = res.process(x)
    res.process(x + 7.0)
    res.reset()
    assert res.n_in == res.n_out == 0
    np.testing.assert_array_equal(res.process(x), a)


def test_output_positions_follow_the_group_delay():
    s = ResamplerSettings(250.0, 128.0, 1)
    p = s.output_positions(3, 4)
    np.testing.assert_allclose(p, ((3 + np.arange(4)) * 125 - (s.n_taps - 1) / 2) / 64)
    assert s.delay_in == pytest.approx(s.delay_s * 250.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"sfreq_in": 0.0}, "sfreq_in"),
        ({"sfreq_in": math.nan}, "sfreq_in"),
        ({"sfreq_out": -128.0}, "sfreq_out"),
        ({"n_channels": 0}, "n_channels"),
        ({"n_channels": 2.0}, "n_channels"),
        ({"max_denominator": 0}, "max_denominator"),
        ({"rate_tol": -1.0}, "rate_tol"),
        ({"transition_width": 1.0}, "transition_width"),
        ({"stopband_db": 10.0}, "stopband_db"),
    ],
)
def test_bad_settings_raise_naming_the_argument(kwargs, name):
    args = {"sfreq_in": 250.0, "sfreq_out": 128.0, "n_channels": 2} | kwargs
    pos = [args.pop(k) for k in ("sfreq_in", "sfreq_out", "n_channels")]
    with pytest.raises(ValueError, match=name):
        ResamplerSettings(*pos, **args)


def test_unrepresentable_ratio_names_both_rates():
    with pytest.raises(ValueError, match=r"sfreq_in=250\.0.*sfreq_out=127\.99"):
        ResamplerSettings(250.0, 127.9937, 1, max_denominator=50)


def test_wrong_chunk_shape_raises():
    res = StreamResampler(ResamplerSettings(250.0, 128.0, 3))
    with pytest.raises(ValueError, match=r"\(3, n_times\)"):
        res.process(np.zeros((2, 10)))
