"""Real emomon ONNX models for pipeline tests (torch is a test dependency only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from emomon.config import FeatureSpec
from emomon.contract import ModelContract
from emomon.dsp.features import compute_features
from emomon.dsp.normalize import fit_zscore, input_shape, model_input


def make_model(
    path: Path,
    *,
    ch_names,
    sfreq: float,
    model: str = "logreg",
    eeg: np.ndarray | None = None,
    spec: FeatureSpec | None = None,
    seed: int = 0,
    tasks: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Train a small model on ``eeg`` (or noise) and export it with its contract.

    Labels are a real signal property (window alpha power above its median), so
    the model is trained, not random, and its outputs vary with the input.
    ``tasks`` (task -> class names; default binary valence and arousal): a task
    of K classes is labelled by the K quantile bins of the alpha power.
    """
    import torch

    from emomon.offline.export import export_onnx
    from emomon.offline.train import TrainConfig, fit_model

    torch.manual_seed(seed)
    layout = {"logreg": "flat", "mlp": "flat", "cnn2d": "grid"}[model]
    spec = spec or FeatureSpec(layout=layout)
    rng = np.random.default_rng(seed)
    if eeg is None:
        eeg = rng.standard_normal((len(ch_names), int(60 * sfreq))) * 10
    feats = compute_features(eeg, sfreq=sfreq, spec=spec).values
    mean, std = fit_zscore(feats, layout=layout)
    x = model_input(feats, mean=mean, std=std, layout=layout, ch_names=ch_names)
    alpha = feats[:, :, spec.feature_names.index("de_alpha")].mean(axis=1)
    y = (alpha > np.median(alpha)).astype(np.int64)
    classes = {
        k: list(v)
        for k, v in (
            tasks or {"valence": ["low", "high"], "arousal": ["low", "high"]}
        ).items()
    }
    labels = {}
    for name, names in classes.items():
        if name == "arousal" and len(names) == 2:
            labels[name] = 1 - y
        elif len(names) == 2:
            labels[name] = y
        else:
            edges = np.quantile(alpha, np.linspace(0, 1, len(names) + 1)[1:-1])
            labels[name] = np.searchsorted(edges, alpha).astype(np.int64)
    cfg = TrainConfig(model=model, epochs=3, hparams={})
    res = fit_model(
        cfg,
        tasks={k: len(v) for k, v in classes.items()},
        x_train=x,
        y_train=labels,
    )
    shape = input_shape(
        layout=layout, n_channels=len(ch_names), n_features=feats.shape[2]
    )
    contract = ModelContract(
        input_name="features",
        input_kind=layout,
        input_shape=shape,
        spec=spec,
        ch_names=tuple(ch_names),
        sfreq=float(sfreq),
        norm_mean=mean,
        norm_std=std,
        tasks=classes,
        model=model,
        info={"dataset": "test"},
    )
    export_onnx(
        res.model,
        input_shape=shape,
        input_name="features",
        path=path,
        metadata={"emomon": contract.to_json()},
        exporter="torchscript",
    )
    return path


def offline_probabilities(path: Path, features: np.ndarray) -> dict[str, np.ndarray]:
    """The model's outputs for offline ``features`` (n_windows, n_channels,
    n_features): normalised and shaped by its contract, one onnxruntime run;
    task -> (n_windows, n_classes)."""
    import onnxruntime as ort

    contract = ModelContract.from_onnx(path)
    x = model_input(
        features,
        mean=contract.norm_mean,
        std=contract.norm_std,
        layout=contract.input_kind,
        ch_names=contract.ch_names,
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {contract.input_name: x}), strict=True))
