"""SEED-V readers: ``EEG_raw/*.cnt`` (Neuroscan signals) and ``EEG_DE_features/*.npz``.

SEED-V (Liu et al., IEEE TCDS 2021; https://bcmi.sjtu.edu.cn/home/seed/seed-v.html)
has 16 subjects x 3 sessions x 15 film clips, five emotions. Facts used here, with
their sources:

- ``EEG_raw/{subject}_{session}_{date}.cnt``: one continuous Neuroscan recording
  per session (~1 h), 1000 Hz, 66 channels: the 62 SEED electrodes plus M1, M2
  (mastoids) and VEO, HEO (eye channels), which SEED-V users drop (the release's
  README and loading notebook; CBraMod's ``preprocessing/preprocessing_SEEDV.py``
  and other public loaders drop exactly these four). The session number in the
  name is the set of films watched, not the order of the visits (README).
- The trials are time ranges inside that recording, in seconds, from the
  release's ``trial_start_end_timestamp.txt`` (:data:`SESSION_SPANS`), the labels
  (0 disgust, 1 fear, 2 sad, 3 neutral, 4 happy) from
  ``emotion_label_and_stimuli_order.xlsx`` (:data:`SESSION_LABELS`); the same
  tables appear in CBraMod's and several other public loaders.
- ``EEG_DE_features/{subject}_123.npz``: two members ``data`` and ``label``, each
  a 0-d bytes array holding ``pickle.dumps`` of a dict ``{0..44: array}`` (the
  release's notebook calls ``pickle.loads(np.load(f)['data'])``; TorchEEG's
  ``SEEDVFeatureDataset`` does the same). ``data[k]`` is (n_windows, 310) DE
  features, ``label[k]`` (n_windows,) the class of each window.

**How MNE reads .cnt** (``mne/io/cnt``, MNE 1.13): the 900-byte SETUP header
gives the channel count (offset 370), the rate (376, unsigned 16-bit: an integer
rate), the sample count (864) and the event-table position (886); 75 bytes per
channel follow (label, x/y position, baseline at +47, sensitivity at +59,
calibration at +71), then the samples, then the event table. With
``data_format="auto"`` MNE infers 16- or 32-bit samples from
``(event_table_pos - data_start) / (n_channels * n_samples)``; files over 2 GB
need it explicit (option ``data_format``; a SEED-V session is ~0.5 GB in int16,
~1 GB in int32). MNE scales each sample to volts as
``(value - baseline) * sensitivity * calib / 204.8 * 1e-6`` (the conversion to
µV in Paul Bourke's description of the format, paulbourke.net/dataformats/eeg/,
times 1e-6); this reader multiplies by 1e6 once to get µV.

**How this reader is tested, and what is not verified.** MNE cannot write .cnt,
and no real Neuroscan file is available offline, so the tests write a minimal
.cnt themselves (``tests/datasets/cnt_writer.py``, from Bourke's SETUP/ELECTLOC
layout) with the real 66 channel labels in the Neuroscan 64-channel cap order,
and read it back with MNE. That proves only that this reader and MNE agree on a
file written to the published layout: whether the real SEED-V headers fill the
fields MNE relies on (sample count, event-table position, ChannelOffset,
sensitivity/calibration), whether they hold int16 or int32 samples, and the
exact labels and order of their channels were not checked against a real file.
The reader therefore checks what it can at run time: the rate is read from the
header (and must be 1000 Hz), channels are picked by name (a file lacking one of
the 62 names is refused), and a recording shorter than a trial is refused.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from emomon.datasets._io import (
    check_finite,
    loads_pickle,
    one_line,
    reject_unknown_options,
    sorted_naturally,
)
from emomon.datasets.base import FeatureTrial, Reader, Trial
from emomon.datasets.mne_reader import open_raw
from emomon.datasets.seed import feature_families
from emomon.dsp.layout import SEED_CHANNELS, canonical_name
from emomon.errors import DatasetError

__all__ = [
    "CLASSES",
    "SESSION_LABELS",
    "SESSION_SPANS",
    "SeedVFeaturesReader",
    "SeedVReader",
    "downsample",
]

#: Class names in index order: SEED-V's label 0 is disgust ... 4 happy.
CLASSES = ("disgust", "fear", "sad", "neutral", "happy")
#: Rate of the raw recordings (checked against each file's header).
RAW_SFREQ = 1000.0
N_TRIALS = 15
SESSIONS = (1, 2, 3)
#: Non-EEG channels of the raw files: mastoid references and eye channels.
DROPPED = ("M1", "M2", "VEO", "HEO")
CH_NAMES = tuple(canonical_name(n) for n in SEED_CHANNELS)

#: ``session -> ((start_s, end_s), ...)`` of the 15 films, seconds from the
#: start of the session's recording.
SESSION_SPANS: dict[int, tuple[tuple[float, float], ...]] = {
    1: tuple(
        zip(
            (30, 132, 287, 555, 773, 982, 1271, 1628, 1730, 2025, 2227, 2435, 2667,
             2932, 3204),
            (102, 228, 524, 742, 920, 1240, 1568, 1697, 1994, 2166, 2401, 2607, 2901,
             3172, 3359),
            strict=True,
        )
    ),
    2: tuple(
        zip(
            (30, 299, 548, 646, 836, 1000, 1091, 1392, 1657, 1809, 1966, 2186, 2333,
             2490, 2741),
            (267, 488, 614, 773, 967, 1059, 1331, 1622, 1777, 1908, 2153, 2302, 2428,
             2709, 2817),
            strict=True,
        )
    ),
    3: tuple(
        zip(
            (30, 353, 478, 674, 825, 908, 1200, 1346, 1451, 1711, 2055, 2307, 2457,
             2726, 2888),
            (321, 418, 643, 764, 877, 1147, 1284, 1418, 1679, 1996, 2275, 2425, 2664,
             2857, 3066),
            strict=True,
        )
    ),
}  # fmt: skip
#: ``session -> label index of each film`` (index into :data:`CLASSES`).
SESSION_LABELS: dict[int, tuple[int, ...]] = {
    1: (4, 1, 3, 2, 0, 4, 1, 3, 2, 0, 4, 1, 3, 2, 0),
    2: (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
    3: (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
}

#: DE bands of the feature files. The SEED-V release does not restate them; these
#: are the lab's bands for SEED-IV features computed the same way (4 s windows,
#: bcmi.sjtu.edu.cn/home/seed/seed-iv.html "Feature Extraction").
BANDS = ("delta", "theta", "alpha", "beta", "gamma")
BAND_EDGES = ((1.0, 4.0), (4.0, 8.0), (8.0, 14.0), (14.0, 31.0), (31.0, 50.0))
#: Window of one DE row: TorchEEG's SEEDVFeatureDataset spaces rows 800 samples
#: apart at 200 Hz, i.e. 4 s, and the lab's SEED-IV features use 4 s windows.
FEATURE_WINDOW_S = 4.0
#: Rate of the EEG the DE features were computed from (SEED-V's preprocessed
#: signals: downsampled to 200 Hz, as TorchEEG's docstring states).
FEATURE_SFREQ = 200.0
#: The one feature family of the .npz files (plain DE; the release does not
#: say whether it was smoothed).
FEATURE_KEYS = ("de",)

_CNT_RE = re.compile(r"^(\d+)_(\d+)_(\d+)\.cnt$", re.IGNORECASE)
_NPZ_RE = re.compile(r"^(\d+)_123\.npz$", re.IGNORECASE)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_EXPECTED_CNT = (
    "a SEED-V Neuroscan recording EEG_raw/<subject>_<session>_<date>.cnt "
    "(1000 Hz, 66 channels)"
)


def downsample(
    eeg: np.ndarray,
    *,
    sfreq_in: float,
    sfreq_out: float,
    offset: int = 0,
    n_times: int | None = None,
) -> np.ndarray:
    """Lower the rate of ``eeg`` with an anti-aliasing polyphase FIR filter.

    :func:`scipy.signal.resample_poly` (up by ``p``, low-pass, down by ``q``, with
    ``p/q = sfreq_out/sfreq_in``): its Kaiser-window FIR cuts at the new
    Nyquist frequency, so a component above it is removed instead of folding
    back into the band (what keeping every q-th sample would do); the filter is
    linear-phase with its delay removed, so samples stay aligned in time. Chosen
    over MNE's default FFT resampling because a trial is cut out of a longer
    recording: polyphase filtering needs no periodic extension of the segment,
    and its cost grows linearly with the length. Measured at 1000 -> 200 Hz:
    flat to 80 Hz, -0.7 dB at 90 Hz; a 110 Hz tone is down 23 dB, 120 Hz
    55 dB, 150 Hz 69 dB (all of which would fold below 100 Hz).

    Parameters
    ----------
    eeg : ndarray, shape (n_channels, n_samples)
        Samples at ``sfreq_in`` (any unit; returned in the same unit).
    sfreq_in, sfreq_out : float
        Rates in Hz; ``sfreq_out <= sfreq_in`` and their ratio a fraction with
        numerator and denominator <= 1000.
    offset : int
        Input samples before the part to return: context that feeds the filter
        (see :func:`margin_for`); a multiple of ``q``.
    n_times : int, optional
        Input samples of the part to return (default: all after ``offset``);
        samples after it are context too.

    Returns
    -------
    ndarray, shape (n_channels, n_times * p // q)
        float64, the first sample at the time of input sample ``offset``.

    Raises
    ------
    DatasetError
        For a rate above ``sfreq_in`` or a ratio too fine to filter.
    """
    from scipy.signal import resample_poly

    up, down = _ratio(sfreq_in, sfreq_out)
    if offset % down:
        raise ValueError(f"offset {offset} is not a multiple of {down}")
    n_in = eeg.shape[1] - offset if n_times is None else n_times
    n_keep = n_in * up // down
    if up == down:
        return np.array(eeg[:, offset : offset + n_keep], dtype=np.float64)
    # padtype="line": where no context is left (a file's edge), extend the trend
    # rather than zeros, which would put a step the size of the DC offset
    # (large in raw Neuroscan data) into the filter.
    out = resample_poly(eeg, up, down, axis=1, padtype="line")
    first = offset * up // down
    return np.ascontiguousarray(out[:, first : first + n_keep])


def margin_for(sfreq_in: float, sfreq_out: float) -> int:
    """Input samples of context :func:`downsample` needs at each end.

    The half-length of resample_poly's default filter (``10 * max(p, q)``
    taps), rounded up to a multiple of ``q`` so the margin is a whole number of
    output samples. 0 when no resampling is needed.
    """
    up, down = _ratio(sfreq_in, sfreq_out)
    if up == down:
        return 0
    return math.ceil(10 * max(up, down) / down) * down


def _ratio(sfreq_in: float, sfreq_out: float) -> tuple[int, int]:
    if not 0 < sfreq_out <= sfreq_in:
        raise DatasetError(
            f"seed5: option 'sfreq' must be > 0 and at most the recording's "
            f"{sfreq_in:g} Hz (no upsampling), got {sfreq_out:g}"
        )
    ratio = Fraction(str(float(sfreq_out))) / Fraction(str(float(sfreq_in)))
    if max(ratio.numerator, ratio.denominator) > 1000:
        raise DatasetError(
            f"seed5: option 'sfreq' {sfreq_out:g} Hz is not a simple fraction of "
            f"{sfreq_in:g} Hz (ratio {ratio}); choose e.g. 100, 128, 200, 250 or 500"
        )
    return ratio.numerator, ratio.denominator


def _flag(value: Any, option: str, reader: str) -> bool:
    """Parse a boolean option given as a bool or a string (``yes``/``no``...)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DatasetError(
        f"{reader}: option '{option}' must be yes or no (true/false, 1/0), "
        f"got {value!r}"
    )


