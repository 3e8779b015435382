"""Common base of the emomon models: task heads, validation and the multi-task loss.

Every model maps one input batch to a ``dict`` of LOGITS, one ``(batch, n_classes)``
tensor per task, in the order of the ``tasks`` mapping it was built with. Softmax is
applied only at export time (:func:`emomon.offline.export.export_onnx`), so training
uses the numerically stable ``cross_entropy`` on logits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emomon.errors import ConfigError

InputKind = Literal["flat", "grid", "eeg"]

#: Number of non-batch input dimensions each input kind expects.
INPUT_NDIM: dict[str, int] = {"flat": 1, "grid": 3, "eeg": 2}

_SHAPE_DOC: dict[str, str] = {
    "flat": "(n_features,)",
    "grid": "(n_features, 8, 9)",
    "eeg": "(n_channels, n_times)",
}

_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_tasks(tasks: Mapping[str, int], *, model: str) -> dict[str, int]:
    """Validate a ``task name -> n_classes`` mapping.

    Parameters
    ----------
    tasks : mapping of str to int
        For example ``{"valence": 2, "arousal": 2}`` or ``{"class": 3}``.
    model : str
        Registry name of the model, used in error messages.

    Returns
    -------
    tasks : dict of str to int
        A plain copy, in the input order.

    Raises
    ------
    ConfigError
        If there is no task, a name is not an identifier (it becomes an ONNX output
        name) or a task has fewer than 2 classes.
    """
    if not isinstance(tasks, Mapping) or len(tasks) == 0:
        raise ConfigError(
            f"model {model!r}: tasks must be a non-empty mapping task name -> "
            f"n_classes, e.g. {{'valence': 2, 'arousal': 2}}; got {tasks!r}"
        )
    out: dict[str, int] = {}
    for name, n in tasks.items():
        if not isinstance(name, str) or not _TASK_NAME.match(name):
            raise ConfigError(
                f"model {model!r}: task name {name!r} must be an identifier "
                "(letters, digits, underscore)"
            )
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ConfigError(
                f"model {model!r}: task {name!r} needs an integer number of classes "
                f">= 2, got {n!r}"
            )
        out[name] = int(n)
    return out


def check_input_shape(
    input_shape: Sequence[int], *, kind: str, model: str
) -> tuple[int, ...]:
    """Validate the per-sample input shape (without the batch axis).

    Parameters
    ----------
    input_shape : sequence of int
        Shape of one sample, e.g. ``(128,)`` (flat), ``(8, 8, 9)`` (grid) or
        ``(32, 256)`` (eeg).
    kind : {"flat", "grid", "eeg"}
        Input kind of the model.
    model : str
        Registry name of the model, used in error messages.

    Returns
    -------
    input_shape : tuple of int

    Raises
    ------
    ConfigError
        If the number of dimensions does not match ``kind`` or a size is not a
        positive integer.
    """
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    ok = len(shape) == INPUT_NDIM[kind] and all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    )
    if not ok:
        raise ConfigError(
            f"model {model!r} takes {kind} input of shape {_SHAPE_DOC[kind]} "
            f"(without the batch axis), got input_shape={input_shape!r}"
        )
    return tuple(int(s) for s in shape)


def check_loss_weights(
    loss_weights: Mapping[str, float] | None, tasks: Mapping[str, int], *, model: str
) -> dict[str, float]:
    """Resolve per-task loss weights (default 1.0 for every task).

    Parameters
    ----------
    loss_weights : mapping of str to float, optional
        Weights for some or all tasks; missing tasks get 1.0.
    tasks : mapping of str to int
        The model's tasks.
    model : str
        Registry name of the model, used in error messages.

    Returns
    -------
    loss_weights : dict of str to float
        One weight per task, in task order.

    Raises
    ------
    ConfigError
        On an unknown task name or a negative / non-finite weight, or if all
        weights are zero.
    """
    weights = {t: 1.0 for t in tasks}
    for name, w in (loss_weights or {}).items():
        if name not in tasks:
            raise ConfigError(
                f"model {model!r}: loss_weights has unknown task {name!r}; "
                f"tasks are {list(tasks)}"
            )
        try:
            wf = float(w)
        except (TypeError, ValueError):
            wf = float("nan")
        if not (wf >= 0.0 and wf < float("inf")):
            raise ConfigError(
                f"model {model!r}: loss weight of {name!r} must be a finite number "
                f">= 0, got {w!r}"
            )
        weights[name] = wf
    if not any(w > 0 for w in weights.values()):
        raise ConfigError(f"model {model!r}: all loss weights are zero")
    return weights


def check_dropout(p: float, *, model: str) -> float:
    """Return ``p`` as float; raise :class:`ConfigError` unless ``0 <= p < 1``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ConfigError(f"model {model!r}: dropout must be in [0, 1), got {p!r}")
    return float(p)


