"""Many logistic regressions on the same windows at once: one L-BFGS per label set.

Permutation reruns fit the same windows under many label sets. Each problem is
the objective of :mod:`emomon.offline.linear` (weighted multinomial
cross-entropy plus ``l2 / 2 * ||W||^2``), minimised to the same gradient
tolerance, but all of them advance together: one step computes every active
problem's logits with one matrix product over the windows, instead of a thin
product per problem. Each problem keeps its own quasi-Newton history, step and
stopping point (a joint L-BFGS over the sum of the objectives would share one
line search, and needs about three times the iterations of a single fit). The
line search is a backtracking Armijo search from the unit step (Nocedal &
Wright, *Numerical Optimization*, 2nd ed., algorithms 3.1 and 7.4, two-loop
recursion with the scaling ``s'y / y'y``); a pair is kept only when its
curvature ``s'y`` is positive relative to ``|s| |y|``, so the history stays
positive definite. A problem stops when its largest gradient component is at
most ``gtol``, when its objective no longer decreases relative to its size
(scipy's ``ftol`` test, 1e-15, as the single fit uses), or when no step along
its gradient decreases it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from emomon.offline.linear import ABSENT_BIAS, LinearFit, softmax_terms

__all__ = ["ClassesDiffer", "fit_multinomial_many"]


class ClassesDiffer(ValueError):
    """A label set whose classes present differ from the first one's."""