class _SeedVBase(Reader):
    """Shared by both SEED-V readers: classes, the release folder, file lookup."""

    classes = CLASSES
    source = "https://bcmi.sjtu.edu.cn/home/seed/seed-v.html (apply for access)"
    #: Release sub-folder; ``data_dir`` may be it or the SEED-V root.
    folder = ""
    #: File name pattern; group 1 is the subject number.
    pattern: re.Pattern[str]

    def _root(self) -> Path:
        assert self.data_dir is not None
        if self.data_dir.is_file():
            return self.data_dir.parent
        sub = self.data_dir / self.folder
        here = any(self.pattern.match(p.name) for p in _listdir(self.data_dir))
        return sub if not here and sub.is_dir() else self.data_dir

    def _found(self) -> dict[str, list[Path]]:
        """Subject id ("1") -> its files, subjects in number order."""
        cached = getattr(self, "_files", None)
        if cached is None:
            assert self.data_dir is not None
            paths = (
                [self.data_dir] if self.data_dir.is_file() else _listdir(self._root())
            )
            found: dict[str, list[Path]] = {}
            for p in paths:
                m = self.pattern.match(p.name)
                if m and p.is_file():
                    found.setdefault(str(int(m.group(1))), []).append(p)
            cached = self._files = {s: found[s] for s in sorted_naturally(found)}
        return cached

    def subjects(self) -> list[str]:
        found = self._found()
        if not found:
            raise DatasetError(
                f"no SEED-V files in {self.data_dir}: expected "
                f"{self.expected_layout}; get SEED-V from {self.source}"
            )
        return list(found)

    def _subject_files(self, subject: str) -> list[Path]:
        found = self._found()
        key = str(int(subject)) if subject.strip().isdigit() else subject
        if key not in found:
            raise DatasetError(
                f"SEED-V subject '{subject}' not found in {self._root()} "
                f"(found: {', '.join(found) or 'none'}); expected "
                f"{self.expected_layout}"
            )
        return found[key]


