"""Export a trained model to the emomon ONNX contract (DESIGN.md section 8).

The exported graph takes one float32 input (``features`` or ``eeg``) with a dynamic
batch axis and has one PROBABILITY output per task (softmax of the model's logits),
named after the task (``valence``, ``arousal`` or ``class``). ``metadata_props``
carries the caller's strings, e.g. ``{"emomon": json.dumps(contract)}``. Every
export is checked against a real ``onnxruntime`` session before the file appears at
its final path: a model that does not reproduce torch within ``atol`` is never
written.

Two torch exporters exist in torch 2.13 and both are supported:

- ``"dynamo"`` (``torch.onnx.export(..., dynamo=True)``, the torch >= 2.9 default,
  needs ``onnxscript``): traces with ``torch.export`` and a symbolic batch
  dimension, so the dynamic batch axis is proven rather than assumed. About 1-4 s
  per model on one CPU core.
- ``"torchscript"`` (``dynamo=False``): the legacy tracer, deprecated upstream but
  still shipped; ~20x faster (well under 1 s), dynamic batch via ``dynamic_axes``.

``exporter="auto"`` (default) uses dynamo and falls back to the TorchScript
exporter if dynamo is unavailable or fails; ``"torchscript-first"`` tries them
the other way round, for models the tracer cannot get wrong (``logreg``: linear
layers, no data-dependent control flow), where dynamo's ~3 s of imports and
tracing dwarf the rest of a run. The parity check applies either way.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

from emomon.errors import ModelError

__all__ = ["OPSET_VERSION", "ProbabilityModel", "export_onnx", "read_onnx_metadata"]

log = logging.getLogger(__name__)

#: ONNX opset of exported models: native to the dynamo exporter (no version
#: conversion) and run by every onnxruntime >= 1.14.
OPSET_VERSION = 18

INPUT_NAMES = ("features", "eeg")

Exporter = Literal["auto", "torchscript-first", "dynamo", "torchscript"]

#: The exporters each ``exporter`` value tries, in order.
_ORDERS: dict[str, list[str]] = {
    "auto": ["dynamo", "torchscript"],
    "torchscript-first": ["torchscript", "dynamo"],
    "dynamo": ["dynamo"],
    "torchscript": ["torchscript"],
}


class ProbabilityModel(nn.Module):
    """Wrap a logits model so that it returns per-task probabilities.

    Parameters
    ----------
    model : nn.Module
        ``forward(x)`` returns a dict task -> logits of shape (batch, n_classes).
    tasks : sequence of str
        Task names, in output order.

    Notes
    -----
    ``forward(x)`` returns a tuple of (batch, n_classes) softmax probabilities, one
    per task in ``tasks`` order (ONNX outputs are positional).
    """

    def __init__(self, model: nn.Module, tasks: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.tasks = tuple(tasks)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """Return the softmax probabilities of each task, in ``tasks`` order.

        Parameters
        ----------
        x : Tensor
            The wrapped model's input, shape (batch, *input_shape).

        Returns
        -------
        tuple of Tensor
            One (batch, n_classes) tensor per task.
        """
        logits = self.model(x)
        return tuple(torch.softmax(logits[t], dim=-1) for t in self.tasks)


def _output_tasks(model: nn.Module, example: Tensor) -> tuple[str, ...]:
    """Task names from one eval-mode forward pass, checking the output contract."""
    with torch.no_grad():
        out = model(example)
    if not isinstance(out, Mapping) or not out:
        raise TypeError(
            f"model.forward must return a non-empty dict task -> logits, got "
            f"{type(out).__name__}"
        )
    for task, value in out.items():
        if (
            not isinstance(value, Tensor)
            or value.ndim != 2
            or value.shape[0] != example.shape[0]
        ):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value)
            raise TypeError(
                f"model output {task!r} must be logits of shape (batch, n_classes), "
                f"got {shape}"
            )
    return tuple(out)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' deprecation chatter and tracer/registry warnings."""
    onnx_log = logging.getLogger("torch.onnx")
    old_level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # The legacy exporter's own deprecation notice, pytree FutureWarnings of
            # torch.export, and TracerWarnings of nn.MultiheadAttention's shape
            # asserts (static per-sample sizes; the batch axis is checked below).
            for category in (
                DeprecationWarning,
                FutureWarning,
                torch.jit.TracerWarning,
            ):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        onnx_log.setLevel(old_level)


