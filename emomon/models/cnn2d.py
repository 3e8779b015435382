"""2-D CNNs on stacked scalp brain maps (DESIGN.md sections 5 and 7).

Input is the ``grid`` layout: one 8x9 map per feature (band x DE/PSD), electrodes
placed at their scalp position and absent ones zero, shape (batch, n_features, 8, 9).

The trunk follows the continuous CNN of Yang et al. 2018 ("Continuous convolutional
neural network with 3D input for EEG-based emotion recognition", ICONIP 2018): three
3x3 convolutions with 64, 128 and 256 filters and zero "same" padding (the maps are
tiny, so no pooling between them), then a 1x1 convolution down to 64 maps that
fuses the feature maps. As in the multi-task CNN of Rudakov et al. 2021 ("Multi-Task
CNN model for emotion recognition from EEG brain maps", BioSMART 2021,
doi:10.1109/BioSMART54244.2021.9677807) it is followed by max-pooling, batch
normalisation, dropout and a 512-unit dense layer; task heads sit on top.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from emomon.errors import ConfigError
from emomon.models.base import (
    EmotionModel,
    TaskHeads,
    check_dropout,
    check_positive_int,
    check_sizes,
)


class BrainMapTrunk(nn.Module):
    """Shared convolutional trunk: brain maps -> dense representation.

    ``[Conv3x3 -> ReLU] x len(channels) -> Conv1x1 -> ReLU -> MaxPool2x2 -> BN ->
    Dropout -> Flatten -> Linear -> ReLU -> Dropout``.

    Parameters
    ----------
    in_shape : tuple of int
        ``(n_features, height, width)``, usually ``(n_features, 8, 9)``.
    channels : sequence of int, optional
        Filters of the 3x3 convolutions (default ``(64, 128, 256)``).
    bottleneck : int, optional
        Filters of the final 1x1 convolution (default 64).
    dense : int, optional
        Units of the dense layer (default 512).
    dropout : float, optional
        Dropout probability after pooling and after the dense layer (default 0.2).

    Notes
    -----
    Pooling uses ``ceil_mode=True`` so that the odd last column of the 8x9 map (F8,
    T8, P8) is not dropped: an 8x9 map pools to 4x5.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        *,
        channels: Sequence[int] = (64, 128, 256),
        bottleneck: int = 64,
        dense: int = 512,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        n_in, height, width = in_shape
        layers: list[nn.Module] = []
        for n_out in channels:
            layers += [nn.Conv2d(n_in, n_out, kernel_size=3, padding=1), nn.ReLU()]
            n_in = n_out
        layers += [
            nn.Conv2d(n_in, bottleneck, kernel_size=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True),
            nn.BatchNorm2d(bottleneck),
            nn.Dropout(dropout),
            nn.Flatten(),
        ]
        n_flat = bottleneck * math.ceil(height / 2) * math.ceil(width / 2)
        layers += [nn.Linear(n_flat, dense), nn.ReLU(), nn.Dropout(dropout)]
        self.layers = nn.Sequential(*layers)
        self.out_features = dense

    def forward(self, x: Tensor) -> Tensor:
        """Shared representation.

        Parameters
        ----------
        x : Tensor, shape (batch, n_features, height, width)

        Returns
        -------
        z : Tensor, shape (batch, dense)
        """
        return self.layers(x)


class CNN2D(EmotionModel):
    """2-D CNN on brain maps with one linear head per task on the shared trunk.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_features, 8, 9)``; any number of features and map size work.
    tasks, loss_weights
        As for :class:`~emomon.models.base.EmotionModel`: task name -> number of
        classes, and per-task loss weights (default 1.0).
    channels, bottleneck, dense, dropout
        Trunk settings, see :class:`BrainMapTrunk`.
    head_hidden : int, optional
        Hidden units of a task-specific layer in each head; 0 (default) makes each
        head a single linear layer on the 512-unit representation.

    Notes
    -----
    ``forward(x)``: ``x`` (batch, n_features, 8, 9) -> dict of logits
    (batch, n_classes).
    """

    name = "cnn2d"
    input_kind = "grid"

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        tasks: Mapping[str, int],
        channels: Sequence[int] = (64, 128, 256),
        bottleneck: int = 64,
        dense: int = 512,
        dropout: float = 0.2,
        head_hidden: int = 0,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(
            input_shape=input_shape, tasks=tasks, loss_weights=loss_weights
        )
        model = self.name
        channels = check_sizes(channels, name="channels", model=model)
        bottleneck = check_positive_int(bottleneck, name="bottleneck", model=model)
        dense = check_positive_int(dense, name="dense", model=model)
        dropout = check_dropout(dropout, model=model)
        head_hidden = check_positive_int(
            head_hidden, name="head_hidden", model=model, allow_zero=True
        )
        self.hparams = {
            "channels": list(channels),
            "bottleneck": bottleneck,
            "dense": dense,
            "dropout": dropout,
            "head_hidden": head_hidden,
        }
        self.trunk = BrainMapTrunk(
            self.input_shape,
            channels=channels,
            bottleneck=bottleneck,
            dense=dense,
            dropout=dropout,
        )
        self.heads = TaskHeads(
            self.trunk.out_features, self.tasks, hidden=head_hidden, dropout=dropout
        )

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Compute the logits per task; ``x`` is (batch, n_features, height, width)."""
        return self.heads(self.trunk(x))


class MTCNN(CNN2D):
    """Multi-task CNN: one shared brain-map trunk, one head per task.

    The multi-task CNN of Rudakov et al. 2021 learns valence and arousal jointly:
    both heads read the same :class:`BrainMapTrunk` (one module, its parameters
    exist once), and training minimises ``w_v * L_v + w_a * L_a`` with the weights
    in :attr:`loss_weights` (see :func:`emomon.models.base.multitask_loss`). Each
    head has its own hidden layer so the tasks can specialise on top of the
    shared representation.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_features, 8, 9)``.
    tasks : mapping of str to int
        At least two tasks, typically ``{"valence": 2, "arousal": 2}``.
    channels, bottleneck, dense, dropout
        Trunk settings, see :class:`BrainMapTrunk`.
    head_hidden : int, optional
        Hidden units of each task-specific head layer (default 64; 0 for linear
        heads).
    loss_weights : mapping of str to float, optional
        Task weights ``{"valence": w_v, "arousal": w_a}`` (default 1.0 each).

    Notes
    -----
    ``forward(x)``: ``x`` (batch, n_features, 8, 9) -> dict of logits
    (batch, n_classes), e.g. ``{"valence": (batch, 2), "arousal": (batch, 2)}``.
    """

    name = "mtcnn"
    input_kind = "grid"
    joint_tasks = True  # the shared trunk is the point

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        tasks: Mapping[str, int],
        channels: Sequence[int] = (64, 128, 256),
        bottleneck: int = 64,
        dense: int = 512,
        dropout: float = 0.2,
        head_hidden: int = 64,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        if isinstance(tasks, Mapping) and len(tasks) < 2:
            raise ConfigError(
                f"model 'mtcnn' is multi-task and needs at least two tasks (e.g. "
                f"valence and arousal), got {list(tasks)}; use 'cnn2d' for one task"
            )
        super().__init__(
            input_shape=input_shape,
            tasks=tasks,
            channels=channels,
            bottleneck=bottleneck,
            dense=dense,
            dropout=dropout,
            head_hidden=head_hidden,
            loss_weights=loss_weights,
        )
