"""Training-set augmentation inside a fold: Gaussian noise, mixup, conditional WGAN-GP.

Opt-in (``TrainConfig.augment``, ``--augment``). A fold's added samples are made
from that fold's training windows alone (:func:`augment_fold` receives nothing
else): never from its inner validation or test windows, so augmentation cannot
leak the held-out videos or subjects into training.

Where: in the model-input space, after the fold's z-scoring. The z-score
statistics are fitted on the real training windows only (the same statistics
go into the model contract and the live pipeline), then the synthetic samples
are made in that z-scored space and appended to the training inputs; they do
not move the statistics. A generator therefore works on features of unit scale,
the scale at which its fixed learning rate and penalty weight are set.

The added samples carry every task's label: they are made per *stratum*, the
joint label of all tasks (e.g. valence x arousal), in the proportions of the
real training windows, so the class balance of each task is kept.

Methods (each adds ``round(ratio * n_train)`` samples):

``noise``
    A training window picked at random plus Gaussian noise whose standard
    deviation is :data:`NOISE_SCALE` times that feature's standard deviation
    over the training windows.
``mixup``
    Within-stratum mixup with hard labels: ``lam * x_i + (1 - lam) * x_j`` for
    two training windows of the same joint label, ``lam ~ Beta(a, a)`` with
    ``a =`` :data:`MIXUP_ALPHA` (Zhang et al., ICLR 2018, mix across classes
    with soft labels; within a class the label stays exact, which the
    hard-label models here need).
``wgan``
    A conditional Wasserstein GAN with gradient penalty (Gulrajani et al.,
    NeurIPS 2017: critic loss ``D(G(z)) - D(x) + 10 (||grad D(x_hat)|| - 1)^2``
    at random interpolates ``x_hat``, 5 critic steps per generator step, Adam
    lr 1e-4, betas (0.5, 0.9)), conditioned on the stratum by a one-hot code
    concatenated to the generator's noise and to the critic's input (Mirza &
    Osindero 2014). The generator's output is added to its stratum's mean over
    the training windows: it learns the spread around each class, not the class
    means themselves. Without that anchor the generator matched the windows'
    overall distribution but not their classes: on the 12-video synthetic set a
    classifier trained on its samples was at chance on held-out training videos
    (TSTR 0.55 / 0.40 and 0.41 / 0.60 in two folds, where real windows gave
    0.74 / 0.75 and 0.78 / 0.66); anchored, 0.79 / 0.88 and 0.76 / 0.71
    (one-off probes; README, "Augmentation"; over all folds in
    ``benchmarks/exp_augmentation.py``). Trained from scratch in every fold,
    on that fold's training windows.

Everything is seeded from the fold's seed: a fold gives the same samples in
any process.

:func:`sanity_check` tests a method before any comparison: trained on the
training windows of some training videos, its samples train a classifier that
is tested on the real windows of the other training videos (train on
synthetic, test on real, beside train on real, test on real), and a two-sample
test (MMD with an RBF kernel, permutation p) compares its samples with real
windows; both also score a reference that knows only each class's mean and
the within-class covariance (:func:`_gaussian_reference`), the bar a
generator has to clear to show it learnt more than two moments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "AUGMENT_METHODS",
    "COLLAPSED_VAR_RATIO",
    "MIXUP_ALPHA",
    "NOISE_SCALE",
    "Augmented",
    "augment_fold",
    "mmd_test",
    "sanity_check",
    "strata",
]

#: The methods of :func:`augment_fold` (``TrainConfig.augment``; None: off).
AUGMENT_METHODS = ("noise", "mixup", "wgan")
#: Noise standard deviation, in units of each feature's training std.
NOISE_SCALE = 0.3
#: Beta(a, a) of mixup's weight (Zhang et al. use 0.2-0.4 on images).
MIXUP_ALPHA = 0.4
#: Samples whose summed feature variance is under this fraction of the real
#: windows' are a collapsed generator (``var_ratio`` of :func:`sanity_check`):
#: they pass TSTR by sitting near the class means, and what they add is
#: shrinkage towards those means, not realistic data (the 150-step WGAN had
#: 0.015; the mean-anchored one 0.16 after 3 steps, 0.39 after 400 and
#: 0.72-0.87 by fold after 1000, on the 12-video synthetic set).
COLLAPSED_VAR_RATIO = 0.5

# WGAN-GP settings (Gulrajani et al. 2017, Algorithm 1 defaults). Steps: the
# mean-anchored generator keeps 0.39 of the real windows' variance after 400
# steps (collapsing towards the class means), 0.72-0.87 after 1000, on the
# 12-video synthetic set (README "Augmentation"); about 30 s a fold on one
# thread.
_LATENT = 32
_HIDDEN = 128
_GP_WEIGHT = 10.0
_N_CRITIC = 5
_GEN_STEPS = 1000
_BATCH = 128


@dataclass(frozen=True)
class Augmented:
    """The samples added to one fold's training set.

    Attributes
    ----------
    x : ndarray of float32, shape (n_added, *input_shape)
        In the fold's z-scored model-input space.
    y : dict of str to ndarray of int64, shape (n_added,)
        Task -> label of each added sample.
    info : dict
        ``method``, ``n_added`` and method details (JSON-ready).
    """

    x: np.ndarray
    y: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)


def strata(y: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Joint labels of all tasks.

    Parameters
    ----------
    y : mapping of str to ndarray of int, each shape (n,)

    Returns
    -------
    codes : ndarray of int64, shape (n,)
        The stratum of each window, 0..n_strata-1.
    table : ndarray of int64, shape (n_strata, n_tasks)
        Each stratum's label per task, tasks in ``y``'s order.
    """
    cols = np.stack([np.asarray(v, dtype=np.int64) for v in y.values()], axis=1)
    table, codes = np.unique(cols, axis=0, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), table


