"""A recording's predictions lined up with its samples and its trial markers.

See :mod:`emomon.livescore` for the rules (which windows are scored, labels).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emomon.errors import EmomonError

__all__ = [
    "ScoreError",
    "SessionWindows",
    "TrialSpan",
    "marker_trials",
    "session_windows",
]


class ScoreError(EmomonError):
    """A recording cannot be scored (one line naming the file and what to do)."""


@dataclass(frozen=True)
class TrialSpan:
    """One trial of the session, from its ``trial_start`` and ``trial_end`` markers.

    Attributes
    ----------
    key : str
        ``"<subject>|<video>|<trial index>|<loop>"``: the exchangeable unit.
    start, end : int
        Recorded samples of the trial's first and last sample (inclusive).
    payload : dict
        The ``trial_start`` marker (subject, video, ratings, label, scale).
    """

    key: str
    start: int
    end: int
    payload: dict[str, Any]


def marker_trials(markers: Sequence[Mapping[str, Any]]) -> list[TrialSpan]:
    """Pair the ``trial_start`` and ``trial_end`` markers of a recording.

    Parameters
    ----------
    markers : sequence of dict
        :attr:`Recording.markers <emomon.realtime.recording.Recording>`.

    Returns
    -------
    list of TrialSpan
        In start order. Markers that are not JSON objects, a start without its
        end (the session stopped first) and markers outside the recording
        (``sample`` -1) are skipped.
    """
    open_: dict[str, tuple[int, dict[str, Any]]] = {}
    spans: list[TrialSpan] = []
    for m in markers:
        try:
            ev = json.loads(str(m.get("marker", "")))
        except ValueError:
            continue
        sample = int(m.get("sample", -1))
        if not isinstance(ev, dict) or sample < 0:
            continue
        key = "|".join(
            str(ev.get(k, "")) for k in ("subject", "video", "trial", "loop")
        )
        if ev.get("event") == "trial_start":
            open_[key] = (sample, ev)
        elif ev.get("event") == "trial_end" and key in open_:
            start, payload = open_.pop(key)
            if sample >= start:
                spans.append(TrialSpan(key, start, sample, payload))
    spans.sort(key=lambda s: s.start)
    return spans


@dataclass(frozen=True, eq=False)
class SessionWindows:
    """The recorded predictions lined up with the recording and its trials.

    Attributes
    ----------
    seq : ndarray of int, shape (n,)
        The predictions' ``seq``.
    end : ndarray of int, shape (n,)
        Recorded sample of each window's last sample (-1 when off the recording).
    trial : ndarray of int, shape (n,)
        Index into ``trials`` of the trial holding the whole window, -1 if none.
    ok : ndarray of bool, shape (n,)
        Whether the pipeline predicted on the window (not flagged).
    proba : dict of str to ndarray, shape (n, k)
        Task -> class probabilities as published (NaN rows for flagged windows).
    labels : dict of str to ndarray of int, shape (n,)
        Task -> class index of the window's trial (-1: no trial or no label).
    trials : list of TrialSpan
    classes : dict of str to list of str
        Task -> class names, in probability column order.
    """

    seq: np.ndarray
    end: np.ndarray
    trial: np.ndarray
    ok: np.ndarray
    proba: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    trials: list[TrialSpan]
    classes: dict[str, list[str]]

    def scored(self, task: str) -> np.ndarray:
        """Mask of the windows scored for ``task``, shape (n,)."""
        return self.ok & (self.trial >= 0) & (self.labels[task] >= 0)


def _nearest(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the recorded sample nearest to each ``t`` (-1 for NaN)."""
    n = times.shape[0]
    out = np.full(t.shape, -1, dtype=np.int64)
    good = np.isfinite(t)
    if n == 0 or not good.any():
        return out
    right = np.clip(np.searchsorted(times, t[good]), 1, max(n - 1, 1))
    left = right - 1
    right = np.minimum(right, n - 1)
    closer = np.abs(times[right] - t[good]) < np.abs(times[left] - t[good])
    out[good] = np.where(closer, right, left)
    return out


