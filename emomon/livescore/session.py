"""Score a recorded session: live and offline columns, latency, flags.

See :mod:`emomon.livescore` for the rules.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emomon.livescore.stats import (
    TaskScore,
    _clean,
    flagged_summary,
    latency_summary,
    score_windows,
)
from emomon.livescore.windows import ScoreError, session_windows

__all__ = ["SessionScore", "format_session_score", "offline_proba", "score_session"]


@dataclass(frozen=True)
class SessionScore:
    """What ``emomon score`` reports.

    Attributes
    ----------
    recording : str
    model : str
        The model file used for labels and the offline column ("" if none).
    live, offline : dict of str to TaskScore
        Task -> the live predictions' score and the offline recomputation's on
        the same windows (empty when not computed; ``offline_note`` says why).
    compared : dict
        Windows in both columns, windows live only, largest probability
        difference per task.
    latency : dict
        p50/p95/p99/max of ``sample_age_ms`` and ``latency_ms`` (ms).
    flagged : dict
        Windows published, flagged, their reasons (counted per channel finding)
        and the samples lost inside windows.
    trials : int
        Trials found in the markers.
    null : str
        How the permutation null was drawn.
    offline_note : str
    """

    recording: str
    model: str
    live: dict[str, TaskScore]
    offline: dict[str, TaskScore]
    compared: dict[str, Any]
    latency: dict[str, Any]
    flagged: dict[str, Any]
    trials: int
    null: str
    offline_note: str = ""
    windows: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return _clean(
            {
                "recording": self.recording,
                "model": self.model,
                "trials": self.trials,
                "null": self.null,
                "windows": self.windows,
                "live": {k: v.to_dict() for k, v in self.live.items()},
                "offline": {k: v.to_dict() for k, v in self.offline.items()},
                "offline_note": self.offline_note,
                "compared": self.compared,
                "latency": self.latency,
                "flagged": self.flagged,
            }
        )


def _recorded_uv(raw: Any) -> np.ndarray:
    """Return the recorded EEG in µV as the pipeline received it, (n_channels, n_times).

    The FIF holds µV / 1e6 in float64; times 1e6 is within an ulp of the µV.
    Samples that came as float32 (LSL amplifiers, emomon replay) are exact
    again once cast to float32, so they are, when every sample allows it.
    """
    x = raw.get_data() * 1e6
    x32 = x.astype(np.float32).astype(np.float64)
    tol = 4.0 * np.finfo(np.float64).eps * np.maximum(np.abs(x), 1e-300)
    return x32 if bool(np.all(np.abs(x32 - x) <= tol)) else x


def offline_proba(
    recording: Any, model: Any, *, hop_s: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the model over the recorded EEG through the offline feature path.

    Parameters
    ----------
    recording : Recording
    model : LoadedModel
        :func:`~emomon.realtime.model.load_model` of the session's model.
    hop_s : float
        The live hop (s); the windows then end on the live windows' samples.

    Returns
    -------
    end : ndarray of int, shape (n_windows,)
        Recorded sample of each window's last sample.
    proba : dict of str to ndarray, shape (n_windows, k)

    Raises
    ------
    ScoreError
        If the recording is not at the model's rate, lacks a model channel, or
        holds non-finite samples (the live pipeline held them; the offline path
        refuses them).
    """
    from emomon.datasets import Trial
    from emomon.dsp.normalize import model_input
    from emomon.errors import DatasetError
    from emomon.offline.features import trial_features
    from emomon.realtime.pipeline import map_channels

    c = model.contract
    sfreq = float(recording.raw.info["sfreq"])
    if abs(sfreq - c.sfreq) > 1e-9:
        raise ScoreError(
            f"recorded at {sfreq:g} Hz, the model reads {c.sfreq:g} Hz (the live "
            "pipeline resampled; the offline path does not)"
        )
    rows = map_channels(c.ch_names, recording.raw.ch_names)
    x = _recorded_uv(recording.raw)[rows]
    whole = Trial(
        subject="session",
        video="session",
        eeg=x,
        sfreq=sfreq,
        ch_names=tuple(c.ch_names),
    )
    try:
        tf = trial_features(whole, dataclasses.replace(c.spec, hop_s=float(hop_s)))
    except DatasetError as exc:
        raise ScoreError(f"the offline feature path refused it ({exc})") from None
    end = np.round(tf.t_end * sfreq).astype(np.int64) - 1
    inp = model_input(
        tf.values,
        mean=c.norm_mean,
        std=c.norm_std,
        layout=c.input_kind,
        ch_names=c.ch_names,
    )
    outs = model.session.run(None, {c.input_name: inp.astype(np.float32)})
    names = model.output_names
    proba = {
        task: np.asarray(outs[names.index(task)], dtype=np.float64) for task in c.tasks
    }
    return end, proba