class SeedVReader(_SeedVBase):
    """Read SEED-V's raw Neuroscan recordings, one :class:`Trial` per film.

    Parameters
    ----------
    data_dir : str or Path
        The ``EEG_raw`` folder, its parent (the SEED-V root) or one ``.cnt``.
    sfreq : float or str, default 200
        Rate of the returned EEG (Hz), at most 1000; the recordings are
        downsampled with :func:`downsample` (anti-aliasing polyphase FIR). 200 Hz
        is the rate of SEED's and SEED-V's own preprocessed signals.
    data_format : {"auto", "int16", "int32"}, default "auto"
        Sample width of the .cnt files, passed to :func:`mne.io.read_raw_cnt`;
        "auto" infers it from the header, which MNE cannot do for files over 2 GB.

    Notes
    -----
    Subjects are ``"1"`` .. ``"16"``; each :class:`Trial` has ``eeg`` (62,
    n_samples) µV at ``sfreq`` in the channel order of
    :data:`~emomon.dsp.layout.SEED_CHANNELS` (M1, M2, VEO, HEO dropped),
    ``session`` ``"1"``/``"2"``/``"3"``, ``video`` ``"s1t01"`` .. ``"s3t15"``
    (the films differ per session and are shared by subjects: a video id names
    one film for everyone) and ``label`` among :data:`CLASSES`. Each session file
    is opened with ``preload=False`` and only the trials' spans (plus a filter
    margin) are read from disk. See the module docstring for how the reader is
    tested and what is not verified against real files.
    """

    name = "seed5"
    description = (
        "SEED-V raw: 16 subjects x 3 sessions x 15 films, Neuroscan .cnt 1000 Hz "
        "-> 62-ch EEG at 200 Hz, 5 classes"
    )
    expected_layout = "EEG_raw/<subject>_<session>_<date>.cnt (1_1_20180804.cnt ..)"
    folder = "EEG_raw"
    pattern = _CNT_RE

    def __init__(
        self,
        data_dir: str | Path | None,
        *,
        sfreq: float | str = 200.0,
        data_format: str = "auto",
        **unknown: Any,
    ) -> None:
        reject_unknown_options(self.name, unknown, "sfreq, data_format")
        try:
            rate = float(sfreq)
        except (TypeError, ValueError):
            raise DatasetError(
                f"seed5: option 'sfreq' must be a rate in Hz, got {sfreq!r}"
            ) from None
        _ratio(RAW_SFREQ, rate)  # refuse a bad rate before any file is read
        fmt = str(data_format).strip().lower()
        if fmt not in ("auto", "int16", "int32"):
            raise DatasetError(
                f"seed5: option 'data_format' must be auto, int16 or int32, got "
                f"{data_format!r}"
            )
        super().__init__(data_dir, sfreq=rate, data_format=fmt)
        self.sfreq = rate
        self.data_format = fmt

    def sessions(self, subject: str) -> list[tuple[int, str, Path]]:
        """``(session, date, path)`` of each recording of ``subject``, by session.

        Raises
        ------
        DatasetError
            For an unknown subject, a session number other than 1-3, or two
            files of one session.
        """
        out: dict[int, tuple[int, str, Path]] = {}
        for p in self._subject_files(subject):
            m = _CNT_RE.match(p.name)
            assert m is not None
            session = int(m.group(2))
            if session not in SESSIONS:
                raise DatasetError(
                    f"{p.name}: session {session} is not 1, 2 or 3; expected "
                    f"{self.expected_layout}"
                )
            if session in out:
                raise DatasetError(
                    f"{p.name} and {out[session][2].name}: two recordings of "
                    f"subject {subject} session {session}; keep one"
                )
            out[session] = (session, m.group(3), p)
        return [out[s] for s in sorted(out)]

    def files(self, subject: str) -> list[Path]:
        """Return the session recordings of ``subject``, in session order."""
        return [p for _, _, p in self.sessions(subject)]

    def channel_names(self, subject: str) -> tuple[str, ...]:
        """Return the 62 EEG channels every trial has (checks ``subject`` exists)."""
        self.files(subject)
        return CH_NAMES

    def read_subject(self, subject: str) -> list[Trial]:
        """Read the 15 films of every session of one subject (``"1"``).

        Sessions in number order, films in order. A file MNE cannot read, one
        whose header rate is not 1000 Hz, one lacking one of the 62 EEG
        channels, one that ends before a film does, or non-finite samples raise
        :class:`~emomon.errors.DatasetError`.
        """
        trials: list[Trial] = []
        for session, date, path in self.sessions(subject):
            trials.extend(self._read_session(subject, session, date, path))
        return trials

    def _read_session(
        self, subject: str, session: int, date: str, path: Path
    ) -> list[Trial]:
        raw = open_raw(
            path,
            preload=False,
            # MNE cannot infer the sample width of files over 2 GB.
            expected=f"{_EXPECTED_CNT}; for files over 2 GB pass "
            "--dataset-option data_format=int16 or int32",
            data_format=self.data_format,
        )
        src = float(raw.info["sfreq"])
        if src != RAW_SFREQ:
            raise DatasetError(
                f"{path.name}: header says {src:g} Hz; expected {_EXPECTED_CNT} "
                "(the film times are in seconds of the 1000 Hz recording)"
            )
        picks = _eeg_picks(raw.ch_names, path)
        spans = SESSION_SPANS[session]
        labels = SESSION_LABELS[session]
        n_times = int(raw.n_times)
        last = max(range(len(spans)), key=lambda i: spans[i][1])
        if round(spans[last][1] * src) > n_times:
            raise DatasetError(
                f"{path.name}: the recording ends at {n_times / src:.1f} s but film "
                f"{last + 1} of session {session} ends at {spans[last][1]:g} s; "
                f"expected a complete session ({_EXPECTED_CNT})"
            )
        margin = margin_for(src, self.sfreq)
        down = _ratio(src, self.sfreq)[1]
        bads = [canonical_name(b) for b in raw.info["bads"]]
        out = []
        for i, ((t0, t1), lab) in enumerate(zip(spans, labels, strict=True), start=1):
            start, stop = round(t0 * src), round(t1 * src)
            before = min(margin, start - start % down)
            after = min(margin, n_times - stop)
            try:
                # preload=False: MNE reads only this span from disk.
                data = raw.get_data(
                    picks=picks, start=start - before, stop=stop + after
                )
            except MemoryError:
                raise
            except Exception as exc:  # a damaged data block
                raise DatasetError(
                    f"{path.name}: cannot read film {i} ({one_line(exc)}); expected "
                    f"{_EXPECTED_CNT}"
                ) from exc
            data *= 1e6  # MNE's volts -> µV, once
            check_finite(data, f"{path.name}: film {i}", "finite EEG samples")
            eeg = downsample(
                data,
                sfreq_in=src,
                sfreq_out=self.sfreq,
                offset=before,
                n_times=stop - start,
            )
            out.append(
                Trial(
                    subject=str(int(subject)) if subject.isdigit() else subject,
                    video=f"s{session}t{i:02d}",
                    eeg=eeg,
                    sfreq=self.sfreq,
                    ch_names=CH_NAMES,
                    label=CLASSES[lab],
                    dataset=self.name,
                    session=str(session),
                    meta={
                        "file": str(path),
                        "date": date,
                        "start_s": float(t0),
                        "end_s": float(t1),
                        "source_sfreq": src,
                        "bads": bads,
                        "resampling": "scipy.signal.resample_poly"
                        if self.sfreq != src
                        else "none",
                    },
                )
            )
        return out


