"""Full-batch fit of multinomial logistic regression: L-BFGS to the optimum.

The linear model has a convex loss: its optimum is found to a tight tolerance
by a quasi-Newton method on the whole training set, in milliseconds, where
minibatch Adam with early stopping needs thousands of steps and stops at a
point that depends on the batch order and the validation split. The objective
of one task with loss weight ``w`` and class weights ``c`` is

    w * sum_i c[y_i] * CE_i / sum_i c[y_i]  +  (l2 / 2) * ||W||^2

(``CE_i`` the cross-entropy of window ``i``, ``W`` the (n_classes, n_features)
weights; the bias is not penalised). It is minimised with scipy's L-BFGS-B,
as scikit-learn's ``LogisticRegression(solver="lbfgs")`` does, from zero
weights, so the result depends on the data alone. With balanced class weights
(:func:`~emomon.offline.fit.class_weights`) it is scikit-learn's multinomial
objective with ``C = 1 / (n * l2)`` (for two classes ``C = 2 / (n * l2)``:
the binomial parameterisation has one weight vector, ``W[1] - W[0]``).

The arithmetic is numpy's; the caller bounds the BLAS thread count
(:func:`blas_threads`), which fixes the last bits of the result as the torch
thread count does for the other models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["LinearFit", "blas_threads", "fit_multinomial"]

#: Bias of a class absent from the training windows: its probability is 0 to
#: float precision (the unpenalised optimum sends that bias to minus infinity).
ABSENT_BIAS = -1e4


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with at most ``n`` BLAS threads (numpy, scipy), then restore.

    Uses threadpoolctl where it is installed (it comes with scikit-learn);
    without it the block runs with the BLAS library's own count, which the
    environment sets (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a train dependency
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


@dataclass(frozen=True)
class LinearFit:
    """The optimum of the objective, per task.

    Attributes
    ----------
    weight : dict of str to ndarray of float64, shape (n_classes, n_features)
    bias : dict of str to ndarray of float64, shape (n_classes,)
    n_iter : int
        L-BFGS iterations.
    grad_norm : float
        Largest absolute gradient component at the returned point.
    loss : float
        The objective there.
    """

    weight: dict[str, np.ndarray]
    bias: dict[str, np.ndarray]
    n_iter: int
    grad_norm: float
    loss: float


@dataclass(frozen=True)
class _Task:
    """One task's part of the joint problem: its columns and window weights."""

    cols: slice  # its present classes' rows in the joint (n_classes, n) logits
    y: np.ndarray  # (n,) column index within ``cols``; 0 where s is 0
    s: np.ndarray  # (n,) window weights, summing to the task's loss weight


def _objective(
    theta: np.ndarray, x: np.ndarray, parts: list[_Task], l2: float
) -> tuple[float, np.ndarray]:
    """Loss and gradient at ``theta`` = (W.ravel(), b) of all tasks' columns.

    One product with ``x`` for all tasks' logits and one for all their
    gradients: the fit is bound by reading ``x``. The logits are held class by
    row, (n_classes, n), so the per-window reductions over a few classes run
    along contiguous rows (numpy reduces a short last axis slowly).
    """
    d = x.shape[1]
    k = theta.size // (d + 1)
    w = theta[: k * d].reshape(k, d)
    z = w @ x.T  # (k, n)
    z += theta[k * d :, None]
    loss = 0.5 * l2 * float(np.sum(w * w))
    stack = _stacked(parts, k)
    if stack is not None:
        g, data = softmax_terms(z.reshape(len(parts), -1, z.shape[1]), *stack)
        g = g.reshape(k, -1)
        loss += float(data.sum())
    else:
        g = np.empty_like(z)
        for p in parts:
            gt, dt = softmax_terms(z[p.cols][None], p.y[None], p.s[None])
            g[p.cols] = gt[0]
            loss += float(dt[0])
    grad = np.empty_like(theta)
    grad[: k * d] = (g @ x + l2 * w).ravel()
    grad[k * d :] = g.sum(axis=1)
    return loss, grad


