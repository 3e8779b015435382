"""EEGPT: a frozen pretrained EEG transformer with the authors' linear probe.

EEGPT (Wang et al. 2024, "EEGPT: Pretrained Transformer for Universal and
Reliable Representation of EEG Signals", NeurIPS 2024; code Apache-2.0 at
github.com/BINE022/EEGPT) cuts every channel of a 4 s, 256 Hz window into
64-sample patches, embeds each patch with a linear map, adds a learned embedding
of the channel's NAME (a 62-electrode dictionary), and runs one transformer over
the channels of each time patch with ``embed_num`` learned summary tokens; the
summary tokens' final states, layer-normed, are the patch's representation.

The weights are not shipped and cannot be downloaded automatically: the user
passes the authors' PyTorch Lightning checkpoint (a dict whose ``state_dict``
holds the pretraining modules); only the ``target_encoder.`` entries are kept.
This module re-implements the architecture from the published facts (layer
names and shapes follow the checkpoint so that it loads; no code is copied):

- patch embedding: ``Conv2d(1, D, kernel (1, 64), stride (1, 64))`` over
  ``(batch, 1, C, T)``, giving ``(batch, N, C, D)`` tokens;
- channel embedding ``Embedding(62, D)`` added to every token of a channel;
- pre-norm blocks: ``LayerNorm(eps=1e-6) -> multi-head self-attention (qkv
  bias) -> residual``, ``LayerNorm -> Linear(D, 4D) -> GELU -> Linear -> residual``;
- ``embed_num`` summary tokens appended after the channel tokens; their final
  states, through ``LayerNorm``, give ``(batch, N, embed_num, D)``.

The released large model: D = 512, depth 8, 8 heads, embed_num 4 (about 25 M
parameters in the encoder). Its linear probe (``linear_probe_EEGPT_*.py``): a
1x1 convolution over channels (max-norm 1), the encoder, per-patch
``Linear(embed_num * D, 16)`` (max-norm 1) after dropout 0.5, and
``Linear(16 * N, n_classes)`` (max-norm 0.25); only the probe trains. The
authors renormalise the weights inside ``forward``; here
:meth:`EEGPTProbe.apply_constraints` does it after each optimiser step, which
keeps ``forward`` pure (exportable, and the same in training and inference).

Input as pretrained: 256 Hz, 4 s (1024 samples), common average reference, in
MILLIVOLTS. emomon windows are in microvolts; the model scales them by 1e-3
inside its graph, so offline and live code feed the same microvolt windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emomon.errors import ConfigError, ModelError
from emomon.models.base import EmotionModel, check_dropout, check_positive_int

#: The encoder's channel dictionary, in embedding-row order (EEGPT's
#: ``CHANNEL_DICT``: 62 10-10 electrodes, upper case). Row i of the checkpoint's
#: ``chan_embed.weight`` belongs to ``CHANNELS[i]``.
CHANNELS: tuple[str, ...] = (
    *("FP1", "FPZ", "FP2"),
    *("AF7", "AF3", "AF4", "AF8"),
    *("F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8"),
    *("FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8"),
    *("T7", "C5", "C3", "C1", "CZ", "C2", "C4", "C6", "T8"),
    *("TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8"),
    *("P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8"),
    *("PO7", "PO5", "PO3", "POZ", "PO4", "PO6", "PO8"),
    *("O1", "OZ", "O2"),
)

#: Pretraining input: sampling rate (Hz), window (s), patch length (samples).
SFREQ = 256.0
WINDOW_S = 4.0
PATCH = 64
N_TIMES = int(SFREQ * WINDOW_S)
#: The encoder reads millivolts; emomon windows are microvolts.
UV_TO_MV = 1e-3
#: Prefix of the encoder's entries in the checkpoint's ``state_dict``.
PREFIX = "target_encoder."

#: Encoder sizes: ``full`` is the released large model; ``tiny`` is for tests.
SIZES: dict[str, dict[str, int]] = {
    "full": {"embed_dim": 512, "depth": 8, "num_heads": 8, "embed_num": 4},
    "tiny": {"embed_dim": 32, "depth": 2, "num_heads": 4, "embed_num": 2},
}


def channel_ids(ch_names: Sequence[str], *, source: str = "channels") -> list[int]:
    """Map channel names onto rows of the encoder's channel dictionary.

    Parameters
    ----------
    ch_names : sequence of str
        Electrode names, case-insensitive (``"Fp1"``, ``"FPz"``); trailing dots of
        PhysioNet-style names (``"Fp1."``) are ignored.
    source : str
        What the names are, for the error message.

    Returns
    -------
    ids : list of int
        Row of :data:`CHANNELS` of each name, in input order.

    Raises
    ------
    ConfigError
        Naming every channel the dictionary does not know, or a repeated one.
    """
    ids, unknown = [], []
    for ch in ch_names:
        key = str(ch).strip().rstrip(".").upper()
        if key in CHANNELS:
            ids.append(CHANNELS.index(key))
        else:
            unknown.append(str(ch))
    if unknown:
        raise ConfigError(
            f"model 'eegpt': {source} {', '.join(unknown)} not in the EEGPT "
            "encoder's 62-channel dictionary (10-10 names such as Fp1, Cz, O2); "
            "drop or rename them (e.g. with --montage)"
        )
    if len(set(ids)) != len(ids):
        dup = sorted(
            {c for c, i in zip(ch_names, ids, strict=True) if ids.count(i) > 1}
        )
        raise ConfigError(f"model 'eegpt': {source} name {', '.join(dup)} twice")
    return ids


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        h = self.num_heads
        # (3, b, heads, t, head_dim), the checkpoint's qkv row order.
        qkv = self.qkv(x).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        # Written out (not F.scaled_dot_product_attention) so both ONNX exporters
        # give the same plain MatMul/Softmax graph.
        att = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(d // h), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(y)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=(1, patch), stride=(1, patch))

    def forward(self, x: Tensor) -> Tensor:
        # (b, c, t) -> (b, dim, c, n) -> (b, n, c, dim)
        return self.proj(x.unsqueeze(1)).permute(0, 3, 2, 1)


class EEGPTEncoder(nn.Module):
    """The EEGPT encoder (``target_encoder`` of the authors' checkpoint).

    Parameters
    ----------
    embed_dim : int
        Token size D (512 in the released model).
    depth : int
        Transformer blocks (8).
    num_heads : int
        Attention heads (8); ``embed_dim`` must be divisible by it.
    embed_num : int
        Summary tokens per patch (4).
    mlp_hidden : int, optional
        Hidden size of the blocks' feed-forward layers (default ``4 * embed_dim``).
    patch : int
        Samples per patch (64).

    Notes
    -----
    ``forward(x, chan_ids)``: ``x`` (batch, C, T) in millivolts with ``T`` a
    multiple of ``patch``, ``chan_ids`` (C,) int64 rows of :data:`CHANNELS` ->
    (batch, T // patch, embed_num, embed_dim).
    """

    def __init__(
        self,
        *,
        embed_dim: int,
        depth: int,
        num_heads: int,
        embed_num: int,
        mlp_hidden: int | None = None,
        patch: int = PATCH,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ConfigError(
                f"model 'eegpt': embed_dim {embed_dim} is not divisible by "
                f"num_heads {num_heads}"
            )
        self.embed_dim, self.embed_num, self.patch = embed_dim, embed_num, patch
        self.patch_embed = _PatchEmbed(embed_dim, patch)
        self.chan_embed = nn.Embedding(len(CHANNELS), embed_dim)
        hidden = mlp_hidden or 4 * embed_dim
        self.blocks = nn.ModuleList(
            _Block(embed_dim, num_heads, hidden) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.summary_token = nn.Parameter(torch.zeros(1, embed_num, embed_dim))
        nn.init.trunc_normal_(self.summary_token, std=0.02)

    def forward(self, x: Tensor, chan_ids: Tensor) -> Tensor:
        """Encode (batch, C, T) millivolts: (batch, T // patch, embed_num, D)."""
        tok = self.patch_embed(x) + self.chan_embed(chan_ids)  # (b, n, c, d)
        b, n, c, d = tok.shape
        tok = tok.reshape(b * n, c, d)  # one sequence per time patch
        z = torch.cat([tok, self.summary_token.expand(b * n, -1, -1)], dim=1)
        for blk in self.blocks:
            z = blk(z)
        z = self.norm(z[:, c:])  # the summary tokens' states
        return z.reshape(b, n, self.embed_num, d)


def encoder_shape(state: Mapping[str, Tensor]) -> dict[str, int]:
    """Read the encoder's sizes off its state dict (heads excepted).

    Returns
    -------
    dict
        ``embed_dim``, ``depth``, ``embed_num``, ``mlp_hidden``, ``patch``.

    Raises
    ------
    KeyError
        If a tensor the architecture needs is missing.
    """
    depth = 0
    while f"blocks.{depth}.norm1.weight" in state:
        depth += 1
    return {
        "embed_dim": int(state["chan_embed.weight"].shape[1]),
        "depth": depth,
        "embed_num": int(state["summary_token"].shape[1]),
        "mlp_hidden": int(state["blocks.0.mlp.fc1.weight"].shape[0]),
        "patch": int(state["patch_embed.proj.weight"].shape[-1]),
    }


def save_checkpoint(encoder: EEGPTEncoder, path: str | Path) -> None:
    """Write an encoder in the authors' checkpoint layout (for tests and benchmarks).

    ``{"state_dict": {"target_encoder.<name>": tensor, ...}}``, as PyTorch
    Lightning saves a module whose attribute ``target_encoder`` is the encoder.
    """
    state = {PREFIX + k: v.detach().clone() for k, v in encoder.state_dict().items()}
    torch.save({"state_dict": state}, Path(path))


def load_encoder(path: str | Path, *, num_heads: int = 8) -> EEGPTEncoder:
    """Load the EEGPT encoder from a PyTorch Lightning checkpoint.

    Parameters
    ----------
    path : str or Path
        The authors' ``.ckpt``: a dict with ``state_dict``, whose
        ``target_encoder.*`` entries are the encoder (other entries, the
        predictor and reconstructor of pretraining, are ignored).
    num_heads : int
        Attention heads: not recorded in the weights (8 in the released model).

    Returns
    -------
    encoder : EEGPTEncoder
        In eval mode, every parameter frozen (``requires_grad=False``).

    Raises
    ------
    ModelError
        One line naming the file and what was expected: a missing file, a file
        torch cannot read with ``weights_only=True`` (no code is unpickled), no
        ``state_dict``, no ``target_encoder.`` entries, or entries that do not
        form the encoder.
    """
    p = Path(path)
    expected = (
        "expected the EEGPT PyTorch Lightning checkpoint: a dict whose "
        "'state_dict' holds 'target_encoder.*' tensors"
    )
    if not p.is_file():
        raise ModelError(f"EEGPT checkpoint {p} does not exist; {expected}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types
        msg = " ".join(str(exc).split())[:160]
        raise ModelError(
            f"EEGPT checkpoint {p}: torch cannot read it with weights_only=True "
            f"({type(exc).__name__}: {msg}); {expected} (re-save it as "
            "torch.save({'state_dict': ckpt['state_dict']}, path) if it also "
            "pickles objects)"
        ) from None
    sd = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(sd, Mapping):
        what = sorted(map(str, ckpt))[:6] if isinstance(ckpt, dict) else type(ckpt)
        raise ModelError(
            f"EEGPT checkpoint {p} has no 'state_dict' ({what}); {expected}"
        )
    state = {k[len(PREFIX) :]: v for k, v in sd.items() if str(k).startswith(PREFIX)}
    if not state:
        raise ModelError(
            f"EEGPT checkpoint {p}: no 'target_encoder.' entries in its state_dict "
            f"(first keys: {', '.join(map(str, list(sd)[:3]))}); {expected}"
        )
    try:
        shape = encoder_shape(state)
        encoder = EEGPTEncoder(num_heads=num_heads, **shape)
        encoder.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError, AttributeError, IndexError, ConfigError) as exc:
        msg = " ".join(str(exc).split())[:200]
        raise ModelError(
            f"EEGPT checkpoint {p}: its 'target_encoder.' entries do not form the "
            f"EEGPT encoder ({msg}); {expected}"
        ) from None
    if encoder.chan_embed.num_embeddings != len(CHANNELS):
        raise ModelError(
            f"EEGPT checkpoint {p}: channel embedding has "
            f"{encoder.chan_embed.num_embeddings} rows, expected {len(CHANNELS)}"
        )
    encoder.requires_grad_(False)
    return encoder.eval()


def _renorm_(weight: Tensor, max_norm: float) -> None:
    """Scale each output unit's weights (dim 0) to L2 norm <= ``max_norm``."""
    flat = weight.reshape(weight.shape[0], -1)
    norms = flat.norm(dim=1, keepdim=True)
    # The EEGNet max-norm constraint (Lawhern et al. 2018), as torch.renorm.
    scale = torch.clamp(max_norm / (norms + 1e-7), max=1.0)
    flat.mul_(scale)


class EEGPTProbe(EmotionModel):
    """Frozen EEGPT encoder + the authors' linear probe, one head per task.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_channels, 1024)``: 4 s at 256 Hz, microvolts, common average
        reference (see the module doc).
    tasks, loss_weights
        As for :class:`~emomon.models.base.EmotionModel`.
    checkpoint : str
        Path of the authors' PyTorch Lightning checkpoint (required).
    ch_names : sequence of str
        The input's channels in order, matched by name onto :data:`CHANNELS`
        (the trainer passes the dataset's; unknown names are refused).
    num_heads : int
        Attention heads of the encoder (8, not stored in the checkpoint).
    probe_dim : int
        Per-patch output of the first probe layer (16).
    dropout : float
        Dropout before the first probe layer (0.5).
    chan_max_norm, probe_max_norm, head_max_norm : float
        Max-norm of the channel convolution (1), the per-patch layer (1) and
        the heads (0.25), applied by :meth:`apply_constraints`.

    Notes
    -----
    ``forward(x)``: ``x`` (batch, n_channels, 1024) microvolts -> dict of logits.
    Only the probe trains: the encoder's parameters are frozen and it stays in
    eval mode whatever ``train()`` is called with.
    """

    name = "eegpt"
    input_kind = "eeg"
    # One encoder pass per window for all tasks: the channel convolution and
    # the per-patch layer are shared, each task has its own last layer (the
    # authors fit one probe per task; per-task networks would export the 25 M
    # encoder once per task and run it once per task live).
    joint_tasks = True
    # Reads microvolts as they are (scaled to mV in the graph), never z-scored.
    zscore = False
    needs_ch_names = True
    # EEGPT's pretraining data included SEED (Wang et al. 2024, section 4.1);
    # SEED-IV and SEED-V come from the same lab and setup.
    pretrained_on = (
        "seed",
        "seed-features",
        "seed4",
        "seed4-features",
        "seed5",
        "seed5-features",
    )

    @classmethod
    def check_data(cls, *, sfreq: float, spec: Any, ch_names: Sequence[str]) -> None:
        """Refuse data the encoder was not pretrained on, in one line.

        Raises
        ------
        ConfigError
            Unless the windows are 4 s at 256 Hz with the common average
            reference, and every channel is in :data:`CHANNELS` (the unknown
            ones are named).
        """
        if float(sfreq) != SFREQ or float(spec.window_s) != WINDOW_S:
            raise ConfigError(
                f"model 'eegpt' reads {WINDOW_S:g} s windows at {SFREQ:g} Hz, as "
                f"pretrained; the data is {float(sfreq):g} Hz with "
                f"features.window_s = {float(spec.window_s):g}: resample the "
                f"recordings to {SFREQ:g} Hz and set window_s = {WINDOW_S:g}"
            )
        if not spec.car:
            raise ConfigError(
                "model 'eegpt' reads common-average-referenced EEG, as "
                "pretrained: set features.car = true"
            )
        channel_ids(ch_names, source="the dataset's channel(s)")

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        tasks: Mapping[str, int],
        checkpoint: str = "",
        ch_names: Sequence[str] = (),
        num_heads: int = 8,
        probe_dim: int = 16,
        dropout: float = 0.5,
        chan_max_norm: float = 1.0,
        probe_max_norm: float = 1.0,
        head_max_norm: float = 0.25,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(
            input_shape=input_shape, tasks=tasks, loss_weights=loss_weights
        )
        model = self.name
        num_heads = check_positive_int(num_heads, name="num_heads", model=model)
        probe_dim = check_positive_int(probe_dim, name="probe_dim", model=model)
        dropout = check_dropout(dropout, model=model)
        norms = {
            "chan_max_norm": chan_max_norm,
            "probe_max_norm": probe_max_norm,
            "head_max_norm": head_max_norm,
        }
        for key, v in norms.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"model 'eegpt': {key} must be > 0, got {v!r}")
        if not checkpoint:
            raise ConfigError(
                "model 'eegpt' needs the EEGPT checkpoint: --hparams "
                '\'{"checkpoint": "path/to/eegpt_mcae_58chs_4s_large4E.ckpt"}\''
            )
        n_ch, n_times = self.input_shape
        if n_times != N_TIMES:
            raise ConfigError(
                f"model 'eegpt' reads {N_TIMES}-sample windows ({WINDOW_S:g} s at "
                f"{SFREQ:g} Hz, as pretrained), got {n_times}; set features.window_s "
                f"= {WINDOW_S:g} and a {SFREQ:g} Hz dataset"
            )
        names = [str(c) for c in ch_names]
        if len(names) != n_ch:
            raise ConfigError(
                f"model 'eegpt' needs the names of its {n_ch} input channels "
                f"(ch_names), got {len(names)}"
            )
        ids = channel_ids(names, source="channel(s)")
        self.hparams = {
            "checkpoint": str(checkpoint),
            "ch_names": names,
            "num_heads": num_heads,
            "probe_dim": probe_dim,
            "dropout": dropout,
            **{k: float(v) for k, v in norms.items()},
        }
        self._norms = {k: float(v) for k, v in norms.items()}
        self.encoder = load_encoder(checkpoint, num_heads=num_heads)
        enc = self.encoder
        n_patches = n_times // enc.patch
        self.register_buffer("chan_ids", torch.tensor(ids, dtype=torch.long))
        self.chan_conv = nn.Conv1d(n_ch, n_ch, kernel_size=1)
        self.dropout = nn.Dropout(dropout)
        self.probe = nn.Linear(enc.embed_num * enc.embed_dim, probe_dim)
        self.heads = nn.ModuleList(
            nn.Linear(probe_dim * n_patches, k) for k in self.tasks.values()
        )
        self.apply_constraints()

    def train(self, mode: bool = True) -> EEGPTProbe:
        """Set the probe's mode; the frozen encoder stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Renormalise the probe's weights to their max-norms (after each step).

        Each output unit's weight vector of the channel convolution, the
        per-patch layer and every head is scaled to L2 norm at most
        ``chan_max_norm``, ``probe_max_norm`` and ``head_max_norm``.
        """
        _renorm_(self.chan_conv.weight, self._norms["chan_max_norm"])
        _renorm_(self.probe.weight, self._norms["probe_max_norm"])
        for head in self.heads:
            _renorm_(head.weight, self._norms["head_max_norm"])

    def features(self, x: Tensor) -> Tensor:
        """Per-patch probe features (batch, n_patches, probe_dim) of µV windows."""
        h = self.chan_conv(x * UV_TO_MV)
        z = self.encoder(h, self.chan_ids)  # (b, n, embed_num, d)
        return self.probe(self.dropout(z.flatten(2)))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Logits per task of ``x``, (batch, n_channels, 1024) microvolts."""
        h = self.features(x).flatten(1)
        return {t: head(h) for t, head in zip(self.tasks, self.heads, strict=True)}

    def contract_info(self) -> dict[str, Any]:
        """Return what the exported contract records of the encoder (``info``)."""
        enc = self.encoder
        return {
            "encoder": {
                "name": "EEGPT (Wang et al. 2024)",
                "checkpoint": Path(self.hparams["checkpoint"]).name,
                "parameters": sum(p.numel() for p in enc.parameters()),
                "embed_dim": enc.embed_dim,
                "depth": len(enc.blocks),
                "embed_num": enc.embed_num,
                "patch": enc.patch,
                # The windows the graph reads: the pipeline's microvolts,
                # scaled to the encoder's millivolts inside the graph.
                "input_units": "uV (scaled to mV inside the graph)",
                "sfreq": SFREQ,
                "window_s": WINDOW_S,
                "car": True,
            },
            "probe_parameters": self.n_parameters(trainable_only=True),
        }

    def extra_repr(self) -> str:
        """Input shape, tasks and the checkpoint."""
        return f"{super().extra_repr()}, checkpoint={self.hparams['checkpoint']!r}"


def random_encoder(size: str = "tiny", *, seed: int = 0) -> EEGPTEncoder:
    """Build a randomly initialised encoder of a named size (:data:`SIZES`).

    For tests and benchmarks: ``"full"`` has the released model's shape (about
    25 M parameters), ``"tiny"`` runs in milliseconds.

    Raises
    ------
    ConfigError
        On a size not in :data:`SIZES`.
    """
    if size not in SIZES:
        raise ConfigError(f"EEGPT size must be one of {list(SIZES)}, got {size!r}")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return EEGPTEncoder(**SIZES[size])
    finally:
        torch.random.set_rng_state(gen_state)
