"""The report of a training run as typed, frozen records, and its JSON form.

A run's ``report.json`` is ``RunReport.to_json()``::

    {"emomon_version", "schema_version", "created", "config", "dataset",
     "results": {<protocol>: {"protocol", "leaky", "holds_out", "exchangeable",
                              "content_dependent", "n_folds", "model", "labels",
                              "seconds", "notes",
                              "tasks": {<task>: {"classes", "metrics", "ci95",
                                                 "majority_baseline", "permutation",
                                                 "above_chance", "per_video",
                                                 "per_subject", "per_fold",
                                                 "augment"?}}}},
     "ablation": {"kind", "protocol", "rows"},     # ablation runs only
     "export": {"path", "parity_max_abs"}}         # runs with a model.onnx

Numbers that are undefined (a balanced accuracy of a one-class group, a CI without
bootstrap) are ``None`` in the records and ``null`` in the file, so a report read
back equals the one written. :meth:`RunReport.from_dict` is the one place that
reads reports leniently: files written before ``schema_version`` existed (they have
the same layout), and hand-made or partial dicts, where a missing or mistyped value
becomes ``None`` (a missing p-value is recomputed from the null distribution).
Everything after it reads typed fields.

``config`` stays the JSON object the run was configured with (``config_dict``);
:func:`emomon.offline.trainconfig.config_from_report` turns it back into a
``TrainConfig``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from emomon.errors import ConfigError
from emomon.offline._jsonread import (
    Pair,
    _float,
    _int,
    _map,
    _maps,
    _pair,
    _seq,
    _str,
    to_jsonable,
)
from emomon.offline.augreport import AugmentSummary
from emomon.offline.figdata import FigureData
from emomon.offline.holdout import HOLDOUTS
from emomon.offline.protocols import LEAKY_PROTOCOLS

__all__ = [
    "ALPHA",
    "SCHEMA_VERSION",
    "VOLATILE_FIELDS",
    "Ablation",
    "AblationRow",
    "Baseline",
    "DatasetInfo",
    "ExportInfo",
    "FoldRow",
    "GroupRow",
    "Headline",
    "Metrics",
    "Permutation",
    "ProtocolResult",
    "RunReport",
    "TaskResult",
    "to_jsonable",
]

#: Version of the report.json layout. Files without the field (emomon before it
#: existed) have the same layout and read as version 1.
SCHEMA_VERSION: int = 1

#: Significance level of the permutation test: above chance only when p < ALPHA.
ALPHA: float = 0.05

#: Fields that differ between two runs of the same config: wall-clock timing and
#: the moment of the run. Everything else in report.json is reproducible.
VOLATILE_FIELDS: tuple[str, ...] = ("created", "results.<protocol>.seconds")


# ------------------------------------------------------------------ the records

#: How :meth:`_Record.from_dict` reads a field, by its annotation.
_READERS: dict[str, Callable[[Any], Any]] = {
    "int | None": _int,
    "float | None": _float,
    "str | None": _str,
    "Pair": _pair,
}


class _Record:
    """Base of the report records: :meth:`to_dict` and a lenient :meth:`from_dict`.

    :meth:`from_dict` reads each field by its annotation (``int | None`` with
    :func:`_int`, ``float | None`` with :func:`_float`, ``str | None`` with
    :func:`_str`, ``Pair`` with :func:`_pair`); a record with fields of other
    kinds reads them in :meth:`_read_fields`.
    """

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """Read a record from its dict or its JSON, leniently.

        Parameters
        ----------
        d : mapping
            As written by :meth:`to_dict` (or by the metrics functions); a missing
            or mistyped value reads as None.

        Returns
        -------
        record
            An instance of the class it is called on.
        """
        values = cls._read_fields(d)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in values:
                values[f.name] = _READERS[str(f.type)](d.get(f.name))
        return cls(**values)

    @classmethod
    def _read_fields(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        """Read the fields :data:`_READERS` has no reader for (none here)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict, fields in declaration order.

        Tuples become lists and NaN becomes None (:func:`to_jsonable`).
        """
        return to_jsonable(dataclasses.asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class Metrics(_Record):
    """Pooled metrics of one task (:func:`emomon.offline.metrics.summarize`).

    ``f1`` is class 1's for binary tasks and the macro F1 otherwise; ``confusion``
    holds counts, rows = true class, columns = predicted class.
    """

    n: int | None = None
    n_classes: int | None = None
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    auc: float | None = None
    f1: float | None = None
    f1_macro: float | None = None
    confusion: tuple[tuple[int, ...], ...] | None = None

    @classmethod
    def _read_fields(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"confusion": _confusion(d.get("confusion"))}

    def to_dict(self) -> dict[str, Any]:
        """Return the metrics as a JSON-ready dict (``confusion`` as lists)."""
        d = super().to_dict()
        d["confusion"] = [list(r) for r in self.confusion] if self.confusion else None
        return d


def _confusion(x: Any) -> tuple[tuple[int, ...], ...] | None:
    """Return a square matrix of counts, else None."""
    rows = [_seq(r) for r in _seq(x)]
    if not rows or any(len(r) != len(rows) for r in rows):
        return None
    cells = [[_int(v) for v in r] for r in rows]
    if any(v is None for r in cells for v in r):
        return None
    return tuple(tuple(r) for r in cells)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Baseline(_Record):
    """The majority-class baseline of each fold's training set, pooled."""

    accuracy: float | None = None
    balanced_accuracy: float | None = None


