"""Summaries of a dataset on disk for ``emomon datasets check``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from emomon.datasets.base import FeatureTrial, Reader, Trial


@dataclass
class DatasetSummary:
    """What ``emomon datasets check`` prints."""

    dataset: str
    subjects: list[str] = field(default_factory=list)
    n_trials: int = 0
    channels: tuple[str, ...] = ()
    sfreqs: set[float] = field(default_factory=set)
    durations_s: list[float] = field(default_factory=list)
    baseline_s: list[float] = field(default_factory=list)
    ratings: dict[str, list[float]] = field(default_factory=dict)
    labels: Counter = field(default_factory=Counter)
    scale: tuple[float, float] | None = None
    videos: set[str] = field(default_factory=set)
    amplitude_uv: list[float] = field(default_factory=list)
    sessions: set[tuple[str, str]] = field(default_factory=set)
    #: Precomputed features: "de_LDS, ... x delta 1-3 Hz, ...; 1 s windows".
    features: str = ""
    #: The reader assumed the channel names (files without names, EAV).
    channels_assumed: bool = False

    def add(self, trial: Trial | FeatureTrial) -> None:
        """Count ``trial`` (EEG or precomputed features) in the summary."""
        if trial.subject not in self.subjects:
            self.subjects.append(trial.subject)
        self.n_trials += 1
        self.channels = self.channels or trial.ch_names
        self.channels_assumed |= (
            getattr(trial, "meta", {}).get("channels_assumed") is True
        )
        if trial.session:
            self.sessions.add((trial.subject, trial.session))
        if trial.label is not None:
            self.labels[trial.label] += 1
        self.videos.add(trial.video)
        if isinstance(trial, FeatureTrial):
            self._add_features(trial)
            return
        self.sfreqs.add(trial.sfreq)
        self.durations_s.append(trial.duration_s)
        if trial.baseline is not None:
            self.baseline_s.append(trial.baseline.shape[1] / trial.sfreq)
        for k, v in (trial.ratings or {}).items():
            self.ratings.setdefault(k, []).append(float(v))
        self.scale = self.scale or trial.scale
        self.amplitude_uv.append(float(np.median(np.std(trial.eeg, axis=1))))

    def _add_features(self, trial: FeatureTrial) -> None:
        if trial.sfreq:
            self.sfreqs.add(trial.sfreq)
        n_win = next(iter(trial.features.values())).shape[1] if trial.features else 0
        self.durations_s.append(n_win * trial.window_s)
        if not self.features:
            bands = ", ".join(
                f"{b} {lo:g}-{hi:g} Hz"
                for b, (lo, hi) in zip(trial.bands, trial.band_edges, strict=False)
            )
            self.features = (
                f"{', '.join(trial.features)} x {bands or ', '.join(trial.bands)}; "
                f"{trial.window_s:g} s windows (precomputed, not causal)"
            )

    def format(self) -> str:
        """Format the summary as a plain-text table."""
        d = np.asarray(self.durations_s)
        rows = [
            ("dataset", self.dataset),
            ("subjects", f"{len(self.subjects)} ({_span(self.subjects)})"),
            ("videos", str(len(self.videos))),
            *(
                [("sessions", f"{len(self.sessions)} (subject, session) pairs")]
                if self.sessions
                else []
            ),
            ("trials", str(self.n_trials)),
            (
                "channels",
                f"{len(self.channels)}: {' '.join(self.channels)}"
                + (
                    " (ASSUMED: the files carry no names)"
                    if self.channels_assumed
                    else ""
                ),
            ),
            ("sfreq (Hz)", ", ".join(f"{s:g}" for s in sorted(self.sfreqs))),
            (
                "trial duration (s)",
                f"min {d.min():.1f}  median {np.median(d):.1f}  max {d.max():.1f}"
                if d.size
                else "-",
            ),
            (
                "baseline (s)",
                f"{np.median(self.baseline_s):.1f} (median)"
                if self.baseline_s
                else "none",
            ),
            (
                "EEG std per channel (µV)",
                f"median {np.median(self.amplitude_uv):.1f}"
                if self.amplitude_uv
                else "-",
            ),
        ]
        if self.features:
            rows.append(("features", self.features))
        lo, hi = self.scale if self.scale else (np.nan, np.nan)
        mid = (lo + hi) / 2
        for k, vals in self.ratings.items():
            v = np.asarray(vals)
            v = v[np.isfinite(v)]
            if not v.size:
                continue
            rows.append(
                (
                    f"{k} ({lo:g}-{hi:g})",
                    f"mean {v.mean():.2f}  sd {v.std():.2f}  min {v.min():g}  "
                    f"max {v.max():g}  high(>{mid:g}) {np.mean(v > mid):.0%}",
                )
            )
        if self.labels:
            rows.append(
                (
                    "labels",
                    "  ".join(f"{k} {n}" for k, n in sorted(self.labels.items())),
                )
            )
        w = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def _span(names: list[str]) -> str:
    if not names:
        return "-"
    return names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"


def summarize(reader: Reader, *, progress: bool = True) -> DatasetSummary:
    """Read every trial of ``reader`` and summarise it.

    Raises
    ------
    DatasetError
        From the reader, naming the first bad file.
    """
    from tqdm.auto import tqdm

    summary = DatasetSummary(dataset=reader.name)
    for s in tqdm(
        reader.subjects(), desc="checking", unit="subj", disable=not progress
    ):
        for trial in reader.read_subject(s):
            summary.add(trial)
    return summary
