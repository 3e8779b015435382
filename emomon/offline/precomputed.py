"""Training input from a dataset's precomputed features (SEED ``ExtractedFeatures``).

A precomputed reader (``Reader.precomputed``) gives :class:`FeatureTrial`
records: per trial, one array (n_channels, n_windows, n_bands) per feature
family over non-overlapping windows. They become the same
:class:`~emomon.offline.features.FeatureTable` that computed features give, so
protocols, models, statistics and export are shared. What differs is recorded
in the :class:`~emomon.config.FeatureSpec`: ``precomputed`` names the reader,
``kinds`` the families, ``bands`` the dataset's own bands. Such features are
not causal (SEED's ``LDS`` smooths over the whole trial, ``movingAve``
averages neighbouring windows): the exported model says so and the live
pipeline refuses it, and only splits that keep whole trials on one side are
honest on them (``intra`` is marked leaky as always).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emomon.config import Band, FeatureSpec
from emomon.datasets import FeatureTrial, Reader
from emomon.errors import ConfigError, DatasetError
from emomon.offline.features import RATING_KEYS, FeatureTable

__all__ = ["check_user_spec", "load_precomputed", "precomputed_spec"]


def precomputed_spec(trial: FeatureTrial, *, reader: str, layout: str) -> FeatureSpec:
    """Return the spec that describes ``trial``'s features.

    Parameters
    ----------
    trial : FeatureTrial
        Any trial of the dataset (all must agree, see :func:`load_precomputed`).
    reader : str
        The reader's registry name, recorded as ``precomputed``.
    layout : {"flat", "grid"}
        The model's input layout.

    Raises
    ------
    DatasetError
        If the reader gave no band edges, or edges that are not bands.
    """
    where = f"dataset '{reader}'"
    if len(trial.band_edges) != len(trial.bands):
        raise DatasetError(
            f"{where}: the reader gives {len(trial.bands)} bands but "
            f"{len(trial.band_edges)} band edges; the reader must name each "
            "band's edges in Hz"
        )
    try:
        bands = tuple(
            Band(name, float(lo), float(hi))
            for name, (lo, hi) in zip(trial.bands, trial.band_edges, strict=True)
        )
    except ConfigError as exc:
        raise DatasetError(f"{where}: {exc}") from None
    return FeatureSpec(
        bands=bands,
        kinds=tuple(trial.features),
        window_s=float(trial.window_s),
        hop_s=float(trial.window_s),
        warmup_s=0.0,
        car=False,
        layout=layout,
        precomputed=reader,
    )


def check_user_spec(spec: FeatureSpec, *, dataset: str) -> None:
    """Refuse ``[features]`` settings that cannot apply to precomputed features.

    Only ``layout`` (chosen by the model) applies; anything else the user set
    would be silently ignored, so it is refused.

    Raises
    ------
    ConfigError
        Naming the first such setting and how to choose features instead.
    """
    default = FeatureSpec(layout=spec.layout)
    for name in ("bands", "kinds", "window_s", "hop_s", "car", "notch", "baseline"):
        if getattr(spec, name) != getattr(default, name):
            raise ConfigError(
                f"features.{name} does not apply to dataset '{dataset}': its "
                "features are precomputed with the dataset's own bands and "
                "windows; choose them with the reader option features (e.g. "
                "{dataset_options} features=de_LDS,psd_LDS) or train on the "
                "recordings",
                params=("dataset_options",),
            )


def load_precomputed(
    reader: Reader,
    *,
    layout: str,
    subjects: Sequence[str] | None = None,
    progress: bool = True,
) -> FeatureTable:
    """Read a precomputed-feature dataset as a window table.

    Parameters
    ----------
    reader : Reader
        A reader with ``precomputed = True``.
    layout : {"flat", "grid"}
        The model's input layout (recorded in the table's spec).
    subjects : sequence of str, optional
        Default: every subject of the reader.
    progress : bool
        Show a progress bar over subjects (on stderr).

    Returns
    -------
    FeatureTable
        ``X`` (n_windows, n_channels, n_families * n_bands), families then
        bands, as :attr:`FeatureSpec.feature_names` orders them; window ``i``
        of a trial ends at ``(i + 1) * window_s``; no ratings.

    Raises
    ------
    DatasetError
        If trials disagree on channels, bands, window length or families, or
        a trial has no window.
    """
    from tqdm.auto import tqdm

    subjects = list(subjects) if subjects is not None else reader.subjects()
    trials: list[FeatureTrial] = []
    for s in tqdm(subjects, desc=f"features {reader.name}", disable=not progress):
        trials.extend(reader.read_subject(s))  # type: ignore[arg-type]
    if not trials:
        raise DatasetError(f"dataset '{reader.name}': no trials in {subjects}")
    ref = trials[0]
    spec = precomputed_spec(ref, reader=reader.name, layout=layout)
    if not ref.sfreq > 0:
        raise DatasetError(
            f"dataset '{reader.name}': the reader gives no rate of the EEG its "
            "features came from (FeatureTrial.sfreq)"
        )
    X, t_end = [], []
    for t in trials:
        _check_like(t, ref, reader.name)
        # (n_channels, n_windows, n_bands) per family -> (n_windows, n_channels,
        # n_families * n_bands), families outer as in spec.feature_names.
        x = np.concatenate(
            [np.transpose(t.features[k], (1, 0, 2)) for k in spec.kinds], axis=-1
        )
        if x.shape[0] == 0:
            raise DatasetError(
                f"dataset '{reader.name}': subject {t.subject} {t.video} has no "
                "feature window"
            )
        X.append(x)
        t_end.append(np.arange(1, x.shape[0] + 1) * float(t.window_s))
    n_win = [x.shape[0] for x in X]
    return FeatureTable(
        X=np.concatenate(X).astype(np.float64),
        trial=np.repeat(np.arange(len(trials)), n_win),
        t_end=np.concatenate(t_end),
        trial_subject=np.array([t.subject for t in trials]).astype(str),
        trial_video=np.array([t.video for t in trials]).astype(str),
        ratings=np.full((len(trials), len(RATING_KEYS)), np.nan),
        trial_label=np.array([t.label or "" for t in trials]).astype(str),
        ch_names=tuple(ref.ch_names),
        sfreq=float(ref.sfreq),
        spec=spec,
        scale=None,
        dataset=reader.name,
        trial_session=np.array([t.session for t in trials]).astype(str),
    )


def _check_like(t: FeatureTrial, ref: FeatureTrial, name: str) -> None:
    where = f"dataset '{name}': subject {t.subject} {t.video}"
    for attr in ("ch_names", "bands", "band_edges", "window_s"):
        if getattr(t, attr) != getattr(ref, attr):
            raise DatasetError(
                f"{where} has other {attr} than subject {ref.subject} {ref.video}; "
                "emomon needs one feature layout per dataset"
            )
    if tuple(t.features) != tuple(ref.features):
        raise DatasetError(
            f"{where} has feature families {list(t.features)}, subject "
            f"{ref.subject} {ref.video} {list(ref.features)}; emomon needs the "
            "same families in every trial"
        )
    n = {a.shape[1] for a in t.features.values()}
    if len(n) != 1:
        raise DatasetError(f"{where}: its feature families have different lengths")
