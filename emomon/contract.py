"""The model contract: everything the online half needs, inside the ONNX file.

``metadata_props["emomon"]`` of every exported model holds this JSON (DESIGN.md
section 8). Reading it needs only onnxruntime, so streaming never needs torch.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emomon.config import FeatureSpec
from emomon.errors import ConfigError, ModelError

#: Version of the contract this emomon writes and the newest it reads.
SCHEMA_VERSION = 1
METADATA_KEY = "emomon"


@dataclass(frozen=True)
class ModelContract:
    """What an emomon ONNX model promises about its input and output.

    Attributes
    ----------
    input_name : str
        ``"features"`` or ``"eeg"``.
    input_kind : str
        ``"flat"``, ``"grid"`` or ``"eeg"``.
    input_shape : tuple of int
        Shape of one sample without the batch axis.
    spec : FeatureSpec
        The feature definition the model was trained on.
    ch_names : tuple of str
        Channels in model order; a source must provide all of them (by name).
    sfreq : float
        Sampling rate the features are computed at (sources are resampled to it).
    norm_mean, norm_std : ndarray, shape (n_channels, n_features)
        z-score statistics of the training set, applied before the layout.
    tasks : dict of str to list of str
        Output name -> class names (``{"valence": ["low", "high"], ...}``).
    model : str
        Registry name of the architecture.
    info : dict
        Dataset, protocol, labels, headline metrics, training config; with
        ``train --montage``, ``montage``: the headset's name, its channels
        (``ch_names``), their ``source``, the ``shared`` and ``missing`` ones;
        ``channels_assumed: true`` (optional) when the training files carried no
        channel names and ``ch_names`` are the reader's assumption (EAV).
    """

    input_name: str
    input_kind: str
    input_shape: tuple[int, ...]
    spec: FeatureSpec
    ch_names: tuple[str, ...]
    sfreq: float
    norm_mean: np.ndarray
    norm_std: np.ndarray
    tasks: dict[str, list[str]]
    model: str
    info: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    emomon_version: str = ""

    def to_json(self) -> str:
        """Return the contract as the JSON stored in the model's metadata.

        :meth:`from_json` reads it back; ``emomon_version`` defaults to this
        emomon's version.
        """
        from emomon import __version__

        return json.dumps(
            {
                "schema": self.schema,
                "emomon_version": self.emomon_version or __version__,
                "input": {
                    "name": self.input_name,
                    "kind": self.input_kind,
                    "shape": list(self.input_shape),
                },
                "feature_spec": self.spec.to_dict(),
                "ch_names": list(self.ch_names),
                "sfreq": self.sfreq,
                "layout": self.input_kind,
                "normalization": {
                    "mean": np.asarray(self.norm_mean).tolist(),
                    "std": np.asarray(self.norm_std).tolist(),
                },
                "tasks": self.tasks,
                "model": self.model,
                "info": self.info,
            },
            sort_keys=False,
        )

    @classmethod
    def from_json(cls, text: str, *, source: str = "model") -> ModelContract:
        """Parse and validate contract JSON; errors name ``source``."""
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ModelError(
                f"{source}: emomon contract is not valid JSON ({exc}); re-export "
                "the model with emomon train"
            ) from None
        if not isinstance(d, dict):
            raise ModelError(
                f"{source}: emomon contract must be a JSON object; re-export the "
                "model with emomon train"
            )
        schema = d.get("schema")
        if not isinstance(schema, int):
            raise ModelError(
                f"{source}: emomon contract has no schema version; re-export the "
                "model with emomon train"
            )
        if schema > SCHEMA_VERSION:
            raise ModelError(
                f"{source}: contract schema {schema} is newer than this emomon "
                f"supports ({SCHEMA_VERSION}); upgrade emomon"
            )
        try:
            inp = d["input"]
            norm = d["normalization"]
            contract = cls(
                input_name=str(inp["name"]),
                input_kind=str(inp["kind"]),
                input_shape=tuple(int(v) for v in inp["shape"]),
                spec=FeatureSpec.from_dict(_spec_dict(d["feature_spec"])),
                ch_names=tuple(str(c) for c in d["ch_names"]),
                sfreq=float(d["sfreq"]),
                norm_mean=np.asarray(norm["mean"], dtype=np.float64),
                norm_std=np.asarray(norm["std"], dtype=np.float64),
                tasks={str(k): [str(c) for c in v] for k, v in d["tasks"].items()},
                model=str(d.get("model", "")),
                info=dict(d.get("info", {})),
                schema=schema,
                emomon_version=str(d.get("emomon_version", "")),
            )
        except KeyError as exc:
            raise ModelError(
                f"{source}: emomon contract lacks the field {exc.args[0]!r}; "
                "re-export the model with emomon train"
            ) from None
        except ConfigError as exc:  # the feature spec inside the model
            raise ModelError(
                f"{source}: emomon contract has a bad feature_spec ({exc}); "
                "re-export the model with emomon train"
            ) from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ModelError(
                f"{source}: emomon contract has a bad field ({exc!r}); "
                "re-export the model with emomon train"
            ) from None
        contract.validate(source=source)
        return contract

    def validate(self, *, source: str = "model") -> None:
        """Check the contract is usable online.

        Raises
        ------
        ModelError
            Naming ``source`` and the field: an unknown input kind, no channels or
            tasks, duplicate or empty channel names, a sampling rate that is not
            positive or too low for the feature bands, or normalisation arrays
            that do not match the channels.
        """
        if self.input_kind not in ("flat", "grid", "eeg"):
            raise ModelError(
                f"{source}: unknown input kind {self.input_kind!r} (expected flat, "
                "grid or eeg); re-export the model"
            )
        n_ch = len(self.ch_names)
        if n_ch == 0 or not self.tasks:
            raise ModelError(
                f"{source}: contract lists no channels or no tasks; re-export the model"
            )
        # Sources are matched to the model by channel name.
        dups = sorted({c for c in self.ch_names if self.ch_names.count(c) > 1})
        if dups or not all(c.strip() for c in self.ch_names):
            what = f"names {', '.join(dups)} twice" if dups else "has an empty name"
            raise ModelError(
                f"{source}: contract ch_names {what}; re-export the model with one "
                "name per channel"
            )
        if not (math.isfinite(self.sfreq) and self.sfreq > 0):
            raise ModelError(
                f"{source}: contract sfreq is {self.sfreq}; expected the sampling "
                "rate in Hz (> 0); re-export the model"
            )
        if self.spec.max_band_hz() >= self.sfreq / 2:
            raise ModelError(
                f"{source}: contract sfreq {self.sfreq:g} Hz is too low for its "
                f"feature bands (up to {self.spec.max_band_hz():g} Hz); re-export the "
                "model from data sampled faster"
            )
        if (
            self.norm_mean.shape != self.norm_std.shape
            or self.norm_mean.shape[0] != n_ch
        ):
            raise ModelError(
                f"{source}: normalisation shape {self.norm_mean.shape} does not match "
                f"{n_ch} channels; re-export the model"
            )
        if not np.all(self.norm_std > 0):
            raise ModelError(
                f"{source}: normalisation std must be > 0; re-export the model"
            )

    def require_live(self, *, source: str = "model") -> None:
        """Check that the live pipeline can compute this model's input.

        Raises
        ------
        ModelError
            One line naming ``source`` when the model was trained on a
            dataset's precomputed features, which are not causal.
        """
        sp = self.spec
        if sp.precomputed:
            raise ModelError(
                f"{source} was trained on features precomputed by dataset "
                f"'{sp.precomputed}' ({', '.join(sp.kinds)}), which are smoothed "
                "across each trial and cannot be computed live; emomon stream "
                "needs a model trained on the recordings (e.g. --dataset seed "
                "rather than seed-features)"
            )

    @classmethod
    def from_onnx(cls, path: str | Path) -> ModelContract:
        """Read the contract of an ONNX file (onnxruntime only, no torch)."""
        data = read_model_file(path)
        return cls.from_session(open_session(data, source=path), source=str(path))

    @classmethod
    def from_session(cls, session: Any, *, source: str = "model") -> ModelContract:
        """Read the contract in an onnxruntime session's metadata.

        Raises
        ------
        ModelError
            If the metadata has no emomon contract or an invalid one (names
            ``source``).
        """
        meta = session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ModelError(
                f"{source} is an ONNX model without the emomon contract "
                f"(metadata_props['{METADATA_KEY}']); export it with emomon train"
            )
        return cls.from_json(meta[METADATA_KEY], source=source)

    def input_layout(self) -> str:
        """How one window becomes the model input, for users of other runtimes.

        Returns
        -------
        str
            One line: which element of the ``(batch, ...)`` float32 input holds
            which feature of which channel, and the z-score applied first (the
            features and channels are in :attr:`spec` ``.feature_names`` and
            :attr:`ch_names` order).
        """
        n_ch = len(self.ch_names)
        z = "z = (x[c, f] - mean[c, f]) / std[c, f]"
        if self.input_kind == "flat":
            return (
                f"input[b, f * {n_ch} + c] = {z}, x[c, f] = feature f of channel c "
                "(feature-major: all channels of feature 0 first)"
            )
        if self.input_kind == "grid":
            return (
                f"input[b, f, row, col] = {z} of the channel c at (row, col) of "
                "the 8x9 scalp map; cells without a channel hold 0"
            )
        text = (
            "input[b, c, t] = (x[c, t] - mean[c, t]) / std[c, t], x[c, t] = "
            "sample t of channel c's window in uV, band-passed to the spec's raw band"
        )
        enc = self.info.get("encoder")
        if isinstance(enc, dict) and enc.get("input_units"):
            text += f" (mean 0, std 1: {enc['input_units']})"
        return text

    def describe(self) -> str:
        """Human-readable summary for ``emomon info``."""
        sp = self.spec
        lines = [
            f"model         {self.model} (contract schema {self.schema}, "
            f"emomon {self.emomon_version})",
            f"input         {self.input_name} {self.input_kind} "
            f"(batch, {', '.join(map(str, self.input_shape))}) float32",
            "outputs       "
            + "; ".join(f"{t}: {'/'.join(c)}" for t, c in self.tasks.items()),
            f"channels      {len(self.ch_names)} @ {self.sfreq:g} Hz: "
            + " ".join(self.ch_names)
            + (
                " (ASSUMED: the dataset's files carry no names)"
                if self.info.get("channels_assumed") is True
                else ""
            ),
            f"features      {', '.join(self.spec.feature_names)}"
            + (
                f" (precomputed by {sp.precomputed}: not causal, offline only)"
                if sp.precomputed
                else ""
            ),
            f"input layout  {self.input_layout()}",
            f"window        {sp.window_s:g} s, warm-up {sp.warmup_s:g} s, "
            f"CAR {'on' if sp.car else 'off'}, notch {sp.notch or 'off'}, "
            f"baseline {'on' if sp.baseline else 'off'}",
        ]
        for key in ("dataset", "protocol", "labels"):
            if key in self.info:
                lines.append(f"{key:<13} {self.info[key]}")
        if isinstance(self.info.get("contaminated"), str):
            lines.append(f"contaminated  {self.info['contaminated']}")
        montage = self.info.get("montage")
        if isinstance(montage, dict):  # train --montage: the headset it is for
            missing = montage.get("missing") or []
            lines.append(
                f"montage       {montage.get('name')} "
                f"({len(montage.get('ch_names') or [])} ch; "
                + (f"lacking {' '.join(missing)}" if missing else "all used")
                + f"; from {montage.get('source')})"
            )
        for task, m in self.info.get("metrics", {}).items():
            # An interval is shown only beside its permutation p (issue 15);
            # models exported before that may carry one without.
            tested = isinstance(m.get("p_value"), float)
            parts = [
                f"{k} {v:.3f}"
                for k, v in m.items()
                if isinstance(v, float) and (tested or not k.startswith("ci95"))
            ]
            if not tested:
                parts.append("not tested (no permutation test)")
            lines.append(f"metrics       {task}: {', '.join(parts)}")
        return "\n".join(lines)


def _spec_dict(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    if "bands" in d:
        d["bands"] = tuple(tuple(b) if isinstance(b, list) else b for b in d["bands"])
    return d


def model_digest(path: str | Path) -> str:
    """``sha256-<12 hex>`` of a model file, the ``model`` field of predictions."""
    return digest_of(Path(path).read_bytes())


def digest_of(data: bytes) -> str:
    """``sha256-<12 hex>`` of a model file's bytes."""
    return f"sha256-{hashlib.sha256(data).hexdigest()[:12]}"


def read_model_file(path: str | Path) -> bytes:
    """Read the bytes of a model file.

    Raises
    ------
    ModelError
        If ``path`` is a directory, missing or unreadable (names the file).
    """
    p = Path(path)
    if p.is_dir():
        raise ModelError(
            f"model file {p} is a directory; pass the .onnx file inside it "
            "(e.g. model.onnx)"
        )
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise ModelError(
            f"model file {p} does not exist; export one with emomon train"
        ) from None
    except OSError as exc:
        raise ModelError(f"model file {p}: cannot read it ({exc.strerror})") from None


def open_session(data: bytes, *, source: str | Path, threads: int = 1) -> Any:
    """Open an onnxruntime CPU session on a model file's bytes.

    Parameters
    ----------
    data : bytes
        The ONNX file's content.
    source : str or Path
        Named in errors.
    threads : int
        Intra-op threads (one: many streams share few cores; DESIGN.md
        section 9); one inter-op thread.

    Raises
    ------
    ModelError
        If onnxruntime cannot read the bytes as a model.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(
            data, sess_options=opts, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises many types
        msg = " ".join(str(exc).split())[:120]
        raise ModelError(
            f"{source} is not a readable ONNX model ({msg}); "
            "export one with emomon train"
        ) from None
