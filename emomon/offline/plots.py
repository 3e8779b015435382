"""PNG plots of a run report.

Per-video accuracy, confusion matrices, protocols side by side, ablations.

Plots are drawn on ``matplotlib.figure.Figure`` objects with the non-interactive
Agg canvas, never through ``pyplot``: no global backend switch (which would close
the figures of an interactive session), nothing left open after saving. matplotlib
is imported lazily, only when a plot is drawn (it comes with ``emomon[train]``).
Leaky protocols say so in red; undefined numbers are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emomon.offline.runreport import ProtocolResult, RunReport, TaskResult
from emomon.offline.tables import (
    ALPHA,
    ablation_title,
    fmt,
    fmt_p,
    mark_note,
    natural_key,
    shows_interval,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_ablation", "plot_confusion", "plot_per_video", "plot_protocols"]

_CLASS_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#8172B3", "#937860", "#DA8BC3")
_PROTOCOL_COLORS = ("#4C72B0", "#55A868", "#8172B3", "#937860", "#64B5CD")
#: Colour of a marked protocol's bars and titles (hatched bars).
_MARK_COLORS = {"LEAKY": "#C44E52", "SHARES VIDEOS": "#DD8452"}
_NA_COLOR = "#BBBBBB"
_CHANCE: dict[str, Any] = {
    "colors": "0.35",
    "linestyles": "--",
    "linewidth": 1.2,
    "zorder": 4,
}


NO_CI: tuple[None, None] = (None, None)


def _v(x: float | None) -> float:
    """Return a plotted number: NaN where undefined."""
    return math.nan if x is None else float(x)


def _ok(x: float) -> bool:
    return math.isfinite(x)


def _figure(figsize: tuple[float, float]) -> Figure:
    """Make a pyplot-free figure on the Agg canvas (nothing global to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png", facecolor="white")
    fig.clear()
    return path


def _suptitle(fig: Figure, title: str, result: ProtocolResult) -> None:
    if result.marked:
        fig.suptitle(
            f"{title}\n{mark_note(result.mark)}",
            color=_MARK_COLORS[result.mark],
            fontweight="bold",
        )
    else:
        fig.suptitle(title, fontweight="bold")


def _task_title(task: str, t: TaskResult) -> str:
    h = t.headline()
    ci = ""
    p = h.p_value
    if h.ci95_low is not None and h.ci95_high is not None and shows_interval(t):
        ci = f" (95% CI {h.ci95_low:.3f}-{h.ci95_high:.3f})"
    test = f"{t.verdict}, p = {fmt_p(p)}" if p is not None else t.verdict
    return f"{task}: pooled bal.acc {fmt(h.balanced_accuracy)}{ci}; {test}"


def _n_classes(t: TaskResult) -> int:
    return max(2, len(t.classes))


def _errbars(
    values: Sequence[float], cis: Sequence[tuple[float | None, float | None]]
) -> np.ndarray:
    """Asymmetric error bars (2, n); zero where the CI is unknown."""
    err = np.zeros((2, len(values)))
    for i, (v, (lo, hi)) in enumerate(zip(values, cis, strict=True)):
        if _ok(v) and lo is not None and hi is not None:
            err[0, i] = max(0.0, v - lo)
            err[1, i] = max(0.0, hi - v)
    return err


def _bar_labels(
    ax: Axes, x: np.ndarray, values: Sequence[float], tops: Any, stars: Sequence[bool]
) -> None:
    for xi, v, top, star in zip(x, values, tops, stars, strict=True):
        txt = (f"{v:.2f}" + ("*" if star else "")) if _ok(v) else "n/a"
        y = top if _ok(top) else (v if _ok(v) else 0.0)
        ax.annotate(
            txt,
            (xi, y),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7,
        )


def _protocol(
    result: ProtocolResult | Mapping[str, Any], name: str | None
) -> ProtocolResult:
    """Return ``result``, or the protocol result dict read as one."""
    if isinstance(result, ProtocolResult):
        return result
    return ProtocolResult.from_dict(
        result, name=name or str(result.get("protocol", "protocol"))
    )


def plot_per_video(
    result: ProtocolResult | Mapping[str, Any],
    path: Path,
    *,
    name: str | None = None,
    dpi: int = 120,
) -> Path | None:
    """Per-video accuracy bars of one protocol run, one panel per task.

    Bars are sorted by video id and coloured by the video's true (majority) class;
    a dashed line marks chance (1/n_classes), a dotted line the pooled accuracy of
    the majority-class baseline; the panel title gives the pooled balanced accuracy,
    its 95% CI and the permutation verdict. Leaky protocols say so in red.

    Parameters
    ----------
    result : ProtocolResult or mapping
        The protocol run, or its dict from report.json.
        One entry of ``report.results``.
    path : Path
        PNG to write.
    name : str, optional
        Protocol name for the title (default ``result.protocol``).
    dpi : int

    Returns
    -------
    Path or None
        ``path``, or None when no task has per-video rows (nothing written).
    """
    from matplotlib.patches import Patch

    result = _protocol(result, name)
    name = name or result.protocol
    tasks = [(k, t) for k, t in result.tasks.items() if t.per_video]
    if not tasks:
        return None
    n_max = max(len(t.per_video) for _, t in tasks)
    width = float(min(max(9.0, 0.28 * n_max + 4.0), 30.0))
    fig = _figure((width, 0.9 + 3.1 * len(tasks)))
    axes = fig.subplots(len(tasks), 1, squeeze=False)[:, 0]
    for ax, (task, t) in zip(axes, tasks, strict=True):
        rows = sorted(t.per_video, key=lambda r: natural_key(r.group))
        k = _n_classes(t)
        acc = np.array([_v(r.accuracy) for r in rows])
        true = [r.true_majority for r in rows]
        colors = [
            _CLASS_COLORS[c % len(_CLASS_COLORS)] if c is not None else _NA_COLOR
            for c in true
        ]
        x = np.arange(len(rows))
        ax.bar(
            x,
            np.where(np.isfinite(acc), acc, 0.0),
            color=colors,
            edgecolor="black",
            linewidth=0.4,
        )
        for xi in x[~np.isfinite(acc)]:
            ax.text(xi, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=7)
        handles: list[Any] = [
            Patch(
                facecolor=_CLASS_COLORS[c % len(_CLASS_COLORS)],
                edgecolor="black",
                label=f"true class: {t.classes[c] if c < len(t.classes) else c}",
            )
            for c in sorted({c for c in true if c is not None})
        ]
        handles.append(
            ax.axhline(1.0 / k, ls="--", lw=1.2, color="0.35", label=f"chance (1/{k})")
        )
        maj = t.majority_baseline.accuracy
        if maj is not None:
            handles.append(
                ax.axhline(
                    maj,
                    ls=":",
                    lw=2.0,
                    color="black",
                    label=f"majority baseline acc. {maj:.2f}",
                )
            )
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
        )
        labels = [r.group for r in rows]
        ax.set_xticks(x, labels, rotation=90 if len(rows) > 12 else 0, fontsize=8)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("Video")
        ax.set_ylabel("Accuracy (windows)")
        ax.set_title(_task_title(task, t), loc="left", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    _suptitle(fig, f"Per-video accuracy: {name}", result)
    return _save(fig, path, dpi)


def plot_confusion(
    result: ProtocolResult | Mapping[str, Any],
    path: Path,
    *,
    name: str | None = None,
    dpi: int = 120,
) -> Path | None:
    """Confusion matrices of one protocol run, one panel per task.

    Cells are shaded by the row-normalised fraction and annotated with the count
    and the row percentage (rows = true class, columns = predicted class).

    Parameters
    ----------
    result : ProtocolResult or mapping
        The protocol run, or its dict from report.json.
        One entry of ``report.results``.
    path : Path
        PNG to write.
    name : str, optional
        Protocol name for the title (default ``result.protocol``).
    dpi : int

    Returns
    -------
    Path or None
        ``path``, or None when no task has a confusion matrix (nothing written).
    """
    result = _protocol(result, name)
    name = name or result.protocol
    tasks = [
        (k, t, np.array(t.metrics.confusion, dtype=np.float64))
        for k, t in result.tasks.items()
        if t.metrics.confusion is not None
    ]
    if not tasks:
        return None
    k_max = max(c.shape[0] for _, _, c in tasks)
    side = 3.2 + 0.5 * k_max
    fig = _figure((side * len(tasks) + 0.8, side + 0.9))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    image = None
    for ax, (task, t, conf) in zip(axes, tasks, strict=True):
        k = conf.shape[0]
        classes = list(t.classes) if len(t.classes) == k else [str(c) for c in range(k)]
        totals = conf.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(totals > 0, conf / totals, np.nan)
        image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(k):
            for j in range(k):
                pct = f"{100 * frac[i, j]:.1f}%" if _ok(frac[i, j]) else "-"
                dark = _ok(frac[i, j]) and frac[i, j] > 0.55
                ax.text(
                    j,
                    i,
                    f"{conf[i, j]:.0f}\n({pct})",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if dark else "black",
                )
        ax.set_xticks(range(k), classes)
        ax.set_yticks(range(k), classes)
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        n = t.metrics.n
        n_txt = f"n = {n}, " if n is not None else ""
        ba = fmt(t.metrics.balanced_accuracy)
        ax.set_title(f"{task}\n{n_txt}bal.acc {ba}", fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="Fraction of true class")
    _suptitle(fig, f"Confusion matrices: {name}", result)
    return _save(fig, path, dpi)


def _grouped_bars(
    ax: Axes,
    groups: Sequence[str],
    series: Sequence[dict[str, Any]],
    chance: Mapping[str, float],
    *,
    chance_by_group: bool,
) -> None:
    """Draw grouped bars with CI error bars, majority markers and chance lines.

    ``series`` items: ``label``, ``values``, ``cis``, ``majority``, ``p`` (per
    group, None where undefined), ``color``, ``hatch``; ``chance`` maps a group (or
    a series label when ``chance_by_group`` is false) to its chance level: one line
    across the axes when all levels agree, else a dashed segment over each group
    (or bar). Bars with ``p < ALPHA`` get a star, explained in the legend.
    """
    n_s = max(1, len(series))
    width = 0.8 / n_s
    x = np.arange(len(groups), dtype=np.float64)
    maj_done = any_star = False
    levels = {round(c, 12) for c in chance.values()}
    single = len(levels) <= 1
    for j, s in enumerate(series):
        pos = x - 0.4 + width * (j + 0.5)
        vals = np.array([_v(v) for v in s["values"]])
        err = _errbars(list(vals), s["cis"])
        heights = np.where(np.isfinite(vals), vals, 0.0)
        ax.bar(
            pos,
            heights,
            width * 0.92,
            yerr=err,
            capsize=3,
            color=s["color"],
            hatch=s.get("hatch"),
            edgecolor="black",
            linewidth=0.5,
            label=s["label"],
            error_kw={"elinewidth": 1.0, "ecolor": "black"},
        )
        stars = [p is not None and p < ALPHA for p in s["p"]]
        any_star |= any(stars)
        _bar_labels(ax, pos, list(vals), heights + err[1], stars)
        maj = np.array([_v(v) for v in s["majority"]])
        if np.isfinite(maj).any():
            ax.scatter(
                pos[np.isfinite(maj)],
                maj[np.isfinite(maj)],
                marker="_",
                s=220,
                linewidths=2.5,
                color="black",
                zorder=5,
                label=None if maj_done else "majority baseline",
            )
            maj_done = True
        if not chance_by_group and not single:
            c = chance.get(s["label"], 0.5)
            ax.hlines([c] * len(pos), pos - width / 2, pos + width / 2, **_CHANCE)
    if single:
        c = levels.pop() if levels else 0.5
        ax.axhline(c, ls="--", lw=1.2, color="0.35", zorder=4)
    elif chance_by_group:
        for i, g in enumerate(groups):
            c = chance.get(g, 0.5)
            ax.hlines(c, x[i] - 0.45, x[i] + 0.45, **_CHANCE)
    ax.plot([], [], ls="--", lw=1.2, color="0.35", label="chance")
    if any_star:
        ax.plot([], [], ls="none", label=f"* permutation p < {ALPHA:g}")
    ax.set_xticks(x, list(groups))
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(0.0, 1.12)
    ax.set_ylabel("Balanced accuracy")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def plot_protocols(
    report: RunReport | Mapping[str, Any], path: Path, *, dpi: int = 120
) -> Path | None:
    """Balanced accuracy of every protocol side by side, grouped by task.

    Bars carry 95% bootstrap CI error bars; black ticks mark the majority-class
    baseline, dashed segments chance (1/n_classes). Protocols whose number is
    content-dependent are hatched and labelled: red "(LEAKY)" (same trials on
    both sides), orange "(SHARES VIDEOS)" (test videos in training).

    Parameters
    ----------
    report : RunReport or mapping
        The run report, or its dict from report.json.
    path : Path
        PNG to write.
    dpi : int

    Returns
    -------
    Path or None
        ``path``, or None with fewer than two protocol runs (nothing written).
    """
    runs = list(RunReport.coerce(report).results.values())
    if len(runs) < 2:
        return None
    chance: dict[str, float] = {}
    for result in runs:
        for task, t in result.tasks.items():
            chance.setdefault(task, 1.0 / _n_classes(t))
    tasks = list(chance)
    if not tasks:
        return None
    series = []
    free = iter(_PROTOCOL_COLORS * (len(runs) // len(_PROTOCOL_COLORS) + 1))
    empty = TaskResult()
    for result in runs:
        cells = [result.tasks.get(k, empty) for k in tasks]
        series.append(
            {
                "label": result.label,
                "values": [t.metrics.balanced_accuracy for t in cells],
                "cis": [t.ci95 if shows_interval(t) else (None, None) for t in cells],
                "majority": [t.majority_baseline.balanced_accuracy for t in cells],
                "p": [t.p_value for t in cells],
                "color": _MARK_COLORS[result.mark] if result.marked else next(free),
                "hatch": "//" if result.marked else None,
            }
        )
    fig = _figure((min(max(6.5, 1.2 * len(tasks) * len(runs) + 3.0), 24.0), 4.6))
    ax = fig.subplots()
    _grouped_bars(ax, tasks, series, chance, chance_by_group=True)
    ax.set_xlabel("Task")
    ax.set_title(
        "Balanced accuracy by protocol (pooled, 95% bootstrap CI)", fontsize=10
    )
    marks = dict.fromkeys(r.mark for r in runs if r.marked)
    for k, mark in enumerate(marks):
        ax.text(
            0.0,
            -0.16 - 0.06 * k,
            f"hatched = {mark_note(mark)}: content-dependent, not a cross-video result",
            transform=ax.transAxes,
            color=_MARK_COLORS[mark],
            fontsize=8,
            va="top",
        )
    fig.suptitle("Protocols side by side", fontweight="bold")
    return _save(fig, path, dpi)


def plot_ablation(
    report: RunReport | Mapping[str, Any], path: Path, *, dpi: int = 120
) -> Path | None:
    """Ablation bars: balanced accuracy per setting, one bar per task.

    Parameters
    ----------
    report : RunReport or mapping
        The run report, or its dict from report.json.
        Uses ``report.ablation``; chance levels come from the task classes in
        ``report.results`` (default 1/2).
    path : Path
        PNG to write.
    dpi : int

    Returns
    -------
    Path or None
        ``path``, or None without ablation rows (nothing written).
    """
    report = RunReport.coerce(report)
    abl = report.ablation
    if abl is None or not abl.rows:
        return None
    settings = list(dict.fromkeys(r.setting for r in abl.rows))
    tasks = list(dict.fromkeys(r.task for r in abl.rows))
    chance = {t: 0.5 for t in tasks}
    for result in report.results.values():
        for task, t in result.tasks.items():
            if task in chance:
                chance[task] = 1.0 / _n_classes(t)
    cell = {(r.setting, r.task): r for r in abl.rows}
    series = []
    for j, task in enumerate(tasks):
        cells = [cell.get((s, task)) for s in settings]
        series.append(
            {
                "label": task,
                "values": [c.balanced_accuracy if c else None for c in cells],
                "cis": [
                    c.ci95
                    if c and c.p_value is not None and c.ci_unit
                    else (None, None)
                    for c in cells
                ],
                "majority": [
                    c.majority_balanced_accuracy if c else None for c in cells
                ],
                "p": [c.p_value if c else None for c in cells],
                "color": _CLASS_COLORS[j % len(_CLASS_COLORS)],
                "hatch": None,
            }
        )
    fig = _figure((min(max(6.5, 0.7 * len(settings) * len(tasks) + 3.0), 24.0), 4.6))
    ax = fig.subplots()
    _grouped_bars(ax, settings, series, chance, chance_by_group=False)
    ax.set_xlabel(
        {
            "bands": "Frequency bands used",
            "labels": "Labels",
            "bands+labels": "Setting",
        }.get(abl.kind or "", "Setting")
    )
    ax.set_title("Balanced accuracy (pooled, 95% bootstrap CI)", fontsize=10)
    fig.suptitle(
        ablation_title(abl, report.results.get(abl.protocol or "")), fontweight="bold"
    )
    return _save(fig, path, dpi)