def _open(path: str | Path) -> Any:
    from emomon.realtime.recording import RecordError, read_recording

    try:
        return read_recording(path)
    except RecordError as exc:
        raise ScoreError(
            f"score: {exc.render()}; pass the .fif that `emomon stream --record` "
            "wrote (its .predictions.jsonl and .timestamps.npy beside it)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ScoreError(
            f"score: {path} cannot be read as an emomon recording ({exc}); pass "
            "the .fif that `emomon stream --record` wrote"
        ) from None


def _model_for(recording: Any, path: str | Path, model: str | Path | None) -> Any:
    from emomon.realtime.model import load_model

    desc = recording.description
    if model is None:
        stored = (desc.get("metadata") or {}).get("model_file")
        if not stored or not Path(stored).is_file():
            raise ScoreError(
                f"score: {path}: its model file {stored!r} is not there; pass "
                "{model} (the model.onnx the session ran)",
                params=("model",),
            )
        model = stored
    loaded = load_model(model)
    if desc.get("model") and loaded.digest != desc["model"]:
        raise ScoreError(
            f"score: {path} was predicted by model {desc['model']} but {model} is "
            f"{loaded.digest}; pass {{model}} with the model.onnx the session ran",
            params=("model",),
        )
    return loaded


def score_session(
    path: str | Path,
    *,
    model: str | Path | None = None,
    permutations: int = 999,
    n_boot: int = 1000,
    seed: int = 0,
    offline: bool = True,
) -> SessionScore:
    """Score a recorded session (see the module docstring for the rules).

    Parameters
    ----------
    path : str or Path
        The recording's ``.fif`` (``emomon stream --record``).
    model : str or Path, optional
        The session's ``model.onnx``; default the file the recording names
        (checked against the model id of its predictions).
    permutations : int
        Label permutations of the fixed-model null (0: not tested, no interval).
    n_boot : int
        Bootstrap resamples of the trials for the interval.
    seed : int
        Seed of the permutations and the bootstrap (the same for both columns).
    offline : bool
        Also run the model offline over the recorded EEG (the second column).

    Returns
    -------
    SessionScore

    Raises
    ------
    ScoreError
        If the file is not a recording, holds no markers or no complete trial,
        or the model is missing or not the session's.
    """
    rec = _open(path)
    if rec.markers is None:
        raise ScoreError(
            f"score: {path} holds no marker stream (recorded without one); record "
            "from an emomon replay (its markers are kept) or name the marker "
            "stream with `emomon stream --record ... --markers NAME`"
        )
    loaded = _model_for(rec, path, model)
    c = loaded.contract
    win = session_windows(
        rec, classes=c.tasks, window_s=c.spec.window_s, label_info=c.info,
        where=str(path),
    )  # fmt: skip
    if not win.trials:
        raise ScoreError(
            f"score: {path}: its {len(rec.markers)} markers hold no complete trial "
            "(a trial_start and its trial_end as emomon replay sends them); "
            "nothing to score"
        )
    meta = rec.description.get("metadata") or {}
    hop_s = float(meta.get("hop_s") or 0.25)
    off_end = off_p = None
    note = ""
    if offline:
        try:
            off_end, off_p = offline_proba(rec, loaded, hop_s=hop_s)
        except ScoreError as exc:
            note = f"no offline column: {exc.render()}"
        # what the live pipeline did beyond the offline path: say so, not hide it
        if meta.get("smoothing"):
            note = (
                f"the live probabilities were smoothed (--smoothing "
                f"{meta['smoothing']:g}); the offline ones are not"
            )
        if meta.get("interpolate"):
            note += ("; " if note else "") + (
                "the live pipeline interpolated flagged channels (--interpolate); "
                "the offline path does not"
            )
    else:
        note = "offline column not asked for"
    live: dict[str, TaskScore] = {}
    off: dict[str, TaskScore] = {}
    compared: dict[str, Any] = {}
    for task, names in c.tasks.items():
        mask = win.scored(task)
        k = len(names)
        if off_end is not None and off_p is not None:
            # the same windows: the live windows whose end sample the offline
            # path also ends a window on
            pos = np.searchsorted(off_end, win.end)
            pos = np.minimum(pos, max(off_end.size - 1, 0))
            twin = (off_end.size > 0) & (off_end[pos] == win.end)
        live[task] = score_windows(
            win.labels[task][mask], win.proba[task][mask],
            win.trial[mask].astype(str), n_classes=k,
            permutations=permutations, n_boot=n_boot, seed=seed,
        )  # fmt: skip
        if off_end is not None and off_p is not None:
            # the same windows: the live windows whose last sample the offline
            # path also ends a window on (all of them, unless the live pipeline
            # restarted: a lost and returned stream starts a new window grid)
            pos = np.searchsorted(off_end, win.end)
            pos = np.minimum(pos, max(off_end.size - 1, 0))
            twin = (off_end.size > 0) & (off_end[pos] == win.end)
            both = mask & twin
            y = win.labels[task][both]
            units = win.trial[both].astype(str)
            po = off_p[task][pos[both]]
            off[task] = score_windows(
                y, po, units, n_classes=k,
                permutations=permutations, n_boot=n_boot, seed=seed,
            )  # fmt: skip
            diff = np.abs(po - win.proba[task][both])
            compared[task] = {
                "windows": int(both.sum()),
                "live_only": int((mask & ~twin).sum()),
                "max_abs_proba_diff": float(diff.max()) if diff.size else None,
            }
            if compared[task]["live_only"]:  # the live column on the same windows
                compared[task]["live_same_windows"] = score_windows(
                    y, win.proba[task][both], units, n_classes=k,
                    permutations=permutations, n_boot=n_boot, seed=seed,
                ).to_dict()  # fmt: skip
    n = win.seq.size
    return SessionScore(
        recording=str(path),
        model=str(loaded.path),
        live=live,
        offline=off,
        compared=compared,
        latency=latency_summary(rec.predictions),
        flagged=flagged_summary(rec.predictions),
        trials=len(win.trials),
        null=(
            f"the trials' labels permuted among the session's {len(win.trials)} "
            "trials (every window of a trial keeps one label; the fixed model's "
            "predictions stay): the test-set permutation null of a model that is "
            f"not retrained; every distinct arrangement once when there are at "
            f"most {permutations + 1} (exact), else {permutations} random ones "
            f"(seed {seed})"
            if permutations
            else "no permutation test (--permutations 0): not tested, no interval"
        ),
        offline_note=note,
        windows={
            "published": int(n),
            "in_a_trial": int((win.trial >= 0).sum()),
            "flagged_in_a_trial": int(((win.trial >= 0) & ~win.ok).sum()),
        },
    )


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, fmt)


