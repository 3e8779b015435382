"""One emomon model, loaded once: contract, onnxruntime session and digest.

:func:`load_model` reads the ONNX file once: its bytes give the digest that every
prediction carries (``sha256-<12 hex>``) and the one onnxruntime session (one
intra-op thread, DESIGN.md section 9), whose metadata gives the
:class:`~emomon.contract.ModelContract`. The live loop, the pipeline and
:meth:`LoadedModel.predict` all use that one object.

:meth:`LoadedModel.predict` runs a whole recording through the live
:class:`~emomon.realtime.pipeline.Pipeline`, so its probabilities are exactly what
``emomon stream`` publishes for the same samples, window by window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emomon.contract import ModelContract, digest_of, open_session, read_model_file
from emomon.errors import EmomonError

if TYPE_CHECKING:
    from emomon.realtime.messages import Quality
    from emomon.realtime.pipeline import PipelineSettings

__all__ = [
    "LoadedModel",
    "WindowPredictions",
    "check_hop",
    "load_model",
    "min_hop_s",
]

#: A stream's hop must exceed the model's per-window cost by this factor: the
#: rest of the pipeline (filters, quality, publishing) and other processes on
#: the same cores need the remainder.
HOP_HEADROOM = 1.5
#: Hops are refused or suggested in steps of this many seconds.
HOP_STEP_S = 0.05


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """An emomon ONNX model ready to run.

    Attributes
    ----------
    contract : ModelContract
        What the model reads and returns (channels, features, normalisation,
        tasks).
    session : onnxruntime.InferenceSession
        The one session, one intra-op and one inter-op thread.
    digest : str
        ``sha256-<12 hex>`` of the file, the ``model`` field of predictions.
    path : Path
        The file it was read from.
    """

    contract: ModelContract
    session: Any
    digest: str
    path: Path

    def window_cost_s(self, *, repeats: int = 3) -> float:
        """Measure the seconds one window (batch 1) takes in the session.

        One warm-up run, then the median of ``repeats`` runs on a zero input of
        the contract's shape, in the session the stream uses (one thread).

        Returns
        -------
        float
            Median seconds per window.
        """
        import time

        name = self.session.get_inputs()[0].name
        x = np.zeros((1, *self.contract.input_shape), dtype=np.float32)
        self.session.run(None, {name: x})
        times = []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            self.session.run(None, {name: x})
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    @property
    def heavy(self) -> bool:
        """Whether the model carries a pretrained encoder (``info.encoder``).

        ``emomon stream`` measures such a model's cost before it accepts a hop.
        """
        return isinstance(self.contract.info.get("encoder"), dict)

    @property
    def output_names(self) -> list[str]:
        """The session's outputs (one probability tensor per task)."""
        return [o.name for o in self.session.get_outputs()]

    def predict(
        self,
        eeg: np.ndarray,
        *,
        sfreq: float,
        ch_names: Sequence[str],
        timestamps: np.ndarray | None = None,
        settings: PipelineSettings | None = None,
    ) -> WindowPredictions:
        """Compute the probabilities of every window of a recording, as live.

        The samples go through the same :class:`~emomon.realtime.pipeline.Pipeline`
        as ``emomon stream`` (channel map by name, resampling, causal filters
        and features after the warm-up, quality checks, normalisation,
        onnxruntime, optional smoothing), so the result equals what the stream
        publishes for the same samples, window by window.

        Parameters
        ----------
        eeg : ndarray, shape (n_channels, n_times)
            The recording in microvolts, channels in ``ch_names`` order (any
            superset of the model's channels, any order).
        sfreq : float
            Sampling rate of ``eeg`` in Hz (resampled to the model's rate).
        ch_names : sequence of str
            Channel names of the rows of ``eeg`` (10-20 names, matched to the
            model's channels case-insensitively).
        timestamps : ndarray, shape (n_times,), optional
            Time of each sample in seconds (gaps count as lost samples, as
            live); default ``arange(n_times) / sfreq``.
        settings : PipelineSettings, optional
            Hop, smoothing and quality thresholds; default as ``emomon stream``.

        Returns
        -------
        WindowPredictions
            One row per window.

        Raises
        ------
        EmomonError
            If the shapes disagree or the recording lacks a model channel.
        """
        from emomon.realtime.pipeline import Pipeline

        x = np.asarray(eeg, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != len(ch_names):
            raise EmomonError(
                f"{{eeg}} must be (n_channels, n_times) with one row per name in "
                f"{{ch_names}}; got shape {x.shape} and {len(ch_names)} names",
                params=("eeg", "ch_names"),
            )
        if not (np.isfinite(sfreq) and sfreq > 0):
            raise EmomonError(
                f"{{sfreq}} must be a rate in Hz > 0, got {sfreq}", params=("sfreq",)
            )
        n = x.shape[1]
        t = np.arange(n) / float(sfreq) if timestamps is None else timestamps
        t = np.asarray(t, dtype=np.float64)
        if t.shape != (n,):
            raise EmomonError(
                f"{{timestamps}} must hold one time per sample ({n}), got shape "
                f"{t.shape}",
                params=("timestamps",),
            )
        pipe = Pipeline(
            self, source_ch_names=ch_names, source_sfreq=sfreq, settings=settings
        )
        preds = pipe.process(x, t, arrival=float(t[-1]) if n else 0.0)
        t_end = np.array([p.t_lsl for p in preds], dtype=np.float64)
        probs = {}
        for task, classes in self.contract.tasks.items():
            out = np.full((len(preds), len(classes)), np.nan)
            for i, p in enumerate(preds):
                if p.probs is not None:
                    out[i] = p.probs[task]
            probs[task] = out
        n_feat = pipe.extractor.settings.n_features
        features = (
            np.stack([p.features for p in preds])
            if preds
            else np.empty((0, len(self.contract.ch_names), n_feat))
        )
        return WindowPredictions(
            classes={k: tuple(v) for k, v in self.contract.tasks.items()},
            probs=probs,
            t_end=t_end,
            end_index=np.searchsorted(t, t_end, side="right") - 1,
            quality=tuple(p.quality for p in preds),
            features=features,
        )


@dataclass(frozen=True, eq=False)
class WindowPredictions:
    """What :meth:`LoadedModel.predict` returns: one row per window.

    Attributes
    ----------
    classes : dict of str to tuple of str
        Task -> class names, in probability column order.
    probs : dict of str to ndarray, shape (n_windows, n_classes)
        Task -> class probabilities; NaN rows for windows that were flagged
        (``quality[i].ok`` false) and not predicted on.
    t_end : ndarray, shape (n_windows,)
        Time of each window's last sample (on the ``timestamps`` clock).
    end_index : ndarray of int, shape (n_windows,)
        Column of ``eeg`` holding each window's last sample (with resampling:
        the last input sample at or before the window's end).
    quality : tuple of Quality
        Each window's quality flags.
    features : ndarray, shape (n_windows, n_channels, n_features)
        Each window's raw features (before normalisation), model channel order.
    """

    classes: dict[str, tuple[str, ...]]
    probs: dict[str, np.ndarray]
    t_end: np.ndarray
    end_index: np.ndarray
    quality: tuple[Quality, ...]
    features: np.ndarray

    def __len__(self) -> int:
        return int(self.t_end.shape[0])

    @property
    def ok(self) -> np.ndarray:
        """Whether each window was predicted on, bool (n_windows,)."""
        return np.array([q.ok for q in self.quality], dtype=bool)

    def p_high(self, task: str) -> np.ndarray:
        """Probability of the second class of a binary task, (n_windows,)."""
        if len(self.classes[task]) != 2:
            raise EmomonError(
                f"task {task!r} has classes {', '.join(self.classes[task])}: "
                "p_high is for binary tasks; read probs[task]"
            )
        return self.probs[task][:, 1]


def min_hop_s(cost_s: float) -> float:
    """Return the shortest hop a stream sustains for a per-window cost.

    Parameters
    ----------
    cost_s : float
        Seconds one window takes in the model (one thread).

    Returns
    -------
    float
        ``HOP_HEADROOM * cost_s`` rounded up to a multiple of ``HOP_STEP_S``.
    """
    steps = max(1, int(np.ceil(HOP_HEADROOM * cost_s / HOP_STEP_S - 1e-9)))
    return round(steps * HOP_STEP_S, 6)


def check_hop(hop_s: float, *, cost_s: float, source: str = "model") -> None:
    """Refuse a hop shorter than the model's per-window cost sustains.

    Parameters
    ----------
    hop_s : float
        The stream's hop (``--hop``), seconds.
    cost_s : float
        Measured seconds per window (:meth:`LoadedModel.window_cost_s`).
    source : str
        The model, named in the error.

    Raises
    ------
    EmomonError
        One line naming the measured cost and the shortest hop.
    """
    shortest = min_hop_s(cost_s)
    if hop_s < shortest:
        raise EmomonError(
            f"{{hop_s}} {hop_s:g} s is shorter than {source} sustains here: one "
            f"window takes {cost_s * 1e3:.0f} ms, so the shortest hop is "
            f"{shortest:g} s; use {{hop_s}} {shortest:g} or more",
            params=("hop_s",),
        )


def load_model(path: str | Path) -> LoadedModel:
    """Read an emomon ONNX model once: contract, session and digest.

    Parameters
    ----------
    path : str or Path
        The ``model.onnx`` written by ``emomon train`` or ``emomon export``.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelError
        If the file is missing, not ONNX, or carries no valid emomon contract
        (one line naming the file and what to do).
    """
    p = Path(path)
    data = read_model_file(p)
    session = open_session(data, source=p)
    contract = ModelContract.from_session(session, source=str(p))
    return LoadedModel(
        contract=contract, session=session, digest=digest_of(data), path=p
    )