def _task_labels(
    trials: Sequence[TrialSpan],
    classes: Mapping[str, Sequence[str]],
    info: Mapping[str, Any],
    where: str,
) -> dict[str, np.ndarray]:
    """Class index of each trial per task (-1 where the trial has no label)."""
    from emomon.offline.dataset import BINARY_CLASSES
    from emomon.offline.labels import make_labels

    method = str(info.get("labels") or "fixed")
    out: dict[str, np.ndarray] = {}
    for task, names in classes.items():
        lab = np.full(len(trials), -1, dtype=np.int64)
        if list(names) != BINARY_CLASSES:  # a class task: the marker's class name
            for i, t in enumerate(trials):
                name = t.payload.get("label")
                if name in names:
                    lab[i] = list(names).index(name)
            out[task] = lab
            continue
        if method == "random":
            raise ScoreError(
                f"score: {where}: the model was trained on shuffled labels "
                "(labels = random, the label-reliability control); there is no "
                "ground truth to score it against"
            )
        rated = [
            i
            for i, t in enumerate(trials)
            if isinstance(t.payload.get(task), (int, float))
            and math.isfinite(float(t.payload[task]))
        ]
        if rated:
            scale = trials[rated[0]].payload.get("scale") or (1.0, 9.0)
            threshold = info.get("threshold")
            lab[rated] = make_labels(
                np.array([float(trials[i].payload[task]) for i in rated]),
                subjects=np.array(
                    [str(trials[i].payload.get("subject")) for i in rated]
                ),
                method=method,
                threshold=None if threshold is None else float(threshold),
                scale=(float(scale[0]), float(scale[1])),
            )
        out[task] = lab
    return out


def session_windows(
    recording: Any,
    *,
    classes: Mapping[str, Sequence[str]],
    window_s: float,
    label_info: Mapping[str, Any] | None = None,
    where: str = "recording",
) -> SessionWindows:
    """Line up a recording's predictions with its samples and trial markers.

    Parameters
    ----------
    recording : Recording
        :func:`~emomon.realtime.recording.read_recording`'s result, with markers.
    classes : mapping of str to sequence of str
        Task -> class names (the model contract's ``tasks``).
    window_s : float
        Window length in seconds of content (the model's feature window).
    label_info : mapping, optional
        The contract's ``info`` (``labels``, ``threshold``); default ``fixed`` at
        the midpoint of the markers' scale.
    where : str
        The recording's name, for messages.

    Returns
    -------
    SessionWindows
    """
    sfreq = float(recording.raw.info["sfreq"])
    preds = recording.predictions
    times = np.asarray(recording.timestamps, dtype=np.float64)
    t = np.array(
        [math.nan if p.get("t_lsl") is None else float(p["t_lsl"]) for p in preds]
    )
    end = _nearest(times, t)
    trials = marker_trials(recording.markers or [])
    window_n = int(round(window_s * sfreq))
    trial = np.full(end.shape, -1, dtype=np.int64)
    if trials:
        starts = np.array([s.start for s in trials])
        ends = np.array([s.end for s in trials])
        first = end - window_n + 1
        k = np.searchsorted(starts, first, side="right") - 1
        inside = (end >= 0) & (k >= 0)
        kk = np.maximum(k, 0)
        inside &= (first >= starts[kk]) & (end <= ends[kk])
        trial[inside] = k[inside]
    ok = np.array([bool(p.get("quality", {}).get("ok")) for p in preds], dtype=bool)
    proba: dict[str, np.ndarray] = {}
    for task, names in classes.items():
        rows = np.full((len(preds), len(names)), np.nan)
        for i, p in enumerate(preds):
            out = p.get(task) or {}
            if out.get("probs"):
                rows[i] = [
                    math.nan if out["probs"].get(c) is None else out["probs"][c]
                    for c in names
                ]
            elif out.get("p_high") is not None:
                rows[i] = (1.0 - out["p_high"], out["p_high"])
        proba[task] = rows
    ok &= np.all([np.isfinite(v).all(axis=1) for v in proba.values()], axis=0)
    per_trial = _task_labels(trials, classes, label_info or {}, where)
    labels = {
        task: np.where(trial >= 0, lab[np.maximum(trial, 0)] if lab.size else -1, -1)
        for task, lab in per_trial.items()
    }
    return SessionWindows(
        seq=np.array([int(p.get("seq", -1)) for p in preds], dtype=np.int64),
        end=end,
        trial=trial,
        ok=ok,
        proba=proba,
        labels=labels,
        trials=trials,
        classes={k: list(v) for k, v in classes.items()},
    )
