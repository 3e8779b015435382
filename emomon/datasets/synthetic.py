"""Synthetic DEAP-like EEG: the embedded default dataset and the project's test bed.

The generator (DESIGN.md section 4) produces 32-channel EEG in microvolts at
128 Hz that looks like DEAP's ``data_preprocessed_python`` release: a 3 s
pre-trial baseline followed by the trial, 4-45 Hz band-passed and
average-referenced. It has two effects whose strengths are parameters:

* an **emotion effect** driven by each subject's *felt* valence and arousal
  (the self-report plus noise, so labels are noisy): higher arousal gives more
  beta/gamma and less alpha; higher valence gives a frontal alpha asymmetry
  (less alpha over LEFT-frontal than over right-frontal sites, Davidson's
  direction, which is the reverse of DESIGN.md's wording; see the note at
  ``_ASYMMETRY_SIGN``);
* a **video content fingerprint**, identical for every subject who watched a
  video and unrelated to its ratings: a narrow-band posterior rhythm at a
  video-specific frequency and a video-specific per-electrode pattern of band
  power. It is what leaky intra-video splits memorise, while leave-one-video-out
  evaluation sees only the emotion effect.

Every random draw comes from ``np.random.default_rng(SeedSequence(seed,
spawn_key=(tag, ...)))`` keyed by subject and/or video, so a subject's data does
not depend on ``n_subjects`` and a video's properties do not depend on the
subject.

Signal model of one trial of subject ``s`` and video ``v`` (FFT synthesis,
vectorised over channels; ``f`` frequency, ``t`` time)::

    S_rest(src, f)  = A_s(src, f) * Z(src, f)     # 1/f^chi + alpha peak, Z ~ CN(0, 1)
    S_video         = S_rest * G_emotion(src, f) + content rhythm_v(src, f)
    X_k(ch, f)      = H(f) * (gain_s(ch) * G_content_v(ch, f) * (M @ S_k) + noise)
    eeg(ch, t)      = drift(ch, t) * ((1 - r(t)) x_rest + r(t) x_video) + blinks
    eeg             = eeg - mean over channels                      # DEAP's CAR

``x_k = irfft(X_k)``; ``M`` is volume conduction from 10-20 electrode distances,
``H`` DEAP's 4-45 Hz band-pass applied zero-phase, ``r(t)`` 0 during the baseline
rising to 1 over the first second of the video (so baseline and trial form one
continuous recording), ``G`` band gains (theta / alpha / beta / gamma) holding
the emotion effect (per source) and the content pattern (per electrode).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, NoReturn

import numpy as np
import scipy.fft as sfft
from scipy import signal

from emomon.datasets._io import reject_unknown_options
from emomon.datasets._synth_positions import UNIT_POSITIONS
from emomon.datasets.base import Reader, Trial, _jsonable
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.dsp.montage import resolve_montage
from emomon.errors import ConfigError, DatasetError

__all__ = [
    "GENERATOR_VERSION",
    "PERIPHERAL_CHANNELS",
    "SynthParams",
    "SyntheticReader",
    "generate",
    "generate_subject",
    "write_deap",
]

#: Bumped whenever the generator's output for given parameters changes (feature
#: caches key on it through :meth:`SyntheticReader.cache_token`).
GENERATOR_VERSION = "1"

#: DEAP's peripheral channels 33-40, in file order (written by :func:`write_deap`).
PERIPHERAL_CHANNELS: tuple[str, ...] = (
    "hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Respiration", "Plethysmograph",
    "Temperature",
)  # fmt: skip

RATING_KEYS: tuple[str, ...] = ("valence", "arousal", "dominance", "liking")
SCALE: tuple[float, float] = (1.0, 9.0)

# DEAP's format fixes these: 128 Hz and a 3 s (384-sample) pre-trial baseline.
_DEAP_SFREQ = 128.0
_DEAP_BASELINE_S = 3.0

# Unit-sphere electrode positions (x right, y anterior, z up) of the 32 DEAP
# channels, from MNE's ``standard_1020`` template montage, normalised.
_POS: dict[str, tuple[float, float, float]] = {
    "Fp1": (-0.330, +0.941, -0.078), "AF3": (-0.389, +0.888, +0.245),
    "F3": (-0.595, +0.629, +0.500), "F7": (-0.848, +0.512, -0.138),
    "FC5": (-0.929, +0.224, +0.294), "FC1": (-0.375, +0.287, +0.881),
    "C3": (-0.707, -0.126, +0.696), "T7": (-0.977, -0.186, -0.108),
    "CP5": (-0.818, -0.479, +0.318), "CP1": (-0.326, -0.435, +0.839),
    "P3": (-0.481, -0.715, +0.508), "P7": (-0.702, -0.712, -0.024),
    "PO3": (-0.322, -0.888, +0.327), "O1": (-0.252, -0.965, +0.076),
    "Oz": (+0.001, -0.992, +0.127), "Pz": (+0.003, -0.701, +0.714),
    "Fp2": (+0.331, +0.940, -0.078), "AF4": (+0.404, +0.880, +0.249),
    "Fz": (+0.004, +0.661, +0.751), "F4": (+0.607, +0.636, +0.478),
    "F8": (+0.846, +0.515, -0.139), "FC6": (+0.930, +0.233, +0.286),
    "FC2": (+0.386, +0.293, +0.875), "Cz": (+0.004, -0.091, +0.996),
    "C4": (+0.721, -0.117, +0.683), "T8": (+0.979, -0.173, -0.109),
    "CP6": (+0.831, -0.460, +0.311), "CP2": (+0.352, -0.431, +0.831),
    "P4": (+0.499, -0.704, +0.507), "P8": (+0.707, -0.707, -0.025),
    "PO4": (+0.324, -0.890, +0.321), "O2": (+0.256, -0.964, +0.076),
}  # fmt: skip

RIGHT_FRONTAL: tuple[str, ...] = ("F4", "AF4", "F8", "FC6")
LEFT_FRONTAL: tuple[str, ...] = ("F3", "AF3", "F7", "FC5")
_LATERAL_TEMPORAL: tuple[str, ...] = ("T7", "T8")

# Blink field: strongest at the frontal pole and falling off steeply towards the
# back of the head (Croft & Barry 2000, Neurophysiol Clin 30:5-19; Plöchl et al.
# 2012, Front Hum Neurosci 6:278). Relative to Fp1/Fp2 = 1.
_BLINK_WEIGHTS: dict[str, float] = {
    "Fp1": 1.0, "Fp2": 1.0, "AF3": 0.5, "AF4": 0.5, "F7": 0.18, "F8": 0.18,
    "F3": 0.2, "F4": 0.2, "Fz": 0.2, "FC5": 0.06, "FC6": 0.06, "FC1": 0.07,
    "FC2": 0.07,
}  # fmt: skip

# Band-gain partition (Hz): the emotion and content effects scale these bands.
# Edges match DESIGN.md's theta/alpha/beta/gamma features (8, 13, 30 Hz).
_BAND_EDGES = (8.0, 13.0, 30.0)
_BAND_NAMES = ("low", "alpha", "beta", "gamma")
_ALPHA, _BETA, _GAMMA = 1, 2, 3
_CROSSFADE_HZ = 1.0

# Emotion effect, as changes of log *amplitude* per unit of felt state
# z = (felt rating - 5) / 4 (z = +-1 at the ends of the 1-9 scale), multiplied by
# ``emotion_effect`` and a per-subject responsiveness (0.6-1.4).
#
# Sizes: at emotion_effect = 1 a subject-general linear model on DE features
# reaches ~65-85% balanced accuracy on unseen videos, as DESIGN.md wants of its
# test bed. That is much larger than real effects (published frontal asymmetry
# effects are ~0.05-0.1 ln units; subject-general cross-video accuracy on real
# DEAP is near 55-60%); smaller emotion_effect values give harder problems.
#
# Arousal: alpha desynchronises with rising arousal/vigilance (Barry et al. 2007,
# Clin Neurophysiol 118:2765-2773) and beta/gamma power rises (Ray & Cole 1985,
# Science 228:750-752; Koelstra et al. 2012, IEEE TAFFC 3:18-31 report arousal
# correlates in alpha and gamma on DEAP itself).
_AROUSAL_ALPHA = -0.24
_AROUSAL_BETA = +0.24
_AROUSAL_GAMMA = +0.28
# Valence: frontal alpha asymmetry in Davidson's direction. Positive affect goes
# with relatively greater LEFT-frontal activation, and alpha is inversely related
# to cortical activity, so higher valence -> less left-frontal alpha ->
# ln(alpha F4) - ln(alpha F3) RISES with valence (Davidson 1992, Brain Cogn
# 20:125-151; review Coan & Allen 2004, Biol Psychol 67:7-50). DESIGN.md and
# issue 2 state the reverse sign; we follow the literature (see the closing note
# of issue 2). +1 would give DESIGN.md's wording. Classifiers do not depend on it.
_ASYMMETRY_SIGN = -1.0
_VALENCE_ALPHA_ASYMMETRY = 0.6  # log-amplitude, each hemisphere, opposite signs
# Positive emotions raise lateral-temporal beta/gamma (Zheng & Lu 2015, IEEE TAMD
# 7:162-175, on SEED).
_VALENCE_TEMPORAL_GAMMA = 0.55

# Content fingerprint at content_effect = 1: log-amplitude sd of the video's
# per-channel, per-band gain pattern, RMS (µV, at 10 Hz, scaled by 10 / f) and
# bandwidth (Hz, Gaussian sd) of its narrow-band posterior rhythm.
_CONTENT_GAIN_SD = 0.2
_CONTENT_RHYTHM_UV = 4.0
_CONTENT_RHYTHM_BW = 0.4
# The gain pattern is strongest over posterior (visual) cortex; frontal sites get
# this fraction of it.
_CONTENT_FLOOR = 0.3

# Volume conduction: Gaussian spread over chord distance on the unit sphere
# (neighbouring 10-20 sites are ~0.4-0.6 apart), cf. Nunez & Srinivasan 2006,
# "Electric Fields of the Brain", ch. 2.
_MIXING_SIGMA = 0.4
# Alpha rhythm spectral peak width (Gaussian sd, Hz): ~2-3 Hz FWHM in adults.
_ALPHA_BW = 1.0
# Alpha amplitude at frontal sources relative to parieto-occipital ones.
_ALPHA_FRONTAL = 0.15
# Padding (s) generated around each trial and cropped after filtering, so that
# the circular FFT synthesis and zero-phase band-pass leave no edge effects.
_PAD_S = 2.0
# Time (s) over which the video-driven effects build up after its onset.
_ONSET_RAMP_S = 1.0
# The slow drift is synthesised at sfreq / _DRIFT_STEP and linearly interpolated.
_DRIFT_STEP = 16

# Seed-sequence tags: keep independent streams for each kind of property.
_TAG_SUBJECT, _TAG_VIDEO, _TAG_TRIAL, _TAG_PERIPHERAL = 1, 2, 3, 4
# Per-electrode draws of electrodes outside DEAP's 32 (another montage's): keys
# (_TAG_ELECTRODES, 0, subject) gains, (.., 1, video) content pattern, (.., 2,
# subject, video) sensor noise and drift.
_TAG_ELECTRODES = 5


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """Return a generator determined by ``seed`` and the integer ``keys`` only."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=keys))


