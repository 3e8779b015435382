"""Models on flat feature vectors: logistic regression and a small MLP."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from emomon.errors import ConfigError
from emomon.models.base import EmotionModel, TaskHeads, check_dropout, check_sizes


class LogReg(EmotionModel):
    """Multinomial logistic regression, one linear layer per task.

    A fast, strong baseline on z-scored band features (DE/PSD). The trainer fits
    it full-batch to the optimum of the class-weighted cross-entropy plus
    ``l2 / 2 * ||W||^2`` (:mod:`emomon.offline.linear`), not by Adam.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_features,)``, e.g. ``n_channels * n_bands``.
    tasks, loss_weights
        As for :class:`~emomon.models.base.EmotionModel`: task name -> number of
        classes, and per-task loss weights (default 1.0).
    l2 : float, optional
        L2 penalty on the weights (not the biases), against a data term that is
        a weighted mean over windows (default 0.1); must be > 0.

    Notes
    -----
    ``forward(x)``: ``x`` (batch, n_features) -> dict of logits (batch, n_classes).
    """

    name = "logreg"
    input_kind = "flat"
    # The heads share no parameter: one joint full-batch fit reaches each task's
    # own optimum, in one pass over the windows per step for all tasks.
    joint_tasks = True
    full_batch = True

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        tasks: Mapping[str, int],
        l2: float = 0.1,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(
            input_shape=input_shape, tasks=tasks, loss_weights=loss_weights
        )
        if (
            isinstance(l2, bool)
            or not isinstance(l2, (int, float))
            or not 0 < l2 < math.inf
        ):
            raise ConfigError(
                f"model {self.name!r}: l2 must be a finite number > 0 (the "
                f"unpenalised optimum may not exist), got {l2!r}"
            )
        self.hparams = {"l2": float(l2)}
        self.heads = TaskHeads(self.input_shape[0], self.tasks)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Compute the logits per task of ``x``, shape (batch, n_features)."""
        return self.heads(x)


class MLP(EmotionModel):
    """Multi-layer perceptron with a shared trunk and one linear head per task.

    ``Linear -> ReLU -> Dropout`` for each hidden size, then the task heads.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_features,)``.
    tasks, loss_weights
        As for :class:`~emomon.models.base.EmotionModel`: task name -> number of
        classes, and per-task loss weights (default 1.0).
    hidden : sequence of int, optional
        Hidden layer sizes (default ``(256, 64)``).
    dropout : float, optional
        Dropout probability after each hidden layer (default 0.3).

    Notes
    -----
    ``forward(x)``: ``x`` (batch, n_features) -> dict of logits (batch, n_classes).
    """

    name = "mlp"
    input_kind = "flat"

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        tasks: Mapping[str, int],
        hidden: Sequence[int] = (256, 64),
        dropout: float = 0.3,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(
            input_shape=input_shape, tasks=tasks, loss_weights=loss_weights
        )
        hidden = check_sizes(hidden, name="hidden", model=self.name)
        check_dropout(dropout, model=self.name)
        self.hparams = {"hidden": list(hidden), "dropout": float(dropout)}
        layers: list[nn.Module] = []
        n_in = self.input_shape[0]
        for h in hidden:
            layers += [nn.Linear(n_in, h), nn.ReLU(), nn.Dropout(dropout)]
            n_in = h
        self.trunk = nn.Sequential(*layers)
        self.heads = TaskHeads(n_in, self.tasks)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Compute the logits per task of ``x``, shape (batch, n_features)."""
        return self.heads(self.trunk(x))
