"""Fitting one registry model: Adam, plateau LR halving, early stopping.

A ``full_batch`` model (logreg) is instead fit to its optimum on all
training windows (:mod:`emomon.offline.linear`).

The seed and the torch thread count are the caller's: a fold task
(:mod:`emomon.offline.tasks`) fixes both, so a fit gives the same model in any
process.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emomon.errors import ConfigError, literal
from emomon.offline.trainconfig import TrainConfig

__all__ = ["FitResult", "check_device", "class_weights", "fit_model", "predict_proba"]


def check_device(name: str) -> None:
    """Refuse ``cuda`` where torch has no usable CUDA, before any work starts.

    Raises
    ------
    ConfigError
        Naming the torch build and what to do.
    """
    if name != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        why = "is a CPU-only build" if torch.version.cuda is None else "finds no GPU"
        raise ConfigError(
            f"{{device}} cuda: torch {literal(torch.__version__)} {why}; use "
            "cpu (or auto), or install a CUDA build of torch on a machine with "
            "an NVIDIA GPU",
            params=("device",),
        )


def _device(name: str):
    import torch

    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced weights n / (k * count); classes absent from training weigh 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = y.size / (present.sum() * counts[present])
    return w


@dataclass
class FitResult:
    """A trained model with its history.

    The model (in eval mode, on the CPU), the epoch whose weights it kept, and
    one row per epoch: ``epoch``, ``loss`` (mean training loss), and with inner
    validation windows ``val_loss`` and ``val_balanced_accuracy`` (task -> the
    balanced accuracy of the validation windows, None where undefined): the
    learning curves of the report.
    """

    model: Any
    best_epoch: int
    history: list[dict[str, Any]]


def fit_model(
    cfg: TrainConfig,
    *,
    tasks: Mapping[str, int],
    x_train: np.ndarray,
    y_train: Mapping[str, np.ndarray],
    x_val: np.ndarray | None = None,
    y_val: Mapping[str, np.ndarray] | None = None,
    epochs: int | None = None,
    seed: int = 0,
    on_epoch: Callable[[], None] | None = None,
    ch_names: Sequence[str] = (),
) -> FitResult:
    """Train one registry model with Adam, plateau LR halving and early stopping.

    Parameters
    ----------
    cfg : TrainConfig
        Model name, hyper-parameters and optimisation settings.
    tasks : mapping of str to int
        Task -> number of classes; the model gets one head per task.
    x_train : ndarray of float32, shape (n, *input_shape)
    y_train : mapping of str to ndarray of int, each shape (n,)
    x_val, y_val : optional
        Inner validation windows (from training videos/subjects only). Without
        them the model trains for ``epochs`` epochs.
    epochs : int, optional
        Override ``cfg.epochs``.
    seed : int
        Torch seed (initialisation and batch order).
    on_epoch : callable, optional
        Called after each epoch (a progress bar).
    ch_names : sequence of str, optional
        The input's channels in order, passed to a model that maps channels by
        name (``needs_ch_names``, e.g. ``eegpt``).

    Returns
    -------
    FitResult
    """
    from emomon.models import model_class, model_full_batch

    if model_full_batch(cfg.model):
        return _fit_full_batch(
            cfg, tasks=tasks, x_train=x_train, y_train=y_train, on_epoch=on_epoch
        )
    import torch

    from emomon.models import build_model, multitask_loss

    device = _device(cfg.device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    hparams = dict(cfg.hparams)
    if model_class(cfg.model).needs_ch_names:
        hparams["ch_names"] = list(ch_names)
    model = build_model(
        cfg.model, input_shape=x_train.shape[1:], tasks=dict(tasks), **hparams
    ).to(device)
    # Frozen parameters (a pretrained encoder) are left out of the optimiser.
    opt = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    xt = torch.from_numpy(x_train).to(device)
    yt = {t: torch.from_numpy(y_train[t].astype(np.int64)).to(device) for t in tasks}
    cw = {
        t: torch.tensor(
            class_weights(y_train[t], k), dtype=torch.float32, device=device
        )
        for t, k in tasks.items()
    }
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    if has_val:
        xv = torch.from_numpy(x_val).to(device)
        yv = {t: torch.from_numpy(y_val[t].astype(np.int64)).to(device) for t in tasks}
    n = xt.shape[0]
    bs = cfg.batch_size
    best_loss, best_epoch, best_state, bad = math.inf, 0, None, 0
    history: list[dict[str, Any]] = []
    n_epochs = epochs or cfg.epochs
    for epoch in range(1, n_epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen).to(device)
        total = 0.0
        # Drop a trailing batch of 1: BatchNorm cannot train on it.
        n_batches = max(1, n // bs if n % bs == 1 else math.ceil(n / bs))
        for b in range(n_batches):
            idx = order[b * bs : (b + 1) * bs]
            logits = model(xt[idx])
            loss = multitask_loss(
                logits,
                {t: yt[t][idx] for t in tasks},
                weights=model.loss_weights,
                class_weights=cw,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            # Max-norm and similar constraints hold after every step (and so
            # in the exported weights), never inside forward.
            model.apply_constraints()
            total += float(loss.detach()) * idx.numel()
        row: dict[str, Any] = {"epoch": epoch, "loss": total / n}
        if on_epoch is not None:
            on_epoch()
        if has_val:
            model.eval()
            with torch.no_grad():
                vl = 0.0
                pred: dict[str, list[np.ndarray]] = {t: [] for t in tasks}
                for b in range(0, xv.shape[0], 4096):
                    out = model(xv[b : b + 4096])
                    for t in tasks:
                        pred[t].append(out[t].argmax(dim=1).cpu().numpy())
                    vl += float(
                        multitask_loss(
                            out,
                            {t: yv[t][b : b + 4096] for t in tasks},
                            weights=model.loss_weights,
                            class_weights=cw,
                        )
                    ) * min(4096, xv.shape[0] - b)
            vl /= xv.shape[0]
            row["val_loss"] = vl
            row["val_balanced_accuracy"] = _val_balanced_accuracy(y_val, pred, tasks)
            sched.step(vl)
            if vl < best_loss - 1e-6:
                best_loss, best_epoch, bad = vl, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
        else:
            best_epoch = epoch
        history.append(row)
        if has_val and bad >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(model.cpu(), best_epoch, history)


def _val_balanced_accuracy(
    y_val: Mapping[str, np.ndarray],
    pred: Mapping[str, list[np.ndarray]],
    tasks: Mapping[str, int],
) -> dict[str, float | None]:
    """Task -> balanced accuracy of the validation predictions (None if undefined)."""
    from emomon.offline.metrics import balanced_accuracy

    out: dict[str, float | None] = {}
    for t, k in tasks.items():
        v = balanced_accuracy(y_val[t], np.concatenate(pred[t]), n_classes=k)
        out[t] = v if math.isfinite(v) else None
    return out


def _fit_full_batch(
    cfg: TrainConfig,
    *,
    tasks: Mapping[str, int],
    x_train: np.ndarray,
    y_train: Mapping[str, np.ndarray],
    on_epoch: Callable[[], None] | None = None,
) -> FitResult:
    """Fit a full-batch model (logreg) to its optimum; no epochs, no seed.

    The solution is unique (a strictly convex objective) and the solver starts
    from zero, so it depends on the data alone; ``cfg.task_threads`` bounds the
    BLAS threads, as it bounds torch's for the other models. The weights go
    into the registry's torch module, so prediction and export are the same
    as for any model. ``best_epoch`` is 0: there are no epochs.
    """
    import torch

    from emomon.models import build_model
    from emomon.offline.linear import blas_threads, fit_multinomial

    model = build_model(
        cfg.model, input_shape=x_train.shape[1:], tasks=dict(tasks), **cfg.hparams
    )
    with blas_threads(cfg.task_threads):
        fit = fit_multinomial(
            x_train,
            {t: y_train[t] for t in tasks},
            n_classes=tasks,
            class_weights={t: class_weights(y_train[t], k) for t, k in tasks.items()},
            l2=model.hparams["l2"],
            loss_weights=model.loss_weights,
        )
    with torch.no_grad():
        for t in tasks:
            head = model.heads[t]
            head.weight.copy_(torch.from_numpy(fit.weight[t]))
            head.bias.copy_(torch.from_numpy(fit.bias[t]))
    if on_epoch is not None:
        on_epoch()
    history = [
        {"epoch": 1, "loss": fit.loss, "n_iter": fit.n_iter, "grad": fit.grad_norm}
    ]
    return FitResult(model.eval(), 0, history)


def predict_proba(
    model: Any, x: np.ndarray, *, batch: int = 4096
) -> dict[str, np.ndarray]:
    """Softmax probabilities per task, each (n, n_classes) float64."""
    import torch

    model.eval()
    outs: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for b in range(0, len(x), batch):
            logits = model(torch.from_numpy(x[b : b + batch]))
            for t, v in logits.items():
                outs.setdefault(t, []).append(torch.softmax(v, dim=1).double().numpy())
    return {t: np.concatenate(v) for t, v in outs.items()}
