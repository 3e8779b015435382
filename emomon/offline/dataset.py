"""The data of a training run: features of a dataset plus the labels of each task."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from emomon.config import FeatureSpec
from emomon.datasets import Reader, get_reader
from emomon.dsp.montage import MontagePick, pick_montage, resolve_montage
from emomon.dsp.normalize import channels_off_grid
from emomon.errors import ConfigError, DatasetError
from emomon.offline.features import FeatureTable, load_features
from emomon.offline.labels import class_labels, make_labels
from emomon.offline.runreport import DatasetInfo
from emomon.offline.trainconfig import TrainConfig

__all__ = ["BINARY_CLASSES", "Dataset", "dataset_info", "load_dataset", "model_spec"]

BINARY_CLASSES = ["low", "high"]


@dataclass(frozen=True)
class Dataset:
    """Features plus labels, ready for cross-validation.

    Attributes
    ----------
    table : FeatureTable
        Window-level features, shape (n_windows, n_channels, n_features).
    tasks : dict of str to list of str
        Task -> class names.
    trial_labels : dict of str to ndarray of int, shape (n_trials,)
        Task -> class index of each trial.
    layout : {"flat", "grid", "eeg"}
        The model input layout the features are for.
    montage : MontagePick or None
        The headset montage the channels were picked for (``cfg.montage``).
    session_split : (int, int) or None
        The reader's ``session_split`` (``seed-split``'s trial numbers).
    channels_assumed : bool
        The channel names are the reader's assumption (files without names).
    """

    table: FeatureTable
    tasks: dict[str, list[str]]
    trial_labels: dict[str, np.ndarray]
    layout: str
    montage: MontagePick | None = None
    session_split: tuple[int, int] | None = None
    channels_assumed: bool = False

    def window_labels(
        self, trial_labels: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Return the labels per window, shape (n_windows,), of each task.

        Read from ``trial_labels`` (trial-level labels per task), default the
        dataset's own.
        """
        labels = self.trial_labels if trial_labels is None else trial_labels
        return {task: np.asarray(labels[task])[self.table.trial] for task in self.tasks}


def model_spec(spec: FeatureSpec, model: str) -> FeatureSpec:
    """Return the feature spec a model reads: its layout, raw windows for EEG models."""
    from emomon.models import model_input_kind

    kind = model_input_kind(model)
    if kind == "eeg":
        return dataclasses.replace(spec, kinds=("raw",), layout="eeg", baseline=False)
    if spec.is_raw:
        return dataclasses.replace(spec, kinds=("de", "psd"), layout=kind)
    return dataclasses.replace(spec, layout=kind)


def load_dataset(cfg: TrainConfig, *, progress: bool = True) -> Dataset:
    """Read the dataset, compute (cached) features and the labels of every task.

    Parameters
    ----------
    cfg : TrainConfig
    progress : bool
        Show a progress bar over subjects.

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        If a grid model gets channels that are not on the scalp map, a target
        has no labels, or settings do not apply to precomputed features.
    DatasetError
        If the data cannot be read.
    """
    options = dict(cfg.dataset_options)
    if cfg.dataset == "synthetic":
        options.update(cfg.synthetic)
    pick = None
    if cfg.montage is not None and cfg.dataset == "synthetic":
        # The generator records the headset's own channels (see
        # emomon.datasets.synthetic): the montage is the synthetic data's.
        options.setdefault("montage", cfg.montage)
    reader = get_reader(cfg.dataset, cfg.data_dir, **options)
    spec = model_spec(cfg.features, cfg.model)
    subjects = list(cfg.subjects) or None
    if reader.precomputed:
        table = _precomputed_table(cfg, reader, spec, subjects, progress)
    else:
        channels = None
        if cfg.montage is not None:
            pick = montage_pick(cfg, reader, spec.layout, subjects)
            channels = tuple(zip(pick.dataset_ch_names, pick.ch_names, strict=True))
        table = load_features(
            reader,
            spec=spec,
            subjects=subjects,
            cache_dir=cfg.cache_dir,
            n_jobs=cfg.n_jobs,
            progress=progress,
            channels=channels,
        )
    from emomon.models import model_class

    model_class(cfg.model).check_data(
        sfreq=float(table.sfreq), spec=table.spec, ch_names=table.ch_names
    )
    if spec.layout == "grid":
        off = channels_off_grid(table.ch_names)
        if len(off) == len(table.ch_names):
            raise ConfigError(
                f"model {cfg.model} reads the 8x9 scalp map, but none of the channels "
                f"({', '.join(table.ch_names[:4])}, ...) is a 10-20 name on it; "
                "use a flat model (logreg, mlp) or name the channels"
            )
    tasks: dict[str, list[str]] = {}
    trial_labels: dict[str, np.ndarray] = {}
    for task in cfg.targets or default_targets(table):
        if task == "class":
            if not np.any(table.trial_label != ""):
                raise DatasetError(
                    f"dataset '{cfg.dataset}' has no class labels; "
                    "set {targets} to valence,arousal",
                    params=("targets",),
                )
            # The reader's classes in its index order; a reader without a fixed
            # list (MNE annotations) gets the labels found, sorted.
            classes = reader.classes or tuple(
                sorted(set(table.trial_label.tolist()) - {""})
            )
            tasks[task] = list(classes)
            trial_labels[task] = class_labels(table.trial_label, classes=classes)
            continue
        ratings = table.rating(task)
        if np.all(np.isnan(ratings)):
            raise DatasetError(
                f"dataset '{cfg.dataset}' has no {task} ratings; "
                "set {targets} to class for class-labelled data",
                params=("targets",),
            )
        tasks[task] = list(BINARY_CLASSES)
        trial_labels[task] = make_labels(
            ratings,
            subjects=table.trial_subject,
            method=cfg.labels,
            threshold=cfg.threshold,
            scale=table.scale or (1.0, 9.0),
            seed=cfg.seed,
        )
    return Dataset(
        table,
        tasks,
        trial_labels,
        table.spec.layout,
        pick,
        reader.session_split,
        # Set by readers of files without channel names (EAV).
        bool(getattr(reader, "channels_assumed", False)),
    )