def _eeg_picks(ch_names: Sequence[str], path: Path) -> list[int]:
    """Return the rows of the 62 EEG channels in SEED order (M1/M2/VEO/HEO left out)."""
    index: dict[str, int] = {}
    for i, name in enumerate(ch_names):
        index.setdefault(name.strip().upper(), i)
    missing = [n for n in SEED_CHANNELS if n not in index]
    if missing:
        raise DatasetError(
            f"{path.name}: no channel(s) {', '.join(missing[:6])}"
            f"{' ...' if len(missing) > 6 else ''} among its {len(ch_names)} "
            f"({', '.join(list(ch_names)[:4])} ...); expected the 62 SEED-V EEG "
            f"channels plus {', '.join(DROPPED)}"
        )
    return [index[n] for n in SEED_CHANNELS]


class SeedVFeaturesReader(_SeedVBase):
    """Read SEED-V's precomputed DE features (``EEG_DE_features/*_123.npz``).

    The .npz files store their contents as pickles, and unpickling can run
    code: the reader refuses them unless ``trust_pickle`` is set, and then
    unpickles with the same restricted unpickler as DEAP's ``.dat`` files
    (:func:`~emomon.datasets._io.loads_pickle`: numpy arrays in plain
    containers only).

    Parameters
    ----------
    data_dir : str or Path
        The ``EEG_DE_features`` folder, its parent (the SEED-V root) or one
        ``.npz``.
    trust_pickle : bool or str, default False
        Consent to unpickle the files (``--dataset-option trust_pickle=yes``).
    features : str or sequence of str, default ``"de"``
        The feature family; the files hold one, ``de``.

    Notes
    -----
    :meth:`read_subject` returns :class:`FeatureTrial` records:
    ``features["de"]`` (62, n_windows, 5), channels in
    :data:`~emomon.dsp.layout.SEED_CHANNELS` order, bands :data:`BAND_EDGES`,
    ``window_s = 4``, ``sfreq = 200``; ``session``/``video``/``label`` as in
    :class:`SeedVReader`.

    What is assumed (sources in the module docstring): each row of 310 values
    is channel-major, 62 channels x 5 bands (TorchEEG reshapes it to (62, 5));
    keys 0-14 are session 1, 15-29 session 2, 30-44 session 3, each in film
    order (the release's notebook says so). The labels check the first part:
    session 1's label sequence differs from the others', and a file whose
    labels disagree with :data:`SESSION_LABELS` gets a warning (the file's
    labels are used). Sessions 2 and 3 have the same label sequence, so their
    order is taken on trust. Whether the DE was smoothed (LDS, moving average)
    is not stated in the release. Not causal either way (DE over 4 s windows
    of the whole trial): a model trained on them cannot run live.
    """

    name = "seed5-features"
    description = (
        "SEED-V DE features: precomputed DE (62 ch x 5 bands, 4 s windows), "
        "5 classes; pickled .npz, needs trust_pickle=yes"
    )
    expected_layout = "EEG_DE_features/<subject>_123.npz (1_123.npz .. 16_123.npz)"
    folder = "EEG_DE_features"
    pattern = _NPZ_RE
    precomputed = True

    def __init__(
        self,
        data_dir: str | Path | None,
        *,
        trust_pickle: bool | str = False,
        features: str | Sequence[str] = FEATURE_KEYS,
        **unknown: Any,
    ) -> None:
        reject_unknown_options(self.name, unknown, "trust_pickle, features")
        trust = _flag(trust_pickle, "trust_pickle", self.name)
        feats = feature_families(features, valid=FEATURE_KEYS, reader=self.name)
        super().__init__(data_dir, trust_pickle=trust, features=list(feats))
        self.trust_pickle = trust
        self.features = feats

    def files(self, subject: str) -> list[Path]:
        """Return the one feature file of ``subject``."""
        paths = self._subject_files(subject)
        if len(paths) > 1:
            raise DatasetError(
                f"{', '.join(p.name for p in paths)}: several feature files of "
                f"subject {subject}; keep one"
            )
        return paths

    def channel_names(self, subject: str) -> tuple[str, ...]:
        """Return the 62 channels of the features (checks ``subject`` exists)."""
        self.files(subject)
        return CH_NAMES

    def read_subject(self, subject: str) -> list[FeatureTrial]:  # type: ignore[override]
        """Read the 45 trials (3 sessions x 15 films) of one subject's .npz.

        Raises
        ------
        DatasetError
            Without ``trust_pickle``; for a file that is not a zip of the two
            pickled dicts, lacks a trial key 0-44, holds arrays of the wrong
            shape, non-finite values, or a label that varies within a trial or
            is not 0-4.
        """
        path = self.files(subject)[0]
        if not self.trust_pickle:
            raise DatasetError(
                f"{path.name}: holds pickled objects, which can run code when "
                "loaded; if you trust the file, pass --dataset-option "
                "trust_pickle=yes (it is then read with a numpy-only unpickler)"
            )
        data, label = _load_npz(path)
        sid = str(int(_NPZ_RE.match(path.name).group(1)))  # type: ignore[union-attr]
        out = []
        mismatched = []
        for k in range(len(SESSIONS) * N_TRIALS):
            session, i = k // N_TRIALS + 1, k % N_TRIALS + 1
            where = f"{path.name}: trial key {k}"
            de = np.asarray(data[k])
            if (
                de.dtype.kind not in "iuf"
                or de.ndim != 2
                or de.shape[0] == 0
                or (de.shape[1] != len(CH_NAMES) * len(BANDS))
            ):
                raise DatasetError(
                    f"{where} 'data' has shape {de.shape} ({de.dtype}); expected "
                    f"(n_windows, {len(CH_NAMES) * len(BANDS)}) DE values"
                )
            de = de.astype(np.float64)
            check_finite(de, f"{where} 'data'", "finite DE features")
            lab = np.asarray(label[k]).reshape(-1)
            values = set(lab.tolist()) if lab.dtype.kind in "iuf" else {None}
            if (
                len(values) != 1
                or lab.size != de.shape[0]
                or values.pop() not in range(len(CLASSES))
            ):
                raise DatasetError(
                    f"{where} 'label' is {lab.dtype} {lab.shape} with values "
                    f"{sorted(map(str, set(lab.tolist())))[:5]}; expected one class "
                    f"0-4 repeated for each of its {de.shape[0]} windows"
                )
            cls = int(lab[0])
            if cls != SESSION_LABELS[session][i - 1]:
                mismatched.append(k)
            # (n_windows, 62 * 5) channel-major -> (62, n_windows, 5)
            feats = de.reshape(de.shape[0], len(CH_NAMES), len(BANDS)).transpose(
                1, 0, 2
            )
            out.append(
                FeatureTrial(
                    subject=sid,
                    video=f"s{session}t{i:02d}",
                    features={"de": np.ascontiguousarray(feats)},
                    ch_names=CH_NAMES,
                    bands=BANDS,
                    window_s=FEATURE_WINDOW_S,
                    label=CLASSES[cls],
                    dataset=self.name,
                    session=str(session),
                    band_edges=BAND_EDGES,
                    sfreq=FEATURE_SFREQ,
                )
            )
        if mismatched:
            warnings.warn(
                f"{path.name}: the labels of trial key(s) {mismatched[:5]} differ "
                "from SEED-V's published label order; using the file's labels",
                stacklevel=2,
            )
        return out