def _stacked(parts: list[_Task], k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Labels and weights of all parts as (n_parts, n) arrays, when they stack.

    They stack when every part has the same number of classes (the usual
    case: binary tasks, or one task under many permuted labels), so the
    softmax of all parts is one operation on an (n_parts, n_classes, n) array.
    """
    if len({p.cols.stop - p.cols.start for p in parts}) != 1 or (
        parts[-1].cols.stop != k
    ):
        return None
    return np.stack([p.y for p in parts]), np.stack([p.s for p in parts])


def softmax_terms(
    z: np.ndarray, y: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted cross-entropy of (parts, classes, n) logits and its gradient.

    ``y`` and ``s`` are each part's class indices and window weights, shape
    (parts, n). ``z`` is overwritten (shifted by its maximum, for a
    log-sum-exp without overflow); the gradient has ``z``'s shape, the loss is
    one number per part, shape (parts,).
    """
    z -= z.max(axis=1, keepdims=True)
    ez = np.exp(z)
    norm = ez.sum(axis=1)  # (parts, n)
    picked = np.take_along_axis(z, y[:, None, :], axis=1)[:, 0, :]
    data = np.sum(s * (np.log(norm) - picked), axis=1)
    ez *= (s / norm)[:, None, :]  # softmax, weighted
    onehot = np.arange(z.shape[1])[None, :, None] == y[:, None, :]
    ez -= onehot * s[:, None, :]
    return ez, data


def fit_multinomial(
    x: np.ndarray,
    targets: Mapping[str, np.ndarray],
    *,
    n_classes: Mapping[str, int],
    class_weights: Mapping[str, np.ndarray],
    l2: float,
    loss_weights: Mapping[str, float] | None = None,
    gtol: float = 1e-6,
    max_iter: int = 2000,
) -> LinearFit:
    """Minimise the weighted, L2-penalised multinomial cross-entropy of each task.

    The tasks share no parameter, so the sum of their objectives is minimised
    at once (one pass over ``x`` per step serves all tasks).

    Parameters
    ----------
    x : ndarray, shape (n, n_features)
        Training windows (z-scored features); computed in float64.
    targets : mapping of str to ndarray of int, each shape (n,)
        Class indices per task, in ``[0, n_classes[task])``.
    n_classes : mapping of str to int
    class_weights : mapping of str to ndarray, each shape (n_classes,)
        Weight of each class's windows; 0 for classes absent from the task.
    l2 : float
        Penalty on the squared weights (the module docstring's objective).
    loss_weights : mapping of str to float, optional
        The task weights ``w`` (default 1.0).
    gtol : float
        Stop when every gradient component is at most this (the data terms
        are weighted means, of order 1).
    max_iter : int
        Most L-BFGS iterations.

    Returns
    -------
    LinearFit
        Classes absent from a task's windows get zero weights and
        :data:`ABSENT_BIAS`.
    """
    from scipy.optimize import minimize

    x = np.ascontiguousarray(x, dtype=np.float64)
    n, d = x.shape
    loss_weights = loss_weights or {}
    weight = {t: np.zeros((n_classes[t], d)) for t in targets}
    bias = {t: np.zeros(n_classes[t]) for t in targets}
    parts: list[_Task] = []
    present: dict[str, np.ndarray] = {}
    k = 0
    for t, y in targets.items():
        y = np.asarray(y, dtype=np.int64)
        cw = np.asarray(class_weights[t], dtype=np.float64)
        counts = np.bincount(y, minlength=n_classes[t])
        pres = np.flatnonzero((counts > 0) & (cw > 0))
        bias[t][np.setdiff1d(np.arange(n_classes[t]), pres)] = ABSENT_BIAS
        lw = float(loss_weights.get(t, 1.0))
        if pres.size < 2 or lw == 0:
            # One class (or no data term): the optimum has no weights, and the
            # present class takes all the probability.
            continue
        present[t] = pres
        s = np.where(np.isin(y, pres), cw[y], 0.0)
        parts.append(
            _Task(
                slice(k, k + pres.size),
                np.clip(np.searchsorted(pres, y), 0, pres.size - 1),
                s * (lw / s.sum()),
            )
        )
        k += pres.size
    if not parts:
        return LinearFit(weight, bias, 0, 0.0, 0.0)
    # 40 correction pairs: a third fewer evaluations than scipy's 10 on
    # z-scored EEG features (each evaluation reads ``x`` twice; the pairs cost
    # O(40 * n_params) per step, nothing beside that).
    res = minimize(
        _objective,
        np.zeros(k * (d + 1)),
        args=(x, parts, float(l2)),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": gtol, "ftol": 1e-15, "maxcor": 40},
    )
    w = res.x[: k * d].reshape(k, d)
    b = res.x[k * d :]
    for t, p in zip(present, parts, strict=True):
        weight[t][present[t]] = w[p.cols]
        bias[t][present[t]] = b[p.cols]
    # L-BFGS-B returns the gradient at its solution: no extra pass over ``x``.
    return LinearFit(
        weight, bias, int(res.nit), float(np.abs(res.jac).max()), float(res.fun)
    )
