"""Did the augmentation help? The observed run against its un-augmented twin.

With ``--augment``, every fold of the observed cross-validation also fits the
same model with the same seed on its real training windows alone and predicts
the same test windows (:func:`~emomon.offline.tasks.fit_fold`'s ``plain``:
``FoldResult.proba_plain``). :func:`augment_summary` compares the two, per
protocol and task, for ``report.json``'s ``results.<protocol>.tasks.<task>.
augment``:

- the pooled balanced accuracy with and without the added samples, pooled as the
  headline is (every tested window once, in window order);
- the paired per-fold differences of the held-out fold's balanced accuracy,
  their mean, the Nadeau-Bengio corrected resampled t-test
  (:func:`~emomon.offline.cvcompare.corrected_resampled_t`, ``n_test/n_train``
  the folds' mean held-out over mean training windows) and a sign-flip p over
  folds (:func:`~emomon.offline.cvcompare.sign_flip_test`), which ignores the
  folds' overlapping training sets and so is anti-conservative: the verdict
  rests on the corrected test;
- the per-fold sanity checks (:func:`~emomon.offline.augment.sanity_check`)
  summarised (:class:`SanitySummary`), beside a class-mean Gaussian reference.

The verdict is the comparison's whatever the sanity checks say ("the report
says whether it helped, either way"); ``evidence`` says whether the samples
passed the sanity checks, the issue's minimum before a comparison counts.
Passing is not realism: a generator anchored on the class means passes TSTR by
construction, which is why the MMD is read beside the reference's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from emomon.offline._jsonread import _float, _int, _map, _seq, _str, to_jsonable
from emomon.offline.augment import COLLAPSED_VAR_RATIO
from emomon.offline.cvcompare import corrected_resampled_t, sign_flip_test
from emomon.offline.metrics import summarize

if TYPE_CHECKING:  # pragma: no cover
    from emomon.offline.crossval import CVResult

__all__ = [
    "ALPHA",
    "SIGN_FLIP_NOTE",
    "AugmentSummary",
    "SanitySummary",
    "augment_summary",
    "sanity_summary",
]

#: Level of the comparison's and the sanity check's tests (the report's).
ALPHA = 0.05
#: What the sign-flip p over folds does not account for.
SIGN_FLIP_NOTE = "ignores the folds' overlapping training sets (anti-conservative)"


@dataclass(frozen=True)
class SanitySummary:
    """The per-fold sanity checks of one task, summarised over folds.

    Attributes
    ----------
    n_folds : int
        Folds whose checks ran and gave a TSTR for the task.
    tstr_mean, trtr_mean : float or None
        Mean balanced accuracy on held-out real windows of a classifier trained
        on generated samples (TSTR) and on real ones (TRTR).
    chance : float or None
        ``1 / n_classes``.
    tstr_above_chance : int
        Folds with TSTR > chance.
    tstr_p : float or None
        One-sided sign-flip p of ``TSTR - chance`` over folds (mean > 0). It
        takes the folds as independent, which their overlapping training sets
        are not (:data:`SIGN_FLIP_NOTE`): read it as a screen, not a
        calibrated test.
    trtr_p : float or None
        The same of ``TRTR - chance``: whether real windows pass the check; when
        they do not either, a failed TSTR says nothing about the generator (the
        check has no power on this set: "inconclusive").
    mmd2_mean, mmd2_real_mean : float or None
        Mean MMD² of generated vs held-out real windows, and of real fitting
        vs held-out real windows (the distance the videos' content makes).
    mmd_below, mmd_real_below : int
        Folds whose MMD permutation p < 0.05, for each.
    tstr_reference_mean, mmd2_reference_mean : float or None
        The same TSTR and MMD² of the reference that knows only each class's
        mean and the within-class covariance (class mean plus Gaussian noise;
        :func:`~emomon.offline.augment.sanity_check`): a generator that does
        no better has shown nothing beyond those two moments, however well it
        passes.
    var_ratio_mean : float or None
        Mean summed feature variance of the samples over the real windows'.
    collapsed : bool
        ``var_ratio_mean`` under
        :data:`~emomon.offline.augment.COLLAPSED_VAR_RATIO`: samples huddled
        near the class means pass TSTR, but what they add is shrinkage towards
        those means, not realistic data.
    passed : bool
        ``tstr_p < ALPHA`` and not ``collapsed``: generated samples teach a
        classifier that is above chance on real windows. With few folds (6
        videos: p >= 1/64) the test may lack power, so a useful generator can
        fail it. Passing is the issue's minimum, not realism: a generator
        anchored on the class means passes TSTR by construction, so read the
        MMD and the reference beside it. The MMD is reported, not gated on:
        real-vs-real already differs across videos.
    """

    n_folds: int = 0
    tstr_mean: float | None = None
    trtr_mean: float | None = None
    chance: float | None = None
    tstr_above_chance: int = 0
    tstr_p: float | None = None
    trtr_p: float | None = None
    mmd2_mean: float | None = None
    mmd2_real_mean: float | None = None
    mmd_below: int = 0
    mmd_real_below: int = 0
    tstr_reference_mean: float | None = None
    mmd2_reference_mean: float | None = None
    var_ratio_mean: float | None = None
    collapsed: bool = False
    passed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (NaN as None)."""
        return to_jsonable(dict(self.__dict__))  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SanitySummary:
        """Read :meth:`to_dict`'s output leniently (missing values: None / 0)."""
        ints = ("n_folds", "tstr_above_chance", "mmd_below", "mmd_real_below")
        floats = ("tstr_mean", "trtr_mean", "chance", "tstr_p", "trtr_p",
                  "mmd2_mean", "mmd2_real_mean", "tstr_reference_mean",
                  "mmd2_reference_mean", "var_ratio_mean")  # fmt: skip
        return cls(
            **{k: _int(d.get(k)) or 0 for k in ints},
            **{k: _float(d.get(k)) for k in floats},
            collapsed=d.get("collapsed") is True,
            passed=d.get("passed") is True,
        )


@dataclass(frozen=True)
class AugmentSummary:
    """One task's comparison of a run with augmentation against its twin without.

    Attributes
    ----------
    method : str
    ratio : float
        Samples added per real training window.
    balanced_accuracy_with, balanced_accuracy_without : float or None
        Pooled over all tested windows (the first is the headline).
    fold_differences : tuple of float
        Per fold, with minus without, of the held-out windows' balanced
        accuracy (folds where it is undefined left out), in fold order.
    mean_difference : float or None
    test_train_ratio : float or None
        Mean held-out over mean training windows of the folds (the
        Nadeau-Bengio correction's ``n_test/n_train``).
    corrected_t, corrected_p : float or None
        Nadeau-Bengio corrected resampled t and its two-sided p (None with
        fewer than 2 folds; t None when every difference is equal).
    sign_flip_p : float or None
        Two-sided sign-flip p over folds: :data:`SIGN_FLIP_NOTE`.
    sign_flip_exact : bool
        All 2^J flips (J <= 20), else 10000 seeded draws.
    verdict : str
        ``helped`` / ``hurt`` (corrected p < :data:`ALPHA`, mean difference
        above / below 0), ``no significant difference``, ``not tested`` (fewer
        than 2 folds) or ``not compared`` (a fold without its twin).
    sanity : SanitySummary or None
        None when the sanity checks were not run (``augment_check`` false).
    """

    method: str
    ratio: float
    balanced_accuracy_with: float | None = None
    balanced_accuracy_without: float | None = None
    fold_differences: tuple[float, ...] = ()
    mean_difference: float | None = None
    test_train_ratio: float | None = None
    corrected_t: float | None = None
    corrected_p: float | None = None
    sign_flip_p: float | None = None
    sign_flip_exact: bool = True
    verdict: str = "not compared"
    sanity: SanitySummary | None = None

    @property
    def sanity_status(self) -> str:
        """The sanity checks' outcome, one of five words.

        ``passed``, ``FAILED``, ``FAILED: collapsed``, ``inconclusive`` or
        ``not checked``. ``inconclusive``: neither the samples nor the real
        windows teach a classifier that is above chance on held-out training
        videos.
        """
        if self.sanity is None:
            return "not checked"
        if self.sanity.passed:
            return "passed"
        if self.sanity.collapsed:
            return "FAILED: collapsed"
        trtr_p = self.sanity.trtr_p
        return "inconclusive" if trtr_p is None or trtr_p >= ALPHA else "FAILED"

    @property
    def evidence(self) -> bool:
        """Whether the samples passed their sanity checks: the comparison counts."""
        return self.sanity is not None and self.sanity.passed

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict.

        ``sanity_status``, ``evidence`` and ``sign_flip_note`` are spelled out
        for readers of the file (:meth:`read` derives them again).
        """
        d = dict(self.__dict__)
        d["fold_differences"] = list(self.fold_differences)
        d["sanity"] = self.sanity.to_dict() if self.sanity else None
        d["sanity_status"] = self.sanity_status
        d["evidence"] = self.evidence
        d["sign_flip_note"] = SIGN_FLIP_NOTE
        return to_jsonable(d)  # type: ignore[no-any-return]

    @classmethod
    def read(cls, x: Any) -> AugmentSummary | None:
        """Read :meth:`to_dict`'s output leniently; None for anything else."""
        if not isinstance(x, Mapping) or _str(x.get("method")) is None:
            return None
        floats = ("balanced_accuracy_with", "balanced_accuracy_without",
                  "mean_difference", "test_train_ratio", "corrected_t",
                  "corrected_p", "sign_flip_p")  # fmt: skip
        diffs = [_float(v) for v in _seq(x.get("fold_differences"))]
        sanity = x.get("sanity")
        return cls(
            method=str(x["method"]),
            ratio=_float(x.get("ratio")) or 0.0,
            fold_differences=tuple(v for v in diffs if v is not None),
            sign_flip_exact=x.get("sign_flip_exact") is not False,
            verdict=str(x.get("verdict", "not compared")),
            sanity=SanitySummary.from_dict(sanity)
            if isinstance(sanity, Mapping)
            else None,
            **{k: _float(x.get(k)) for k in floats},
        )


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _mean(v: Sequence[float]) -> float | None:
    return float(np.mean(v)) if len(v) else None


def _one_sided_above(v: Sequence[float]) -> float | None:
    """One-sided sign-flip p that the mean of ``v`` is above 0 (None if empty)."""
    if not len(v):
        return None
    return float(sign_flip_test(np.asarray(v), alternative="greater")["p"])


def augment_summary(
    cv: CVResult,
    y: np.ndarray,
    *,
    task: str,
    n_classes: int,
    method: str,
    ratio: float,
) -> AugmentSummary:
    """Compare one task's observed cross-validation with its un-augmented twin.

    Parameters
    ----------
    cv : CVResult
        The observed run's pooled predictions and folds (``proba_plain`` and
        ``augment["sanity"]`` per fold).
    y : ndarray of int, shape (n_windows,)
        The task's true class of every window.
    task : str
    n_classes : int
    method : str
    ratio : float

    Returns
    -------
    AugmentSummary
    """

    def ba(yy: np.ndarray, p: np.ndarray) -> float:
        if not yy.size:
            return math.nan
        return summarize(yy, p, n_classes=n_classes)["balanced_accuracy"]

    tested = cv.tested
    sanity = sanity_summary([f.augment for f in cv.folds], task=task)
    out: dict[str, Any] = {
        "method": method,
        "ratio": float(ratio),
        "balanced_accuracy_with": _finite(ba(y[tested], cv.proba[task][tested])),
        "sanity": sanity,
    }
    if not cv.folds or any(task not in f.proba_plain for f in cv.folds):
        return AugmentSummary(**out)  # verdict "not compared"
    # Pooled as pool_folds pools the headline: each fold's test windows in place.
    plain = np.full_like(cv.proba[task], np.nan)
    for f in cv.folds:
        plain[f.test] = f.proba_plain[task]
    out["balanced_accuracy_without"] = _finite(ba(y[tested], plain[tested]))
    diffs, n_test, n_train = [], [], []
    for f in cv.folds:
        d = ba(y[f.test], f.proba[task]) - ba(y[f.test], f.proba_plain[task])
        if math.isfinite(d):
            diffs.append(d)
            n_test.append(f.n_test)
            n_train.append(f.n_train)
    d = np.asarray(diffs)
    out["fold_differences"] = tuple(float(v) for v in d)
    out["mean_difference"] = _mean(diffs)
    if d.size:
        flip = sign_flip_test(d)
        out["sign_flip_p"] = float(flip["p"])
        out["sign_flip_exact"] = bool(flip["exact"])
    if d.size < 2 or not np.mean(n_train):
        return AugmentSummary(**out, verdict="not tested")
    ratio_tt = float(np.mean(n_test) / np.mean(n_train))
    nb = corrected_resampled_t(d, test_train_ratio=ratio_tt)
    p, mean = float(nb["p"]), float(nb["mean"])
    verdict = "no significant difference"
    if p < ALPHA and mean != 0:
        verdict = "helped" if mean > 0 else "hurt"
    return AugmentSummary(
        **out,
        test_train_ratio=ratio_tt,
        corrected_t=_finite(nb["t"]),
        corrected_p=p,
        verdict=verdict,
    )


def sanity_summary(
    records: Sequence[Mapping[str, Any]], *, task: str
) -> SanitySummary | None:
    """Summarise the folds' sanity checks of one task.

    Parameters
    ----------
    records : sequence of mapping
        Each fold's ``FoldResult.augment`` (``sanity`` where the checks ran:
        :func:`~emomon.offline.augment.sanity_check`'s dict).
    task : str

    Returns
    -------
    SanitySummary or None
        None when no fold ran the checks.
    """
    rows = [_map(r.get("sanity")) for r in records if _map(r.get("sanity"))]
    if not rows:
        return None

    def task_values(key: str) -> list[float]:
        v = (_float(_map(r.get(key)).get(task)) for r in rows)
        return [x for x in v if x is not None]

    def with_chance(key: str) -> list[tuple[float, float]]:
        """(score, chance) of the folds where both are defined."""
        return [
            (t, c)
            for r in rows
            if (t := _float(_map(r.get(key)).get(task))) is not None
            and (c := _float(_map(r.get("chance")).get(task))) is not None
        ]

    pairs = with_chance("tstr")
    above = np.array([t - c for t, c in pairs])
    p = _one_sided_above(above)

    def mmd(key: str) -> tuple[float | None, int]:
        m = [_map(r.get(key)) for r in rows]
        v = [x for x in (_float(d.get("mmd2")) for d in m) if x is not None]
        ps = [x for x in (_float(d.get("p")) for d in m) if x is not None]
        return _mean(v), sum(x < 0.05 for x in ps)

    (mmd2, n_mmd), (mmd2_real, n_real) = mmd("mmd"), mmd("mmd_real")
    mmd2_ref, _ = mmd("mmd_reference")
    var = [x for x in (_float(r.get("var_ratio")) for r in rows) if x is not None]
    collapsed = bool(var) and float(np.mean(var)) < COLLAPSED_VAR_RATIO
    return SanitySummary(
        n_folds=len(pairs),
        tstr_mean=_mean([t for t, _ in pairs]),
        trtr_mean=_mean(task_values("trtr")),
        chance=_mean([c for _, c in pairs]),
        tstr_above_chance=int((above > 0).sum()),
        tstr_p=p,
        trtr_p=_one_sided_above([t - c for t, c in with_chance("trtr")]),
        mmd2_mean=mmd2,
        mmd2_real_mean=mmd2_real,
        mmd_below=n_mmd,
        mmd_real_below=n_real,
        tstr_reference_mean=_mean(task_values("tstr_reference")),
        mmd2_reference_mean=mmd2_ref,
        var_ratio_mean=_mean(var),
        collapsed=collapsed,
        passed=p is not None and p < ALPHA and not collapsed,
    )