def _precomputed_table(
    cfg: TrainConfig,
    reader: Reader,
    spec: FeatureSpec,
    subjects: list[str] | None,
    progress: bool,
) -> FeatureTable:
    """Return the window table of a precomputed-feature dataset, settings checked."""
    from emomon.offline.precomputed import check_user_spec, load_precomputed

    if spec.layout == "eeg":
        raise ConfigError(
            f"model {cfg.model} reads raw EEG, but dataset '{cfg.dataset}' holds "
            "precomputed features only; choose a feature model (logreg, mlp, "
            "cnn2d, mtcnn, cnn_transformer) or train on the recordings",
            params=("model",),
        )
    if cfg.montage is not None:
        raise ConfigError(
            f"{{montage}} needs EEG to pick and re-reference channels; dataset "
            f"'{cfg.dataset}' holds precomputed features: drop {{montage}} or "
            "train on the recordings",
            params=("montage",),
        )
    check_user_spec(cfg.features, dataset=cfg.dataset)
    return load_precomputed(
        reader, layout=spec.layout, subjects=subjects, progress=progress
    )


def default_targets(table: FeatureTable) -> tuple[str, ...]:
    """Return the tasks of a dataset when none are asked for.

    Valence and arousal where trials have ratings, else the class labels (SEED,
    EAV).
    """
    if np.all(np.isnan(table.ratings[:, :2])) and np.any(table.trial_label != ""):
        return ("class",)
    return ("valence", "arousal")


def montage_pick(
    cfg: TrainConfig, reader: Reader, layout: str, subjects: list[str] | None
) -> MontagePick:
    """Return the channels of ``cfg.montage`` the dataset has, checked.

    The dataset's channels are those of the first subject's first trial (every
    subject must have the montage's channels; :func:`load_features` says which
    one does not).

    Raises
    ------
    ConfigError
        If the montage is unknown or shares too few channels with the dataset.
    """
    assert cfg.montage is not None
    montage = resolve_montage(cfg.montage)
    first = (subjects or reader.subjects())[0]
    return pick_montage(
        montage,
        reader.channel_names(first),
        layout=layout,
        car=cfg.features.car,
        model=cfg.model,
        dataset=cfg.dataset,
    )


def dataset_info(ds: Dataset) -> DatasetInfo:
    """Describe ``ds`` for the report: counts, montage and class balance."""
    t = ds.table
    return DatasetInfo(
        name=t.dataset,
        n_subjects=int(np.unique(t.trial_subject).size),
        n_videos=int(np.unique(t.trial_video).size),
        n_trials=int(t.n_trials),
        n_windows=int(t.X.shape[0]),
        ch_names=tuple(t.ch_names),
        sfreq=float(t.sfreq),
        class_balance={
            task: tuple(np.bincount(lab, minlength=len(ds.tasks[task])).tolist())
            for task, lab in ds.trial_labels.items()
        },
        montage=None if ds.montage is None else ds.montage.to_dict(),
        channels_assumed=ds.channels_assumed,
        precomputed=precomputed_info(t.spec),
    )


def precomputed_info(spec: FeatureSpec) -> dict[str, Any] | None:
    """Describe precomputed features for the report (None for computed ones)."""
    if not spec.precomputed:
        return None
    return {
        "reader": spec.precomputed,
        "families": list(spec.kinds),
        "bands": [[b.name, b.lo, b.hi] for b in spec.bands],
        "window_s": spec.window_s,
        "causal": spec.causal,
    }
