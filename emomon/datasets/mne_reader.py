"""Any MNE-readable recording (EDF/BDF/GDF/FIF/BrainVision/EEGLAB) with annotations.

One file is one subject (subject id = file stem). EEG channels are picked
(``bads`` included, listed in ``meta["bads"]``), converted from MNE's volts to
microvolts (x 1e6) and named in 10-20 spelling (an ``EEG `` prefix and a
``-REF``/``-LE``/``-AVG``/``-AR`` suffix, common in EDF exports, are dropped).

Trials come from the annotations:

0. Annotations written by ``emomon stream --record`` (descriptions starting with
   ``emomon/``, one per prediction) are not trials: a recording without other
   annotations is served whole.
1. Annotations whose description starts with ``BAD`` or ``EDGE`` are ignored;
   with ``event_prefix`` only descriptions starting with it are used.
2. If any remaining annotation has a duration > 0, each such annotation is one
   trial spanning ``[onset, onset + duration)``.
3. Else, with ``trial_duration`` (s), each annotation starts a trial of that
   length.
4. Else, if there are no annotations at all, the whole recording is one trial
   (``video = "rec"``); instantaneous annotations without ``trial_duration`` are
   an error (the trial length would be a guess).

Ratings convention: a description may carry ``key=value`` pairs separated by
``;``, e.g. ``video=v03;valence=7;arousal=3``. ``video`` sets the stimulus id
(otherwise the description minus ``event_prefix`` is the id), ``label`` sets a
class name, ``valence``/``arousal``/``dominance``/``liking``/``familiarity`` go to
``Trial.ratings`` (on ``rating_scale``); other keys go to ``meta["annotation"]``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emomon.datasets._io import one_line, reject_unknown_options, sorted_naturally
from emomon.datasets.base import FileReader, Trial
from emomon.dsp.layout import canonical_name
from emomon.errors import DatasetError

__all__ = ["MNEReader", "open_raw", "parse_description"]

#: File name endings read by :func:`mne.io.read_raw` that this reader lists.
SUFFIXES = (
    ".fif", ".fif.gz", ".edf", ".bdf", ".gdf", ".vhdr", ".set", ".cnt", ".mff",
)  # fmt: skip
RATING_KEYS = ("valence", "arousal", "dominance", "liking", "familiarity")
_IGNORED_PREFIXES = ("bad", "edge")
#: Prefix of the prediction annotations of emomon recordings (not trials).
_EMOMON_PREFIX = "emomon/"
_EDF_NAME_RE = re.compile(r"^(?:EEG\s+)?(.+?)(?:-(?:REF|LE|AVG|AR))?$", re.IGNORECASE)
_EXPECTED = (
    "an MNE-readable EEG recording (EDF/BDF/GDF/FIF/BrainVision .vhdr/EEGLAB .set)"
)


def parse_description(description: str) -> tuple[str, dict[str, str]]:
    """Split an annotation description into its name and ``key=value`` pairs.

    ``"video=v03;valence=7;arousal=3"`` -> ``("", {"video": "v03", "valence": "7",
    "arousal": "3"})``; ``"film 2"`` -> ``("film 2", {})``. Parts without ``=`` are
    joined with ``;`` into the name; keys are lower-cased.
    """
    name_parts: list[str] = []
    pairs: dict[str, str] = {}
    for part in description.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            pairs[key.strip().lower()] = value.strip()
        elif part.strip():
            name_parts.append(part.strip())
    return ";".join(name_parts), pairs


def _clean_name(name: str) -> str:
    m = _EDF_NAME_RE.match(name.strip())
    return canonical_name(m.group(1) if m else name)


class MNEReader(FileReader):
    """Read users' own recordings through :func:`mne.io.read_raw`.

    Parameters
    ----------
    data_dir : str or Path
        One recording or a folder of recordings (non-recursive; endings in
        :data:`SUFFIXES`).
    event_prefix : str, optional
        Only annotations whose description starts with this prefix are trials;
        the prefix is stripped from the video id.
    trial_duration : float, optional
        Trial length (s) after each instantaneous annotation.
    baseline_s : float, default 0.0
        Length (s) of the segment before each trial returned as
        ``Trial.baseline`` (omitted where the recording starts later than that).
    rating_scale : (float, float), default (1.0, 9.0)
        Scale of the ratings carried in descriptions (``Trial.scale``).
    allow_nonfinite : bool, default False
        Return NaN/inf samples as they are instead of refusing the file. Replay
        sets it: a live session recorded with dropouts is served as it was
        received, and the live pipeline flags those windows; training never
        should.

    Notes
    -----
    See the module docstring for the trial and ratings conventions. Each
    :class:`Trial` has ``eeg`` (n_eeg_channels, n_times) µV.
    """

    name = "mne"
    unit = "recording"
    description = (
        "Any MNE-readable recording (EDF/BDF/FIF/BrainVision/EEGLAB) + annotations"
    )
    source = "your own recordings in a format MNE-Python reads (https://mne.tools)"
    expected_layout = (
        "a recording (.edf/.bdf/.gdf/.fif/.vhdr/.set) or a folder of them, trials "
        "marked by annotations"
    )

    def __init__(
        self,
        data_dir: str | Path | None,
        *,
        event_prefix: str = "",
        trial_duration: float | None = None,
        baseline_s: float = 0.0,
        rating_scale: Sequence[float] = (1.0, 9.0),
        allow_nonfinite: bool = False,
        **unknown: Any,
    ) -> None:
        reject_unknown_options(
            self.name,
            unknown,
            "event_prefix, trial_duration, baseline_s, rating_scale, allow_nonfinite",
        )
        scale = tuple(float(x) for x in rating_scale)
        if len(scale) != 2 or not scale[0] < scale[1]:
            raise DatasetError(f"mne: rating_scale must be (low, high), got {scale}")
        if trial_duration is not None and not float(trial_duration) > 0:
            raise DatasetError(
                f"mne: trial_duration must be > 0 s, got {trial_duration}"
            )
        if not float(baseline_s) >= 0:
            raise DatasetError(f"mne: baseline_s must be >= 0 s, got {baseline_s}")
        super().__init__(
            data_dir,
            event_prefix=event_prefix,
            trial_duration=trial_duration,
            baseline_s=baseline_s,
            rating_scale=list(scale),
            allow_nonfinite=bool(allow_nonfinite),
        )
        self.allow_nonfinite = bool(allow_nonfinite)
        self.event_prefix = str(event_prefix)
        self.trial_duration = None if trial_duration is None else float(trial_duration)
        self.baseline_s = float(baseline_s)
        self.rating_scale: tuple[float, float] = (scale[0], scale[1])

    def _scan(self) -> dict[str, Path]:
        paths = self._entries(
            lambda p: p.name.lower().endswith(SUFFIXES) and p.exists()
        )
        found: dict[str, Path] = {}
        for p in sorted(paths):
            stem = _stem(p)
            found[stem if stem not in found else p.name] = p
        return {k: found[k] for k in sorted_naturally(found)}

    def _none_found(self) -> str:
        return f"no recordings in {self.data_dir}: expected {self.expected_layout}"

    def files(self, subject: str) -> list[Path]:
        """Return the recording of ``subject`` and its sidecar files.

        BrainVision ``.vhdr`` with its ``.eeg`` and ``.vmrk``, EEGLAB ``.set``
        with its ``.fdt``, where they exist; the recording is first.

        Raises
        ------
        DatasetError
            If ``subject`` is not found.
        """
        path = self._path(subject)
        if path.name.lower().endswith(".vhdr"):  # header + data + marker files
            sidecars = [path.with_suffix(s) for s in (".eeg", ".vmrk")]
            return [path] + [p for p in sidecars if p.exists()]
        if path.name.lower().endswith(".set") and path.with_suffix(".fdt").exists():
            return [path, path.with_suffix(".fdt")]
        return [path]

    def read_subject(self, subject: str) -> list[Trial]:
        """Read one recording as trials, cut by its annotations.

        ``subject`` is the recording's name: its file stem (its file name where
        two recordings share a stem). Without stimulus annotations the whole
        recording is one trial ``"rec"``; else each annotation (BAD/EDGE and
        emomon's own excepted) is a trial, with the video, label and ratings its
        description gives and, with ``baseline_s``, the samples before it as
        baseline. EEG channels only, in µV. A file that cannot be read, has no
        EEG channel, duplicate channel names, non-finite samples (unless
        ``allow_nonfinite``), or annotations but no usable trial raises
        :class:`~emomon.errors.DatasetError`.
        """
        path = self.files(subject)[0]
        raw = open_raw(path)
        import mne

        picks = mne.pick_types(raw.info, eeg=True, exclude=[])
        if len(picks) == 0:
            raise DatasetError(
                f"{path.name}: no EEG channels (channel types: "
                f"{', '.join(sorted(set(raw.get_channel_types())))}); expected "
                "channels of type 'eeg'"
            )
        ch_names = tuple(_clean_name(raw.ch_names[i]) for i in picks)
        _check_unique(ch_names, [raw.ch_names[i] for i in picks], path)
        data = raw.get_data(picks=picks) * 1e6  # V -> µV
        bad = ~np.isfinite(data)
        if bad.any() and not self.allow_nonfinite:
            raise DatasetError(
                f"{path.name}: {int(bad.sum())} NaN/inf EEG value(s); expected "
                "finite samples"
            )
        sfreq = float(raw.info["sfreq"])
        n_times = data.shape[1]
        bads = [_clean_name(b) for b in raw.info["bads"] if b in raw.ch_names]
        base_meta = {"file": str(path), "bads": bads}

        segments = self._segments(raw, path, n_times)
        if segments is None:
            return [
                Trial(
                    subject=subject,
                    video="rec",
                    eeg=data,
                    sfreq=sfreq,
                    ch_names=ch_names,
                    dataset=self.name,
                    meta=base_meta,
                )
            ]
        n_base = int(round(self.baseline_s * sfreq))
        trials = []
        for start, stop, desc in segments:
            name, pairs = parse_description(desc)
            if self.event_prefix and name.startswith(self.event_prefix):
                name = name[len(self.event_prefix) :].strip()
            video = pairs.pop("video", "") or name or desc
            label = pairs.pop("label", None)
            ratings: dict[str, float] = {}
            for key in RATING_KEYS:
                if key in pairs:
                    try:
                        ratings[key] = float(pairs.pop(key))
                    except ValueError as exc:
                        raise DatasetError(
                            f"{path.name}: annotation '{desc}': {key} is not a number; "
                            "expected e.g. 'video=v03;valence=7;arousal=3'"
                        ) from exc
            baseline = data[:, start - n_base : start] if 0 < n_base <= start else None
            trials.append(
                Trial(
                    subject=subject,
                    video=video,
                    eeg=data[:, start:stop],
                    sfreq=sfreq,
                    ch_names=ch_names,
                    baseline=baseline,
                    ratings=ratings or None,
                    label=label,
                    dataset=self.name,
                    scale=self.rating_scale if ratings else None,
                    meta={
                        **base_meta,
                        "annotation": desc,
                        "onset_s": start / sfreq,
                        **({"extra": pairs} if pairs else {}),
                    },
                )
            )
        if not trials:
            raise DatasetError(
                f"{path.name}: no trial inside the recording; expected annotations "
                "within the data"
            )
        return trials

    def _segments(
        self, raw: Any, path: Path, n_times: int
    ) -> list[tuple[int, int, str]] | None:
        """``(start, stop, description)`` sample spans, or None for whole file."""
        ann = raw.annotations
        all_desc = [str(d) for d in ann.description]
        own = [d.startswith(_EMOMON_PREFIX) for d in all_desc]
        if all(own):  # no annotations, or only a recording's predictions
            return None
        keep = np.array(
            [
                not o
                and not d.lower().startswith(_IGNORED_PREFIXES)
                and d.startswith(self.event_prefix)
                for d, o in zip(all_desc, own, strict=True)
            ],
            dtype=bool,
        )
        if not keep.any():
            prefix = self.event_prefix
            why = f" or not starting with {prefix!r}" if prefix else ""
            raise DatasetError(
                f"{path.name}: no usable annotation (all BAD/EDGE{why}"
                f"; found {sorted(set(all_desc))[:5]}); expected stimulus "
                "annotations"
            )
        onset = np.asarray(ann.onset, dtype=np.float64)[keep]
        duration = np.asarray(ann.duration, dtype=np.float64)[keep]
        desc = np.asarray(all_desc, dtype=object)[keep]
        sfreq = float(raw.info["sfreq"])
        has_dur = duration > 0
        if has_dur.any():
            onset, duration, desc = onset[has_dur], duration[has_dur], desc[has_dur]
        elif self.trial_duration is not None:
            duration = np.full(onset.shape, self.trial_duration)
        else:
            raise DatasetError(
                f"{path.name}: annotations have no duration; pass trial_duration "
                "(seconds after each annotation) or give the annotations durations"
            )
        start = raw.time_as_index(onset, use_rounding=True, origin=ann.orig_time)
        start = np.asarray(start, dtype=np.int64)
        stop = start + np.round(duration * sfreq).astype(np.int64)
        out = []
        for a, b, d in zip(start.tolist(), stop.tolist(), desc.tolist(), strict=True):
            if a >= n_times or b <= 0 or b <= a:
                warnings.warn(
                    f"{path.name}: annotation '{d}' is empty or outside the recording; "
                    "skipped",
                    stacklevel=3,
                )
                continue
            if a < 0 or b > n_times:
                warnings.warn(
                    f"{path.name}: annotation '{d}' runs past the recording; clipped",
                    stacklevel=3,
                )
            out.append((max(a, 0), min(b, n_times), d))
        return out


def _check_unique(names: Sequence[str], stored: Sequence[str], path: Path) -> None:
    """Channels are matched by name online: two EEG channels may not share one."""
    seen: dict[str, str] = {}
    for name, orig in zip(names, stored, strict=True):
        if name in seen:
            raise DatasetError(
                f"{path.name}: EEG channels '{seen[name]}' and '{orig}' both read as "
                f"'{name}'; rename or drop one (e.g. raw.rename_channels in MNE) "
                "so every channel has its own 10-20 name"
            )
        seen[name] = orig


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def open_raw(
    path: Path, *, preload: bool = True, expected: str = _EXPECTED, **kwargs: Any
) -> Any:
    """Open ``path`` with :func:`mne.io.read_raw`; a failure is one DatasetError line.

    ``preload=False`` leaves the samples on disk (``get_data(start=, stop=)``
    then reads only that span); ``kwargs`` go to MNE's format reader.
    """
    import mne

    try:
        return mne.io.read_raw(path, preload=preload, verbose="error", **kwargs)
    except MemoryError:
        raise
    except Exception as exc:  # MNE's readers raise many types for bad files
        raise DatasetError(
            f"{path.name}: cannot be read by MNE ({one_line(exc)}); expected {expected}"
        ) from exc
