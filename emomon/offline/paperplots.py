"""The plots a paper needs, drawn from report.json alone.

Per protocol run, one PNG per concern: scalp maps of the band features (class
difference per band) and of what the model uses (permutation importance per
channel x band), per-subject balanced accuracy, ROC curves (one-vs-rest for
more than two classes), the permutation null distribution with the observed
value, and the learning curves of each fold (neural models). Each is drawn from
the task's ``figures`` entry (:mod:`emomon.offline.figdata`) and its other
fields, so an old report without ``figures`` still gives the per-subject and
null plots.

``draw_*`` return the figure (for tests and notebooks); :func:`write_paper_plots`
saves them. Conventions are those of :mod:`emomon.offline.plots`: the Agg canvas
without pyplot state of our own, labelled axes with units, a dashed chance line,
and the protocol's mark (LEAKY / SHARES VIDEOS) in the title. Scalp maps use
MNE's :func:`mne.viz.plot_topomap` with the electrode positions of
:mod:`emomon.dsp.positions` (MNE's ``standard_1005``, committed: no download);
channels without a known position are left out and named. matplotlib and MNE's
plotting are imported only when a plot is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emomon.offline import plots
from emomon.offline.figdata import FigureData, Importance
from emomon.offline.plots import (
    _CLASS_COLORS,
    _MARK_COLORS,
    _figure,
    _n_classes,
    _protocol,
    _suptitle,
)
from emomon.offline.runreport import ProtocolResult, TaskResult
from emomon.offline.tables import ALPHA, fmt, fmt_p, natural_key

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "PAPER_PLOTS",
    "TOP_CELLS",
    "draw_feature_maps",
    "draw_importance",
    "draw_learning_curves",
    "draw_null",
    "draw_per_subject",
    "draw_roc",
    "write_paper_plots",
]

#: Cells (channel x band) named and ringed on an importance map.
TOP_CELLS = 5

_CHANCE_KW: dict[str, Any] = {"ls": "--", "lw": 1.2, "color": "0.35"}
_OBSERVED_COLOR = "#C44E52"


def _tasks(result: ProtocolResult, want: str) -> list[tuple[str, TaskResult, Any]]:
    """(task, result, ``figures.<want>``) of the tasks that have it."""
    out = []
    for task, t in result.tasks.items():
        fig = t.figures or FigureData()
        value = getattr(fig, want)
        if value:
            out.append((task, t, value))
    return out


def _info(ch_names: Sequence[str]) -> tuple[Any, np.ndarray, list[str]]:
    """Return an MNE Info of the placed channels, which were kept, which left out."""
    import mne

    from emomon.dsp.positions import positions

    pos = positions(list(ch_names), on_missing="nan")
    ok = np.isfinite(pos).all(axis=1)
    names = [c for c, k in zip(ch_names, ok, strict=True) if k]
    info = mne.create_info(names, sfreq=100.0, ch_types="eeg")
    montage = mne.channels.make_dig_montage(
        ch_pos={c: p for c, p, k in zip(ch_names, pos, ok, strict=True) if k},
        coord_frame="head",
    )
    with mne.utils.use_log_level("error"):
        info.set_montage(montage)
    return info, ok, [c for c, k in zip(ch_names, ok, strict=True) if not k]


def _matrix(m: Sequence[Sequence[float | None]]) -> np.ndarray:
    return np.array(
        [[np.nan if v is None else v for v in r] for r in m], dtype=np.float64
    ).reshape(len(m), -1)


def _topomaps(
    fig: Figure,
    axes: Sequence[Axes],
    values: np.ndarray,
    *,
    ch_names: Sequence[str],
    bands: Sequence[str],
    label: str,
    mask: np.ndarray | None = None,
) -> list[str]:
    """Draw one scalp map per band; return the channels left out.

    ``values`` is n_channels x n_bands; the maps share a symmetric colour scale
    and one colour bar.
    """
    from mne.viz import plot_topomap

    info, ok, missing = _info(ch_names)
    v = values[ok]
    finite = v[np.isfinite(v)]
    vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    image = None
    for b, (ax, band) in enumerate(zip(axes, bands, strict=True)):
        data = np.nan_to_num(v[:, b])
        image, _ = plot_topomap(
            data,
            info,
            axes=ax,
            show=False,
            cmap="RdBu_r",
            vlim=(-vmax, vmax),
            contours=0,
            sensors=True,
            mask=None if mask is None else mask[ok][:, b],
            mask_params={
                "marker": "o",
                "markerfacecolor": "none",
                "markeredgecolor": "black",
                "markersize": 9,
                "markeredgewidth": 1.5,
            },
        )
        ax.set_title(band, fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.85, label=label)
    return missing


def _missing_note(fig: Figure, missing: Sequence[str]) -> None:
    if missing:
        fig.text(
            0.01,
            0.005,
            f"not drawn (no 10-05 position): {', '.join(missing)}",
            fontsize=7,
            va="bottom",
        )


def draw_feature_maps(
    result: ProtocolResult | Mapping[str, Any], *, name: str | None = None
) -> Figure | None:
    """Scalp maps of the class difference of the band features, per task and band.

    Binary tasks: the mean feature of the high-labelled windows minus that of
    the low-labelled ones; more classes: each class minus the rest (one row
    each). The feature is the model's DE (or its first kind), over all tested
    windows, on one symmetric colour scale per row.

    Parameters
    ----------
    result : ProtocolResult or mapping
        One entry of ``report.results``.
    name : str, optional
        Protocol name for the title.

    Returns
    -------
    Figure or None
        None when no task carries a contrast.
    """
    result = _protocol(result, name)
    tasks = _tasks(result, "contrast")
    rows = [(task, c, row) for task, _, c in tasks for row in c.rows]
    if not rows:
        return None
    n_b = max(len(c.bands) for _, c, _ in rows)
    fig = _figure((2.3 * n_b + 1.6, 2.5 * len(rows) + 1.0))
    grid = fig.subplots(len(rows), n_b, squeeze=False)
    missing: list[str] = []
    for axes, (task, c, row) in zip(grid, rows, strict=True):
        missing = _topomaps(
            fig,
            axes[: len(c.bands)],
            _matrix(row.diff),
            ch_names=c.ch_names,
            bands=c.bands,
            label=f"mean {c.kind.upper()} difference\n({c.unit})",
        )
        axes[0].text(
            -0.15,
            0.5,
            f"{task}\n{row.label}\n(n = {row.n_a} vs {row.n_b})",
            transform=axes[0].transAxes,
            ha="right",
            va="center",
            fontsize=9,
        )
        for ax in axes[len(c.bands) :]:
            ax.set_axis_off()
    _missing_note(fig, missing)
    _suptitle(
        fig,
        f"Band features by class, per channel: {name or result.protocol}",
        result,
    )
    return fig


def draw_importance(
    result: ProtocolResult | Mapping[str, Any], *, name: str | None = None
) -> Figure | None:
    """Scalp maps of what the model uses: permutation importance per channel x band.

    Per task two rows of maps (one per band): the drop in pooled balanced
    accuracy when one channel's features of one band are shuffled across each
    fold's held-out windows, and the rise of the class-balanced cross-entropy
    (nats; continuous, so it separates cells the accuracy ties). The
    :data:`TOP_CELLS` cells of largest drop are ringed and named.

    Parameters
    ----------
    result : ProtocolResult or mapping
        One entry of ``report.results``.
    name : str, optional

    Returns
    -------
    Figure or None
        None when no task carries importance.
    """
    result = _protocol(result, name)
    tasks: list[tuple[str, TaskResult, Importance]] = _tasks(result, "importance")
    if not tasks:
        return None
    n_b = max(len(imp.bands) for _, _, imp in tasks)
    fig = _figure((2.3 * n_b + 1.8, 2.6 * 2 * len(tasks) + 1.0))
    grid = fig.subplots(2 * len(tasks), n_b, squeeze=False)
    missing: list[str] = []
    for i, (task, _, imp) in enumerate(tasks):
        drop = imp.array("drop")
        top = imp.top(TOP_CELLS)
        mask = np.zeros(drop.shape, dtype=bool)
        for ch, band in top:
            mask[imp.ch_names.index(ch), imp.bands.index(band)] = True
        for j, (which, label) in enumerate(
            (
                ("drop", "drop in balanced\naccuracy"),
                ("loss_increase", "rise in balanced\ncross-entropy (nats)"),
            )
        ):
            axes = grid[2 * i + j]
            values = imp.array(which)
            if values.size == 0:
                for ax in axes:
                    ax.set_axis_off()
                continue
            missing = _topomaps(
                fig,
                axes[: len(imp.bands)],
                values,
                ch_names=imp.ch_names,
                bands=imp.bands,
                label=label,
                mask=mask,
            )
            text = f"{task}\n{label}"
            if j == 0:
                text += (
                    f"\n(observed {fmt(imp.observed)},\n{imp.n_repeats} shuffles/fold)"
                )
            else:
                text += "\n\nringed: largest drop\n" + "\n".join(
                    f"{c} {b}" for c, b in top
                )
            axes[0].text(
                -0.15,
                0.5,
                text,
                transform=axes[0].transAxes,
                ha="right",
                va="center",
                fontsize=8,
            )
    _missing_note(fig, missing)
    _suptitle(
        fig,
        "What the model uses: permutation importance on held-out windows, "
        f"{name or result.protocol}",
        result,
    )
    return fig


def draw_per_subject(
    result: ProtocolResult | Mapping[str, Any], *, name: str | None = None
) -> Figure | None:
    """Balanced accuracy of each subject's held-out windows, one panel per task.

    Bars: balanced accuracy (n/a where the subject's windows hold one class);
    black ticks: accuracy; dashed: chance (1/n_classes); dotted: the pooled
    balanced accuracy.

    Parameters
    ----------
    result : ProtocolResult or mapping
        One entry of ``report.results``.
    name : str, optional

    Returns
    -------
    Figure or None
        None when no task has per-subject rows.
    """
    result = _protocol(result, name)
    tasks = [(k, t) for k, t in result.tasks.items() if t.per_subject]
    if not tasks:
        return None
    n_max = max(len(t.per_subject) for _, t in tasks)
    fig = _figure((min(max(7.5, 0.35 * n_max + 4.0), 30.0), 0.9 + 3.0 * len(tasks)))
    axes = fig.subplots(len(tasks), 1, squeeze=False)[:, 0]
    color = _MARK_COLORS[result.mark] if result.marked else _CLASS_COLORS[0]
    for ax, (task, t) in zip(axes, tasks, strict=True):
        rows = sorted(t.per_subject, key=lambda r: natural_key(r.group))
        x = np.arange(len(rows))
        ba = np.array(
            [
                math.nan if r.balanced_accuracy is None else r.balanced_accuracy
                for r in rows
            ]
        )
        acc = np.array([math.nan if r.accuracy is None else r.accuracy for r in rows])
        ax.bar(
            x,
            np.where(np.isfinite(ba), ba, 0.0),
            color=color,
            hatch="//" if result.marked else None,
            edgecolor="black",
            linewidth=0.4,
            label="balanced accuracy",
        )
        for xi in x[~np.isfinite(ba)]:
            ax.text(xi, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=7)
        ax.scatter(
            x[np.isfinite(acc)],
            acc[np.isfinite(acc)],
            marker="_",
            s=160,
            linewidths=2.0,
            color="black",
            zorder=5,
            label="accuracy",
        )
        k = _n_classes(t)
        ax.axhline(1.0 / k, **_CHANCE_KW, label=f"chance (1/{k})")
        pooled = t.metrics.balanced_accuracy
        if pooled is not None:
            ax.axhline(
                pooled, ls=":", lw=2.0, color="black", label=f"pooled {pooled:.3f}"
            )
        ax.set_xticks(
            x, [r.group for r in rows], rotation=90 if len(rows) > 12 else 0, fontsize=8
        )
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_ylim(0.0, 1.05)
        ax.set_xlabel("Subject")
        ax.set_ylabel("Balanced accuracy (windows)")
        n_na = int((~np.isfinite(ba)).sum())
        extra = f"; {n_na} n/a (one class only)" if n_na else ""
        ax.set_title(f"{task}: {len(rows)} subjects{extra}", loc="left", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(
            loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
        )
    _suptitle(fig, f"Per-subject accuracy: {name or result.protocol}", result)
    return fig


def draw_roc(
    result: ProtocolResult | Mapping[str, Any], *, name: str | None = None
) -> Figure | None:
    """ROC curves of the pooled held-out windows, one panel per task.

    Binary tasks: one curve, its legend giving the report's AUC
    (``metrics.auc``); more classes: one curve per class against the rest, each
    with its AUC, and the report's (their unweighted mean) in the title. The
    diagonal is chance.

    Parameters
    ----------
    result : ProtocolResult or mapping
        One entry of ``report.results``.
    name : str, optional

    Returns
    -------
    Figure or None
        None when no task carries ROC curves.
    """
    result = _protocol(result, name)
    tasks = _tasks(result, "roc")
    if not tasks:
        return None
    fig = _figure((4.3 * len(tasks) + 0.6, 4.9))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, (task, t, curves) in zip(axes, tasks, strict=True):
        binary = len(curves) == 1
        for i, c in enumerate(curves):
            if not c.fpr:  # a class with no windows (or all of them): no curve
                continue
            # The legend prints the report's AUC: a thinned curve's own area may
            # differ from it in the last digits.
            auc = t.metrics.auc if binary else c.auc
            ax.plot(
                _matrix([c.fpr])[0],
                _matrix([c.tpr])[0],
                lw=1.8,
                color=_CLASS_COLORS[i % len(_CLASS_COLORS)],
                label=f"{c.label}: AUC = {fmt(auc)}",
            )
        ax.plot([0, 1], [0, 1], **_CHANCE_KW, label="chance (AUC = 0.5)")
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("False positive rate")
        ax.set_ylabel("True positive rate")
        n = t.metrics.n
        title = f"{task}" + (f" (n = {n} windows)" if n is not None else "")
        if not binary:
            title += f"\nmean one-vs-rest AUC = {fmt(t.metrics.auc)}"
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    _suptitle(fig, f"ROC curves: {name or result.protocol}", result)
    return fig


def draw_null(
    result: ProtocolResult | Mapping[str, Any], *, name: str | None = None
) -> Figure | None:
    """Draw the permutation null distribution and the observed value, per task.

    A histogram of the balanced accuracy of each permutation run (labels
    permuted by the protocol's exchangeable unit), a vertical line at the
    observed balanced accuracy, a dashed one at chance; the title gives the
    number of permutations, p and the verdict.

    Parameters
    ----------
    result : ProtocolResult or mapping
        One entry of ``report.results``.
    name : str, optional

    Returns
    -------
    Figure or None
        None when no task has a permutation test with a defined rerun.
    """
    result = _protocol(result, name)
    tasks = [
        (k, t)
        for k, t in result.tasks.items()
        if t.permutation is not None and any(v is not None for v in t.permutation.null)
    ]
    if not tasks:
        return None
    fig = _figure((4.6 * len(tasks) + 0.6, 4.2))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, (task, t) in zip(axes, tasks, strict=True):
        perm = t.permutation
        null = np.array([v for v in perm.null if v is not None], dtype=np.float64)
        if null.size:
            ax.hist(
                null,
                bins=min(30, max(5, null.size // 5)),
                color="0.7",
                edgecolor="black",
                linewidth=0.4,
                label=f"permuted labels ({null.size} runs)",
            )
        k = _n_classes(t)
        ax.axvline(1.0 / k, **_CHANCE_KW, label=f"chance (1/{k})")
        obs = t.metrics.balanced_accuracy
        if obs is not None:
            ax.axvline(obs, color=_OBSERVED_COLOR, lw=2.2, label=f"observed {obs:.3f}")
        ax.set_xlabel("Balanced accuracy")
        ax.set_ylabel("Permutation runs")
        p = perm.p_value
        n_undef = len(perm.null) - null.size
        title = f"{task}: n = {perm.n} permutations, p = {fmt_p(p)}"
        title += f"\n{t.verdict} (alpha {ALPHA:g}; smallest p {1 / (perm.n + 1):.3g})"
        if n_undef:
            title += f"; {n_undef} undefined runs"
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(loc="best", fontsize=8)
    _suptitle(fig, f"Permutation test: {name or result.protocol}", result)
    return fig


def draw_learning_curves(
    result: ProtocolResult | Mapping[str, Any], *, name: str | None = None
) -> Figure | None:
    """Per-fold learning curves of a neural model, one row per task.

    Left: training loss (solid) and inner-validation loss (dashed) per epoch;
    right: inner-validation balanced accuracy with chance dashed. The epoch
    whose weights each fold kept is marked with a dot. Validation windows come
    from the fold's training videos/subjects, never the held-out ones.

    Parameters
    ----------
    result : ProtocolResult or mapping
        One entry of ``report.results``.
    name : str, optional

    Returns
    -------
    Figure or None
        None when no task carries learning curves (logreg has no epochs).
    """
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    result = _protocol(result, name)
    tasks = _tasks(result, "learning")
    if not tasks:
        return None
    fig = _figure((11.5, 3.4 * len(tasks) + 0.8))
    grid = fig.subplots(len(tasks), 2, squeeze=False)
    for (ax_l, ax_a), (task, t, curves) in zip(grid, tasks, strict=True):
        cmap = colormaps["viridis"]
        for i, c in enumerate(curves):
            col = cmap(i / max(1, len(curves) - 1))
            ep = _matrix([c.epoch])[0]
            ax_l.plot(ep, _matrix([c.loss])[0], color=col, lw=1.0, alpha=0.8)
            best = None
            if c.best_epoch is not None and c.best_epoch in ep:
                best = int(np.flatnonzero(ep == c.best_epoch)[0])
            if c.val_loss:
                vl = _matrix([c.val_loss])[0]
                ax_l.plot(ep, vl, color=col, lw=1.0, ls="--", alpha=0.8)
                if best is not None:
                    ax_l.plot(ep[best], vl[best], "o", color=col, ms=5, mec="black")
            if c.val_balanced_accuracy:
                va = _matrix([c.val_balanced_accuracy])[0]
                ax_a.plot(ep, va, color=col, lw=1.0, alpha=0.8)
                if best is not None:
                    ax_a.plot(ep[best], va[best], "o", color=col, ms=5, mec="black")
        ax_l.set_xlabel("Epoch")
        ax_l.set_ylabel("Class-weighted cross-entropy (nats)")
        ax_l.set_title(f"{task}: loss, {len(curves)} folds", loc="left", fontsize=10)
        ax_l.legend(
            handles=[
                Line2D([], [], color="0.3", lw=1.0, label="training"),
                Line2D([], [], color="0.3", lw=1.0, ls="--", label="inner validation"),
                Line2D(
                    [],
                    [],
                    color="0.3",
                    marker="o",
                    ls="none",
                    mec="black",
                    label="epoch kept",
                ),
            ],
            fontsize=8,
        )
        k = _n_classes(t)
        ax_a.axhline(1.0 / k, **_CHANCE_KW, label=f"chance (1/{k})")
        ax_a.set_ylim(0.0, 1.05)
        ax_a.set_xlabel("Epoch")
        ax_a.set_ylabel("Balanced accuracy (inner validation)")
        ax_a.set_title(
            f"{task}: inner-validation balanced accuracy", loc="left", fontsize=10
        )
        ax_a.legend(fontsize=8, loc="lower right")
        for ax in (ax_l, ax_a):
            ax.grid(alpha=0.3)
    _suptitle(
        fig,
        f"Learning curves per fold (colour = fold): {name or result.protocol}",
        result,
    )
    return fig


#: File stem of each paper plot and the function that draws it.
PAPER_PLOTS = (
    ("features_topomap", draw_feature_maps),
    ("importance_topomap", draw_importance),
    ("per_subject", draw_per_subject),
    ("roc", draw_roc),
    ("null", draw_null),
    ("learning_curves", draw_learning_curves),
)


def write_paper_plots(
    result: ProtocolResult | Mapping[str, Any],
    out_dir: Path,
    *,
    stem: str,
    name: str | None = None,
    dpi: int = 120,
) -> list[Path]:
    """Draw every paper plot of one protocol run that its data allows.

    Parameters
    ----------
    result : ProtocolResult or mapping
        One entry of ``report.results``.
    out_dir : Path
        Folder of the PNGs, ``<kind>_<stem>.png`` for each kind of
        :data:`PAPER_PLOTS`.
    stem : str
        The protocol's file-name stem.
    name : str, optional
    dpi : int

    Returns
    -------
    list of Path
        The files written.
    """
    result = _protocol(result, name)
    out = []
    for kind, draw in PAPER_PLOTS:
        fig = draw(result, name=name)
        if fig is not None:
            # Through the module: one place saves every plot of a report.
            out.append(plots._save(fig, Path(out_dir) / f"{kind}_{stem}.png", dpi))
    return out