def _cell(s: TaskScore) -> str:
    m = s.metrics
    ci = (
        f" [{_num(s.ci95[0])}, {_num(s.ci95[1])}]"
        if s.ci95[0] is not None and s.ci95[1] is not None
        else ""
    )
    p = ""
    if s.p_value is not None:
        how = (
            f"exact, {s.arrangements} arrangements"
            if s.exact
            else f"{s.n_permutations} permutations"
        )
        p = f" p={_num(s.p_value, '.4f')} ({how})"
    if s.verdict == "inconclusive" and s.min_p is not None:
        p += f" (p cannot go below {_num(s.min_p, '.3f')})"
    return (
        f"bal.acc {_num(m['balanced_accuracy'])}{ci}{p} {s.verdict}; acc "
        f"{_num(m['accuracy'])}, AUC {_num(m['auc'])} ({s.n_windows} windows, "
        f"{s.n_trials} trials)"
    )


def format_session_score(score: SessionScore) -> str:
    """Return the console report of :func:`score_session`."""
    w = score.windows
    lines = [
        f"session {score.recording} (model {score.model}): {score.trials} trials "
        f"in the markers; {w.get('published', 0)} windows published, "
        f"{w.get('in_a_trial', 0)} inside a trial "
        f"({w.get('flagged_in_a_trial', 0)} of them flagged, not scored)",
        f"null: {score.null}",
    ]
    for task, s in score.live.items():
        lines.append(f"{task}")
        lines.append(f"  live     {_cell(s)}")
        if task in score.offline:
            lines.append(f"  offline  {_cell(score.offline[task])}")
            cmp = score.compared[task]
            if "live_same_windows" in cmp:
                same = TaskScore(**cmp["live_same_windows"])
                lines.append(f"  live on the offline column's windows: {_cell(same)}")
            diff = _num(cmp["max_abs_proba_diff"], ".2g")
            lines.append(
                f"  same windows: {cmp['windows']} (live only: {cmp['live_only']}); "
                f"largest probability difference {diff}"
            )
    if score.offline_note:
        lines.append(score.offline_note)
    lat = score.latency
    for key, what in (
        ("sample_age_ms", "sender push -> prediction"),
        ("latency_ms", "in emomon (chunk read -> prediction)"),
    ):
        d = lat[key]
        lines.append(
            f"latency {what}: p50 {_num(d['p50'], '.1f')} ms, p95 "
            f"{_num(d['p95'], '.1f')} ms, p99 {_num(d['p99'], '.1f')} ms, max "
            f"{_num(d['max'], '.1f')} ms ({d['n']} windows)"
        )
    lines.append(f"clock: {lat['clock']}")
    f = score.flagged
    why = ", ".join(f"{k} {v}" for k, v in f["reasons"].items()) or "none"
    lines.append(
        f"flagged windows: {f['flagged']} of {f['published']} (reasons: {why}); "
        f"samples lost inside windows {f['dropped']}; windows with interpolated "
        f"channels {f['interpolated']}"
    )
    return "\n".join(lines)