def _export_dynamo(
    wrapped: nn.Module, example: Tensor, input_name: str, tasks: tuple[str, ...]
) -> onnx.ModelProto:
    batch = torch.export.Dim("batch")
    with _quiet_exporter():
        program = torch.onnx.export(
            wrapped,
            (example,),
            input_names=[input_name],
            output_names=list(tasks),
            opset_version=OPSET_VERSION,
            dynamo=True,
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    if program is None:  # pragma: no cover - only with a file target
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
    return program.model_proto


def _export_torchscript(
    wrapped: nn.Module, example: Tensor, input_name: str, tasks: tuple[str, ...]
) -> onnx.ModelProto:
    buf = io.BytesIO()
    axes = {name: {0: "batch"} for name in (input_name, *tasks)}
    with _quiet_exporter():
        torch.onnx.export(
            wrapped,
            (example,),
            buf,
            input_names=[input_name],
            output_names=list(tasks),
            opset_version=OPSET_VERSION,
            dynamo=False,
            dynamic_axes=axes,
        )
    return onnx.load_from_string(buf.getvalue())


_EXPORTERS = {"dynamo": _export_dynamo, "torchscript": _export_torchscript}


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(
        str(path), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def _parity(
    wrapped: nn.Module,
    session: ort.InferenceSession,
    *,
    input_name: str,
    input_shape: tuple[int, ...],
    tasks: tuple[str, ...],
    n_check: int,
    seed: int,
) -> float:
    """Max abs difference between torch and onnxruntime probabilities."""
    inputs = session.get_inputs()
    outputs = [o.name for o in session.get_outputs()]
    if [i.name for i in inputs] != [input_name] or outputs != list(tasks):
        raise RuntimeError(
            f"exported graph has inputs {[i.name for i in inputs]} and outputs "
            f"{outputs}; expected [{input_name!r}] and {list(tasks)}"
        )
    if inputs[0].type != "tensor(float)":
        raise RuntimeError(f"exported input is {inputs[0].type}, expected float32")
    device = next(iter(wrapped.parameters()), torch.empty(0)).device
    rng = np.random.default_rng(seed)
    worst = 0.0
    for batch in sorted({1, n_check}):
        x = rng.standard_normal((batch, *input_shape)).astype(np.float32)
        with torch.no_grad():
            expected = [
                t.detach().cpu().numpy()
                for t in wrapped(torch.from_numpy(x).to(device))
            ]
        got = session.run(None, {input_name: x})
        for task, e, g in zip(tasks, expected, got, strict=True):
            if g.shape != e.shape:
                raise RuntimeError(
                    f"onnxruntime output {task!r} has shape {g.shape} for batch "
                    f"{batch}, torch gives {e.shape}"
                )
            diff = float(np.max(np.abs(g.astype(np.float64) - e)))
            if not np.isfinite(diff):
                raise RuntimeError(f"non-finite output {task!r} in the parity check")
            worst = max(worst, diff)
    return worst


def export_onnx(
    model: nn.Module,
    *,
    input_shape: tuple[int, ...],
    input_name: str,
    path: Path,
    metadata: Mapping[str, str] | None = None,
    atol: float = 1e-4,
    n_check: int = 16,
    seed: int = 0,
    exporter: Exporter = "auto",
) -> float:
    """Export a logits model to an ONNX file with probability outputs, and verify it.

    Parameters
    ----------
    model : nn.Module
        ``forward(x)`` maps (batch, *input_shape) float32 to a dict task -> logits
        (batch, n_classes), e.g. a model from :func:`emomon.models.build_model`.
        Exported in eval mode (BatchNorm running stats, no dropout); its training
        mode is restored afterwards.
    input_shape : tuple of int
        Shape of one sample, without the batch axis, e.g. ``(8, 8, 9)``.
    input_name : {"features", "eeg"}
        Name of the graph input: ``eeg`` for raw-EEG models, else ``features``.
    path : Path
        Destination ``.onnx`` file (parent directories are created); written only
        after the check passes, replacing any existing file.
    metadata : mapping of str to str, optional
        Added to the model's ``metadata_props``, e.g. ``{"emomon": "<json>"}``.
    atol : float, optional
        Largest allowed max abs difference between torch and onnxruntime
        probabilities (default 1e-4).
    n_check : int, optional
        Batch size of the second random check batch (the first has batch 1, which
        also proves the dynamic batch axis).
    seed : int, optional
        Seed of the random standard-normal check inputs.
    exporter : {"auto", "torchscript-first", "dynamo", "torchscript"}, optional
        torch exporter; ``"auto"`` tries dynamo, then TorchScript;
        ``"torchscript-first"`` the other way round (see module doc).

    Returns
    -------
    max_abs_diff : float
        Max abs difference between torch and onnxruntime over all check inputs and
        task outputs.

    Raises
    ------
    RuntimeError
        If the exported graph's inputs/outputs are wrong or the difference is
        ``>= atol`` (nothing is written to ``path`` then).
    TypeError, ValueError
        On bad arguments or a model that does not return a dict of logits.
    """
    if input_name not in INPUT_NAMES:
        raise ValueError(f"input_name must be one of {INPUT_NAMES}, got {input_name!r}")
    if exporter not in _ORDERS:
        raise ValueError(
            f"exporter must be one of {', '.join(map(repr, _ORDERS))}, got {exporter!r}"
        )
    if n_check < 1:
        raise ValueError(f"n_check must be >= 1, got {n_check}")
    props = dict(metadata or {})
    for key, value in props.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"metadata must map str to str, got {key!r}: {type(value).__name__}"
            )
    input_shape = tuple(int(s) for s in input_shape)
    path = Path(path)

    was_training = model.training
    model.eval()
    try:
        device = next(iter(model.parameters()), torch.empty(0)).device
        gen = torch.Generator().manual_seed(seed)
        # Batch 2: torch.export specialises a batch of 1 to a constant.
        example = torch.randn((2, *input_shape), generator=gen).to(device)
        tasks = _output_tasks(model, example)
        wrapped = ProbabilityModel(model, tasks).eval()

        order = _ORDERS[exporter]
        proto: onnx.ModelProto | None = None
        for i, name in enumerate(order):
            try:
                proto = _EXPORTERS[name](wrapped, example, input_name, tasks)
                log.debug(
                    "exported %s with the %s exporter", type(model).__name__, name
                )
                break
            except Exception as err:
                if i + 1 == len(order):
                    raise
                log.warning(
                    "%s ONNX export failed (%s); trying %s", name, err, order[i + 1]
                )
        assert proto is not None

        # Node metadata (dynamo) holds stack traces with absolute source paths.
        for node in proto.graph.node:
            del node.metadata_props[:]
        existing = {p.key: p.value for p in proto.metadata_props}
        existing.update(props)
        onnx.helper.set_model_props(proto, existing)
        onnx.checker.check_model(proto)

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            onnx.save_model(proto, str(tmp))
            diff = _parity(
                wrapped,
                _session(tmp),
                input_name=input_name,
                input_shape=input_shape,
                tasks=tasks,
                n_check=n_check,
                seed=seed,
            )
            if not diff < atol:
                raise RuntimeError(
                    f"ONNX export of {type(model).__name__} does not match torch: max "
                    f"abs difference {diff:.3g} >= atol {atol:g}; {path} not written"
                )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        model.train(was_training)
    return diff


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """Read the ``metadata_props`` of an ONNX file.

    Parameters
    ----------
    path : Path
        An ``.onnx`` file.

    Returns
    -------
    metadata : dict of str to str

    Raises
    ------
    ModelError
        If the file is missing or is not an ONNX model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as err:
        raise ModelError(
            f"{path} is not a readable ONNX model ({type(err).__name__}: {err}); "
            "export one with `emomon export` or `emomon train`"
        ) from None
    if not proto.opset_import or not proto.graph.node:
        raise ModelError(f"{path} is not an ONNX model (no graph); export it again")
    return {p.key: p.value for p in proto.metadata_props}
