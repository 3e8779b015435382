"""Predictions as an LSL stream, for LabRecorder (``emomon stream --lsl-outlet``).

Moved out of :mod:`emomon.realtime.publish`, which still exports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from emomon.errors import EmomonError
from emomon.realtime._lsl import add_channels
from emomon.realtime.messages import PredictionMessage
from emomon.realtime.sinks import Sink

__all__ = ["LSLPredictionOutlet"]


class LSLPredictionOutlet(Sink):
    """Predictions as an LSL stream, so LabRecorder records them beside the EEG.

    The outlet is named ``<stream>-emotion``, of type ``Emotion``, float32 at a
    nominal rate of ``1 / hop_s``: the live loop hands it one prediction per
    hop, a flagged window's too (its probabilities are NaN). A binary task
    gives one channel ``<task>.p_high``; a multi-class task one channel per
    class, ``<task>.p_<class>``. Each sample is stamped with the prediction's
    ``t_lsl`` (the LSL time of the window's last EEG sample), so predictions
    line up with the EEG in the recording; a null probability is written as
    NaN.

    Parameters
    ----------
    stream : str
        Name of the EEG stream.
    tasks : mapping
        Task name -> class names, as in the model contract
        (``{"valence": ["low", "high"], "arousal": ["low", "high"]}``).
    hop_s : float
        Seconds of EEG between two predictions (the pipeline's hop in whole
        samples of the model's rate). Like a replayed EEG stream's rate, it is
        the rate of the content: a replay at speed 4 sends the predictions
        four times as often, their ``t_lsl`` as close together.
    source_id : str, optional
        LSL source id; default ``emomon-<stream>-emotion``.
    model : str, optional
        Model identifier, written to the stream description.

    Notes
    -----
    A non-blocking sink of :func:`~emomon.realtime.stream.run_stream`: liblsl
    buffers up to ``max_buffered`` seconds per consumer and drops the oldest.
    """

    nonblocking = True

    def __init__(
        self,
        stream: str,
        tasks: Mapping[str, Sequence[str]],
        *,
        hop_s: float,
        source_id: str | None = None,
        model: str = "",
    ) -> None:
        import pylsl  # lazily: only this class needs liblsl

        if not tasks:
            raise ValueError("an LSL prediction outlet needs at least one task")
        if not (hop_s > 0 and math.isfinite(hop_s)):
            raise EmomonError(f"{{hop_s}} must be > 0, got {hop_s}", params=("hop_s",))
        self._channels: list[tuple[str, str | None]] = []
        for task, classes in tasks.items():
            if len(classes) == 2:
                self._channels.append((task, None))
            else:
                self._channels.extend((task, str(c)) for c in classes)
        self._name = f"{stream}-emotion"
        info = pylsl.StreamInfo(
            name=self.name,
            type="Emotion",
            channel_count=len(self._channels),
            nominal_srate=1.0 / hop_s,
            channel_format=pylsl.cf_float32,
            source_id=source_id or f"emomon-{stream}-emotion",
        )
        desc = info.desc()
        desc.append_child_value("eeg_stream", stream)
        desc.append_child_value("model", model)
        add_channels(desc, self.channel_names, unit="probability", kind="Emotion")
        self._outlet: Any = pylsl.StreamOutlet(info, chunk_size=1)

    @property
    def channel_names(self) -> list[str]:
        """Channel labels in sample order."""
        return [
            f"{task}.p_high" if cls is None else f"{task}.p_{cls}"
            for task, cls in self._channels
        ]

    @property
    def name(self) -> str:
        """The outlet's stream name, ``<stream>-emotion``."""
        return self._name

    def sample(self, message: PredictionMessage) -> list[float]:
        """Return the channel values of a prediction (NaN where unavailable)."""
        out: list[float] = []
        for task, cls in self._channels:
            obj = message.tasks.get(task)
            value = None if obj is None else obj.probability(cls)
            out.append(math.nan if value is None else float(value))
        return out

    def push(self, message: PredictionMessage) -> None:
        """Push one prediction, stamped with its ``t_lsl`` (now if null)."""
        if self._outlet is None:
            raise RuntimeError("the LSL prediction outlet is closed")
        t = message.t_lsl
        stamp = float(t) if t is not None and math.isfinite(t) else 0.0
        self._outlet.push_sample(self.sample(message), stamp)

    def on_prediction(self, message: PredictionMessage, window: Any) -> None:
        """Push a prediction of the live loop."""
        self.push(message)

    def close(self) -> None:
        """Destroy the outlet (it disappears from the network). Idempotent."""
        self._outlet = None
