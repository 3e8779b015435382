"""What a task's paper plots are drawn from, carried in report.json.

One :class:`FigureData` per task and protocol (``report.json``:
``results.<protocol>.tasks.<task>.figures``, optional: reports written before it
existed read without it and simply lack these plots):

- ``roc``: ROC curve points (one-vs-rest for more than two classes), with each
  curve's AUC by :func:`emomon.offline.metrics.roc_auc`;
- ``contrast``: per channel and band, the mean feature of the windows of each
  class minus that of the other windows (binary: high minus low), of the
  features the model trained on (DE where the spec has it);
- ``importance``: permutation importance per channel x band
  (:mod:`emomon.offline.importance`), pooled over folds;
- ``learning``: per fold, the fit's training loss and inner-validation loss and
  balanced accuracy per epoch (neural models only: logreg has no epochs).

:func:`task_figures` computes them in the offline run (called from
:func:`emomon.offline.evaluate.score_protocol`); :mod:`emomon.offline.paperplots`
draws them from the report alone.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from emomon.offline._jsonread import _float as _f
from emomon.offline._jsonread import _seq, to_jsonable

if TYPE_CHECKING:  # pragma: no cover
    from emomon.offline.crossval import CVResult
    from emomon.offline.dataset import Dataset

__all__ = [
    "ROC_MAX_POINTS",
    "ContrastRow",
    "FeatureContrast",
    "FigureData",
    "Importance",
    "LearningCurve",
    "RocCurve",
    "roc_points",
    "task_figures",
]

#: Most points a stored ROC curve keeps (per class). Collinear points are
#: dropped first, which leaves the area unchanged; beyond this count the curve
#: is thinned to evenly spaced points (the plot prints the report's AUC, never
#: the thinned curve's area, which is within 1/ROC_MAX_POINTS of it).
ROC_MAX_POINTS = 400

#: Unit of a feature kind's class difference, for the colour bar.
KIND_UNITS = {
    "de": "nats (half the ln power ratio)",
    "psd": "log10 power ratio",
}

Matrix = tuple[tuple[float | None, ...], ...]


def _i(x: Any) -> int | None:
    v = _f(x)
    return None if v is None else int(v)


def _floats(x: Any) -> tuple[float | None, ...]:
    return tuple(_f(v) for v in _seq(x))


def _matrix(x: Any) -> Matrix:
    return tuple(_floats(r) for r in _seq(x))


def _strs(x: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in _seq(x))


def _jsonable(obj: Any) -> Any:
    return to_jsonable(dataclasses.asdict(obj))


# ---------------------------------------------------------------------- records


@dataclass(frozen=True)
class RocCurve:
    """One ROC curve, its AUC and its points.

    ``label``: ``"high vs low"`` or ``"<class> vs rest"``; ``auc``: Mann-Whitney
    with mid-ranks, the report's.
    """

    label: str
    auc: float | None
    fpr: tuple[float | None, ...]
    tpr: tuple[float | None, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RocCurve:
        """Read :meth:`to_dict`'s output leniently."""
        return cls(
            str(d.get("label", "?")),
            _f(d.get("auc")),
            _floats(d.get("fpr")),
            _floats(d.get("tpr")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _jsonable(self)


@dataclass(frozen=True)
class ContrastRow:
    """One class contrast: mean feature of one side minus the other.

    ``label``: ``"high - low"`` or ``"<class> - rest"``; ``n_a``, ``n_b``: the
    windows on each side; ``diff``: n_channels x n_bands.
    """

    label: str
    n_a: int | None
    n_b: int | None
    diff: Matrix

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ContrastRow:
        """Read :meth:`to_dict`'s output leniently."""
        return cls(
            str(d.get("label", "?")),
            _i(d.get("n_a")),
            _i(d.get("n_b")),
            _matrix(d.get("diff")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _jsonable(self)


@dataclass(frozen=True)
class FeatureContrast:
    """Class differences of one feature ``kind`` (``de``) per channel and band."""

    kind: str
    unit: str
    bands: tuple[str, ...]
    ch_names: tuple[str, ...]
    rows: tuple[ContrastRow, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureContrast:
        """Read :meth:`to_dict`'s output leniently."""
        return cls(
            str(d.get("kind", "?")),
            str(d.get("unit", "")),
            _strs(d.get("bands")),
            _strs(d.get("ch_names")),
            tuple(
                ContrastRow.from_dict(r)
                for r in _seq(d.get("rows"))
                if isinstance(r, Mapping)
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _jsonable(self)


@dataclass(frozen=True)
class Importance:
    """Permutation importance: drop in pooled balanced accuracy per channel x band.

    ``drop[c][b] = observed - shuffled[c][b]``; ``n_repeats`` shuffles per cell
    and fold, held-out windows only.
    """

    bands: tuple[str, ...]
    ch_names: tuple[str, ...]
    n_repeats: int | None
    observed: float | None
    drop: Matrix
    shuffled: Matrix = ()
    observed_loss: float | None = None
    loss_increase: Matrix = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Importance:
        """Read :meth:`to_dict`'s output leniently."""
        return cls(
            _strs(d.get("bands")),
            _strs(d.get("ch_names")),
            _i(d.get("n_repeats")),
            _f(d.get("observed")),
            _matrix(d.get("drop")),
            _matrix(d.get("shuffled")),
            _f(d.get("observed_loss")),
            _matrix(d.get("loss_increase")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _jsonable(self)

    def array(self, which: str = "drop") -> np.ndarray:
        """Return ``drop`` or ``loss_increase`` as floats (n_channels, n_bands).

        NaN where undefined.
        """
        m = getattr(self, which)
        return np.array(
            [[np.nan if v is None else v for v in r] for r in m], dtype=np.float64
        ).reshape(len(m), -1)

    def top(self, k: int, which: str = "drop") -> list[tuple[str, str]]:
        """Return the ``k`` (channel, band) cells ranked highest by ``which``."""
        a = self.array(which)
        flat = np.where(np.isfinite(a), a, -np.inf).ravel()
        order = np.argsort(-flat, kind="stable")[:k]
        n_b = a.shape[1]
        return [(self.ch_names[i // n_b], self.bands[i % n_b]) for i in order]


@dataclass(frozen=True)
class LearningCurve:
    """One fold's fit per epoch, and the epoch whose weights were kept.

    Training loss, inner-validation loss and balanced accuracy (validation
    windows come from training videos/subjects, never the held-out ones).
    """

    fold: str
    best_epoch: int | None
    epoch: tuple[float | None, ...]
    loss: tuple[float | None, ...]
    val_loss: tuple[float | None, ...] = ()
    val_balanced_accuracy: tuple[float | None, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LearningCurve:
        """Read :meth:`to_dict`'s output leniently."""
        return cls(
            str(d.get("fold", "?")),
            _i(d.get("best_epoch")),
            _floats(d.get("epoch")),
            _floats(d.get("loss")),
            _floats(d.get("val_loss")),
            _floats(d.get("val_balanced_accuracy")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _jsonable(self)


@dataclass(frozen=True)
class FigureData:
    """Everything a task's paper plots need (see the module docstring)."""

    roc: tuple[RocCurve, ...] = ()
    contrast: FeatureContrast | None = None
    importance: Importance | None = None
    learning: tuple[LearningCurve, ...] = ()

    @classmethod
    def read(cls, x: Any) -> FigureData | None:
        """Read a task's ``figures`` entry; None where absent or not an object."""
        if not isinstance(x, Mapping):
            return None
        c, imp = x.get("contrast"), x.get("importance")
        return cls(
            roc=tuple(
                RocCurve.from_dict(r)
                for r in _seq(x.get("roc"))
                if isinstance(r, Mapping)
            ),
            contrast=FeatureContrast.from_dict(c) if isinstance(c, Mapping) else None,
            importance=Importance.from_dict(imp) if isinstance(imp, Mapping) else None,
            learning=tuple(
                LearningCurve.from_dict(r)
                for r in _seq(x.get("learning"))
                if isinstance(r, Mapping)
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "roc": [r.to_dict() for r in self.roc],
            "contrast": self.contrast.to_dict() if self.contrast else None,
            "importance": self.importance.to_dict() if self.importance else None,
            "learning": [c.to_dict() for c in self.learning],
        }


# ------------------------------------------------------------------ computation


def roc_points(
    positive: np.ndarray, score: np.ndarray, *, max_points: int = ROC_MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve points of one binary problem.

    One point per distinct score, from (0, 0) to (1, 1), so tied scores give a
    diagonal step: the trapezoid area under the full curve is the Mann-Whitney
    AUC with mid-ranks (:func:`emomon.offline.metrics.roc_auc`). Collinear
    points are dropped (area unchanged); a curve still longer than
    ``max_points`` is thinned to evenly spaced points, keeping both ends.

    Parameters
    ----------
    positive : ndarray of bool, shape (n,)
    score : ndarray of float, shape (n,)
        Higher means more likely positive.
    max_points : int

    Returns
    -------
    fpr, tpr : ndarray of float64, shape (n_points,)
        Empty when one side has no windows.
    """
    pos = np.asarray(positive, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return np.empty(0), np.empty(0)
    order = np.argsort(-s, kind="stable")
    s, p = s[order], pos[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # end of each tie
    tp = np.r_[0, np.cumsum(p)[last]]
    fp = np.r_[0, np.cumsum(~p)[last]]
    fpr, tpr = fp / n_neg, tp / n_pos
    if fpr.size > 2:  # drop points on the line through their neighbours
        d1 = np.diff(fpr)
        d2 = np.diff(tpr)
        cross = d1[:-1] * d2[1:] - d2[:-1] * d1[1:]
        keep = np.r_[True, np.abs(cross) > 1e-12, True]
        fpr, tpr = fpr[keep], tpr[keep]
    if fpr.size > max_points:
        idx = np.unique(np.linspace(0, fpr.size - 1, max_points).round().astype(int))
        fpr, tpr = fpr[idx], tpr[idx]
    return fpr, tpr


def _roc(y: np.ndarray, p: np.ndarray, classes: Sequence[str]) -> tuple[RocCurve, ...]:
    from emomon.offline.metrics import roc_auc

    def curve(label: str, positive: np.ndarray, score: np.ndarray) -> RocCurve:
        fpr, tpr = roc_points(positive, score)
        auc = roc_auc(positive.astype(np.int64), score) if fpr.size else math.nan
        return RocCurve(label, _f(auc), _floats(fpr.tolist()), _floats(tpr.tolist()))

    if p.shape[1] == 2:
        return (curve(f"{classes[1]} vs {classes[0]}", y == 1, p[:, 1]),)
    return tuple(curve(f"{c} vs rest", y == i, p[:, i]) for i, c in enumerate(classes))


def _contrast(
    X: np.ndarray,
    y: np.ndarray,
    *,
    feature_names: Sequence[str],
    kinds: Sequence[str],
    bands: Sequence[str],
    ch_names: Sequence[str],
    classes: Sequence[str],
) -> FeatureContrast | None:
    if not kinds or X.ndim != 3:
        return None
    # DE first; precomputed families are named like "de_LDS".
    de = [k for k in kinds if k.split("_", 1)[0] == "de"]
    kind = de[0] if de else kinds[0]
    cols = [feature_names.index(f"{kind}_{b}") for b in bands]
    F = X[:, :, cols]  # (n, n_channels, n_bands)
    if len(classes) == 2:
        sides = [(f"{classes[1]} - {classes[0]}", y == 1, y == 0)]
    else:
        sides = [(f"{c} - rest", y == i, y != i) for i, c in enumerate(classes)]
    rows = []
    for label, a, b in sides:
        if a.any() and b.any():
            diff = F[a].mean(axis=0) - F[b].mean(axis=0)
            rows.append(
                ContrastRow(label, int(a.sum()), int(b.sum()), _matrix(diff.tolist()))
            )
    if not rows:
        return None
    return FeatureContrast(
        kind,
        KIND_UNITS.get(kind.split("_", 1)[0], ""),
        tuple(bands),
        tuple(ch_names),
        tuple(rows),
    )


def _learning(cv: CVResult, task: str) -> tuple[LearningCurve, ...]:
    out = []
    for f in cv.folds:
        rows = [r for r in f.history.get(task, ()) if isinstance(r, Mapping)]
        if not any("val_loss" in r for r in rows) and len(rows) < 2:
            continue  # a full-batch fit (one row, no epochs): no curve

        def col(key: str, rows: list[Mapping[str, Any]] = rows) -> tuple:
            return tuple(_f(r.get(key)) for r in rows)

        vba = tuple(_f(_map(r.get("val_balanced_accuracy")).get(task)) for r in rows)
        out.append(
            LearningCurve(
                f.fold,
                f.best_epoch.get(task),
                col("epoch"),
                col("loss"),
                col("val_loss") if any("val_loss" in r for r in rows) else (),
                vba if any(v is not None for v in vba) else (),
            )
        )
    return tuple(out)


def _map(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def task_figures(
    ds: Dataset,
    cv: CVResult,
    task: str,
    *,
    y: np.ndarray,
    proba: np.ndarray,
    observed: float | None,
) -> FigureData:
    """Compute one task's :class:`FigureData` from a cross-validation.

    Parameters
    ----------
    ds : Dataset
    cv : CVResult
    task : str
    y : ndarray of int, shape (n_tested,)
        True classes of the tested windows (``cv.tested``).
    proba : ndarray of float, shape (n_tested, n_classes)
        Their pooled held-out probabilities.
    observed : float or None
        The pooled balanced accuracy (the importance's reference).

    Returns
    -------
    FigureData
    """
    from emomon.offline.importance import balanced_loss, nll, pool_importance

    t = ds.table
    classes = list(ds.tasks[task])
    spec = t.spec
    contrast = None
    if not spec.is_raw:
        contrast = _contrast(
            t.X[cv.tested],
            y,
            feature_names=list(spec.feature_names),
            kinds=list(spec.kinds),
            bands=list(spec.band_names),
            ch_names=list(t.ch_names),
            classes=classes,
        )
    obs_loss = None
    if y.size and proba.shape[1] == len(classes):
        k = len(classes)
        sums = np.bincount(y, weights=nll(proba[np.arange(y.size), y]), minlength=k)
        obs_loss = _f(balanced_loss(sums, np.bincount(y, minlength=k)))
    pooled = pool_importance(cv.folds, task, observed=observed, observed_loss=obs_loss)
    importance = None
    if pooled is not None:
        importance = Importance(
            tuple(pooled["bands"]),
            tuple(t.ch_names),
            pooled["n_repeats"],
            pooled["observed"],
            _matrix(pooled["drop"]),
            _matrix(pooled["shuffled"]),
            pooled["observed_loss"],
            _matrix(pooled["loss_increase"]),
        )
    return FigureData(
        roc=_roc(y, proba, classes),
        contrast=contrast,
        importance=importance,
        learning=_learning(cv, task),
    )