@dataclass(frozen=True)
class Permutation:
    """The permutation test of one task: ``n`` reruns, their balanced accuracies."""

    n: int
    p_value: float | None
    null: tuple[float | None, ...] = ()
    n_same: int = 0  # reruns whose permuted labels equal the observed ones

    def to_dict(self) -> dict[str, Any]:
        """Return the test as a JSON-ready dict (``null`` as a list)."""
        return {
            "n": self.n,
            "p_value": self.p_value,
            "null": list(self.null),
            "n_same": self.n_same,
        }


@dataclass(frozen=True)
class GroupRow(_Record):
    """One row of ``per_video`` / ``per_subject`` (:func:`metrics.group_table`).

    ``mean_p`` maps ``"high"`` (binary) or each class index (``"0"``, ...) to the
    group's mean predicted probability; balanced accuracy and AUC are None for a
    group with a single true class.
    """

    group: str
    n: int | None = None
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    auc: float | None = None
    true_majority: int | None = None
    pred_majority: int | None = None
    mean_p: Mapping[str, float | None] = field(default_factory=dict)

    @classmethod
    def _read_fields(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        # The CSV (and early hand-made reports) say majority_true.
        true = d.get("true_majority", d.get("majority_true"))
        return {
            "group": str(d.get("group", "?")),
            "true_majority": _int(true),
            "mean_p": {
                str(k)[len("mean_p_") :]: _float(v)
                for k, v in d.items()
                if str(k).startswith("mean_p_")
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready dict, ``mean_p`` as ``mean_p_<key>``."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "mean_p"}
        d.update({f"mean_p_{k}": v for k, v in self.mean_p.items()})
        return d


@dataclass(frozen=True)
class FoldRow(_Record):
    """One fold of one task: sizes, the epoch early stopping chose, its scores."""

    fold: str
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    best_epoch: int | None = None
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    # The fold's training-set augmentation (method, samples added, sanity
    # checks: emomon.offline.augment); None, and not written, without it.
    augment: dict[str, Any] | None = None

    @classmethod
    def _read_fields(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        aug = d.get("augment")
        return {
            "fold": str(d.get("fold", "?")),
            "augment": dict(aug) if isinstance(aug, Mapping) else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """As :meth:`_Record.to_dict`; ``augment`` only where there is one."""
        d = super().to_dict()
        if d.get("augment") is None:
            d.pop("augment", None)
        return d


@dataclass(frozen=True)
class Headline(_Record):
    """The numbers a task is judged by (the summary, the model's contract)."""

    balanced_accuracy: float | None
    auc: float | None
    ci95_low: float | None
    ci95_high: float | None
    p_value: float | None


@dataclass(frozen=True)
class TaskResult:
    """Pooled held-out results of one task under one protocol.

    Attributes
    ----------
    classes : tuple of str
    metrics : Metrics
    ci95 : (float or None, float or None)
        95% bootstrap CI of the balanced accuracy; None without a permutation test.
    ci_unit : str or None
        The unit the bootstrap resampled (the protocol's exchangeable unit).
    majority_baseline : Baseline
    permutation : Permutation or None
        None when no permutation test was run.
    per_video, per_subject : tuple of GroupRow
    per_fold : tuple of FoldRow
    figures : FigureData or None
        What the paper plots draw (``figures`` in report.json, optional).
    augment : AugmentSummary or None
        Runs with augmentation: the comparison with the un-augmented twin and
        the sanity checks (:mod:`emomon.offline.augreport`); optional.
    """

    classes: tuple[str, ...] = ()
    metrics: Metrics = field(default_factory=Metrics)
    ci95: Pair = (None, None)
    ci_unit: str | None = None
    majority_baseline: Baseline = field(default_factory=Baseline)
    permutation: Permutation | None = None
    per_video: tuple[GroupRow, ...] = ()
    per_subject: tuple[GroupRow, ...] = ()
    per_fold: tuple[FoldRow, ...] = ()
    figures: FigureData | None = None
    augment: AugmentSummary | None = None

    @property
    def p_value(self) -> float | None:
        """Permutation p-value; None without a permutation test."""
        return self.permutation.p_value if self.permutation else None

    @property
    def above_chance(self) -> bool:
        """Permutation p < :data:`ALPHA` (False without a test)."""
        p = self.p_value
        return p is not None and p < ALPHA

    @property
    def verdict(self) -> str:
        """Return the verdict: above chance, at chance, inconclusive, not tested."""
        from emomon.offline.scoring import verdict

        perm = self.permutation
        if perm is None:
            return verdict(None)
        fixed = perm.n_same + sum(v is None for v in perm.null)
        return verdict(self.p_value, perm.n, n_fixed=fixed)

    def headline(self) -> Headline:
        """Balanced accuracy, AUC, its CI and the permutation p-value."""
        return Headline(
            self.metrics.balanced_accuracy,
            self.metrics.auc,
            self.ci95[0],
            self.ci95[1],
            self.p_value,
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TaskResult:
        """Read a task's results from their dict or JSON, leniently.

        Classes missing from ``d`` are named by index, as many as the confusion
        matrix has (default 2); a missing p-value is recomputed from the null.
        """
        metrics = Metrics.from_dict(_map(d.get("metrics")))
        classes = tuple(str(c) for c in _seq(d.get("classes")))
        if not classes:  # name the classes by index, as many as the matrix has
            k = len(metrics.confusion) if metrics.confusion else 2
            classes = tuple(str(c) for c in range(k))
        return cls(
            classes=classes,
            metrics=metrics,
            ci95=_pair(_map(d.get("ci95")).get("balanced_accuracy")),
            ci_unit=_str(_map(d.get("ci95")).get("resamples")),
            majority_baseline=Baseline.from_dict(_map(d.get("majority_baseline"))),
            permutation=_permutation(d.get("permutation"), metrics),
            per_video=tuple(GroupRow.from_dict(r) for r in _maps(d.get("per_video"))),
            per_subject=tuple(
                GroupRow.from_dict(r) for r in _maps(d.get("per_subject"))
            ),
            per_fold=tuple(FoldRow.from_dict(r) for r in _maps(d.get("per_fold"))),
            figures=FigureData.read(d.get("figures")),
            augment=AugmentSummary.read(d.get("augment")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the results as a JSON-ready dict, with ``above_chance``."""
        return {
            "classes": list(self.classes),
            "metrics": self.metrics.to_dict(),
            "ci95": {"balanced_accuracy": list(self.ci95), "resamples": self.ci_unit},
            "majority_baseline": self.majority_baseline.to_dict(),
            "permutation": self.permutation.to_dict() if self.permutation else None,
            "above_chance": self.above_chance,
            "verdict": self.verdict,
            "per_video": [r.to_dict() for r in self.per_video],
            "per_subject": [r.to_dict() for r in self.per_subject],
            "per_fold": [r.to_dict() for r in self.per_fold],
            # additive: absent from older reports, and from tasks without figures
            **({"figures": self.figures.to_dict()} if self.figures else {}),
            **({"augment": self.augment.to_dict()} if self.augment else {}),
        }


def _permutation(x: Any, metrics: Metrics) -> Permutation | None:
    """Read the permutation entry; a missing p-value is recomputed from the null."""
    if not isinstance(x, Mapping):
        return None
    null = tuple(_float(v) for v in _seq(x.get("null")))
    n = _int(x.get("n"))
    p = _float(x.get("p_value"))
    obs = metrics.balanced_accuracy
    if p is None and null and obs is not None:
        from emomon.offline.metrics import permutation_p_value

        p = permutation_p_value(obs, [math.nan if v is None else v for v in null])
    same = _int(x.get("n_same")) or 0
    return Permutation(len(null) if n is None else n, p, null, same)


@dataclass(frozen=True)
class ProtocolResult:
    """The cross-validation of one protocol: one :class:`TaskResult` per task.

    ``leaky``: windows of the same trials on both sides (``intra``).
    ``content_dependent``: some fold's test videos were in its training part
    (measured on the run's splits; LOSO on DEAP), so the model may recognise
    the video rather than the emotion. ``holds_out`` and ``exchangeable`` are
    the protocol's declaration (:mod:`emomon.offline.holdout`). ``seconds``
    (cross-validation wall time) is a volatile field.
    """

    protocol: str
    leaky: bool
    tasks: Mapping[str, TaskResult] = field(default_factory=dict)
    n_folds: int | None = None
    model: str | None = None
    labels: str | None = None
    seconds: float | None = None
    notes: tuple[str, ...] = ()
    holds_out: str | None = None
    exchangeable: str | None = None
    content_dependent: bool = False

    @property
    def marked(self) -> bool:
        """Whether reports must mark the number as not a cross-video result."""
        return self.leaky or self.content_dependent

    @property
    def mark(self) -> str:
        """``"LEAKY"``, ``"SHARES VIDEOS"`` or ``""``."""
        if self.leaky:
            return "LEAKY"
        return "SHARES VIDEOS" if self.content_dependent else ""

    @property
    def label(self) -> str:
        """The protocol name, with its mark in brackets when it has one."""
        return f"{self.protocol} ({self.mark})" if self.mark else self.protocol

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, name: str) -> ProtocolResult:
        """Read a protocol's results from their dict or JSON, leniently.

        Parameters
        ----------
        d : mapping
            One entry of ``report.json``'s ``results``.
        name : str
            Its key there: the protocol, where ``d`` does not name it.

        Returns
        -------
        ProtocolResult
            ``leaky`` defaults to whether the protocol is in ``LEAKY_PROTOCOLS``;
            ``content_dependent`` (absent from reports before it was measured)
            to the protocol's declaration, so an old LOSO report is marked too.
        """
        protocol = str(d.get("protocol", name))
        leaky = d.get("leaky")
        decl = HOLDOUTS.get(protocol)
        dep = d.get("content_dependent")
        return cls(
            protocol=protocol,
            leaky=protocol in LEAKY_PROTOCOLS if leaky is None else bool(leaky),
            tasks={
                str(k): TaskResult.from_dict(v)
                for k, v in _map(d.get("tasks")).items()
                if isinstance(v, Mapping)
            },
            n_folds=_int(d.get("n_folds")),
            model=_str(d.get("model")),
            labels=_str(d.get("labels")),
            seconds=_float(d.get("seconds")),
            notes=tuple(str(n) for n in _seq(d.get("notes"))),
            holds_out=_str(d.get("holds_out")),
            exchangeable=_str(d.get("exchangeable")),
            content_dependent=(
                bool(decl is not None and decl.shares_videos)
                if dep is None
                else bool(dep)
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the results as a JSON-ready dict, ``tasks`` last."""
        return {
            "protocol": self.protocol,
            "leaky": self.leaky,
            "holds_out": self.holds_out,
            "exchangeable": self.exchangeable,
            "content_dependent": self.content_dependent,
            "n_folds": self.n_folds,
            "model": self.model,
            "labels": self.labels,
            "seconds": self.seconds,
            "notes": list(self.notes),
            "tasks": {k: t.to_dict() for k, t in self.tasks.items()},
        }


@dataclass(frozen=True)
class DatasetInfo(_Record):
    """What the run read: counts, montage, and each task's class balance.

    ``class_balance`` gives the trials per class of each task. ``montage`` is
    the headset montage of ``train --montage`` (name, its channels, source,
    ``shared`` and ``missing`` channels), None without one. ``precomputed``
    describes features the dataset shipped (``reader``, ``families``,
    ``bands`` as ``[name, lo, hi]``, ``window_s``, ``causal``: false), None
    when emomon computed them. ``channels_assumed``: the dataset's files carry
    no channel names and ``ch_names`` are the reader's assumption (EAV);
    written only when true.
    """

    name: str | None = None
    n_subjects: int | None = None
    n_videos: int | None = None
    n_trials: int | None = None
    n_windows: int | None = None
    ch_names: tuple[str, ...] = ()
    sfreq: float | None = None
    class_balance: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    montage: Mapping[str, Any] | None = None
    precomputed: Mapping[str, Any] | None = None
    channels_assumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict; optional records only when set.

        (Reports of runs without a montage or precomputed features keep the layout
        they always had; so do those whose channels are named in the files.)
        """
        d = super().to_dict()
        for key in ("montage", "precomputed"):
            if d.get(key) is None:
                d.pop(key, None)
        if not d.get("channels_assumed"):
            d.pop("channels_assumed", None)
        return d

    @classmethod
    def _read_fields(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        montage = d.get("montage")
        pre = d.get("precomputed")
        return {
            "montage": dict(montage) if isinstance(montage, Mapping) else None,
            "channels_assumed": d.get("channels_assumed") is True,
            "precomputed": dict(pre) if isinstance(pre, Mapping) else None,
            "ch_names": tuple(str(c) for c in _seq(d.get("ch_names"))),
            "class_balance": {
                str(k): tuple(_int(c) or 0 for c in _seq(v))
                for k, v in _map(d.get("class_balance")).items()
            },
        }


@dataclass(frozen=True)
class AblationRow(_Record):
    """One (setting, task) cell of an ablation: the setting's headline numbers."""

    setting: str
    task: str
    balanced_accuracy: float | None = None
    auc: float | None = None
    ci95: Pair = (None, None)
    p_value: float | None = None
    majority_balanced_accuracy: float | None = None
    n_permutations: int | None = None
    ci_unit: str | None = None  # what the interval resampled (None: not shown)

    @classmethod
    def from_task(cls, setting: str, task: str, result: TaskResult) -> AblationRow:
        """Make the row of ``task`` of the run with ``setting``."""
        return cls(
            setting,
            task,
            result.metrics.balanced_accuracy,
            result.metrics.auc,
            result.ci95,
            result.p_value,
            result.majority_baseline.balanced_accuracy,
            result.permutation.n if result.permutation else None,
            result.ci_unit,
        )

    @classmethod
    def _read_fields(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {k: str(d.get(k, "?")) for k in ("setting", "task")}


@dataclass(frozen=True)
class Ablation(_Record):
    """A factor experiment (``kind`` bands, labels or bands+labels) in run order."""

    kind: str | None
    protocol: str | None
    rows: tuple[AblationRow, ...] = ()

    @classmethod
    def _read_fields(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"rows": tuple(AblationRow.from_dict(r) for r in _maps(d.get("rows")))}


@dataclass(frozen=True)
class ExportInfo(_Record):
    """The exported model: its file name and its parity with torch.

    ``path`` is the file name in the run directory (required), and
    ``parity_max_abs`` the largest difference between onnxruntime and torch on
    the parity check.
    """

    path: str
    parity_max_abs: float | None = None

    @classmethod
    def _read_fields(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"path": str(d["path"])}


@dataclass(frozen=True)
class RunReport:
    """Everything a training or evaluation run found (``report.json``).

    Attributes
    ----------
    emomon_version : str or None
    created : str or None
        Local time of the run, ISO 8601 (a volatile field).
    config : dict or None
        The run's configuration as JSON (``config_dict``).
    dataset : DatasetInfo or None
    results : mapping of str to ProtocolResult
        One entry per protocol, in run order; the first is the exported one.
    ablation : Ablation or None
        Ablation runs only.
    export : ExportInfo or None
        Runs that wrote a ``model.onnx``.
    schema_version : int
    """

    emomon_version: str | None = None
    created: str | None = None
    config: Mapping[str, Any] | None = None
    dataset: DatasetInfo | None = None
    results: Mapping[str, ProtocolResult] = field(default_factory=dict)
    ablation: Ablation | None = None
    export: ExportInfo | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def main(self) -> ProtocolResult | None:
        """The first protocol's result (the one a model is exported for)."""
        return next(iter(self.results.values()), None)

    def headline(self) -> dict[str, Headline]:
        """Per task, the headline metrics of the first protocol."""
        main = self.main
        return {k: t.headline() for k, t in main.tasks.items()} if main else {}

    def with_export(self, export: ExportInfo) -> RunReport:
        """Return a copy of the report with its ``export`` entry set."""
        return dataclasses.replace(self, export=export)

    # -- JSON ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the report as a strict-JSON object (NaN never appears)."""
        d: dict[str, Any] = {
            "emomon_version": self.emomon_version,
            "schema_version": self.schema_version,
            "created": self.created,
            "config": to_jsonable(self.config),
            "dataset": self.dataset.to_dict() if self.dataset else None,
            "results": {k: r.to_dict() for k, r in self.results.items()},
        }
        if self.ablation is not None:
            d["ablation"] = self.ablation.to_dict()
        if self.export is not None:
            d["export"] = self.export.to_dict()
        return d

    def to_json(self, *, sort_keys: bool = False) -> str:
        """Return ``report.json``'s text: strict JSON, indent 2, no final newline."""
        return json.dumps(
            self.to_dict(),
            indent=2,
            allow_nan=False,
            ensure_ascii=False,
            sort_keys=sort_keys,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunReport:
        """Read a report object leniently (see the module docstring).

        Raises
        ------
        ConfigError
            If it was written by a newer emomon (a larger ``schema_version``).
        """
        version = _int(data.get("schema_version"))
        if version is not None and version > SCHEMA_VERSION:
            raise ConfigError(
                f"report schema_version {version} is newer than this emomon reads "
                f"({SCHEMA_VERSION}); upgrade emomon"
            )
        dataset, abl, export = (data.get(k) for k in ("dataset", "ablation", "export"))
        config = data.get("config")
        return cls(
            emomon_version=_str(data.get("emomon_version")),
            created=_str(data.get("created")),
            config=dict(config) if isinstance(config, Mapping) else None,
            dataset=DatasetInfo.from_dict(dataset)
            if isinstance(dataset, Mapping)
            else None,
            results={
                str(k): ProtocolResult.from_dict(v, name=str(k))
                for k, v in _map(data.get("results")).items()
                if isinstance(v, Mapping)
            },
            ablation=Ablation.from_dict(abl) if isinstance(abl, Mapping) else None,
            export=ExportInfo.from_dict(export)
            if isinstance(export, Mapping) and export.get("path") is not None
            else None,
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, where: str | None = None) -> RunReport:
        """Parse the text of a ``report.json``.

        Parameters
        ----------
        text : str or bytes
            The file's content.
        where : str, optional
            The file, named at the start of every error.

        Raises
        ------
        ConfigError
            If the text is not a JSON object, or is from a newer emomon.
        """
        prefix = where or "not a report"
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{prefix}: cannot read it as JSON ({exc})") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{prefix}: expected a JSON object")
        if where is None:
            return cls.from_dict(data)
        try:
            return cls.from_dict(data)
        except ConfigError as exc:  # a newer emomon's report
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def coerce(cls, report: RunReport | Mapping[str, Any]) -> RunReport:
        """``report`` itself, or a report dict read with :meth:`from_dict`."""
        return report if isinstance(report, RunReport) else cls.from_dict(report)
