"""Convolution + transformer model on raw EEG windows.

A 1-D convolutional stem turns the (n_channels, n_times) window into a short
sequence of tokens (local temporal filtering, spatial mixing of the channels and a
time reduction of 8x), and a small transformer encoder models the long-range
temporal structure; a learnable classification token summarises the window.
The design follows EEG Conformer (Song et al. 2023, "EEG Conformer: Convolutional
Transformer for EEG Decoding and Visualization", IEEE TNSRE 31), with the
class token of BERT / ViT (Devlin et al. 2019; Dosovitskiy et al. 2021) and the
sinusoidal positional encoding of Vaswani et al. 2017 ("Attention is all you need").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from emomon.errors import ConfigError
from emomon.models.base import (
    EmotionModel,
    TaskHeads,
    check_dropout,
    check_positive_int,
    check_sizes,
)


def sinusoidal_encoding(length: int, d_model: int) -> Tensor:
    """Compute the fixed sinusoidal positional encoding (Vaswani et al. 2017).

    Parameters
    ----------
    length : int
        Number of positions.
    d_model : int
        Embedding size, even.

    Returns
    -------
    pe : Tensor, shape (length, d_model)
        ``pe[p, 2i] = sin(p / 10000^(2i/d))``, ``pe[p, 2i+1] = cos(...)``.
    """
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float64)
        * (-math.log(10000.0) / d_model)
    )
    pe = torch.zeros(length, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe.float()


def _conv_out_len(n: int, *, kernel: int, stride: int, padding: int) -> int:
    return (n + 2 * padding - kernel) // stride + 1


class CNNTransformer(EmotionModel):
    """1-D CNN stem + transformer encoder with a class token, on raw EEG.

    Stem: for each size in ``stem_channels``, ``Conv1d(kernel_size, stride 2) ->
    BatchNorm -> GELU``; then ``MaxPool1d(2)`` and a 1x1 convolution to
    ``d_model``. A 2 s window at 128 Hz (256 samples) becomes 32 tokens. A learnable
    class token is prepended, the sinusoidal positional encoding (sized from
    ``input_shape``) is added, ``n_layers`` pre-norm encoder layers run, and the
    class token's final state feeds one linear head per task.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_channels, n_times)``; the model only accepts this window length.
    tasks, loss_weights
        As for :class:`~emomon.models.base.EmotionModel`: task name -> number of
        classes, and per-task loss weights (default 1.0).
    stem_channels : sequence of int, optional
        Filters of the strided temporal convolutions (default ``(32, 64)``).
    kernel_size : int, optional
        Temporal kernel size of the stem convolutions (default 7, odd).
    d_model : int, optional
        Token size (default 64; even, divisible by ``n_heads``).
    n_heads : int, optional
        Attention heads (default 4).
    n_layers : int, optional
        Encoder layers (default 2).
    dim_feedforward : int, optional
        Hidden size of the encoder's feed-forward blocks (default 128).
    dropout : float, optional
        Dropout in the encoder and before the heads (default 0.1).

    Notes
    -----
    ``forward(x)``: ``x`` (batch, n_channels, n_times) -> dict of logits
    (batch, n_classes).
    """

    name = "cnn_transformer"
    input_kind = "eeg"

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        tasks: Mapping[str, int],
        stem_channels: Sequence[int] = (32, 64),
        kernel_size: int = 7,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(
            input_shape=input_shape, tasks=tasks, loss_weights=loss_weights
        )
        model = self.name
        stem_channels = check_sizes(stem_channels, name="stem_channels", model=model)
        kernel_size = check_positive_int(kernel_size, name="kernel_size", model=model)
        d_model = check_positive_int(d_model, name="d_model", model=model)
        n_heads = check_positive_int(n_heads, name="n_heads", model=model)
        n_layers = check_positive_int(n_layers, name="n_layers", model=model)
        dim_feedforward = check_positive_int(
            dim_feedforward, name="dim_feedforward", model=model
        )
        dropout = check_dropout(dropout, model=model)
        if kernel_size % 2 == 0:
            raise ConfigError(
                f"model {model!r}: kernel_size must be odd, got {kernel_size}"
            )
        if d_model % 2 or d_model % n_heads:
            raise ConfigError(
                f"model {model!r}: d_model ({d_model}) must be even and divisible by "
                f"n_heads ({n_heads})"
            )
        self.hparams = {
            "stem_channels": list(stem_channels),
            "kernel_size": kernel_size,
            "d_model": d_model,
            "n_heads": n_heads,
            "n_layers": n_layers,
            "dim_feedforward": dim_feedforward,
            "dropout": dropout,
        }

        n_channels, n_times = self.input_shape
        layers: list[nn.Module] = []
        n_in, length = n_channels, n_times
        pad = kernel_size // 2
        for n_out in stem_channels:
            layers += [
                nn.Conv1d(n_in, n_out, kernel_size, stride=2, padding=pad),
                nn.BatchNorm1d(n_out),
                nn.GELU(),
            ]
            n_in = n_out
            length = _conv_out_len(length, kernel=kernel_size, stride=2, padding=pad)
        layers += [nn.MaxPool1d(2), nn.Conv1d(n_in, d_model, kernel_size=1)]
        length = length // 2
        if length < 1:
            raise ConfigError(
                f"model {model!r}: n_times={n_times} is too short for a stem of "
                f"{len(stem_channels)} strided convolutions; use a longer window or "
                "fewer stem_channels"
            )
        self.stem = nn.Sequential(*layers)
        self.n_tokens = length

        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.register_buffer(
            "pos_encoding",
            sinusoidal_encoding(length + 1, d_model)[None],
            persistent=False,
        )
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.head_dropout = nn.Dropout(dropout)
        self.heads = TaskHeads(d_model, self.tasks)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Compute the logits per task of ``x``, shape (batch, n_channels, n_times)."""
        tokens = self.stem(x).transpose(1, 2)  # (batch, n_tokens, d_model)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        z = torch.cat([cls, tokens], dim=1) + self.pos_encoding
        z = self.encoder(z)
        return self.heads(self.head_dropout(z[:, 0]))
