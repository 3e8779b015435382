"""The numbers of one task (metrics, null, interval, verdict), latency and flags.

Metrics, interval, p-value and verdict come from
:func:`emomon.offline.scoring.score_task`, the offline report's function; the
null of a fixed model from :func:`emomon.offline.scoring.fixed_model_null`, or,
when the session's trials allow few label arrangements, from every arrangement
once (the exact test).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emomon.offline.runreport import ALPHA  # the verdicts' level, the report's

__all__ = [
    "ALPHA",
    "TaskScore",
    "arrangements",
    "flagged_summary",
    "latency_summary",
    "score_windows",
]


@dataclass(frozen=True)
class TaskScore:
    """One task's numbers for one set of predictions (live or offline).

    Attributes
    ----------
    n_windows, n_trials : int
        Windows scored and the trials they belong to.
    metrics : dict
        :func:`emomon.offline.metrics.summarize` (``balanced_accuracy``,
        ``accuracy``, ``auc``, ``f1``, ``confusion``, ...).
    ci95 : (float or None, float or None)
        Bootstrap interval of the balanced accuracy resampling trials; None
        without a permutation test.
    p_value : float or None
        Permutation p-value (None: not tested).
    n_permutations : int
        Label arrangements in the null.
    arrangements : int
        Distinct assignments of the session's trial labels to its trials (the
        multinomial coefficient of the class counts).
    exact : bool
        Whether the null holds every other arrangement once (when there are
        no more than ``permutations + 1``): the exact test, whose p-value
        cannot fall below ``1 / arrangements``. Otherwise ``permutations``
        random shuffles (Monte Carlo).
    min_p : float or None
        The smallest p-value the test can give, ``1 / (n_permutations + 1)``;
        None without a test.
    verdict : str
        ``"above chance"`` (p < alpha), ``"at chance"``, ``"inconclusive"``
        (``min_p >= alpha``: too few permutations, or too few trials, e.g. 2 high
        and 2 low trials have 6 arrangements, p >= 1/6) or ``"not tested"``.
    """

    n_windows: int
    n_trials: int
    metrics: dict[str, Any]
    ci95: tuple[float | None, float | None]
    p_value: float | None
    n_permutations: int
    arrangements: int
    exact: bool
    min_p: float | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None)."""
        return _clean(dataclasses.asdict(self))


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def arrangements(trial_labels: np.ndarray) -> int:
    """Distinct assignments of ``trial_labels`` to the trials (multinomial).

    Parameters
    ----------
    trial_labels : ndarray of int, shape (n_trials,)

    Returns
    -------
    int
        ``n! / prod(n_c!)`` over the classes ``c``.
    """
    counts = np.bincount(np.asarray(trial_labels, dtype=np.int64))
    out = math.factorial(int(counts.sum()))
    for c in counts:
        out //= math.factorial(int(c))
    return out


def score_windows(
    y: np.ndarray,
    proba: np.ndarray,
    trials: np.ndarray,
    *,
    n_classes: int,
    permutations: int,
    n_boot: int = 1000,
    seed: int = 0,
) -> TaskScore:
    """Score a fixed model's windows: metrics, permutation null by trial, interval.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        Class of each window (its trial's).
    proba : ndarray, shape (n, k)
        Class probabilities.
    trials : ndarray, shape (n,)
        Trial of each window (the exchangeable unit).
    n_classes : int
    permutations : int
        Label permutations of the null (0: not tested, no interval); when the
        trials allow no more distinct arrangements than this, each is taken
        once (the exact test).
    n_boot : int
        Bootstrap resamples of the trials.
    seed : int
        Seed of the permutations and of the bootstrap.

    Returns
    -------
    TaskScore
    """
    from emomon.offline.metrics import balanced_accuracy, predict
    from emomon.offline.scoring import fixed_model_null, score_task

    p = proba[:, 1] if proba.shape[1] == 2 else proba  # summarize's binary form
    names, first, code = np.unique(trials, return_index=True, return_inverse=True)
    code = code.reshape(-1)
    trial_label = y[first]
    n_trials = int(names.size)
    n_arr = arrangements(trial_label) if n_trials else 0
    exact = False
    null: np.ndarray | None = None
    if permutations > 0 and y.size:
        exact = n_arr <= permutations + 1
        if exact:  # every other arrangement once: the exact test
            pred = predict(p)
            null = np.array(
                [
                    balanced_accuracy(lab[code], pred, n_classes=n_classes)
                    for lab in _other_arrangements(trial_label)
                ]
            )
        else:
            null = fixed_model_null(
                y, p, trials, n_permutations=permutations, n_classes=n_classes,
                seed=seed,
            )  # fmt: skip
    # The offline report's function: metrics, the interval resampling trials
    # only beside a p, and the verdict. With every other arrangement as the
    # null, Phipson & Smyth's (1 + #(null >= observed)) / (1 + n) is the exact
    # p-value, and its "inconclusive when 1 / (n + 1) >= alpha" is 1 /
    # arrangements >= alpha.
    scored = score_task(
        y, p, units=np.asarray(trials).astype(str), unit="trial",
        n_classes=n_classes, null=null, n_boot=n_boot, seed=seed,
    )  # fmt: skip
    perm = scored.permutation
    return TaskScore(
        int(y.size),
        n_trials,
        scored.metrics.to_dict(),
        scored.ci95,
        None if perm is None else perm.p_value,
        0 if perm is None else perm.n,
        n_arr,
        exact and perm is not None,
        None if perm is None else 1.0 / (perm.n + 1),
        scored.verdict,
    )


