"""emomon: streaming real-time EEG emotion monitor with leak-free offline evaluation.

The Python API (also in the README's "Python API" section)::

    import emomon

    model = emomon.load_model("runs/deap-lovo-logreg/model.onnx")
    out = model.predict(eeg, sfreq=128.0, ch_names=names)  # as the live pipeline
    report = emomon.train(dataset="synthetic", protocols=["lovo"], out_dir="runs/x")
    with emomon.Subscriber("tcp://127.0.0.1:5556") as sub: ...

Names are imported on first use, so ``import emomon`` loads no torch,
onnxruntime or scipy (the command line starts fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from emomon.contract import ModelContract
    from emomon.errors import EmomonError
    from emomon.offline.runreport import RunReport
    from emomon.offline.train import train
    from emomon.offline.trainconfig import TrainConfig
    from emomon.realtime.messages import Message, PredictionMessage, StatusMessage
    from emomon.realtime.model import LoadedModel, WindowPredictions, load_model
    from emomon.realtime.subscribe import Subscriber

__all__ = [
    "EmomonError",
    "LoadedModel",
    "Message",
    "ModelContract",
    "PredictionMessage",
    "RunReport",
    "StatusMessage",
    "Subscriber",
    "TrainConfig",
    "WindowPredictions",
    "__version__",
    "load_model",
    "train",
]

#: Public name -> the module that defines it (imported on first access).
_LAZY = {
    "EmomonError": "emomon.errors",
    "LoadedModel": "emomon.realtime.model",
    "Message": "emomon.realtime.messages",
    "ModelContract": "emomon.contract",
    "PredictionMessage": "emomon.realtime.messages",
    "RunReport": "emomon.offline.runreport",
    "StatusMessage": "emomon.realtime.messages",
    "Subscriber": "emomon.realtime.subscribe",
    "TrainConfig": "emomon.offline.trainconfig",
    "WindowPredictions": "emomon.realtime.model",
    "load_model": "emomon.realtime.model",
    "train": "emomon.offline.train",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emomon' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