def _load_npz(path: Path) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Unpickle the ``data`` and ``label`` dicts of a SEED-V feature file."""
    import zipfile

    expected = (
        "a SEED-V EEG_DE_features .npz with 'data' and 'label', each a pickled "
        "dict {0..44: array}"
    )
    if not path.is_file():
        raise DatasetError(f"{path}: file not found; expected {expected}")
    members: dict[str, bytes] = {}
    try:
        # allow_pickle=False: numpy itself must not unpickle anything; the
        # members are plain bytes arrays whose contents we unpickle ourselves.
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("data", "label") if k not in npz.files]
            if missing:
                raise DatasetError(
                    f"{path.name}: no member '{missing[0]}' (found "
                    f"{sorted(npz.files)[:6]}); expected {expected}"
                )
            for key in ("data", "label"):
                arr = npz[key]
                if arr.dtype.kind != "S" or arr.size != 1:
                    raise DatasetError(
                        f"{path.name}: '{key}' is {arr.dtype} {arr.shape}, not the "
                        f"bytes of a pickle; expected {expected}"
                    )
                members[key] = arr.tobytes()
    except DatasetError:
        raise
    except MemoryError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{path.name}: not a readable .npz ({one_line(exc)}); expected {expected}"
        ) from exc
    dicts = []
    for key in ("data", "label"):
        obj = loads_pickle(members[key], f"{path.name}: '{key}'", expected)
        if not isinstance(obj, dict):
            raise DatasetError(
                f"{path.name}: '{key}' unpickles to {type(obj).__name__}, not a "
                f"dict; expected {expected}"
            )
        want = range(len(SESSIONS) * N_TRIALS)
        missing = [k for k in want if k not in obj]
        if missing:
            found = sorted(str(k) for k in obj)[:6]
            raise DatasetError(
                f"{path.name}: '{key}' lacks trial key(s) {missing[:5]} (found "
                f"{found}); expected {expected}"
            )
        dicts.append(obj)
    return dicts[0], dicts[1]


def _listdir(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir()) if path.is_dir() else []
    except OSError:
        return []