def _other_arrangements(trial_labels: np.ndarray) -> list[np.ndarray]:
    """Every distinct arrangement of ``trial_labels`` but the observed one."""
    lab = np.asarray(trial_labels, dtype=np.int64)
    n = lab.size
    classes = np.unique(lab)
    out: list[np.ndarray] = []

    def place(k: int, free: tuple[int, ...], cur: np.ndarray) -> None:
        if k == classes.size - 1:
            cur = cur.copy()
            cur[list(free)] = classes[k]
            if not np.array_equal(cur, lab):
                out.append(cur)
            return
        need = int(np.sum(lab == classes[k]))
        for pick in itertools.combinations(free, need):
            nxt = cur.copy()
            nxt[list(pick)] = classes[k]
            place(k + 1, tuple(i for i in free if i not in pick), nxt)

    if n:
        place(0, tuple(range(n)), np.empty(n, dtype=np.int64))
    return out


def _percentiles(values: Sequence[float | None]) -> dict[str, Any]:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], float)
    if v.size == 0:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    q = np.percentile(v, [50, 95, 99])
    return {
        "n": int(v.size),
        "p50": float(q[0]),
        "p95": float(q[1]),
        "p99": float(q[2]),
        "max": float(v.max()),
    }


def latency_summary(predictions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Latency of the published predictions, from the recorded payloads.

    Returns
    -------
    dict
        ``sample_age_ms`` (sender's stamp of the window's last sample -> publication)
        and ``latency_ms`` (chunk read by emomon -> publication), each with ``n``,
        ``p50``, ``p95``, ``p99``, ``max`` in ms (None where nothing was
        recorded), and ``clock``.
    """
    return {
        "clock": "this machine's LSL clock (local_clock); the sender's stamps "
        "mapped by the inlet's time correction",
        "sample_age_ms": _percentiles(
            [(p.get("quality") or {}).get("sample_age_ms") for p in predictions]
        ),
        "latency_ms": _percentiles([p.get("latency_ms") for p in predictions]),
    }


def flagged_summary(predictions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Summarise the quality flags the pipeline published.

    Returns
    -------
    dict
        ``published``, ``flagged`` (windows not predicted on), ``reasons``
        (reason -> channel findings in flagged windows), ``channels`` (channel
        -> flagged windows naming it), ``dropped`` (samples lost inside
        windows, summed), ``interpolated`` (windows predicted on with
        interpolated channels).
    """
    reasons: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    flagged = dropped = interpolated = 0
    for p in predictions:
        q = p.get("quality") or {}
        dropped += int(q.get("dropped") or 0)
        why = q.get("reasons") or {}
        if q.get("ok"):
            interpolated += any(r == "interpolated" for r in why.values())
            continue
        flagged += 1
        for ch in q.get("bad_channels") or []:
            channels[str(ch)] += 1
            reasons[str(why.get(ch, "unspecified"))] += 1
        if not q.get("bad_channels") and q.get("dropped"):
            reasons["dropped samples"] += 1
    return {
        "published": len(predictions),
        "flagged": flagged,
        "reasons": dict(reasons.most_common()),
        "channels": dict(channels.most_common()),
        "dropped": dropped,
        "interpolated": interpolated,
    }
