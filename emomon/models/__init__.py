"""Torch models and their registry (DESIGN.md section 7).

Every model is an :class:`~emomon.models.base.EmotionModel`: ``forward(x)`` returns a
``dict`` of LOGITS, one ``(batch, n_classes)`` tensor per task, in the order of the
``tasks`` mapping it was built with. The class attribute ``input_kind`` says which
feature layout it reads:

========================  ==========  ===================================
name                      input_kind  input shape (without batch)
========================  ==========  ===================================
``logreg``                ``flat``    ``(n_channels * n_features,)``
``mlp``                   ``flat``    ``(n_channels * n_features,)``
``cnn2d``                 ``grid``    ``(n_features, 8, 9)``
``mtcnn``                 ``grid``    ``(n_features, 8, 9)``
``cnn_transformer``       ``eeg``     ``(n_channels, n_times)``
``eegpt``                 ``eeg``     ``(n_channels, 1024)``, 256 Hz, µV
========================  ==========  ===================================

>>> model = build_model("mtcnn", input_shape=(8, 8, 9),
...                     tasks={"valence": 2, "arousal": 2})  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from emomon.errors import ConfigError
from emomon.models.base import (
    EmotionModel,
    InputKind,
    TaskHeads,
    multitask_loss,
)
from emomon.models.cnn2d import CNN2D, MTCNN, BrainMapTrunk
from emomon.models.cnn_transformer import CNNTransformer
from emomon.models.eegpt import EEGPTProbe
from emomon.models.linear import MLP, LogReg

#: Registry: model name -> class.
MODELS: dict[str, type[EmotionModel]] = {
    cls.name: cls for cls in (LogReg, MLP, CNN2D, MTCNN, CNNTransformer, EEGPTProbe)
}

__all__ = [
    "MODELS",
    "BrainMapTrunk",
    "CNN2D",
    "CNNTransformer",
    "EEGPTProbe",
    "EmotionModel",
    "InputKind",
    "LogReg",
    "MLP",
    "MTCNN",
    "TaskHeads",
    "build_model",
    "model_class",
    "model_full_batch",
    "model_hparams",
    "model_input_kind",
    "multitask_loss",
    "task_groups",
]


def _model_class(name: str) -> type[EmotionModel]:
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown model {name!r}; valid models: {', '.join(MODELS)}"
        ) from None


def model_hparams(name: str) -> dict[str, Any]:
    """Hyper-parameters a model accepts, with their defaults.

    Parameters
    ----------
    name : str
        Registry name.

    Returns
    -------
    hparams : dict of str to object
        Keyword -> default (``input_shape`` and ``tasks`` excluded).

    Raises
    ------
    ConfigError
        If ``name`` is not in :data:`MODELS`.
    """
    sig = inspect.signature(_model_class(name).__init__)
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        and p.name not in ("input_shape", "tasks")
    }


def model_input_kind(name: str) -> InputKind:
    """Input layout a model reads: ``"flat"``, ``"grid"`` or ``"eeg"``.

    Raises
    ------
    ConfigError
        If ``name`` is not in :data:`MODELS`.
    """
    return _model_class(name).input_kind


def model_full_batch(name: str) -> bool:
    """Whether the trainer fits the model full-batch to its optimum (``logreg``).

    Such a model trains on all training windows, the inner validation windows
    included, with no epochs and no early stopping
    (:mod:`emomon.offline.linear`).

    Raises
    ------
    ConfigError
        If ``name`` is not in :data:`MODELS`.
    """
    return _model_class(name).full_batch


def task_groups(name: str, tasks: Sequence[str]) -> list[tuple[str, ...]]:
    """Which tasks the trainer fits together in one network.

    Parameters
    ----------
    name : str
        Registry name.
    tasks : sequence of str

    Returns
    -------
    list of tuple of str
        All tasks in one group for a model with ``joint_tasks``, else one group
        per task.

    Raises
    ------
    ConfigError
        If ``name`` is not in :data:`MODELS`.
    """
    if _model_class(name).joint_tasks:
        return [tuple(tasks)]
    return [(t,) for t in tasks]


def model_class(name: str) -> type[EmotionModel]:
    """Return the registered class of ``name`` (its class attributes: traits).

    Raises
    ------
    ConfigError
        If ``name`` is not in :data:`MODELS`.
    """
    return _model_class(name)


def build_model(
    name: str,
    *,
    input_shape: Sequence[int],
    tasks: Mapping[str, int],
    **hparams: Any,
) -> EmotionModel:
    """Build a registered model.

    Parameters
    ----------
    name : str
        Registry name, one of :data:`MODELS`.
    input_shape : tuple of int
        Shape of one sample without the batch axis (see the module table).
    tasks : mapping of str to int
        Task name -> number of classes, e.g. ``{"valence": 2, "arousal": 2}`` or
        ``{"class": 3}``; the model's outputs follow this order.
    **hparams
        Model-specific hyper-parameters (see :func:`model_hparams`), plus
        ``loss_weights`` (task -> weight) for every model.

    Returns
    -------
    model : EmotionModel
        In training mode, on the CPU, float32.

    Raises
    ------
    ConfigError
        On an unknown model name, an unknown hyper-parameter, or an invalid value.
    """
    cls = _model_class(name)
    valid = model_hparams(name)
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise ConfigError(
            f"model {name!r}: unknown hyper-parameter(s) {unknown}; "
            f"valid: {sorted(valid)}"
        )
    return cls(input_shape=input_shape, tasks=tasks, **hparams)
