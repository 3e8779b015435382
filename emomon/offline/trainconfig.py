"""The configuration of a training run, assembled in one place.

A :class:`TrainConfig` comes from defaults, a base (a TOML file, a
``TrainConfig``, or a mapping shaped like a report's ``config``) and overrides,
in that order of precedence, through :func:`make_train_config`. Every other
entry point (:func:`load_train_config`, :func:`config_from_report`, the command
line, :func:`emomon.offline.train.train`) calls it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emomon.config import FeatureSpec, from_mapping, load_toml
from emomon.errors import ConfigError
from emomon.offline.labels import LABEL_METHODS
from emomon.offline.protocols import PROTOCOLS

if TYPE_CHECKING:  # pragma: no cover
    from emomon.offline.runreport import RunReport

__all__ = [
    "DEFAULT_PERMUTATIONS",
    "TASK_CHOICES",
    "TrainConfig",
    "config_dict",
    "config_from_report",
    "default_run_dir",
    "load_train_config",
    "make_train_config",
]

TASK_CHOICES = ("valence", "arousal", "class")

#: Permutation reruns of a full-batch model (logreg) unless the config says
#: otherwise: 199 lets p reach 1/200 = 0.005, below the 0.01 and 0.05 levels.
#: Neural models default to none (each rerun retrains every fold); their report
#: then says "not tested" and shows no interval.
DEFAULT_PERMUTATIONS: int = 199

# Fields that hold a nested table rather than a [train] key.
_NESTED = ("features", "synthetic", "hparams", "dataset_options")
#: Nested field -> its TOML table.
_TABLES = {
    "features": "features",
    "synthetic": "synthetic",
    "hparams": "model",
    "dataset_options": "dataset",
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``emomon train`` / ``emomon evaluate`` needs (TOML ``[train]``).

    ``features`` is the ``[features]`` table, ``synthetic`` the generator options
    for ``dataset = "synthetic"``, ``hparams`` the ``[model]`` table,
    ``dataset_options`` the ``[dataset]`` table: keyword options of the reader
    (``emomon datasets list`` names each reader; e.g. ``features = "de_LDS"``).
    ``task_threads`` is the torch thread count of every fold and permutation
    task (and the BLAS thread count of logreg's full-batch fit): fixed, because
    it changes the last bits of a model, so runs with the same value give the
    same report whichever executor runs them (raise it for a serial run,
    ``n_jobs = 1``, on an otherwise idle machine).
    ``augment`` adds synthetic training samples inside each fold, made from
    that fold's training windows only (:mod:`emomon.offline.augment`).
    ``montage`` (``brainflow:synthetic``, ``cyton``, ``Fp1,Fp2,...``) trains on
    the channels the dataset shares with that headset, in the headset's order
    (:func:`emomon.dsp.montage.resolve_montage`); None: all the dataset's.
    """

    dataset: str = "synthetic"
    data_dir: str | None = None
    subjects: tuple[str, ...] = ()  # empty: every subject of the dataset
    protocols: tuple[str, ...] = ("lovo",)
    model: str = "logreg"
    # Empty: the dataset's own (valence, arousal where it has ratings, else class).
    targets: tuple[str, ...] = ()
    labels: str = "fixed"
    threshold: float | None = None
    train_videos: str = "all"
    n_folds: int = 5
    val_fraction: float = 0.15
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    patience: int = 5
    weight_decay: float = 0.0
    permutations: int | None = None  # None: DEFAULT_PERMUTATIONS for the model
    importance: int | None = None  # shuffles per channel x band; None: auto
    n_boot: int = 1000
    seed: int = 0
    device: str = "auto"
    n_jobs: int = 2
    task_threads: int = 1
    montage: str | None = None  # see emomon.dsp.montage.resolve_montage
    cache_dir: str | None = ".emomon_cache"
    export: bool = True
    # Opt-in training-set augmentation inside each fold (emomon.offline.augment):
    # None (off; "none" in TOML and on the command line), noise, mixup or
    # wgan; augment_ratio added samples per training window; augment_check
    # runs the sanity checks per fold.
    augment: str | None = None
    augment_ratio: float = 1.0
    augment_check: bool = True
    features: FeatureSpec = field(default_factory=FeatureSpec)
    synthetic: dict[str, Any] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)

    @property
    def n_permutations(self) -> int:
        """Permutation reruns: ``permutations``, or the model's default when None."""
        if self.permutations is not None:
            return self.permutations
        from emomon.models import model_full_batch

        return DEFAULT_PERMUTATIONS if model_full_batch(self.model) else 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocols", tuple(self.protocols))
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "subjects", tuple(self.subjects))
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols:
            raise ConfigError(
                f"unknown protocol '{bad[0] if bad else ''}'; "
                f"choose from {', '.join(PROTOCOLS)}"
            )
        bad = [t for t in self.targets if t not in TASK_CHOICES]
        if bad:
            raise ConfigError(
                f"unknown target '{bad[0] if bad else ''}'; "
                f"choose from {', '.join(TASK_CHOICES)}"
            )
        if self.labels not in LABEL_METHODS:
            raise ConfigError(
                f"unknown labels '{self.labels}'; "
                f"choose from {', '.join(LABEL_METHODS)}"
            )
        for name in (
            "epochs",
            "batch_size",
            "patience",
            "n_folds",
            "n_jobs",
            "task_threads",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1")
        if self.importance is not None and self.importance < 0:
            raise ConfigError("train.importance must be >= 0 (0: off)")
        if (self.permutations is not None and self.permutations < 0) or self.n_boot < 0:
            raise ConfigError("train.permutations and train.n_boot must be >= 0")
        if not self.lr > 0:
            raise ConfigError("train.lr must be > 0")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError("train.val_fraction must be within [0, 1)")
        from emomon.offline.augment import AUGMENT_METHODS

        if self.augment is not None and self.augment not in AUGMENT_METHODS:
            raise ConfigError(
                f"unknown augment '{self.augment}'; "
                f"choose from none, {', '.join(AUGMENT_METHODS)}"
            )
        if not (math.isfinite(self.augment_ratio) and self.augment_ratio > 0):
            raise ConfigError(
                f"train.augment_ratio must be > 0, got {self.augment_ratio}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("train.device must be auto, cpu or cuda")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ConfigError(
                f"train.threshold must be a finite number, got {self.threshold}"
            )
        if self.montage is not None:
            from emomon.dsp.montage import resolve_montage

            resolve_montage(self.montage)  # a bad name fails now, not after reading
        from emomon.models import model_hparams

        # Unknown model or hyper-parameter names fail now, not after the features.
        valid = model_hparams(self.model)  # raises ConfigError on an unknown model
        if self.augment is not None:
            from emomon.models import model_input_kind

            if model_input_kind(self.model) == "eeg":
                raise ConfigError(
                    f"augment {self.augment} makes band features; model "
                    f"'{self.model}' reads raw EEG: use augment none, or a "
                    "feature model (logreg, mlp, cnn2d, mtcnn)"
                )
        unknown = sorted(set(self.hparams) - set(valid))
        if unknown:
            raise ConfigError(
                f"unknown hyper-parameter model.{unknown[0]} for model "
                f"'{self.model}'; valid keys: {', '.join(sorted(valid)) or 'none'}"
            )


def make_train_config(
    base: TrainConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    /,
    *,
    features: FeatureSpec | Mapping[str, Any] | None = None,
    synthetic: Mapping[str, Any] | None = None,
    hparams: Mapping[str, Any] | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    section: str = "train",
    **overrides: Any,
) -> TrainConfig:
    """Assemble a :class:`TrainConfig` (the one place): defaults < ``base`` < overrides.

    Parameters
    ----------
    base : TrainConfig, mapping, path or None
        A config to start from: a TOML file (``[train]``, ``[features]``,
        ``[synthetic]``, ``[model]``), a ``TrainConfig``, or a mapping of
        ``TrainConfig`` fields whose ``features`` / ``synthetic`` / ``hparams``
        are nested objects (the ``config`` of a ``report.json``). None: defaults.
    features : FeatureSpec or mapping, optional
        Replaces the base's feature spec.
    synthetic, hparams, dataset_options : mapping, optional
        Merged over the base's generator options, model hyper-parameters and
        reader options.
    section : str
        How error messages name the flat keys (``train.lr``).
    **overrides
        ``TrainConfig`` fields (``dataset``, ``data_dir``, ``epochs``, ...); a
        value of None sets None (``cache_dir=None`` disables the feature cache).

    Returns
    -------
    TrainConfig

    Raises
    ------
    ConfigError
        On an unknown key or section, a value of the wrong type or out of range.
    """
    if base is None:
        flat, nested = {}, {}
    elif isinstance(base, TrainConfig):
        flat = {
            f.name: getattr(base, f.name)
            for f in dataclasses.fields(base)
            if f.name not in _NESTED
        }
        nested = {k: getattr(base, k) for k in _NESTED}
    elif isinstance(base, Mapping):
        flat = {k: v for k, v in base.items() if k not in _NESTED}
        nested = {k: base[k] or {} for k in _NESTED if k in base}
    else:
        flat, nested = _read_toml(Path(base))
    spec = features if features is not None else nested.get("features", {})
    if not isinstance(spec, FeatureSpec):
        spec = FeatureSpec.from_dict(spec)
    flat.update(overrides)
    for key in ("data_dir", "cache_dir"):
        if isinstance(flat.get(key), os.PathLike):
            flat[key] = os.fspath(flat[key])
    cfg = from_mapping(TrainConfig, flat, section=section)
    return dataclasses.replace(
        cfg,
        features=spec,
        synthetic={**nested.get("synthetic", {}), **(synthetic or {})},
        hparams={**nested.get("hparams", {}), **(hparams or {})},
        dataset_options={
            **nested.get("dataset_options", {}),
            **(dataset_options or {}),
        },
    )


def _read_toml(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read the ``[train]`` keys and the nested tables of a TOML config."""
    data = load_toml(path)
    valid = ("train", *_TABLES.values())
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ConfigError(
            f"{path}: unknown section [{unknown[0]}]; "
            f"valid: {', '.join(f'[{t}]' for t in valid)}"
        )
    for section, value in data.items():
        if not isinstance(value, Mapping):  # e.g. "train = 3" at the top level
            raise ConfigError(
                f"{path}: {section} must be a [{section}] table, got {value!r}"
            )
    train = dict(data.get("train", {}))
    for key in _NESTED:
        if key in train:
            raise ConfigError(f"{path}: put {key} in its own [{_TABLES[key]}] table")
    nested = {key: data.get(table, {}) for key, table in _TABLES.items()}
    # Parsed here so a bad [features] table is reported before [train] keys.
    nested["features"] = FeatureSpec.from_dict(nested["features"])
    return train, nested


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a TOML config: ``[train]`` and the tables of :class:`TrainConfig`.

    Parameters
    ----------
    path : str or Path
    **overrides
        Replace ``[train]`` keys; None values are ignored (options not given).

    Returns
    -------
    TrainConfig
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    return make_train_config(path, **given)


def config_from_report(report: RunReport, *, where: str) -> TrainConfig:
    """Rebuild the :class:`TrainConfig` a run was made with (``report.config``).

    Parameters
    ----------
    report : RunReport
    where : str
        The report's file, for error messages.

    Raises
    ------
    ConfigError
        If the report has no config or its config is not valid.
    """
    if report.config is None:
        raise ConfigError(f"{where}: no 'config' object; was it written by emomon?")
    return make_train_config(report.config, section=f"{where} config")


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """``cfg`` as the JSON object of a report (``make_train_config`` reads it)."""
    from emomon.offline.runreport import to_jsonable

    d = dataclasses.asdict(cfg)
    d["features"] = cfg.features.to_dict()
    return to_jsonable(d)


def default_run_dir(cfg: TrainConfig) -> Path:
    """``runs/<dataset>-<first protocol>-<model>``, relative to the working dir."""
    return Path("runs") / f"{cfg.dataset}-{cfg.protocols[0]}-{cfg.model}"