def fit_multinomial_many(
    x: np.ndarray,
    targets: Sequence[Mapping[str, np.ndarray]],
    *,
    n_classes: Mapping[str, int],
    class_weights: Sequence[Mapping[str, np.ndarray]],
    l2: float,
    loss_weights: Mapping[str, float] | None = None,
    gtol: float = 1e-6,
    max_iter: int = 2000,
    history: int = 40,
) -> list[LinearFit]:
    """Fit one multinomial logistic regression per label set, all at once.

    Parameters
    ----------
    x : ndarray, shape (n, n_features)
        The windows every problem shares (z-scored features).
    targets : sequence of mapping of str to ndarray of int, each shape (n,)
        One label set per problem: class indices per task.
    n_classes : mapping of str to int
    class_weights : sequence of mapping of str to ndarray
        Per problem, the weight of each class (0 for an absent class).
    l2 : float
    loss_weights : mapping of str to float, optional
    gtol : float
        A problem stops when every gradient component is at most this.
    max_iter : int
    history : int
        Correction pairs kept per problem.

    Returns
    -------
    list of LinearFit
        One per label set, in order. A task whose classes present differ
        from the first problem's is not supported here (:class:`ClassesDiffer`):
        the caller fits such a label set alone.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    n, d = x.shape
    lw = loss_weights or {}
    tasks = list(n_classes)
    present = {
        t: _present(targets[0][t], class_weights[0][t], n_classes[t]) for t in tasks
    }
    fitted = [t for t in tasks if present[t].size >= 2 and lw.get(t, 1.0) != 0]
    y_all, s_all = [], []
    for tg, cw in zip(targets, class_weights, strict=True):
        ys, ss = [], []
        for t in fitted:
            y = np.asarray(tg[t], dtype=np.int64)
            c = np.asarray(cw[t], dtype=np.float64)
            if not np.array_equal(_present(y, c, n_classes[t]), present[t]):
                raise ClassesDiffer(f"task {t!r}: other classes present than the first")
            s = np.where(np.isin(y, present[t]), c[y], 0.0)
            ys.append(np.clip(np.searchsorted(present[t], y), 0, present[t].size - 1))
            ss.append(s * (float(lw.get(t, 1.0)) / s.sum()))
        y_all.append(ys)
        s_all.append(ss)
    sizes = [present[t].size for t in fitted]
    k = sum(sizes)
    b_n = len(targets)
    if k:
        prob = _Problems(x, sizes, y_all, s_all, float(l2))
        theta, n_iter, grad = _lbfgs(
            prob, np.zeros((b_n, k * (d + 1))), gtol, max_iter, history
        )
    out = []
    for j in range(b_n):
        weight = {t: np.zeros((n_classes[t], d)) for t in tasks}
        bias = {t: np.zeros(n_classes[t]) for t in tasks}
        for t in tasks:
            absent = np.setdiff1d(np.arange(n_classes[t]), present[t])
            bias[t][absent] = ABSENT_BIAS
        if not k:
            out.append(LinearFit(weight, bias, 0, 0.0, 0.0))
            continue
        w = theta[j, : k * d].reshape(k, d)
        b = theta[j, k * d :]
        start = 0
        for t, m in zip(fitted, sizes, strict=True):
            weight[t][present[t]] = w[start : start + m]
            bias[t][present[t]] = b[start : start + m]
            start += m
        loss = float(prob.loss_and_grad(theta[j : j + 1], np.array([j]))[0][0])
        out.append(
            LinearFit(weight, bias, int(n_iter[j]), float(np.abs(grad[j]).max()), loss)
        )
    return out


def _present(y: np.ndarray, cw: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=k)
    return np.flatnonzero((counts > 0) & (np.asarray(cw) > 0))


class _Problems:
    """The stacked objectives: logits of any subset of problems in one product."""

    def __init__(
        self,
        x: np.ndarray,
        sizes: list[int],
        y: list[list[np.ndarray]],
        s: list[list[np.ndarray]],
        l2: float,
    ) -> None:
        self.x, self.sizes, self.l2 = x, sizes, l2
        self.k = sum(sizes)
        # Per task: (problems, n) labels and window weights.
        self.y = [np.stack([yy[i] for yy in y]) for i in range(len(sizes))]
        self.s = [np.stack([ss[i] for ss in s]) for i in range(len(sizes))]

    def loss_and_grad(
        self, theta: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Loss (len(rows),) and gradient (len(rows), p) of problems ``rows``."""
        x, k, l2 = self.x, self.k, self.l2
        d = x.shape[1]
        m = len(rows)
        w = theta[:, : k * d].reshape(m, k, d)
        z = (w.reshape(m * k, d) @ x.T).reshape(m, k, -1)
        z += theta[:, k * d :, None]
        g = np.empty_like(z)
        loss = 0.5 * l2 * np.einsum("mkd,mkd->m", w, w)
        start = 0
        for i, size in enumerate(self.sizes):
            cols = slice(start, start + size)
            gt, data = softmax_terms(z[:, cols], self.y[i][rows], self.s[i][rows])
            g[:, cols] = gt
            loss += data
            start += size
        grad = np.empty_like(theta)
        grad[:, : k * d] = (
            (g.reshape(m * k, -1) @ x).reshape(m, k, d) + l2 * w
        ).reshape(m, -1)
        grad[:, k * d :] = g.sum(axis=2)
        return loss, grad