def check_sizes(sizes: Sequence[int], *, name: str, model: str) -> tuple[int, ...]:
    """Return ``sizes`` as a tuple of positive ints.

    Raises
    ------
    ConfigError
        Unless ``sizes`` is a non-empty sequence of positive ints.
    """
    try:
        out = tuple(sizes)
    except TypeError:
        out = ()
    if not out or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in out
    ):
        raise ConfigError(
            f"model {model!r}: {name} must be a non-empty list of positive ints, "
            f"got {sizes!r}"
        )
    return out


def check_positive_int(
    n: int, *, name: str, model: str, allow_zero: bool = False
) -> int:
    """Return ``n``, checked.

    Raises
    ------
    ConfigError
        Unless ``n`` is an int > 0 (>= 0 with ``allow_zero``).
    """
    lo = 0 if allow_zero else 1
    if isinstance(n, bool) or not isinstance(n, int) or n < lo:
        raise ConfigError(
            f"model {model!r}: {name} must be an integer >= {lo}, got {n!r}"
        )
    return n


class TaskHeads(nn.Module):
    """One classification head per task on a shared representation.

    Parameters
    ----------
    in_features : int
        Size of the shared representation.
    tasks : mapping of str to int
        Task name -> number of classes, in output order.
    hidden : int, optional
        If > 0, each head is ``Linear -> ReLU -> Dropout -> Linear`` with this many
        hidden units (task-specific layers); otherwise a single ``Linear``.
    dropout : float, optional
        Dropout probability inside a hidden head.

    Notes
    -----
    Heads live in an ``nn.ModuleList`` (not a ``ModuleDict``) so that any identifier
    is a valid task name, including ones that clash with ``nn.Module`` attributes.
    """

    def __init__(
        self,
        in_features: int,
        tasks: Mapping[str, int],
        *,
        hidden: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.task_names: tuple[str, ...] = tuple(tasks)
        heads = []
        for n_classes in tasks.values():
            if hidden > 0:
                head: nn.Module = nn.Sequential(
                    nn.Linear(in_features, hidden),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                    nn.Linear(hidden, n_classes),
                )
            else:
                head = nn.Linear(in_features, n_classes)
            heads.append(head)
        self.heads = nn.ModuleList(heads)

    def forward(self, z: Tensor) -> dict[str, Tensor]:
        """Apply every head to ``z``, shape (batch, in_features): logits per task."""
        return {
            name: head(z)
            for name, head in zip(self.task_names, self.heads, strict=True)
        }

    def __getitem__(self, task: str) -> nn.Module:
        """Head of one task."""
        return self.heads[self.task_names.index(task)]


class EmotionModel(nn.Module):
    """Base class of the registry's models.

    Subclasses set the class attributes ``name`` and ``input_kind`` (and
    ``joint_tasks`` when all tasks train in one network) and implement
    ``forward(x) -> dict[str, Tensor]`` of logits.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample without the batch axis.
    tasks : mapping of str to int
        Task name -> number of classes; ``forward`` returns logits in this order.
    loss_weights : mapping of str to float, optional
        Per-task weight of the loss (default 1.0 each); read by the trainer via
        the ``loss_weights`` attribute and :func:`multitask_loss`.

    Attributes
    ----------
    input_shape : tuple of int
    tasks : dict of str to int
    loss_weights : dict of str to float
    hparams : dict
        The model-specific keyword arguments the model was built with (for
        checkpoints and reports).
    """

    name: ClassVar[str] = ""
    input_kind: ClassVar[InputKind]
    #: Whether the trainer fits all tasks in one network (else one per task).
    joint_tasks: ClassVar[bool] = False
    #: Whether the model is fit to its optimum on all training windows at once
    #: (a convex loss: :mod:`emomon.offline.linear`) instead of by minibatch Adam
    #: with early stopping.
    full_batch: ClassVar[bool] = False
    #: Whether the trainer z-scores the input with training-set statistics
    #: (False: the model reads the windows as they are, e.g. a pretrained
    #: encoder that expects physical units; the contract then holds mean 0, std 1).
    zscore: ClassVar[bool] = True
    #: Whether the model needs its input channels' names (hparam ``ch_names``,
    #: passed by the trainer from the dataset).
    needs_ch_names: ClassVar[bool] = False
    #: Datasets (reader names) in the model's pretraining data: any result on
    #: them is contaminated and says so.
    pretrained_on: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_data(cls, *, sfreq: float, spec: Any, ch_names: Sequence[str]) -> None:
        """Refuse data the model cannot read (before any fold is trained).

        Parameters
        ----------
        sfreq : float
            Sampling rate of the windows (Hz).
        spec : FeatureSpec
            The feature definition the model reads.
        ch_names : sequence of str
            The channels, in input order.

        Raises
        ------
        ConfigError
            One line naming what to change; the default accepts everything.
        """

    def contract_info(self) -> dict[str, Any]:
        """Return what the exported contract's ``info`` records of the model.

        Default: nothing.
        """
        return {}

    def apply_constraints(self) -> None:
        """Project the weights onto their constraints (default: none).

        The trainer calls it after each optimiser step.
        """

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        tasks: Mapping[str, int],
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.input_shape = check_input_shape(
            input_shape, kind=self.input_kind, model=self.name
        )
        self.tasks = check_tasks(tasks, model=self.name)
        self.loss_weights = check_loss_weights(
            loss_weights, self.tasks, model=self.name
        )
        self.hparams: dict[str, Any] = {}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Compute the logits per task; each model implements it.

        Parameters
        ----------
        x : Tensor, shape (batch, *input_shape)
            In the layout of the model's ``input_kind``.

        Returns
        -------
        logits : dict of str to Tensor, each shape (batch, n_classes)
            In task order.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def n_parameters(self, *, trainable_only: bool = True) -> int:
        """Count the (trainable) scalar parameters, each shared tensor once."""
        return sum(
            p.numel()
            for p in self.parameters()
            if p.requires_grad or not trainable_only
        )

    def example_input(self, batch: int = 2, *, seed: int = 0) -> Tensor:
        """Random standard-normal input of the right shape.

        Returns
        -------
        x : Tensor, shape (batch, *input_shape), float32
        """
        g = torch.Generator().manual_seed(seed)
        return torch.randn((batch, *self.input_shape), generator=g)

    def extra_repr(self) -> str:
        """Return the input shape and tasks, shown in the module's repr."""
        return f"input_shape={self.input_shape}, tasks={self.tasks}"


def multitask_loss(
    logits: Mapping[str, Tensor],
    targets: Mapping[str, Tensor],
    *,
    weights: Mapping[str, float] | None = None,
    class_weights: Mapping[str, Tensor] | None = None,
) -> Tensor:
    """Weighted sum of per-task cross-entropies, ``sum_t w_t * CE_t``.

    This is the loss of the multi-task CNN (Rudakov et al. 2021), ``w_v * L_v +
    w_a * L_a``, and reduces to plain cross-entropy for a single task.

    Parameters
    ----------
    logits : mapping of str to Tensor, each shape (batch, n_classes)
        A model's output.
    targets : mapping of str to Tensor, each shape (batch,), int64
        Class indices per task; must cover every task in ``logits``.
    weights : mapping of str to float, optional
        Task weights (e.g. ``model.loss_weights``); missing tasks weigh 1.0.
    class_weights : mapping of str to Tensor, optional
        Per-task class weights, shape (n_classes,), for class-balanced loss.

    Returns
    -------
    loss : Tensor, shape ()
    """
    missing = [t for t in logits if t not in targets]
    if missing:
        raise ValueError(f"targets missing for tasks {missing}")
    weights = weights or {}
    class_weights = class_weights or {}
    total: Tensor | None = None
    for task, out in logits.items():
        term = float(weights.get(task, 1.0)) * F.cross_entropy(
            out, targets[task], weight=class_weights.get(task)
        )
        total = term if total is None else total + term
    assert total is not None
    return total