def _draw_strata(codes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` strata in the proportions of ``codes`` (largest remainder, shuffled)."""
    counts = np.bincount(codes)
    want = counts * n / codes.size
    got = np.floor(want).astype(np.int64)
    rest = n - got.sum()
    got[np.argsort(-(want - got), kind="stable")[:rest]] += 1
    out = np.repeat(np.arange(counts.size), got)
    return rng.permutation(out)


def augment_fold(
    x: np.ndarray,
    y: Mapping[str, np.ndarray],
    *,
    method: str,
    ratio: float,
    seed: int,
    torch_seed_offset: int = 0,
) -> Augmented:
    """Make the samples added to one fold's training windows.

    Parameters
    ----------
    x : ndarray of float32, shape (n_train, *input_shape)
        The fold's real training windows, z-scored model inputs. Nothing else
        of the fold is passed: the added samples cannot depend on it.
    y : mapping of str to ndarray of int, each shape (n_train,)
        Task -> label of each training window.
    method : {"noise", "mixup", "wgan"}
    ratio : float
        Samples added per real training window (``round(ratio * n_train)``).
    seed : int
        The fold's seed; all randomness derives from it.
    torch_seed_offset : int
        Added to the generator's torch seed (the sanity check's own generator).

    Returns
    -------
    Augmented
    """
    if method not in AUGMENT_METHODS:
        raise ValueError(f"unknown augmentation {method!r}")
    n = x.shape[0]
    n_add = int(round(ratio * n))
    rng = np.random.default_rng([seed, 0xA06])
    codes, table = strata(y)
    flat = x.reshape(n, -1).astype(np.float64)
    want = _draw_strata(codes, n_add, rng)
    info: dict[str, Any] = {"method": method, "n_added": n_add, "ratio": ratio}
    if method == "noise":
        src = _pick_in_stratum(codes, want, rng)
        sd = flat.std(axis=0)
        out = flat[src] + rng.normal(size=(n_add, flat.shape[1])) * (NOISE_SCALE * sd)
        info["noise_scale"] = NOISE_SCALE
    elif method == "mixup":
        a = _pick_in_stratum(codes, want, rng)
        b = _pick_in_stratum(codes, want, rng)
        lam = rng.beta(MIXUP_ALPHA, MIXUP_ALPHA, size=(n_add, 1))
        out = lam * flat[a] + (1 - lam) * flat[b]
        info.update(alpha=MIXUP_ALPHA, labels="within stratum, hard")
    else:
        gen_seed = int(rng.integers(2**31)) + torch_seed_offset
        out, details = _wgan_samples(flat, codes, table.shape[0], want, seed=gen_seed)
        info.update(details)
    names = list(y)
    y_add = {t: table[want, i].astype(np.int64) for i, t in enumerate(names)}
    return Augmented(out.astype(np.float32).reshape(n_add, *x.shape[1:]), y_add, info)


def _pick_in_stratum(
    codes: np.ndarray, want: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """For each wanted stratum, a training window of that stratum (uniform)."""
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(codes.max() + 2))
    lo, hi = starts[want], starts[want + 1]
    return order[lo + (rng.random(want.size) * (hi - lo)).astype(np.int64)]


def _wgan_samples(
    x: np.ndarray,
    codes: np.ndarray,
    n_strata: int,
    want: np.ndarray,
    *,
    seed: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Train a conditional WGAN-GP on ``x`` (n, d) and draw one sample per ``want``."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    d = x.shape[1]
    # Columns constant in training (e.g. off-montage grid cells) stay constant.
    const = x.std(axis=0) < 1e-9
    g_net = nn.Sequential(
        nn.Linear(_LATENT + n_strata, _HIDDEN),
        nn.LeakyReLU(0.2),
        nn.Linear(_HIDDEN, _HIDDEN),
        nn.LeakyReLU(0.2),
        nn.Linear(_HIDDEN, d),
    )
    # No batch norm in the critic: the gradient penalty is per sample.
    d_net = nn.Sequential(
        nn.Linear(d + n_strata, _HIDDEN),
        nn.LeakyReLU(0.2),
        nn.Linear(_HIDDEN, _HIDDEN),
        nn.LeakyReLU(0.2),
        nn.Linear(_HIDDEN, 1),
    )
    opt_g = torch.optim.Adam(g_net.parameters(), lr=1e-4, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(d_net.parameters(), lr=1e-4, betas=(0.5, 0.9))
    xt = torch.from_numpy(x.astype(np.float32))
    onehot = torch.eye(n_strata)
    ct = torch.from_numpy(codes)
    n = xt.shape[0]
    bs = min(_BATCH, n)
    # Each stratum's mean over the training windows: the generator's anchor
    # (module docstring). A stratum always has windows (codes come from them).
    means = torch.stack([xt[ct == k].mean(dim=0) for k in range(n_strata)])

    def sample(c: torch.Tensor) -> torch.Tensor:
        z = torch.randn(c.shape[0], _LATENT, generator=gen)
        return means[c] + g_net(torch.cat([z, onehot[c]], dim=1))

    w_dist = float("nan")
    for _ in range(_GEN_STEPS):
        for _ in range(_N_CRITIC):
            idx = torch.randint(n, (bs,), generator=gen)
            real, c = xt[idx], ct[idx]
            with torch.no_grad():
                fake = sample(c)
            eps = torch.rand(bs, 1, generator=gen)
            mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
            d_mix = d_net(torch.cat([mix, onehot[c]], dim=1))
            (grad,) = torch.autograd.grad(d_mix.sum(), mix, create_graph=True)
            gp = ((grad.norm(dim=1) - 1) ** 2).mean()
            d_real = d_net(torch.cat([real, onehot[c]], dim=1)).mean()
            d_fake = d_net(torch.cat([fake, onehot[c]], dim=1)).mean()
            loss_d = d_fake - d_real + _GP_WEIGHT * gp
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            w_dist = float((d_real - d_fake).detach())
        c = ct[torch.randint(n, (bs,), generator=gen)]
        loss_g = -d_net(torch.cat([sample(c), onehot[c]], dim=1)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    g_net.eval()
    with torch.no_grad():
        out = (
            sample(torch.from_numpy(want)).double().numpy()
            if want.size
            else (np.zeros((0, d)))
        )
    out[:, const] = x[0, const]
    return out, {
        "generator_steps": _GEN_STEPS,
        "critic_steps": _N_CRITIC,
        "latent": _LATENT,
        "hidden": _HIDDEN,
        "final_wasserstein_estimate": round(w_dist, 4),
        "anchor": "stratum mean",
    }


def mmd_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_perm: int = 200,
    max_n: int = 400,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Two-sample test: squared MMD with a Gaussian kernel, permutation p.

    Gretton et al., JMLR 2012: the biased estimate
    ``MMD^2 = mean k(a, a') + mean k(b, b') - 2 mean k(a, b)`` with
    ``k(u, v) = exp(-||u - v||^2 / (2 s^2))``, ``s`` the median pairwise
    distance of the pooled samples; p = (1 + #{perm >= observed}) / (1 + n_perm)
    over random relabellings of the pooled samples.

    Parameters
    ----------
    a, b : ndarray, shape (n_a, d), (n_b, d)
    n_perm : int
    max_n : int
        Each sample is subsampled to at most this many rows (the kernel matrix
        is quadratic).
    rng : numpy Generator

    Returns
    -------
    dict
        ``mmd2``, ``p``, ``n_a``, ``n_b``.
    """
    a = a[rng.permutation(len(a))[:max_n]].reshape(min(len(a), max_n), -1)
    b = b[rng.permutation(len(b))[:max_n]].reshape(min(len(b), max_n), -1)
    z = np.concatenate([a, b]).astype(np.float64)
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    s2 = np.median(d2[np.triu_indices_from(d2, k=1)])
    k = np.exp(-d2 / (2 * max(s2, 1e-12)))
    na, nb = len(a), len(b)
    # The biased MMD^2 is v' K v with v = 1/n_a on sample a, -1/n_b on b: one
    # matrix product scores every relabelling at once.
    lab = np.zeros((n_perm + 1, na + nb), dtype=bool)
    lab[0, :na] = True
    for i in range(1, n_perm + 1):
        lab[i] = rng.permutation(lab[0])
    v = np.where(lab, 1.0 / na, -1.0 / nb)
    stats = np.einsum("ij,ij->i", v @ k, v)
    obs = float(stats[0])
    p = (1 + int(np.sum(stats[1:] >= obs - 1e-12))) / (1 + n_perm)
    return {"mmd2": obs, "p": p, "n_a": na, "n_b": nb}


def sanity_check(
    x: np.ndarray,
    y: Mapping[str, np.ndarray],
    groups: np.ndarray,
    *,
    method: str,
    ratio: float,
    seed: int,
    n_classes: Mapping[str, int],
    holdout_fraction: float = 0.4,
) -> dict[str, Any]:
    """Check a method on a fold's training part before trusting its samples.

    The training windows' groups (videos) are split: the method is fitted on
    the windows of most groups, and the real windows of the others (at least
    one group, ``holdout_fraction`` of them) are the test set. Reported per task:
    the balanced accuracy of a logistic regression trained on the synthetic
    samples alone and tested on the held-out real windows (``tstr``), the same
    classifier trained on the real fitting windows (``trtr``), chance
    (``1 / n_classes``); and the MMD two-sample test (:func:`mmd_test`) of the
    synthetic samples against the held-out real windows, beside the same test
    of the real fitting windows against them (``mmd_real``: the distance that
    the held-out videos' own content already makes).

    Parameters
    ----------
    x : ndarray, shape (n_train, *input_shape)
        The fold's z-scored training windows.
    y : mapping of str to ndarray of int, each shape (n_train,)
    groups : ndarray, shape (n_train,)
        The video (or other unit) of each training window.
    method, ratio, seed
        As for :func:`augment_fold`.
    n_classes : mapping of str to int
    holdout_fraction : float

    Returns
    -------
    dict
        JSON-ready: ``n_fit``, ``n_heldout``, ``tstr``, ``trtr``, ``chance``,
        ``mmd``, ``mmd_real``; ``var_ratio`` (the samples' summed feature
        variance over the real fitting windows': near 0 is a collapsed
        generator) and ``class_direction_cos`` (per two-class task, the cosine
        between the samples' and the real windows' class-mean differences);
        ``tstr_reference`` and ``mmd_reference``: the same TSTR and MMD of a
        reference that knows only each class's mean and the within-class
        covariance (class mean plus Gaussian noise): a method that does no
        better has shown nothing beyond those two moments.
    """
    from emomon.offline.fit import class_weights
    from emomon.offline.linear import fit_multinomial
    from emomon.offline.metrics import balanced_accuracy

    rng = np.random.default_rng([seed, 0x5A1])
    uniq = np.unique(groups)
    n_out = max(1, int(round(holdout_fraction * uniq.size)))
    held = rng.permutation(uniq)[:n_out]
    test = np.isin(groups, held)
    fit_x, fit_y = x[~test], {t: v[~test] for t, v in y.items()}
    te_x, te_y = x[test], {t: v[test] for t, v in y.items()}
    aug = augment_fold(
        fit_x, fit_y, method=method, ratio=ratio, seed=seed, torch_seed_offset=1
    )
    out: dict[str, Any] = {
        "n_fit": int((~test).sum()),
        "n_heldout": int(test.sum()),
        "heldout_groups": [str(g) for g in held],
        "tstr": {},
        "trtr": {},
        "chance": {t: 1.0 / k for t, k in n_classes.items()},
    }
    flat = x.shape[1:] and int(np.prod(x.shape[1:]))
    # Its own stream: the checks above and below draw as they did before it.
    ref_rng = np.random.default_rng([seed, 0x6A55])
    ref_x = _gaussian_reference(fit_x, fit_y, aug.y, rng=ref_rng)
    out["tstr_reference"] = {}
    for name, (tx, ty) in (
        ("tstr", (aug.x, aug.y)),
        ("trtr", (fit_x, fit_y)),
        ("tstr_reference", (ref_x, aug.y)),
    ):
        tx2 = tx.reshape(len(tx), flat).astype(np.float64)
        fit = fit_multinomial(
            tx2,
            dict(ty),
            n_classes=dict(n_classes),
            class_weights={t: class_weights(ty[t], k) for t, k in n_classes.items()},
            l2=1e-2,
        )
        for t, k in n_classes.items():
            z = te_x.reshape(len(te_x), flat) @ fit.weight[t].T + fit.bias[t]
            ba = balanced_accuracy(te_y[t], np.argmax(z, axis=1), n_classes=k)
            out[name][t] = None if not np.isfinite(ba) else round(float(ba), 4)
    # Collapse detectors the MMD does not name: the samples' spread and their
    # class direction against the real windows' they were made from.
    g2 = aug.x.reshape(len(aug.x), flat).astype(np.float64)
    r2 = fit_x.reshape(len(fit_x), flat).astype(np.float64)
    out["var_ratio"] = round(float(g2.var(axis=0).sum() / r2.var(axis=0).sum()), 4)
    out["class_direction_cos"] = {}
    for t, k in n_classes.items():
        cos = None
        ga, ra = aug.y[t], fit_y[t]
        if k == 2 and all(np.any(v == c) for v in (ga, ra) for c in (0, 1)):
            dg = g2[ga == 1].mean(0) - g2[ga == 0].mean(0)
            dr = r2[ra == 1].mean(0) - r2[ra == 0].mean(0)
            den = np.linalg.norm(dg) * np.linalg.norm(dr)
            cos = round(float(dg @ dr / den), 4) if den > 0 else None
        out["class_direction_cos"][t] = cos
    out["mmd"] = mmd_test(aug.x, te_x, rng=rng)
    out["mmd_real"] = mmd_test(fit_x, te_x, rng=rng)
    out["mmd_reference"] = mmd_test(ref_x, te_x, rng=ref_rng)
    return out


def _gaussian_reference(
    x: np.ndarray,
    y: Mapping[str, np.ndarray],
    want: Mapping[str, np.ndarray],
    *,
    rng: np.random.Generator,
) -> np.ndarray:
    """Class mean plus Gaussian noise of the real within-class covariance.

    The reference a generator has to beat: it knows each stratum's mean and the
    pooled within-stratum covariance of ``x`` and nothing else, so a generator
    no closer to real windows (MMD) and no better as training data (TSTR) has
    shown nothing beyond those two moments.

    Parameters
    ----------
    x : ndarray, shape (n, *input_shape)
        The real windows the method was fitted on.
    y : mapping of str to ndarray of int, each shape (n,)
    want : mapping of str to ndarray of int, each shape (m,)
        The labels of the samples to draw (those of the method's samples).

    Returns
    -------
    ndarray of float64, shape (m, n_features)
    """
    flat = x.reshape(len(x), -1).astype(np.float64)
    codes, table = strata(y)
    index = {tuple(row): k for k, row in enumerate(table.tolist())}
    cols = np.stack([np.asarray(want[t], dtype=np.int64) for t in y], axis=1)
    drawn = np.array([index[tuple(r)] for r in cols.tolist()], dtype=np.int64)
    means = np.stack([flat[codes == k].mean(axis=0) for k in range(len(table))])
    resid = flat - means[codes]
    cov = resid.T @ resid / max(1, len(flat) - len(table))
    lam, vec = np.linalg.eigh(cov)
    noise = rng.standard_normal((len(drawn), len(lam))) * np.sqrt(np.maximum(lam, 0))
    return means[drawn] + noise @ vec.T