def _lbfgs(
    prob: _Problems, x0: np.ndarray, gtol: float, max_iter: int, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise every problem from ``x0`` (problems, p); each stops on its own.

    The correction pairs of all problems share one ring of ``m`` slots (a
    problem that skips a pair stores a zero weight there, which the two-loop
    recursion ignores), so the recursion reads one slot of every problem at
    a time without gathering. Returns the solutions, each problem's iteration
    count and its gradient.
    """
    b_n, p = x0.shape
    x = x0.copy()
    f, g = prob.loss_and_grad(x, np.arange(b_n))
    s_hist = np.zeros((m, b_n, p))
    y_hist = np.zeros((m, b_n, p))
    rho = np.zeros((m, b_n))
    gamma = np.ones(b_n)  # s'y / y'y of each problem's newest pair
    fresh = np.ones(b_n, dtype=bool)  # no pair yet: a short first step
    n_iter = np.zeros(b_n, dtype=np.int64)
    active = np.abs(g).max(axis=1) > gtol
    for it in range(max_iter):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        every = rows.size == b_n
        gr = g[rows]
        order = [(it - 1 - j) % m for j in range(min(it, m))]  # newest first
        step = -_two_loop(
            gr,
            [s_hist[o] if every else s_hist[o][rows] for o in order],
            [y_hist[o] if every else y_hist[o][rows] for o in order],
            [rho[o] if every else rho[o][rows] for o in order],
            gamma[rows],
        )
        slope = np.einsum("bp,bp->b", gr, step)
        bad = slope >= 0  # not a descent direction: restart from the gradient
        if bad.any():
            step[bad] = -gr[bad]
            slope[bad] = -np.einsum("bp,bp->b", gr[bad], gr[bad])
        alpha = np.where(
            fresh[rows] | bad, np.minimum(1.0, 1.0 / np.linalg.norm(gr, axis=1)), 1.0
        )
        x_new, f_new, g_new = x[rows].copy(), f[rows].copy(), gr.copy()
        todo = np.arange(rows.size)
        for _ls in range(40):
            trial = x[rows[todo]] + alpha[todo, None] * step[todo]
            ft, gt = prob.loss_and_grad(trial, rows[todo])
            ok = ft <= f[rows[todo]] + 1e-4 * alpha[todo] * slope[todo]
            done = todo[ok]
            x_new[done], f_new[done], g_new[done] = trial[ok], ft[ok], gt[ok]
            todo = todo[~ok]
            if todo.size == 0:
                break
            alpha[todo] *= 0.5
        stuck = np.zeros(rows.size, dtype=bool)
        stuck[todo] = True  # no decrease found along this direction
        # A stuck problem with a history retries from its gradient; stuck
        # from the gradient, it is at its optimum to float precision.
        retry = stuck & ~fresh[rows]
        sv = x_new - x[rows]
        yv = g_new - gr
        sy = np.einsum("bp,bp->b", sv, yv)
        yy = np.einsum("bp,bp->b", yv, yv)
        norms = np.linalg.norm(sv, axis=1) * np.sqrt(yy)
        keep = (sy > 1e-10 * norms) & (sy > 0) & ~stuck
        slot = it % m
        s_hist[slot][rows] = sv
        y_hist[slot][rows] = yv
        rho[slot][rows] = np.where(keep, 1.0 / np.where(keep, sy, 1.0), 0.0)
        gamma[rows] = np.where(keep, sy / np.where(keep, yy, 1.0), gamma[rows])
        fresh[rows] &= ~keep
        if retry.any():
            rho[:, rows[retry]] = 0.0
            gamma[rows[retry]] = 1.0
            fresh[rows[retry]] = True
        # scipy's L-BFGS-B stop on the relative decrease (its ftol, as the
        # single fit uses): no progress left to float precision.
        flat = (f[rows] - f_new) <= 1e-15 * np.maximum(
            np.maximum(np.abs(f[rows]), np.abs(f_new)), 1.0
        )
        x[rows], f[rows], g[rows] = x_new, f_new, g_new
        n_iter[rows] += 1
        active[rows] = (
            (np.abs(g_new).max(axis=1) > gtol) & ~(stuck & ~retry) & ~(flat & ~stuck)
        )
    return x, n_iter, g


def _two_loop(
    g: np.ndarray,
    s: list[np.ndarray],
    y: list[np.ndarray],
    rho: list[np.ndarray],
    gamma: np.ndarray,
) -> np.ndarray:
    """H g for each problem from its correction pairs, given newest first.

    Each entry of ``s`` and ``y`` is (problems, p), of ``rho`` (problems,); a
    zero ``rho`` is a pair that problem did not keep.
    """
    q = g.copy()
    alphas = []
    for sj, yj, rj in zip(s, y, rho, strict=True):
        a = rj * np.einsum("bp,bp->b", sj, q)
        alphas.append(a)
        q -= a[:, None] * yj
    r = q * gamma[:, None]
    for sj, yj, rj, a in zip(s[::-1], y[::-1], rho[::-1], alphas[::-1], strict=True):
        beta = rj * np.einsum("bp,bp->b", yj, r)
        r += (a - beta)[:, None] * sj
    return r
