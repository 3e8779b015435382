"""Feature extraction over whole datasets, with an on-disk cache.

The cache key of a subject is a hash of everything the features depend on: the
reader and its options, the subject's files (name, size, mtime), the FeatureSpec,
the channels picked (a montage's, picked before the features so that the common
average reference is over them, as it is live), and the source code of
``emomon.dsp`` and this module. A changed spec, file, pick or feature code never
reuses a stale cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emomon.config import FeatureSpec
from emomon.datasets import Reader, Trial, get_reader
from emomon.dsp.features import ExtractorSettings, FeatureExtractor, WindowFeatures
from emomon.errors import ConfigError, DatasetError, literal

#: Bump when the cached file layout changes.
CACHE_FORMAT = 2
RATING_KEYS = ("valence", "arousal", "dominance", "liking")


@dataclass(frozen=True)
class TrialFeatures:
    """Windowed features of one trial.

    Attributes
    ----------
    values : ndarray, shape (n_windows, n_channels, n_features)
    t_end : ndarray, shape (n_windows,)
        Window end in seconds from the trial onset.
    baseline : ndarray, shape (n_channels, n_features) or None
        Mean features of the resting baseline, when the trial has one.
    """

    trial: Trial
    values: np.ndarray
    t_end: np.ndarray
    baseline: np.ndarray | None


def trial_features(trial: Trial, spec: FeatureSpec) -> TrialFeatures:
    """Windowed features of one trial (and of its baseline, if any).

    A baseline marked ``trial.meta["baseline_contiguous"]`` (DEAP's 3 s
    pre-trial) is filtered together with the trial, so it doubles as the filter
    warm-up and the trial's first windows carry no transient; other baselines
    are processed on their own. Trial windows never include baseline samples.

    Parameters
    ----------
    trial : Trial
    spec : FeatureSpec

    Returns
    -------
    TrialFeatures
    """
    ext = FeatureExtractor(_settings(trial, spec))
    base_vals = None
    offset = 0
    if trial.baseline is not None and trial.baseline.shape[1] > 0:
        bw = ext.process(trial.baseline)
        if len(bw):
            base_vals = bw.values.mean(axis=0)
        if trial.meta.get("baseline_contiguous", False):
            offset = trial.baseline.shape[1]
        else:
            ext.reset()
    tw: WindowFeatures = ext.process(trial.eeg)
    keep = tw.ends - ext.settings.window_n >= offset
    values = tw.values[keep]
    t_end = (tw.ends[keep] - offset) / trial.sfreq
    if not np.all(np.isfinite(values)):
        raise DatasetError(
            f"subject {trial.subject} video {trial.video}: non-finite features; "
            "the recording has NaN/inf samples"
        )
    return TrialFeatures(trial, values, t_end, base_vals)


def _settings(trial: Trial, spec: FeatureSpec) -> ExtractorSettings:
    """Return the extractor settings for ``trial``.

    A rate the spec cannot use is the recording's problem, reported as such (dsp
    raises a bare ValueError).
    """
    where = f"subject {trial.subject} video {trial.video}"
    top = max(spec.bands, key=lambda b: b.hi)
    if top.hi >= trial.sfreq / 2:
        raise DatasetError(
            f"{where}: recorded at {trial.sfreq:g} Hz, too slow for the "
            f"{top.name} band up to {top.hi:g} Hz (needs more than {2 * top.hi:g} "
            "Hz); drop or lower that band in [features] bands, or use a recording "
            "sampled faster"
        )
    try:
        return ExtractorSettings(spec, trial.sfreq, trial.n_channels)
    except ValueError as exc:
        raise DatasetError(
            f"{where}: features cannot be computed at {trial.sfreq:g} Hz ({exc}); "
            "check [features] window_s/hop_s against the recording"
        ) from None


def _mismatch(
    what: str, names: Sequence[str], ref_names: Sequence[str], ref: str
) -> str:
    """How a montage differs from the reference one, for an error message."""
    missing = [c for c in ref_names if c not in names]
    extra = [c for c in names if c not in ref_names]
    if not missing and not extra:
        return f"{what} has the channels of {ref} in another order"
    parts = []
    if missing:
        parts.append(
            f"lacks {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}"
        )
    if extra:
        parts.append(f"adds {', '.join(extra[:6])}{' ...' if len(extra) > 6 else ''}")
    return f"{what} {' and '.join(parts)} compared with {ref}"


@dataclass(frozen=True)
class FeatureTable:
    """Window-level features of a dataset, with trial-level metadata.

    Attributes
    ----------
    X : ndarray, shape (n_windows, n_channels, n_features)
        Features (baseline-subtracted when the spec says so).
    trial : ndarray of int, shape (n_windows,)
        Row of the window's trial in the trial-level arrays.
    t_end : ndarray, shape (n_windows,)
        Window end in seconds from trial onset.
    trial_subject, trial_video : ndarray of str, shape (n_trials,)
    ratings : ndarray, shape (n_trials, 4)
        valence, arousal, dominance, liking (NaN where absent).
    trial_label : ndarray of str, shape (n_trials,)
        Class label ("" where absent).
    ch_names : tuple of str
    sfreq : float
    spec : FeatureSpec
    scale : tuple of float or None
        Rating scale of the dataset.
    dataset : str
        Reader name.
    trial_session : ndarray of str, shape (n_trials,), optional
        Session id of each trial ("" where the dataset has one session).
    """

    X: np.ndarray
    trial: np.ndarray
    t_end: np.ndarray
    trial_subject: np.ndarray
    trial_video: np.ndarray
    ratings: np.ndarray
    trial_label: np.ndarray
    ch_names: tuple[str, ...]
    sfreq: float
    spec: FeatureSpec
    scale: tuple[float, float] | None
    dataset: str = ""
    trial_session: np.ndarray | None = None

    @property
    def subject(self) -> np.ndarray:
        """Subject of each window, shape (n_windows,)."""
        return self.trial_subject[self.trial]

    @property
    def video(self) -> np.ndarray:
        """Video of each window, shape (n_windows,)."""
        return self.trial_video[self.trial]

    @property
    def session(self) -> np.ndarray | None:
        """Session of each window, shape (n_windows,); None without sessions."""
        s = self.trial_session
        if s is None or not np.any(s != ""):
            return None
        return s[self.trial]

    @property
    def n_trials(self) -> int:
        """Number of trials (rows of the trial-level arrays)."""
        return self.trial_subject.size

    def rating(self, name: str) -> np.ndarray:
        """Trial-level rating ``name`` (valence, arousal, ...), shape (n_trials,)."""
        return self.ratings[:, RATING_KEYS.index(name)]


def _subject_arrays(trials: list[Trial], spec: FeatureSpec) -> dict[str, np.ndarray]:
    feats = [trial_features(t, spec) for t in trials]
    ref = trials[0]
    for t in trials[1:]:
        if t.sfreq != ref.sfreq:
            raise DatasetError(
                f"subject {t.subject}: trial {t.video} is sampled at {t.sfreq:g} Hz "
                f"but trial {ref.video} at {ref.sfreq:g} Hz; resample the recordings "
                "to one rate"
            )
        if t.ch_names != ref.ch_names:
            what = _mismatch(
                f"trial {t.video}", t.ch_names, ref.ch_names, f"trial {ref.video}"
            )
            raise DatasetError(
                f"subject {t.subject}: {what}; all trials of a dataset need the same "
                "channels in the same order"
            )
    X = []
    for f in feats:
        v = f.values
        if spec.baseline:
            if f.baseline is None:
                raise DatasetError(
                    f"subject {f.trial.subject} video {f.trial.video}: "
                    "features.baseline is on but the trial has no baseline "
                    "long enough for one window"
                )
            v = v - f.baseline
        X.append(v)
    n_win = [x.shape[0] for x in X]
    ratings = np.array(
        [[(t.ratings or {}).get(k, np.nan) for k in RATING_KEYS] for t in trials],
        dtype=np.float64,
    )
    return {
        # Raw windows are 32x larger than band features: float32 keeps them in memory.
        "X": np.concatenate(X).astype(np.float32 if spec.is_raw else np.float64),
        "trial": np.repeat(np.arange(len(trials)), n_win),
        "t_end": np.concatenate([f.t_end for f in feats]),
        "subject": np.array([t.subject for t in trials]),
        "video": np.array([t.video for t in trials]),
        "session": np.array([t.session for t in trials]),
        "ratings": ratings,
        "label": np.array([t.label or "" for t in trials]),
        "ch_names": np.array(ref.ch_names),
        "sfreq": np.array(ref.sfreq),
        "scale": np.array(ref.scale if ref.scale else (np.nan, np.nan)),
    }


def _code_version() -> str:
    """Hash of the source that defines the features."""
    here = Path(__file__).resolve()
    files = sorted((here.parent.parent / "dsp").glob("*.py")) + [here]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


#: Channels to pick before the features: ``(name in the dataset, name to give)``
#: pairs, in the order the features get them.
ChannelPick = tuple[tuple[str, str], ...]


def pick_channels(trials: list[Trial], channels: ChannelPick) -> list[Trial]:
    """Return the trials with only ``channels``, in that order and renamed.

    Raises
    ------
    DatasetError
        If a trial lacks one of them (a dataset needs one montage).
    """
    out = []
    for t in trials:
        index = {c: i for i, c in enumerate(t.ch_names)}
        lacking = [d for d, _ in channels if d not in index]
        if lacking:
            raise DatasetError(
                f"subject {t.subject} video {t.video} lacks channel(s) "
                f"{', '.join(lacking)} of the montage, which other trials have; "
                "emomon needs one montage per dataset"
            )
        rows = [index[d] for d, _ in channels]
        out.append(
            dataclasses.replace(
                t,
                eeg=t.eeg[rows],
                ch_names=tuple(name for _, name in channels),
                baseline=None if t.baseline is None else t.baseline[rows],
            )
        )
    return out


def cache_key(
    reader: Reader,
    subject: str,
    spec: FeatureSpec,
    channels: ChannelPick | None = None,
) -> str:
    """Hash of (reader, subject files, FeatureSpec, channel pick, code version)."""
    stats = []
    for f in reader.files(subject):
        st = Path(f).stat()
        stats.append([Path(f).name, st.st_size, st.st_mtime_ns])
    token = {
        "format": CACHE_FORMAT,
        "reader": reader.cache_token(),
        "subject": subject,
        "files": stats,
        "spec": spec.to_dict(),
        "code": _code_version(),
    }
    if channels is not None:  # absent otherwise: the keys of all channels stay
        token["channels"] = [list(pair) for pair in channels]
    blob = json.dumps(token, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _extract_subject(
    reader: Reader | tuple[str, str | None, dict[str, Any]],
    subject: str,
    spec: FeatureSpec,
    cache_file: str | None,
    channels: ChannelPick | None = None,
) -> dict[str, np.ndarray]:
    """Compute one subject's arrays and store them in the cache.

    ``reader`` may be ``(name, data_dir, options)`` so worker processes build their
    own reader instead of receiving a pickled one (DREAMER holds its whole file).
    """
    if isinstance(reader, tuple):
        name, data_dir, options = reader
        reader = get_reader(name, data_dir, **options)
    trials = reader.read_subject(subject)
    if channels is not None:
        trials = pick_channels(trials, channels)
    arrays = _subject_arrays(trials, spec)
    if cache_file is not None:
        tmp = cache_file + f".{os.getpid()}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, cache_file)  # atomic: a killed run leaves no half file
    return arrays


def load_features(
    reader: Reader,
    *,
    spec: FeatureSpec,
    subjects: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    channels: ChannelPick | None = None,
) -> FeatureTable:
    """Features of every trial of ``subjects``, using and filling the cache.

    Parameters
    ----------
    reader : Reader
        A constructed dataset reader.
    spec : FeatureSpec
    subjects : sequence of str, optional
        Default: all subjects of the reader.
    cache_dir : path, optional
        Where cached features live; ``None`` disables the cache.
    n_jobs : int
        Worker processes for subjects not in the cache.
    progress : bool
        Show a progress bar over subjects (on stderr).
    channels : tuple of (str, str), optional
        Pick these channels before the features (``(name in the dataset, name
        to give)`` pairs, in order), e.g. a montage's; default all.

    Returns
    -------
    FeatureTable
    """
    from tqdm.auto import tqdm

    subjects = list(subjects) if subjects is not None else reader.subjects()
    if not subjects:
        raise DatasetError(f"dataset '{reader.name}': no subjects to read")
    reader_args = (
        reader.name,
        str(reader.data_dir) if reader.data_dir is not None else None,
        dict(reader.options),
    )
    cache_files: dict[str, str | None] = {}
    for s in subjects:
        if cache_dir is None:
            cache_files[s] = None
            continue
        d = Path(cache_dir) / reader.name
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            where = f"cache dir {d}: cannot create it ({exc.strerror})"
            raise ConfigError(
                literal(where) + "; pass another {cache_dir} or {no_cache}",
                params={"cache_dir": "cache_dir", "no_cache": "cache_dir=None"},
            ) from None
        cache_files[s] = str(d / f"{s}-{cache_key(reader, s, spec, channels)}.npz")

    results: dict[str, dict[str, np.ndarray]] = {}
    todo = []
    for s in subjects:
        cf = cache_files[s]
        if cf is not None and Path(cf).exists():
            try:
                with np.load(cf) as z:
                    results[s] = {k: z[k] for k in z.files}
                continue
            except (OSError, ValueError):
                pass  # unreadable cache entry: recompute and overwrite
        todo.append(s)

    bar = tqdm(
        total=len(subjects),
        desc=f"features {reader.name}",
        unit="subj",
        disable=not progress,
        initial=len(results),
    )
    try:
        if n_jobs > 1 and len(todo) > 1:
            with ProcessPoolExecutor(max_workers=min(n_jobs, len(todo))) as pool:
                futs = {
                    s: pool.submit(
                        _extract_subject,
                        reader_args,
                        s,
                        spec,
                        cache_files[s],
                        channels,
                    )
                    for s in todo
                }
                for s, fut in futs.items():
                    results[s] = fut.result()
                    bar.update()
        else:
            for s in todo:
                results[s] = _extract_subject(reader, s, spec, cache_files[s], channels)
                bar.update()
    finally:
        bar.close()
    return _merge([results[s] for s in subjects], spec, reader.name)


def _merge(
    parts: list[dict[str, np.ndarray]], spec: FeatureSpec, name: str
) -> FeatureTable:
    ch = tuple(str(c) for c in parts[0]["ch_names"])
    sfreq = float(parts[0]["sfreq"])
    s0 = _subject_of(parts[0])
    for p in parts[1:]:
        fs = float(p["sfreq"])
        if fs != sfreq:
            raise DatasetError(
                f"dataset '{name}': subject {_subject_of(p)} is sampled at {fs:g} Hz "
                f"but subject {s0} at {sfreq:g} Hz; emomon needs one rate per "
                "dataset: resample the recordings to one rate (e.g. raw.resample "
                "in MNE)"
            )
        names = tuple(str(c) for c in p["ch_names"])
        if names != ch:
            what = _mismatch(f"subject {_subject_of(p)}", names, ch, f"subject {s0}")
            raise DatasetError(
                f"dataset '{name}': {what}; emomon needs one montage per dataset: "
                "pick or rename channels to match"
            )
    offsets = np.cumsum([0] + [p["subject"].size for p in parts[:-1]])
    scale = parts[0]["scale"]
    return FeatureTable(
        X=np.concatenate([p["X"] for p in parts]),
        trial=np.concatenate(
            [p["trial"] + o for p, o in zip(parts, offsets, strict=True)]
        ),
        t_end=np.concatenate([p["t_end"] for p in parts]),
        trial_subject=np.concatenate([p["subject"] for p in parts]).astype(str),
        trial_video=np.concatenate([p["video"] for p in parts]).astype(str),
        ratings=np.concatenate([p["ratings"] for p in parts]),
        trial_label=np.concatenate([p["label"] for p in parts]).astype(str),
        ch_names=ch,
        sfreq=sfreq,
        spec=spec,
        scale=None if np.isnan(scale).any() else (float(scale[0]), float(scale[1])),
        dataset=name,
        trial_session=np.concatenate([p["session"] for p in parts]).astype(str),
    )


def _subject_of(part: dict[str, np.ndarray]) -> str:
    subj = part["subject"]
    return str(subj[0]) if subj.size else "?"