# --------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthParams:
    """Parameters of the synthetic dataset (all have documented defaults).

    Parameters
    ----------
    n_subjects : int
        Number of subjects (default 8, the demo; DEAP has 32).
    n_videos : int
        Number of videos per subject (default 20; DEAP has 40).
    sfreq : float
        Sampling frequency in Hz (default 128, as DEAP). At least 100 Hz so that
        DEAP's 45 Hz low-pass lies below Nyquist.
    baseline_s : float
        Pre-trial baseline in seconds (default 3, as DEAP), returned in
        ``Trial.baseline``; 0 gives no baseline.
    trial_s : float
        Trial (video) duration in seconds (default 60, as DEAP).
    emotion_effect : float
        Strength of the emotion effect (default 1; 0 disables it). At 1 a
        well-regularised subject-general linear model on DE features reaches
        roughly 65-85% balanced accuracy on unseen videos (less when weakly
        regularised, as it then also fits the video fingerprints).
    content_effect : float
        Strength of the per-video content fingerprint (default 1; 0 disables
        it). At 1 a linear model in an intra-video k-fold over windows scores
        >= 0.9 even without an emotion effect.
    seed : int
        Non-negative seed (default 0); the same seed gives identical data on a
        given platform (synthesis runs in float32 FFTs, whose last bits may
        differ between CPUs).
    aperiodic_exponent : (float, float)
        Range of the per-subject 1/f^chi exponent of the background (default
        (1.0, 2.0); Donoghue et al. 2020, Nat Neurosci 23:1655-1665).
    alpha_freq_hz : (float, float)
        Range of the individual alpha frequency in Hz (default (8, 12);
        Klimesch 1999, Brain Res Rev 29:169-195).
    background_uv : float
        RMS of the 1/f background per source in 4-45 Hz, µV (default 10).
    alpha_uv : float
        RMS of the alpha rhythm at the most posterior sources, µV (default 12;
        eyes open, attenuated relative to eyes closed).
    noise_uv : float
        RMS of white amplifier/sensor noise per channel before the 4-45 Hz
        band-pass, µV (default 1).
    channel_gain_sd : float
        Log-sd of per-subject, per-channel gains (electrode contact, skull
        thickness) (default 0.15).
    drift_sd : float
        Log-sd of the slow amplitude drift (default 0.2), 60% shared by all
        channels (vigilance) and 40% channel-specific.
    drift_timescale_s : (float, float)
        Time scales of the drift in seconds (default (3, 40)): band-limited
        noise between 1/40 and 1/3 Hz modulates the amplitude.
    blink_rate_per_min : float
        Mean blink rate (default 12/min; spontaneous rate is ~17/min at rest
        and lower during attentive viewing, Bentivoglio et al. 1997, Mov Disord
        12:1028-1034).
    blink_uv : float
        Mean peak blink amplitude at Fp1/Fp2 before the 4-45 Hz band-pass, µV
        (default 200; blinks are ~100-300 µV at the frontal pole, Croft & Barry
        2000). A blink's energy lies mostly below 4 Hz, so after DEAP's band-pass
        only a biphasic residual of ~15% of this peak (~+-25 µV) remains.
    rating_noise_sd : float
        SD of a subject's rating around the video's mean rating (default 1.0,
        on the 1-9 scale).
    felt_noise_sd : float
        SD of the felt state around the reported rating (default 1.0); the
        emotion effect follows the felt state, so labels are noisy.
    content_freq_hz : (float, float)
        Range of the videos' fingerprint rhythm frequency in Hz (default (5, 40),
        inside the 4-45 Hz feature bands).
    deap_preprocessing : bool
        Apply DEAP's offline preprocessing, a zero-phase 4-45 Hz band-pass and
        common average reference (default True).
    montage : str or None
        Record with another headset (default None: DEAP's 32 channels): any
        montage :func:`emomon.dsp.montage.resolve_montage` takes
        (``brainflow:synthetic``, ``cyton``, ``Fp1,Fp2,...``) whose channels
        are 10-05 electrodes. The head is the same: the 32 sources stay at
        DEAP's sites with every effect placed there, and each electrode sees
        them through volume conduction from its own 10-05 position, so a
        DEAP-named electrode records what it records in the DEAP montage
        (before the average reference) and the others what lies beneath them.

    Raises
    ------
    ConfigError
        Naming the parameter, for a value of the wrong type or out of range.
    """

    n_subjects: int = 8
    n_videos: int = 20
    sfreq: float = 128.0
    baseline_s: float = 3.0
    trial_s: float = 60.0
    emotion_effect: float = 1.0
    content_effect: float = 1.0
    seed: int = 0
    aperiodic_exponent: tuple[float, float] = (1.0, 2.0)
    alpha_freq_hz: tuple[float, float] = (8.0, 12.0)
    background_uv: float = 10.0
    alpha_uv: float = 12.0
    noise_uv: float = 1.0
    channel_gain_sd: float = 0.15
    drift_sd: float = 0.2
    drift_timescale_s: tuple[float, float] = (3.0, 40.0)
    blink_rate_per_min: float = 12.0
    blink_uv: float = 200.0
    rating_noise_sd: float = 1.0
    felt_noise_sd: float = 1.0
    content_freq_hz: tuple[float, float] = (5.0, 40.0)
    deap_preprocessing: bool = True
    montage: str | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name)))
        _positive_int(self, "n_subjects")
        _positive_int(self, "n_videos")
        if self.seed < 0:
            _bad("seed", self.seed, "a non-negative integer")
        if self.sfreq < 100.0:
            _bad("sfreq", self.sfreq, ">= 100 Hz (DEAP's 45 Hz low-pass must fit)")
        if self.baseline_s < 0:
            _bad("baseline_s", self.baseline_s, ">= 0 seconds")
        if self.trial_s < 2.0:
            _bad("trial_s", self.trial_s, ">= 2 seconds")
        for name in (
            "emotion_effect", "content_effect", "background_uv", "alpha_uv",
            "noise_uv", "channel_gain_sd", "drift_sd", "blink_rate_per_min",
            "blink_uv", "rating_noise_sd", "felt_noise_sd",
        ):  # fmt: skip
            if getattr(self, name) < 0:
                _bad(name, getattr(self, name), ">= 0")
        if self.background_uv == 0:
            _bad("background_uv", 0, "> 0 µV")
        nyq = self.sfreq / 2
        _range(self, "aperiodic_exponent", 0.0, 4.0)
        _range(self, "alpha_freq_hz", 6.0, 14.0)
        _range(self, "drift_timescale_s", 0.5, 1e4)
        _range(self, "content_freq_hz", 1.0, min(45.0, nyq - 1.0))
        if self.montage is not None:
            self.ch_names  # noqa: B018 - resolves and places it, or raises

    @property
    def ch_names(self) -> tuple[str, ...]:
        """The recorded channels: DEAP's 32, or the montage's.

        Raises
        ------
        ConfigError
            For an unknown montage or a channel with no 10-05 position.
        """
        return _montage_channels(self.montage)

    @classmethod
    def from_options(cls, **options: Any) -> SynthParams:
        """Build from reader options (strings from the CLI are converted).

        Raises
        ------
        ConfigError
            For an unknown option name (listing the valid ones) or a bad value.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = {k: v for k, v in options.items() if k not in names}
        reject_unknown_options("synthetic", unknown, ", ".join(names))
        return cls(**options)

    @property
    def n_baseline(self) -> int:
        """Baseline length in samples."""
        return int(round(self.baseline_s * self.sfreq))

    @property
    def n_trial(self) -> int:
        """Trial length in samples."""
        return int(round(self.trial_s * self.sfreq))


@functools.lru_cache(maxsize=32)
def _montage_channels(montage: str | None) -> tuple[str, ...]:
    if montage is None:
        return DEAP_CHANNELS
    chans = resolve_montage(montage).ch_names
    if chans == DEAP_CHANNELS:
        return DEAP_CHANNELS
    upper = {n.upper(): n for n in UNIT_POSITIONS}
    unknown = [c for c in chans if c.upper() not in upper]
    if unknown:
        _bad(
            "montage",
            montage,
            "channels with a 10-05 position (no position for "
            f"{', '.join(unknown)}); name the electrodes of a 10-05 montage",
        )
    return tuple(chans)


def _bad(name: str, value: Any, expected: str) -> NoReturn:
    raise ConfigError(
        f"synthetic parameter {name}={value!r} is invalid: need {expected}"
    )


_FIELD_KIND: dict[str, str] = {}


def _coerce(name: str, value: Any) -> Any:
    """Convert ``value`` to the declared type of field ``name`` or raise."""
    kind = _FIELD_KIND[name]
    try:
        if kind == "text":  # None, or a string ("none" from a command line)
            if value is None or (isinstance(value, str) and value.lower() == "none"):
                return None
            if not isinstance(value, str) or not value.strip():
                raise TypeError
            return value.strip()
        if kind == "bool":
            if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
                return value.strip().lower() == "true"
            if isinstance(value, bool | np.bool_):
                return bool(value)
            raise TypeError
        if isinstance(value, bool | np.bool_):
            raise TypeError  # True is not a count or a frequency
        if kind == "int":
            as_float = float(value)
            if not as_float.is_integer():
                raise ValueError
            return int(as_float)
        if kind == "float":
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
            return out
        # "range"
        items = value.split(",") if isinstance(value, str) else list(value)
        if len(items) != 2:
            raise ValueError
        lo, hi = (float(v) for v in items)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError
        return (lo, hi)
    except (TypeError, ValueError):
        expected = {
            "bool": "true or false",
            "int": "an integer",
            "float": "a finite number",
            "range": "two numbers (low, high)",
            "text": "a montage name or a comma list of channels",
        }[kind]
        _bad(name, value, expected)


def _positive_int(p: SynthParams, name: str) -> None:
    if getattr(p, name) < 1:
        _bad(name, getattr(p, name), "an integer >= 1")


def _range(p: SynthParams, name: str, lo: float, hi: float) -> None:
    a, b = getattr(p, name)
    if not (lo <= a <= b <= hi):
        _bad(name, (a, b), f"low <= high within [{lo:g}, {hi:g}]")


for _f in dataclasses.fields(SynthParams):
    _FIELD_KIND[_f.name] = {
        "int": "int", "float": "float", "bool": "bool",
        "tuple[float, float]": "range", "str | None": "text",
    }[str(_f.type)]  # fmt: skip


# --------------------------------------------------------------------------------
# Fixed, parameter-derived constants (frequency grid, filters, mixing)
# --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Grid:
    n_pad: int  # samples cropped at the start (and >= at the end)
    n_fft: int  # length of the synthesised segment
    onset: int  # index (in the padded segment) of the video onset
    freqs: np.ndarray  # (n_freq,) Hz
    band_split: np.ndarray  # (4, n_freq) amplitude partition of unity
    bandpass: np.ndarray  # (n_freq,) |H|^2 of DEAP's 4-45 Hz Butterworth
    ramp: np.ndarray  # (n_fft,) 0 before the video, 1 after its onset ramp
    mixing: np.ndarray  # (n_el, 32) volume conduction, rows of unit norm
    alpha_topo: np.ndarray  # (32,) relative alpha amplitude, 1 at posterior sites
    posterior: np.ndarray  # (32,) posterior weighting for the content rhythm
    blink_topo: np.ndarray  # (n_el,)
    blink_spectrum: np.ndarray  # (n_freq,) rfft of the blink waveform (peak 1)
    drift_bins: np.ndarray  # (n_drift,) rfft bins of the drift band
    drift_step: int  # the drift is synthesised at sfreq / drift_step
    idx: dict[str, int]  # source name -> source row
    # Electrodes (the montage's; DEAP's 32 sites by default): the posterior
    # weighting of each, and the DEAP row whose per-electrode draws (gain, content
    # pattern, sensor noise, drift) it reuses, -1 for one drawn apart
    # (_per_electrode), so a DEAP-named electrode records the same in any montage.
    electrode_posterior: np.ndarray  # (n_el,)
    deap_row: np.ndarray  # (n_el,) int


@functools.lru_cache(maxsize=8)
def _grid(
    sfreq: float,
    n_base: int,
    n_trial: int,
    timescales: tuple[float, float],
    preprocess: bool,
    channels: tuple[str, ...] = DEAP_CHANNELS,
) -> _Grid:
    n_pad = int(round(_PAD_S * sfreq))
    # A multiple of the drift decimation step, and FFT-friendly.
    step_ = _DRIFT_STEP
    n_fft = step_ * sfft.next_fast_len(
        -(-(2 * n_pad + n_base + n_trial) // step_), real=True
    )
    freqs = sfft.rfftfreq(n_fft, 1.0 / sfreq)

    # Smooth amplitude partition of unity over the bands (raised-cosine edges).
    def step(edge: float) -> np.ndarray:
        x = np.clip((freqs - edge) / _CROSSFADE_HZ + 0.5, 0.0, 1.0)
        return 0.5 - 0.5 * np.cos(np.pi * x)

    s8, s13, s30 = (step(e) for e in _BAND_EDGES)
    band_split = np.stack([1.0 - s8, s8 - s13, s13 - s30, s30])

    if preprocess:
        # DEAP: "a bandpass frequency filter from 4.0-45.0Hz was applied" (DEAP
        # website, preprocessed data). Applied zero-phase in the frequency domain:
        # |H|^2 is exactly what filtfilt of a Butterworth order 4 would give.
        sos = signal.butter(4, [4.0, 45.0], btype="bandpass", fs=sfreq, output="sos")
        _, h = signal.sosfreqz(sos, worN=freqs, fs=sfreq)
        bandpass = np.abs(h) ** 2
    else:
        bandpass = np.ones_like(freqs)
        bandpass[0] = 0.0  # remove DC only

    onset = n_pad + n_base
    t = (np.arange(n_fft) - onset) / (_ONSET_RAMP_S * sfreq)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.clip(t, 0.0, 1.0))

    names = list(DEAP_CHANNELS)
    idx = {n: i for i, n in enumerate(names)}
    pos = np.array([_POS[n] for n in names])
    epos = _unit_positions(channels)
    d2 = ((epos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    mixing = np.exp(-d2 / (2 * _MIXING_SIGMA**2))
    mixing /= np.linalg.norm(mixing, axis=1, keepdims=True)  # preserves source power

    # Alpha is strongest over parieto-occipital cortex and weak frontally
    # (Klimesch 1999; Barry et al. 2007): a smooth function of the
    # anterior-posterior coordinate y (P/PO/O ~ 1, C ~ 0.35, F ~ 0.15).
    y = pos[:, 1]
    posterior = 1.0 / (1.0 + np.exp((y + 0.35) / 0.15))
    alpha_topo = _ALPHA_FRONTAL + (1.0 - _ALPHA_FRONTAL) * posterior
    electrode_posterior = 1.0 / (1.0 + np.exp((epos[:, 1] + 0.35) / 0.15))

    blink_topo = _blink_weights(channels, epos, pos)
    # Blink waveform: gamma-like lid movement, ~0.15 s rise, ~0.4 s total.
    tk = np.arange(int(0.6 * sfreq)) / sfreq
    kernel = (tk / 0.15) ** 3 * np.exp(3.0 * (1.0 - tk / 0.15))
    blink_spectrum = sfft.rfft(kernel, n_fft)

    lo_hz, hi_hz = 1.0 / timescales[1], 1.0 / timescales[0]
    drift_bins = np.flatnonzero((freqs >= lo_hz) & (freqs <= hi_hz))
    if drift_bins.size == 0:  # segment shorter than the slowest time scale
        drift_bins = np.array([1])
    f32 = np.float32
    grid = _Grid(
        n_pad=n_pad, n_fft=n_fft, onset=onset, freqs=freqs,
        band_split=band_split.astype(f32), bandpass=bandpass.astype(f32),
        ramp=ramp.astype(f32), mixing=mixing.astype(f32), alpha_topo=alpha_topo,
        posterior=posterior, blink_topo=blink_topo.astype(f32),
        blink_spectrum=blink_spectrum, drift_bins=drift_bins, drift_step=step_,
        idx=idx, electrode_posterior=electrode_posterior,
        deap_row=np.array([idx.get(c, -1) for c in channels]),
    )  # fmt: skip
    for value in vars(grid).values():  # cached and shared: keep it immutable
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return grid


def _grid_for(p: SynthParams) -> _Grid:
    return _grid(
        p.sfreq,
        p.n_baseline,
        p.n_trial,
        p.drift_timescale_s,
        p.deap_preprocessing,
        p.ch_names,
    )


def _unit_positions(channels: tuple[str, ...]) -> np.ndarray:
    """Unit-sphere positions (n, 3) of electrodes (DEAP's from ``_POS``)."""
    upper = {n.upper(): v for n, v in UNIT_POSITIONS.items()}
    return np.array([_POS.get(c, upper.get(c.upper())) for c in channels])


# Blink weights of electrodes outside DEAP's 32: the table's weights averaged
# with a Gaussian of this chord distance (neighbouring 10-10 sites are ~0.15-0.3
# apart), so the field keeps its steep fall-off from the frontal pole.
_BLINK_SPREAD = 0.15


def _blink_weights(
    channels: tuple[str, ...], epos: np.ndarray, pos: np.ndarray
) -> np.ndarray:
    table = np.array([_BLINK_WEIGHTS.get(n, 0.0) for n in DEAP_CHANNELS])
    out = []
    for c, e in zip(channels, epos, strict=True):
        if c in DEAP_CHANNELS:
            out.append(_BLINK_WEIGHTS.get(c, 0.0))
            continue
        w = np.exp(-((pos - e) ** 2).sum(-1) / (2 * _BLINK_SPREAD**2))
        out.append(float(w @ table / max(w.sum(), 1e-12)))
    return np.array(out)


def _per_electrode(
    g: _Grid, deap: np.ndarray, extra: Callable[[int], np.ndarray], axis: int = 0
) -> np.ndarray:
    """Per-electrode values from the DEAP sites' ``deap`` (along ``axis``).

    A DEAP-named electrode takes its site's value; the others take theirs from
    ``extra(n)``, ``n`` values along ``axis`` drawn from a stream of their own.
    In the DEAP montage ``deap`` is returned as it is.
    """
    if np.array_equal(g.deap_row, np.arange(len(DEAP_CHANNELS))):
        return deap
    out = np.take(deap, np.maximum(g.deap_row, 0), axis=axis)
    apart = np.flatnonzero(g.deap_row < 0)
    if apart.size:
        index: list[Any] = [slice(None)] * out.ndim
        index[axis] = apart
        out[tuple(index)] = extra(apart.size)
    return out


def _unit_rms(shape: np.ndarray, mask: np.ndarray, n_fft: int) -> np.ndarray:
    """Scale rfft amplitude ``shape`` (..., n_freq) to unit RMS within ``mask``.

    That is, so that a signal synthesised with unit complex Gaussian
    coefficients has unit RMS within ``mask``.

    With ``X_k = A_k (a + ib) / sqrt(2)``, ``var(irfft(X)) = 2 sum_k A_k^2 / N^2``.
    """
    power = 2.0 * (shape[..., mask] ** 2).sum(-1, keepdims=True) / n_fft**2
    return shape / np.sqrt(np.maximum(power, 1e-300))


def _complex_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Draw unit-variance circular complex Gaussian values, complex64.

    Synthesis runs in single precision for speed; outputs are float64.
    """
    z = rng.standard_normal((*shape, 2), dtype=np.float32)
    z *= np.float32(np.sqrt(0.5))
    return z.view(np.complex64)[..., 0]


# --------------------------------------------------------------------------------
# Subject and video properties
# --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Subject:
    chi: np.ndarray  # (32,) aperiodic exponent per source
    iaf: float  # Hz
    bg_uv: np.ndarray  # (32,) background RMS per source, µV
    alpha_uv: np.ndarray  # (32,) alpha RMS per source, µV
    gains: np.ndarray  # (32,) channel gains
    responsiveness: float  # scales the emotion effect
    amplitude: np.ndarray  # (32, n_freq) rfft amplitude of the resting sources


@dataclass(frozen=True, eq=False)
class _Video:
    means: dict[str, float]  # mean rating per key
    content_freq: float  # Hz
    content_uv: np.ndarray  # (32,) fingerprint rhythm RMS per source, µV
    content_log_gain: np.ndarray  # (4, 32) log-amplitude per band and channel


def _subject_props(p: SynthParams, g: _Grid, i: int) -> _Subject:
    rng = _rng(p.seed, _TAG_SUBJECT, i)
    n = len(DEAP_CHANNELS)
    chi = rng.uniform(*p.aperiodic_exponent) + rng.normal(0.0, 0.1, n)
    chi = np.clip(chi, p.aperiodic_exponent[0] - 0.2, p.aperiodic_exponent[1] + 0.2)
    iaf = float(rng.uniform(*p.alpha_freq_hz))
    scale = rng.lognormal(0.0, 0.2)  # overall amplitude (skull, age)
    bg_uv = p.background_uv * scale * rng.lognormal(0.0, 0.1, n)
    alpha_uv = (
        p.alpha_uv * rng.lognormal(0.0, 0.3) * g.alpha_topo * rng.lognormal(0, 0.15, n)
    )
    gains = _per_electrode(
        g,
        rng.lognormal(0.0, p.channel_gain_sd, n),
        lambda k: _rng(p.seed, _TAG_ELECTRODES, 0, i).lognormal(
            0.0, p.channel_gain_sd, k
        ),
    )
    responsiveness = float(rng.uniform(0.6, 1.4))

    # Resting source spectrum: 1/f^chi background plus a Gaussian alpha peak at
    # the individual alpha frequency. Two independent Gaussian sources sum to one
    # whose power is the sum, so one set of random coefficients serves both.
    f = g.freqs
    in_band = (f >= 4.0) & (f <= 45.0)
    bg = np.exp(-0.5 * chi[:, None] * np.log(np.maximum(f, 1.0))[None, :])
    bg[:, 0] = 0.0
    bg = _unit_rms(bg, in_band, g.n_fft) * bg_uv[:, None]
    pk = np.exp(-0.5 * ((f - iaf) / _ALPHA_BW) ** 2)[None, :]
    pk = _unit_rms(pk, np.ones_like(in_band), g.n_fft) * alpha_uv[:, None]
    amplitude = np.sqrt(bg**2 + pk**2).astype(np.float32)
    return _Subject(chi, iaf, bg_uv, alpha_uv, gains, responsiveness, amplitude)


# DEAP chose its videos to fill the four valence-arousal quadrants (Koelstra et
# al. 2012): video j goes to quadrant j % 4 (HVHA, LVHA, LVLA, HVLA).
_QUADRANTS = ((+1, +1), (-1, +1), (-1, -1), (+1, -1))


def _video_props(p: SynthParams, g: _Grid, j: int) -> _Video:
    rng = _rng(p.seed, _TAG_VIDEO, j)
    sv, sa = _QUADRANTS[j % 4]
    valence = 5.0 + sv * rng.uniform(1.5, 3.0)
    arousal = 5.0 + sa * rng.uniform(1.3, 2.6)
    # Liking and dominance correlate with valence in DEAP (Koelstra et al. 2012).
    liking = 5.0 + 0.7 * (valence - 5.0) + rng.normal(0.0, 0.6)
    dominance = 5.0 + 0.4 * (valence - 5.0) + 0.1 * (arousal - 5.0) + rng.normal(0, 0.5)
    n = len(DEAP_CHANNELS)
    content_freq = float(rng.uniform(*p.content_freq_hz))
    # A posterior rhythm (visual content drives occipital cortex) with a
    # video-specific topography, its amplitude following the ~1/f background so
    # that it stands out similarly at any frequency; plus a band-power pattern.
    content_uv = (
        _CONTENT_RHYTHM_UV * p.content_effect * (10.0 / content_freq)
        * (0.2 + g.posterior) * rng.lognormal(0.0, 0.5, n)
    )  # fmt: skip
    # Applied per electrode after volume conduction: mixing would otherwise
    # average a source-level pattern away (and leave it few dimensions).
    topo = _CONTENT_FLOOR + (1.0 - _CONTENT_FLOOR) * g.electrode_posterior
    sd = _CONTENT_GAIN_SD * p.content_effect
    log_gain = (
        _per_electrode(
            g,
            rng.normal(0.0, sd, (4, n)),
            lambda k: _rng(p.seed, _TAG_ELECTRODES, 1, j).normal(0.0, sd, (4, k)),
            axis=1,
        )
        * topo
    )
    return _Video(
        means={"valence": valence, "arousal": arousal, "dominance": dominance,
               "liking": liking},
        content_freq=content_freq, content_uv=content_uv, content_log_gain=log_gain,
    )  # fmt: skip


# --------------------------------------------------------------------------------
# One trial
# --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _TrialData:
    eeg: np.ndarray  # (32, n_baseline + n_trial) µV
    blinks: np.ndarray  # (n_baseline + n_trial,) unfiltered blink waveform at Fp, µV
    ratings: dict[str, float]
    felt: dict[str, float]
    content_freq: float  # Hz


def _ratings(p: SynthParams, v: _Video, rng: np.random.Generator) -> dict[str, float]:
    noise = rng.normal(0.0, 1.0, 4)
    val = v.means["valence"] + p.rating_noise_sd * noise[0]
    aro = v.means["arousal"] + p.rating_noise_sd * noise[1]
    dom = v.means["dominance"] + 0.4 * (val - v.means["valence"])
    dom += 1.1 * p.rating_noise_sd * noise[2]
    lik = v.means["liking"] + 0.6 * (val - v.means["valence"])
    lik += 1.1 * p.rating_noise_sd * noise[3]
    # DEAP ratings are continuous slider positions on 1-9.
    return {
        k: round(float(np.clip(x, *SCALE)), 2)
        for k, x in zip(RATING_KEYS, (val, aro, dom, lik), strict=True)
    }


def _band_log_gain(
    p: SynthParams, g: _Grid, s: _Subject, v: _Video, felt: dict[str, float]
) -> np.ndarray:
    """Emotion effect: log-amplitude gain (4 bands, 32 sources) during the video."""
    lg = np.zeros((len(_BAND_NAMES), len(DEAP_CHANNELS)))
    k = p.emotion_effect * s.responsiveness
    if k:
        za = (felt["arousal"] - 5.0) / 4.0
        zv = (felt["valence"] - 5.0) / 4.0
        lg[_ALPHA] += k * _AROUSAL_ALPHA * za
        lg[_BETA] += k * _AROUSAL_BETA * za
        lg[_GAMMA] += k * _AROUSAL_GAMMA * za
        asym = k * _ASYMMETRY_SIGN * _VALENCE_ALPHA_ASYMMETRY * zv
        lg[_ALPHA, [g.idx[c] for c in RIGHT_FRONTAL]] -= asym
        lg[_ALPHA, [g.idx[c] for c in LEFT_FRONTAL]] += asym
        tmp = [g.idx[c] for c in _LATERAL_TEMPORAL]
        lg[_BETA, tmp] += 0.5 * k * _VALENCE_TEMPORAL_GAMMA * zv
        lg[_GAMMA, tmp] += k * _VALENCE_TEMPORAL_GAMMA * zv
    return lg


def _trial(
    p: SynthParams,
    g: _Grid,
    s: _Subject,
    v: _Video,
    rng: np.random.Generator,
    extra: np.random.Generator,
) -> _TrialData:
    """One trial; ``extra`` draws for electrodes outside DEAP's 32."""
    n_ch = len(DEAP_CHANNELS)  # sources (and DEAP's electrodes)
    n_fft, f = g.n_fft, g.freqs
    ratings = _ratings(p, v, rng)
    fn = rng.normal(0.0, p.felt_noise_sd, 2)
    felt = {
        "valence": ratings["valence"] + fn[0],
        "arousal": ratings["arousal"] + fn[1],
    }

    # -- resting spectrum (baseline) and video spectrum (trial) ---------------
    # The trial spectrum applies the band gains (emotion + content) and adds the
    # content rhythm; the two share their random coefficients, so the recording
    # is continuous and the sources cross-fade over the first second of video.
    spec = s.amplitude * _complex_normal(rng, (n_ch, f.size))
    gain = np.exp(_band_log_gain(p, g, s, v, felt)).astype(np.float32).T
    video = spec * np.einsum("cb,bf->cf", gain, g.band_split)  # (32, n_freq)
    near = np.flatnonzero(np.abs(f - v.content_freq) < 5 * _CONTENT_RHYTHM_BW)
    # (drawn even when unused, so that content_effect changes nothing else)
    z_content = _complex_normal(rng, (n_ch, near.size))
    if near.size and p.content_effect > 0:
        cs = np.exp(-0.5 * ((f[near] - v.content_freq) / _CONTENT_RHYTHM_BW) ** 2)
        cs = _unit_rms(cs[None, :], np.ones(near.size, bool), n_fft)
        video[:, near] += cs * v.content_uv[:, None] * z_content
    both = np.stack([spec, video])  # (2, 32, n_freq) complex64

    # -- volume conduction, channel gains and sensor noise, all linear and
    # time-invariant, so applied to the spectra together with DEAP's zero-phase
    # 4-45 Hz band-pass (|H|^2, as filtfilt of a Butterworth order 4 gives).
    # Real (mixing) @ complex spectra: multiply the interleaved float32 view.
    # (einsum, not BLAS: OpenBLAS threads slow these small products down a lot
    # on a busy machine.)
    mixed = np.einsum("ij,bjf->bif", g.mixing, both.view(np.float32))
    mixed = mixed.view(np.complex64)
    noise = (
        p.noise_uv
        * np.sqrt(n_fft)
        * _per_electrode(
            g,
            _complex_normal(rng, (n_ch, f.size)),
            lambda k: _complex_normal(extra, (k, f.size)),
        )
    )
    if p.content_effect > 0:  # the video's per-electrode band-power pattern
        cg = np.exp(v.content_log_gain).astype(np.float32).T
        mixed[1] *= np.einsum("cb,bf->cf", cg, g.band_split)
    mixed *= s.gains[:, None].astype(np.float32)
    mixed += noise  # the same sensor noise runs through baseline and video
    mixed *= g.bandpass
    both_t = sfft.irfft(mixed, n_fft, axis=-1)  # (2, 32, n_fft) float32
    eeg = both_t[0] + g.ramp * (both_t[1] - both_t[0])

    # -- slow amplitude drift: 60% shared (vigilance), 40% per channel ----------
    nb, step = g.drift_bins.size, g.drift_step
    draws = _complex_normal(rng, (n_ch + 1, nb))  # the last row is shared
    per_el = _per_electrode(g, draws[:-1], lambda k: _complex_normal(extra, (k, nb)))
    coef = np.zeros((per_el.shape[0] + 1, n_fft // step // 2 + 1), np.complex64)
    coef[:, g.drift_bins] = np.concatenate([per_el, draws[-1:]])
    if p.drift_sd > 0:
        d = sfft.irfft(coef, n_fft // step, axis=-1) * (n_fft / step / np.sqrt(2 * nb))
        lo = np.exp(
            p.drift_sd * (np.sqrt(0.6) * d[-1:] + np.sqrt(0.4) * d[:-1])
            - 0.5 * p.drift_sd**2
        )  # unit mean power
        # Linear interpolation back to sfreq (the drift is periodic over n_fft).
        a = np.repeat(lo, step, axis=1)
        b = np.repeat(np.roll(lo, -1, axis=1), step, axis=1)
        w = np.tile(np.arange(step, dtype=np.float32) / step, n_fft // step)
        eeg *= a + (b - a) * w

    # -- residual blinks (band-passed like the EEG) -----------------------------
    n_blinks = rng.poisson(p.blink_rate_per_min * n_fft / p.sfreq / 60.0)
    onsets = rng.integers(0, n_fft, n_blinks)
    amps = p.blink_uv * rng.lognormal(0.0, 0.25, n_blinks)
    train = np.zeros(n_fft)
    np.add.at(train, onsets, amps)
    bspec = sfft.rfft(train) * g.blink_spectrum
    blink, blink_f = sfft.irfft(np.stack([bspec, bspec * g.bandpass]), n_fft)
    eeg += (s.gains * g.blink_topo)[:, None].astype(np.float32) * blink_f.astype(
        np.float32
    )

    # -- DEAP's common average reference ----------------------------------------
    if p.deap_preprocessing:
        eeg -= eeg.mean(axis=0, keepdims=True)
    keep = slice(g.n_pad, g.n_pad + p.n_baseline + p.n_trial)
    return _TrialData(
        eeg[:, keep].astype(np.float64), blink[keep], ratings, felt, v.content_freq
    )


def _subject_trials(p: SynthParams, i: int) -> tuple[_Subject, list[_TrialData]]:
    g = _grid_for(p)
    s = _subject_props(p, g, i)
    out = []
    for j in range(p.n_videos):
        v = _video_props(p, g, j)
        out.append(
            _trial(
                p,
                g,
                s,
                v,
                _rng(p.seed, _TAG_TRIAL, i, j),
                _rng(p.seed, _TAG_ELECTRODES, 2, i, j),
            )
        )
    return s, out


# --------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------


def _subject_id(i: int) -> str:
    return f"s{i + 1:02d}"


def generate_subject(params: SynthParams, subject_index: int) -> list[Trial]:
    """Generate all trials of one subject.

    Parameters
    ----------
    params : SynthParams
        Dataset parameters.
    subject_index : int
        Zero-based subject index (``0`` -> ``"s01"``); need not be below
        ``params.n_subjects`` (the data only depends on the seed and the index).

    Returns
    -------
    trials : list of Trial
        ``params.n_videos`` trials in video order: ``eeg`` (32, n_trial) µV and
        ``baseline`` (32, n_baseline) µV (None when ``baseline_s`` is 0), DEAP
        channel order, ``ratings`` valence/arousal/dominance/liking on 1-9,
        ``meta`` with the ground truth (felt state, individual alpha frequency,
        aperiodic exponent, content frequency).
    """
    if subject_index < 0:
        raise ValueError(f"subject_index must be >= 0, got {subject_index}")
    s, data = _subject_trials(params, subject_index)
    nb = params.n_baseline
    trials = []
    for j, td in enumerate(data):
        trials.append(
            Trial(
                subject=_subject_id(subject_index),
                video=f"v{j + 1:02d}",
                eeg=td.eeg[:, nb:],
                sfreq=params.sfreq,
                ch_names=params.ch_names,
                baseline=td.eeg[:, :nb] if nb else None,
                ratings=td.ratings,
                dataset="synthetic",
                scale=SCALE,
                meta={
                    # The baseline directly precedes the trial, as in DEAP.
                    "baseline_contiguous": True,
                    "felt_valence": td.felt["valence"],
                    "felt_arousal": td.felt["arousal"],
                    "iaf_hz": s.iaf,
                    "aperiodic_exponent": float(s.chi.mean()),
                    "content_freq_hz": td.content_freq,
                    "generator_version": GENERATOR_VERSION,
                },
            )
        )
    return trials


def generate(params: SynthParams) -> list[Trial]:
    """Generate the whole dataset in memory, subject by subject, video order.

    Returns
    -------
    trials : list of Trial
        ``params.n_subjects * params.n_videos`` trials (see
        :func:`generate_subject`).
    """
    return [t for i in range(params.n_subjects) for t in generate_subject(params, i)]


class _DeapPickler(pickle._Pickler):  # type: ignore[name-defined,misc]
    """Protocol-2 pickler that writes what Python 2 wrote for DEAP's files.

    * numpy's array constructor is named ``numpy.core.multiarray._reconstruct``
      (numpy 2 says ``numpy._core``, which numpy < 1.26 and Python 2 lack);
    * raw bytes (the array data) are Python 2 ``str`` objects (``BINSTRING``),
      which is why DEAP's files need ``pickle.load(f, encoding="latin1")``
      under Python 3, instead of Python 3's ``_codecs.encode`` detour (which
      also inflates the file by half).
    """

    _reconstruct = np.zeros(1).__reduce__()[0]
    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is self._reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _dump_deap(obj: dict[bytes, np.ndarray], f: BinaryIO) -> None:
    _DeapPickler(f, protocol=2).dump(obj)


def _peripheral(p: SynthParams, i: int, j: int, blinks: np.ndarray) -> np.ndarray:
    """Plausible peripheral channels 33-40 of one trial, shape (8, n_times).

    Units are nominal (µV for EOG/EMG, arbitrary for the rest); emomon's DEAP
    reader ignores these channels. vEOG carries the trial's blinks.
    """
    rng = _rng(p.seed, _TAG_PERIPHERAL, i, j)
    n = blinks.size
    t = np.arange(n) / p.sfreq
    walk = np.cumsum(rng.normal(0.0, 1.0, (2, n)), axis=1) / np.sqrt(p.sfreq)
    heog = 20.0 * walk[0] / max(np.abs(walk[0]).max(), 1e-9)
    heog += rng.normal(0.0, 2.0, n)
    veog = 2.5 * blinks + rng.normal(0.0, 3.0, n)
    emg = rng.normal(0.0, 5.0, (2, n))
    gsr = 1.0e3 * (5.0 + 0.3 * walk[1] / max(np.abs(walk[1]).max(), 1e-9))
    resp_f, hr_f = rng.uniform(0.2, 0.33), rng.uniform(1.0, 1.4)
    resp = 500.0 * np.sin(2 * np.pi * resp_f * t + rng.uniform(0, 2 * np.pi))
    pleth = 1.0e3 * np.maximum(np.sin(2 * np.pi * hr_f * t), 0.0) ** 3
    temp = 32.0 + 0.002 * t + rng.normal(0.0, 0.01, n)
    return np.stack([heog, veog, emg[0], emg[1], gsr, resp, pleth, temp])


def write_deap(params: SynthParams, out_dir: str | Path) -> list[Path]:
    """Write the dataset as DEAP ``data_preprocessed_python`` files.

    One file per subject, ``s01.dat`` .., a Python-2-compatible pickle
    (protocol 2, byte-for-byte the layout Python 2 gave DEAP's files) of
    ``{"data": ndarray (n_videos, 40, n_samples) float64, "labels": ndarray
    (n_videos, 4) float64}`` (keys and array data are Python 2 ``str``, hence
    ``encoding="latin1"``); channels 0-31 are the EEG in
    µV (DEAP order), 32-39 the peripheral channels of
    :data:`PERIPHERAL_CHANNELS` (plausible but nominal signals), samples are
    the 3 s baseline followed by the trial (8064 = 384 + 7680 at the defaults).
    Labels are valence, arousal, dominance, liking on 1-9. Load with
    ``pickle.load(f, encoding="latin1")``. Subjects are generated and written
    one at a time, so memory stays bounded by one subject.

    Parameters
    ----------
    params : SynthParams
        Dataset parameters; ``sfreq`` must be 128 Hz and ``baseline_s`` 3 s,
        which DEAP's format implies.
    out_dir : str or Path
        Folder to write into (created if needed).

    Returns
    -------
    paths : list of Path
        The files written, in subject order.

    Raises
    ------
    ConfigError
        If ``sfreq`` or ``baseline_s`` differ from DEAP's.
    """
    if params.sfreq != _DEAP_SFREQ:
        _bad("sfreq", params.sfreq, f"{_DEAP_SFREQ:g} Hz to write DEAP files")
    if params.baseline_s != _DEAP_BASELINE_S:
        _bad("baseline_s", params.baseline_s, f"{_DEAP_BASELINE_S:g} s for DEAP files")
    if params.ch_names != DEAP_CHANNELS:
        _bad("montage", params.montage, "DEAP's 32 channels (None) for DEAP files")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    n_times = params.n_baseline + params.n_trial
    for i in range(params.n_subjects):
        _, data = _subject_trials(params, i)
        arr = np.empty((params.n_videos, 32 + len(PERIPHERAL_CHANNELS), n_times))
        labels = np.empty((params.n_videos, 4))
        for j, td in enumerate(data):
            arr[j, :32] = td.eeg
            arr[j, 32:] = _peripheral(params, i, j, td.blinks)
            labels[j] = [td.ratings[k] for k in RATING_KEYS]
        path = out / f"{_subject_id(i)}.dat"
        tmp = path.with_suffix(".dat.tmp")
        try:
            with tmp.open("wb") as f:
                # bytes keys are Python 2 str keys, as in DEAP's own files
                _dump_deap({b"data": arr, b"labels": labels}, f)
            tmp.replace(path)  # never leave a truncated sNN.dat behind
        finally:
            tmp.unlink(missing_ok=True)
        paths.append(path)
        del arr, data
    return paths


class SyntheticReader(Reader):
    """The synthetic dataset as a reader: generates subjects on demand, in memory.

    Parameters
    ----------
    data_dir : None
        Ignored (no files needed).
    **options
        Any :class:`SynthParams` field, e.g. ``SyntheticReader(None,
        n_subjects=2, n_videos=4, seed=1)``. Strings are converted.

    Raises
    ------
    ConfigError
        For an unknown option or a bad value.
    """

    name: ClassVar[str] = "synthetic"
    description: ClassVar[str] = (
        "synthetic DEAP-like EEG (32 ch, 128 Hz) with tunable emotion and "
        "video-content effects; no download needed"
    )
    source: ClassVar[str] = "built in (emomon.datasets.synthetic)"
    expected_layout: ClassVar[str] = "nothing (generated in memory)"
    needs_data_dir: ClassVar[bool] = False

    def __init__(self, data_dir: str | Path | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self.params = SynthParams.from_options(**options)

    @classmethod
    def from_params(cls, params: SynthParams) -> SyntheticReader:
        """Reader over ``params``."""
        return cls(None, **dataclasses.asdict(params))

    def subjects(self) -> list[str]:
        """Return ``s01`` .. ``sNN`` (``n_subjects`` of them)."""
        return [_subject_id(i) for i in range(self.params.n_subjects)]

    def files(self, subject: str) -> list[Path]:
        """Return no file: the data is generated (checks that ``subject`` exists).

        Raises
        ------
        DatasetError
            If ``subject`` is not one of :meth:`subjects`.
        """
        self._index(subject)
        return []

    def _index(self, subject: str) -> int:
        key = subject.strip().lower()
        key = key[1:] if key.startswith("s") else key
        if key.isdigit() and 1 <= int(key) <= self.params.n_subjects:
            return int(key) - 1
        raise DatasetError(
            f"synthetic subject '{subject}' does not exist: choose s01.."
            f"{_subject_id(self.params.n_subjects - 1)} (n_subjects="
            f"{self.params.n_subjects})"
        )

    def read_subject(self, subject: str) -> list[Trial]:
        """Generate the trials of ``subject`` (the same for the same parameters).

        Raises
        ------
        DatasetError
            If ``subject`` is not one of :meth:`subjects`.
        """
        return generate_subject(self.params, self._index(subject))

    def channel_names(self, subject: str) -> tuple[str, ...]:
        """Return the recorded channels (DEAP's 32 or the montage's), unread."""
        self._index(subject)
        return self.params.ch_names

    def cache_token(self) -> dict[str, Any]:
        """All parameters (defaults included) and the generator version."""
        return {
            "reader": self.name,
            "generator_version": GENERATOR_VERSION,
            "params": _jsonable(dataclasses.asdict(self.params)),
        }

    def summary(self) -> str:
        """One line describing the dataset, for ``emomon datasets``."""
        p = self.params
        on = "" if p.montage is None else f" ({p.montage})"
        return (
            f"synthetic: {p.n_subjects} subjects x {p.n_videos} videos, "
            f"{len(p.ch_names)} ch{on}, "
            f"{p.sfreq:g} Hz, {p.baseline_s:g} s baseline + {p.trial_s:g} s trial, "
            f"emotion_effect={p.emotion_effect:g}, "
            f"content_effect={p.content_effect:g}, seed={p.seed}"
        )
