"""The final model: trained on all windows, exported to ONNX with its contract."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emomon.contract import ModelContract
from emomon.dsp.normalize import input_shape, model_input
from emomon.offline.dataset import Dataset
from emomon.offline.fit import fit_model
from emomon.offline.runreport import ExportInfo, RunReport
from emomon.offline.trainconfig import TrainConfig

__all__ = ["export_model", "final_epochs", "train_final"]


def final_epochs(report: RunReport, cfg: TrainConfig) -> int:
    """Return the epochs of the final model, at least 1.

    The median epoch early stopping kept in the first protocol's folds
    (``cfg.epochs`` when none was kept).
    """
    main = report.main
    epochs = [
        f.best_epoch
        for task in (main.tasks.values() if main else ())
        for f in task.per_fold
        if f.best_epoch
    ]
    return max(1, int(np.median(epochs)) if epochs else cfg.epochs)


def train_final(
    ds: Dataset,
    cfg: TrainConfig,
    *,
    epochs: int,
    on_epoch: Callable[[], None] | None = None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Train on all windows for ``epochs`` epochs (to the optimum, full-batch models).

    With ``cfg.augment`` the training set gains the samples the folds gained
    (:func:`~emomon.offline.augment.augment_fold`); the statistics stay the
    real windows'.

    Returns
    -------
    module : torch.nn.Module
        In eval mode, one output per task.
    mean, std : ndarray
        The normalisation statistics of all windows.
    """
    import torch

    from emomon.models import model_class, task_groups
    from emomon.offline.tasks import input_stats

    t = ds.table
    mean, std = input_stats(t.X, layout=ds.layout, zscore=model_class(cfg.model).zscore)
    x = model_input(t.X, mean=mean, std=std, layout=ds.layout, ch_names=t.ch_names)
    win = ds.window_labels()
    if cfg.augment is not None:
        # The exported model is trained as each fold's was: the same samples
        # added, made from all windows (its training set) in z-scored space.
        from emomon.offline.augment import augment_fold

        aug = augment_fold(
            x, win, method=cfg.augment, ratio=cfg.augment_ratio, seed=cfg.seed
        )
        x = np.concatenate([x, aug.x])
        win = {g: np.concatenate([win[g], aug.y[g]]) for g in win}
    models = []
    for group in task_groups(cfg.model, list(ds.tasks)):
        res = fit_model(
            cfg,
            tasks={g: len(ds.tasks[g]) for g in group},
            x_train=x,
            y_train={g: win[g] for g in group},
            epochs=epochs,
            seed=cfg.seed,
            on_epoch=on_epoch,
            ch_names=t.ch_names,
        )
        models.append(res.model)

    class Combined(torch.nn.Module):
        """Per-task networks exported as one graph with one output per task."""

        def __init__(self, parts: list[torch.nn.Module]) -> None:
            super().__init__()
            self.parts = torch.nn.ModuleList(parts)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            out: dict[str, torch.Tensor] = {}
            for part in self.parts:
                out.update(part(x))
            return out

    module = models[0] if len(models) == 1 else Combined(models)
    return module.eval(), mean, std


def export_model(
    ds: Dataset,
    cfg: TrainConfig,
    report: RunReport,
    out_dir: Path,
    *,
    progress: bool = False,
) -> ExportInfo:
    """Train the final model on all data and write ``model.onnx`` with its contract.

    Parameters
    ----------
    ds : Dataset
    cfg : TrainConfig
    report : RunReport
        The run's cross-validation: its folds set the number of epochs, its
        :meth:`~RunReport.headline` goes into the contract.
    out_dir : Path
        The run directory.
    progress : bool
        A progress bar over the final fit's epochs and the export (stderr).

    Returns
    -------
    ExportInfo
    """
    from tqdm.auto import tqdm

    from emomon.models import model_full_batch, task_groups
    from emomon.offline.evaluate import contamination_notes
    from emomon.offline.export import export_onnx

    full_batch = model_full_batch(cfg.model)
    # A full-batch fit has no epochs: one step per fit on the bar.
    n_epochs = 0 if full_batch else final_epochs(report, cfg)
    n_fits = len(task_groups(cfg.model, list(ds.tasks)))
    with tqdm(
        total=n_fits * max(n_epochs, 1) + 1,
        desc=f"final {cfg.model}",
        unit="step",
        disable=not progress,
    ) as bar:
        bar.set_postfix_str(f"training on all {ds.table.X.shape[0]} windows")
        module, mean, std = train_final(ds, cfg, epochs=n_epochs, on_epoch=bar.update)
        bar.set_postfix_str("exporting model.onnx, checking parity")
        t = ds.table
        n_feat = t.X.shape[2]
        shape = input_shape(
            layout=ds.layout, n_channels=len(t.ch_names), n_features=n_feat
        )
        contract = ModelContract(
            input_name="eeg" if ds.layout == "eeg" else "features",
            input_kind=ds.layout,
            input_shape=shape,
            spec=t.spec,
            ch_names=t.ch_names,
            sfreq=t.sfreq,
            norm_mean=mean,
            norm_std=std,
            tasks=ds.tasks,
            model=cfg.model,
            info={
                "dataset": cfg.dataset,
                "protocol": cfg.protocols[0],
                "labels": cfg.labels,
                "threshold": cfg.threshold,
                "metrics": {k: h.to_dict() for k, h in report.headline().items()},
                "n_subjects": int(np.unique(t.trial_subject).size),
                "n_windows": int(t.X.shape[0]),
                "final_epochs": n_epochs,
                **({} if ds.montage is None else {"montage": ds.montage.to_dict()}),
                # Optional: what the model records of itself (eegpt: its encoder).
                **getattr(module, "contract_info", dict)(),
                # Optional: a pretrained encoder saw this dataset's family.
                **(
                    {"contaminated": notes[0]}
                    if (notes := contamination_notes(cfg.model, cfg.dataset))
                    else {}
                ),
                # Optional: the dataset's files carry no channel names (EAV).
                **({"channels_assumed": True} if ds.channels_assumed else {}),
            },
        )
        path = Path(out_dir) / "model.onnx"
        parity = export_onnx(
            module,
            input_shape=shape,
            input_name=contract.input_name,
            path=path,
            metadata={"emomon": contract.to_json()},
            # A linear model's graph is Gemm + Softmax: the TorchScript tracer
            # exports it in 0.1 s where dynamo takes ~3 s (parity-checked alike).
            exporter="torchscript-first" if full_batch else "auto",
        )
        bar.update()
    return ExportInfo(path.name, float(parity))
