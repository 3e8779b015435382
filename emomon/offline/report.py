"""Reports of an evaluation run: ``report.json``, CSV tables, PNG plots, text tables.

Every function here consumes the ``report`` dict built by the cross-validation runner
(``emomon.offline.train``)::

    {"emomon_version", "created", "config", "dataset",
     "results": {<protocol>: {"protocol", "leaky", "n_folds", "model", "labels",
                              "tasks": {<task>: {"classes", "metrics", "ci95",
                                                 "majority_baseline", "permutation",
                                                 "above_chance", "per_video",
                                                 "per_subject", "per_fold"}}}},
     "ablation": {"kind": "bands" | "labels", "rows": [...]},   # optional
     "export": {"path", "parity_max_abs"}}                       # optional

and also the same dict read back from ``report.json`` (where NaN became ``null``).
Every part except ``results`` is optional, and missing or non-finite numbers are
shown as blanks (CSV), ``null`` (JSON), ``-`` (text) or left out (plots); they
never raise.

Verdicts follow the design: a result is "above chance" only when its permutation
p-value is below 0.05, "at chance" otherwise, and "not tested" without a
permutation test. Leaky protocols (videos shared by train and test, ``intra``) are
flagged "LEAKY" in every table and plot.

Plots are drawn on ``matplotlib.figure.Figure`` objects with the non-interactive
Agg canvas, never through ``pyplot``: no global backend switch (which would close
the figures of an interactive session), nothing left open after saving. matplotlib
is imported lazily, only when a plot is drawn (it comes with ``emomon[train]``).
"""

from __future__ import annotations

import csv
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from emomon.offline.protocols import LEAKY_PROTOCOLS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ABLATION_COLUMNS",
    "ALPHA",
    "FOLD_COLUMNS",
    "GROUP_COLUMNS",
    "LEAKY_NOTE",
    "ablation_rows",
    "fold_rows",
    "format_ablation",
    "format_summary",
    "group_rows",
    "plot_ablation",
    "plot_confusion",
    "plot_per_video",
    "plot_protocols",
    "to_jsonable",
    "verdict",
    "write_report",
]

#: Significance level of the permutation test: above chance only when p < ALPHA.
ALPHA: float = 0.05

#: What "LEAKY" means, in titles and footnotes.
LEAKY_NOTE: str = "LEAKY (videos shared by train and test)"

#: Columns of ``per_video.csv`` and ``per_subject.csv`` (extra row keys follow).
GROUP_COLUMNS: tuple[str, ...] = (
    "protocol",
    "task",
    "group",
    "n",
    "accuracy",
    "balanced_accuracy",
    "auc",
    "mean_p_high",
    "majority_true",
)

#: Columns of ``per_fold.csv`` (extra fold keys follow).
FOLD_COLUMNS: tuple[str, ...] = (
    "protocol",
    "task",
    "fold",
    "n_train",
    "n_test",
    "balanced_accuracy",
    "accuracy",
    "best_epoch",
)

#: Columns of ``ablation.csv`` (extra row keys follow).
ABLATION_COLUMNS: tuple[str, ...] = (
    "kind",
    "setting",
    "task",
    "balanced_accuracy",
    "ci95_low",
    "ci95_high",
    "p_value",
    "majority_balanced_accuracy",
)

# Other spellings of a column in the rows (``metrics.group_table`` says
# ``true_majority``).
_ALIASES: dict[str, tuple[str, ...]] = {"majority_true": ("true_majority",)}

_ABLATION_TITLES = {"bands": "Band ablation", "labels": "Label reliability"}

_CLASS_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#8172B3", "#937860", "#DA8BC3")
_PROTOCOL_COLORS = ("#4C72B0", "#55A868", "#8172B3", "#937860", "#64B5CD")
_LEAKY_COLOR = "#C44E52"
_NA_COLOR = "#BBBBBB"


# --------------------------------------------------------------- reading the dict


def _num(x: Any) -> float:
    """``x`` as a float; NaN for None, non-numbers and booleans."""
    if x is None or isinstance(x, (bool, np.bool_, str)):
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _ok(x: float) -> bool:
    return math.isfinite(x)


def _int_or_none(x: Any) -> int | None:
    v = _num(x)
    return int(v) if _ok(v) and v == int(v) else None


def _mapping(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _rows_of(x: Any) -> list[Mapping[str, Any]]:
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        return [r for r in x if isinstance(r, Mapping)]
    return []


def _results(report: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(name, result)`` per protocol run, in run order."""
    res = report.get("results")
    if isinstance(res, Mapping):
        return [(str(k), v) for k, v in res.items() if isinstance(v, Mapping)]
    return [(str(r.get("protocol", f"run{i}")), r) for i, r in enumerate(_rows_of(res))]


def _tasks(result: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    tasks = _mapping(result.get("tasks"))
    return [(str(k), v) for k, v in tasks.items() if isinstance(v, Mapping)]


def _is_leaky(name: str, result: Mapping[str, Any]) -> bool:
    leaky = result.get("leaky")
    if leaky is None:
        return str(result.get("protocol", name)) in LEAKY_PROTOCOLS
    return bool(leaky)


def _label(name: str, result: Mapping[str, Any]) -> str:
    return f"{name} (LEAKY)" if _is_leaky(name, result) else name


def _classes(task: Mapping[str, Any]) -> list[str]:
    classes = task.get("classes")
    if isinstance(classes, Sequence) and not isinstance(classes, str) and classes:
        return [str(c) for c in classes]
    conf = _confusion(task)
    k = conf.shape[0] if conf is not None else 2
    return [str(c) for c in range(k)]


def _n_classes(task: Mapping[str, Any]) -> int:
    return max(2, len(_classes(task)))


def _metric(task: Mapping[str, Any], key: str) -> float:
    return _num(_mapping(task.get("metrics")).get(key))


def _pair(x: Any) -> tuple[float, float]:
    if isinstance(x, Sequence) and not isinstance(x, str) and len(x) == 2:
        return _num(x[0]), _num(x[1])
    return math.nan, math.nan


def _ci(task: Mapping[str, Any], key: str = "balanced_accuracy") -> tuple[float, float]:
    return _pair(_mapping(task.get("ci95")).get(key))


def _majority(task: Mapping[str, Any], key: str) -> float:
    return _num(_mapping(task.get("majority_baseline")).get(key))


def _confusion(task: Mapping[str, Any]) -> np.ndarray | None:
    conf = _mapping(task.get("metrics")).get("confusion")
    if conf is None:
        return None
    try:
        arr = np.array(
            [[_num(v) for v in row] for row in conf], dtype=np.float64, ndmin=2
        )
    except TypeError:
        return None
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        return None
    return arr


def _perm_p(task: Mapping[str, Any]) -> float:
    """Permutation p-value of a task; NaN when no permutation test was run.

    Uses ``permutation.p_value``; when it is missing but the null distribution is
    there, recomputes it from the observed metric (Phipson & Smyth).
    """
    perm = task.get("permutation")
    if not isinstance(perm, Mapping):
        return math.nan
    p = _num(perm.get("p_value"))
    if _ok(p):
        return p
    null = perm.get("null")
    obs = _metric(task, str(perm.get("metric", "balanced_accuracy")))
    if isinstance(null, Sequence) and not isinstance(null, str) and null and _ok(obs):
        from emomon.offline.metrics import permutation_p_value

        return permutation_p_value(obs, [_num(v) for v in null])
    return math.nan


def _perm_n(task: Mapping[str, Any]) -> int | None:
    perm = task.get("permutation")
    if not isinstance(perm, Mapping):
        return None
    n = _int_or_none(perm.get("n"))
    if n is None and isinstance(perm.get("null"), Sequence):
        n = len(perm["null"])
    return n


def verdict(p_value: float | None) -> str:
    """Chance verdict of a permutation p-value.

    Parameters
    ----------
    p_value : float or None
        Permutation-test p-value; None or NaN when no test was run.

    Returns
    -------
    str
        ``"above chance"`` when ``p < ALPHA`` (0.05), ``"at chance"`` when
        ``p >= ALPHA``, ``"not tested"`` without a p-value.
    """
    p = _num(p_value)
    if not _ok(p):
        return "not tested"
    return "above chance" if p < ALPHA else "at chance"


def _natural_key(s: str) -> tuple[Any, ...]:
    """Sort key ordering ``v2`` before ``v10``."""
    parts = re.split(r"(\d+)", s)
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in parts)


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("._") or "protocol"


# ----------------------------------------------------------------------- JSON


def to_jsonable(obj: Any) -> Any:
    """A strict-JSON copy of ``obj``.

    NaN and infinities become ``None``; numpy scalars and arrays become Python
    numbers and lists; tuples and sets become lists; paths and dates become strings;
    mapping keys become strings (insertion order kept). Anything else is ``str()``.

    Parameters
    ----------
    obj : object

    Returns
    -------
    object
        Serialisable by ``json.dumps(..., allow_nan=False)``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj, key=str)]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    return str(obj)


# ------------------------------------------------------------------------ CSV


def _long_rows(
    base: Mapping[str, Any], rows: Iterable[Mapping[str, Any]], columns: Sequence[str]
) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        rec: dict[str, Any] = dict(base)
        used: set[str] = set()
        for col in columns:
            if col in rec:
                continue
            for key in (col, *_ALIASES.get(col, ())):
                if key in row:
                    rec[col] = row[key]
                    used.add(key)
                    break
            else:
                rec[col] = None
        for key, value in row.items():
            if key not in used and key not in rec:
                rec[str(key)] = value
        out.append(rec)
    return out


def group_rows(report: Mapping[str, Any], which: str) -> list[dict[str, Any]]:
    """Long-format per-group rows of every (protocol, task).

    Parameters
    ----------
    report : dict
        The run report.
    which : {"per_video", "per_subject"}
        Which table of each task.

    Returns
    -------
    list of dict
        One row per (protocol, task, group) with the ``GROUP_COLUMNS`` keys first
        (``majority_true`` also read from ``true_majority``), then any other keys of
        the rows. Missing values are None.
    """
    if which not in ("per_video", "per_subject"):
        raise ValueError(f"which must be 'per_video' or 'per_subject', got {which!r}")
    return _task_table(report, which, GROUP_COLUMNS)


def fold_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Long-format per-fold rows of every (protocol, task).

    Parameters
    ----------
    report : dict

    Returns
    -------
    list of dict
        ``FOLD_COLUMNS`` keys first, then any other keys of the fold rows.
    """
    return _task_table(report, "per_fold", FOLD_COLUMNS)


def _task_table(
    report: Mapping[str, Any], key: str, columns: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows of table ``key`` of every (protocol, task), long format."""
    out = []
    for name, result in _results(report):
        for task, t in _tasks(result):
            base = {"protocol": name, "task": task}
            out += _long_rows(base, _rows_of(t.get(key)), columns)
    return out


def ablation_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of the ablation experiment, CI split into two columns.

    Parameters
    ----------
    report : dict

    Returns
    -------
    list of dict
        ``ABLATION_COLUMNS`` keys first; empty without an ablation section.
    """
    abl = _mapping(report.get("ablation"))
    kind = abl.get("kind")
    out = []
    for row in _rows_of(abl.get("rows")):
        lo, hi = _pair(row.get("ci95"))
        rec = {k: v for k, v in row.items() if k != "ci95"}
        rec.setdefault("kind", kind)
        rec["ci95_low"], rec["ci95_high"] = lo, hi
        out += _long_rows({}, [rec], ABLATION_COLUMNS)
    return out


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return repr(f) if math.isfinite(f) else ""
    if isinstance(v, str):
        return v
    return json.dumps(to_jsonable(v), separators=(",", ":"))


def _write_csv(
    path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> Path:
    cols = list(columns)
    for row in rows:
        cols += [k for k in row if k not in cols]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(cols)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in cols])
    return path


# ---------------------------------------------------------------------- plots


def _figure(figsize: tuple[float, float]) -> Figure:
    """A pyplot-free figure on the Agg canvas (nothing global to close)."""
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


def _fmt(x: float, nd: int = 3) -> str:
    return f"{x:.{nd}f}" if _ok(x) else "-"


def _fmt_p(p: float) -> str:
    """p-value text whose rounding never crosses ``ALPHA`` (0.04995 -> "0.04995")."""
    if not _ok(p):
        return "-"
    if p < 1e-3:
        return f"{p:.1e}"
    for nd in range(3, 7):
        text = f"{p:.{nd}f}"
        if (float(text) < ALPHA) == (p < ALPHA):
            return text
    return repr(p)


def _suptitle(fig: Figure, title: str, leaky: bool) -> None:
    if leaky:
        fig.suptitle(f"{title}\n{LEAKY_NOTE}", color="red", fontweight="bold")
    else:
        fig.suptitle(title, fontweight="bold")


def _task_title(task: str, t: Mapping[str, Any]) -> str:
    ba = _metric(t, "balanced_accuracy")
    lo, hi = _ci(t)
    ci = f" (95% CI {lo:.3f}-{hi:.3f})" if _ok(lo) and _ok(hi) else ""
    p = _perm_p(t)
    test = f"{verdict(p)}, p = {_fmt_p(p)}" if _ok(p) else verdict(p)
    return f"{task}: pooled bal.acc {_fmt(ba)}{ci}; {test}"


def _errbars(values: Sequence[float], cis: Sequence[tuple[float, float]]) -> np.ndarray:
    """Asymmetric error bars (2, n); zero where the CI is unknown."""
    err = np.zeros((2, len(values)))
    for i, (v, (lo, hi)) in enumerate(zip(values, cis, strict=True)):
        if _ok(v) and _ok(lo) and _ok(hi):
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


def plot_per_video(
    result: Mapping[str, Any],
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
    result : dict
        One entry of ``report["results"]``.
    path : Path
        PNG to write.
    name : str, optional
        Protocol name for the title (default ``result["protocol"]``).
    dpi : int

    Returns
    -------
    Path or None
        ``path``, or None when no task has per-video rows (nothing written).
    """
    from matplotlib.patches import Patch

    name = name or str(result.get("protocol", "protocol"))
    tasks = [(k, t) for k, t in _tasks(result) if _rows_of(t.get("per_video"))]
    if not tasks:
        return None
    n_max = max(len(_rows_of(t.get("per_video"))) for _, t in tasks)
    width = float(min(max(9.0, 0.28 * n_max + 4.0), 30.0))
    fig = _figure((width, 0.9 + 3.1 * len(tasks)))
    axes = fig.subplots(len(tasks), 1, squeeze=False)[:, 0]
    for ax, (task, t) in zip(axes, tasks, strict=True):
        rows = sorted(
            _rows_of(t.get("per_video")),
            key=lambda r: _natural_key(str(r.get("group", ""))),
        )
        classes = _classes(t)
        k = _n_classes(t)
        acc = np.array([_num(r.get("accuracy")) for r in rows])
        true = [
            _int_or_none(r.get("majority_true", r.get("true_majority"))) for r in rows
        ]
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
                label=f"true class: {classes[c] if c < len(classes) else c}",
            )
            for c in sorted({c for c in true if c is not None})
        ]
        handles.append(
            ax.axhline(1.0 / k, ls="--", lw=1.2, color="0.35", label=f"chance (1/{k})")
        )
        maj = _majority(t, "accuracy")
        if _ok(maj):
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
        labels = [str(r.get("group", "?")) for r in rows]
        ax.set_xticks(x, labels, rotation=90 if len(rows) > 12 else 0, fontsize=8)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("Video")
        ax.set_ylabel("Accuracy (windows)")
        ax.set_title(_task_title(task, t), loc="left", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    _suptitle(fig, f"Per-video accuracy: {name}", _is_leaky(name, result))
    return _save(fig, path, dpi)


def plot_confusion(
    result: Mapping[str, Any],
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
    result : dict
        One entry of ``report["results"]``.
    path : Path
        PNG to write.
    name : str, optional
        Protocol name for the title (default ``result["protocol"]``).
    dpi : int

    Returns
    -------
    Path or None
        ``path``, or None when no task has a confusion matrix (nothing written).
    """
    name = name or str(result.get("protocol", "protocol"))
    tasks = [(k, t, c) for k, t in _tasks(result) if (c := _confusion(t)) is not None]
    if not tasks:
        return None
    k_max = max(c.shape[0] for _, _, c in tasks)
    side = 3.2 + 0.5 * k_max
    fig = _figure((side * len(tasks) + 0.8, side + 0.9))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    image = None
    for ax, (task, t, conf) in zip(axes, tasks, strict=True):
        k = conf.shape[0]
        classes = _classes(t)
        classes = classes if len(classes) == k else [str(c) for c in range(k)]
        totals = conf.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(totals > 0, conf / totals, np.nan)
        image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(k):
            for j in range(k):
                count = f"{conf[i, j]:.0f}" if _ok(conf[i, j]) else "-"
                pct = f"{100 * frac[i, j]:.1f}%" if _ok(frac[i, j]) else "-"
                dark = _ok(frac[i, j]) and frac[i, j] > 0.55
                ax.text(
                    j,
                    i,
                    f"{count}\n({pct})",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if dark else "black",
                )
        ax.set_xticks(range(k), classes)
        ax.set_yticks(range(k), classes)
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        n = _metric(t, "n")
        n_txt = f"n = {n:.0f}, " if _ok(n) else ""
        ba = _metric(t, "balanced_accuracy")
        ax.set_title(f"{task}\n{n_txt}bal.acc {_fmt(ba)}", fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="Fraction of true class")
    _suptitle(fig, f"Confusion matrices: {name}", _is_leaky(name, result))
    return _save(fig, path, dpi)


_CHANCE: dict[str, Any] = {
    "colors": "0.35",
    "linestyles": "--",
    "linewidth": 1.2,
    "zorder": 4,
}


def _grouped_bars(
    ax: Axes,
    groups: Sequence[str],
    series: Sequence[dict[str, Any]],
    chance: Mapping[str, float],
    *,
    chance_by_group: bool,
) -> None:
    """Grouped bars with CI error bars, majority markers and chance lines.

    ``series`` items: ``label``, ``values``, ``cis``, ``majority``, ``p`` (per
    group), ``color``, ``hatch``; ``chance`` maps a group (or a series label when
    ``chance_by_group`` is false) to its chance level: one line across the axes when
    all levels agree, else a dashed segment over each group (or bar). Bars with
    ``p < ALPHA`` get a star, explained in the legend.
    """
    n_s = max(1, len(series))
    width = 0.8 / n_s
    x = np.arange(len(groups), dtype=np.float64)
    maj_done = any_star = False
    levels = {round(c, 12) for c in chance.values()}
    single = len(levels) <= 1
    for j, s in enumerate(series):
        pos = x - 0.4 + width * (j + 0.5)
        vals = np.array([_num(v) for v in s["values"]])
        err = _errbars(vals, s["cis"])
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
        stars = [_ok(_num(p)) and _num(p) < ALPHA for p in s["p"]]
        any_star |= any(stars)
        _bar_labels(ax, pos, list(vals), heights + err[1], stars)
        maj = np.array([_num(v) for v in s["majority"]])
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
    report: Mapping[str, Any], path: Path, *, dpi: int = 120
) -> Path | None:
    """Balanced accuracy of every protocol side by side, grouped by task.

    Bars carry 95% bootstrap CI error bars; black ticks mark the majority-class
    baseline, dashed segments chance (1/n_classes). Leaky protocols are hatched, red
    and labelled "(LEAKY)".

    Parameters
    ----------
    report : dict
    path : Path
        PNG to write.
    dpi : int

    Returns
    -------
    Path or None
        ``path``, or None with fewer than two protocol runs (nothing written).
    """
    runs = _results(report)
    if len(runs) < 2:
        return None
    tasks: list[str] = []
    chance: dict[str, float] = {}
    for _, result in runs:
        for task, t in _tasks(result):
            if task not in tasks:
                tasks.append(task)
                chance[task] = 1.0 / _n_classes(t)
    if not tasks:
        return None
    series = []
    free = iter(_PROTOCOL_COLORS * (len(runs) // len(_PROTOCOL_COLORS) + 1))
    for name, result in runs:
        t_of = dict(_tasks(result))
        leaky = _is_leaky(name, result)
        series.append(
            {
                "label": _label(name, result),
                "values": [
                    _metric(t_of.get(k, {}), "balanced_accuracy") for k in tasks
                ],
                "cis": [_ci(t_of.get(k, {})) for k in tasks],
                "majority": [
                    _majority(t_of.get(k, {}), "balanced_accuracy") for k in tasks
                ],
                "p": [_perm_p(t_of.get(k, {})) for k in tasks],
                "color": _LEAKY_COLOR if leaky else next(free),
                "hatch": "//" if leaky else None,
            }
        )
    fig = _figure((min(max(6.5, 1.2 * len(tasks) * len(runs) + 3.0), 24.0), 4.6))
    ax = fig.subplots()
    _grouped_bars(ax, tasks, series, chance, chance_by_group=True)
    ax.set_xlabel("Task")
    ax.set_title(
        "Balanced accuracy by protocol (pooled, 95% bootstrap CI)", fontsize=10
    )
    if any(_is_leaky(n, r) for n, r in runs):
        ax.text(
            0.0,
            -0.16,
            f"hatched red = {LEAKY_NOTE}: content-dependent, not a cross-video result",
            transform=ax.transAxes,
            color="red",
            fontsize=8,
            va="top",
        )
    fig.suptitle("Protocols side by side", fontweight="bold")
    return _save(fig, path, dpi)


def plot_ablation(
    report: Mapping[str, Any], path: Path, *, dpi: int = 120
) -> Path | None:
    """Ablation bars: balanced accuracy per setting, one bar per task.

    Parameters
    ----------
    report : dict
        Uses ``report["ablation"]``; chance levels come from the task classes in
        ``report["results"]`` (default 1/2).
    path : Path
        PNG to write.
    dpi : int

    Returns
    -------
    Path or None
        ``path``, or None without ablation rows (nothing written).
    """
    abl = _mapping(report.get("ablation"))
    rows = _rows_of(abl.get("rows"))
    if not rows:
        return None
    settings: list[str] = []
    tasks: list[str] = []
    for r in rows:
        s, t = str(r.get("setting", "?")), str(r.get("task", "?"))
        settings += [s] if s not in settings else []
        tasks += [t] if t not in tasks else []
    chance = {t: 0.5 for t in tasks}
    for _, result in _results(report):
        for task, t in _tasks(result):
            if task in chance:
                chance[task] = 1.0 / _n_classes(t)
    cell = {(str(r.get("setting", "?")), str(r.get("task", "?"))): r for r in rows}
    series = []
    for j, task in enumerate(tasks):
        cells = [cell.get((s, task), {}) for s in settings]
        series.append(
            {
                "label": task,
                "values": [_num(c.get("balanced_accuracy")) for c in cells],
                "cis": [_pair(c.get("ci95")) for c in cells],
                "majority": [_num(c.get("majority_balanced_accuracy")) for c in cells],
                "p": [_num(c.get("p_value")) for c in cells],
                "color": _CLASS_COLORS[j % len(_CLASS_COLORS)],
                "hatch": None,
            }
        )
    fig = _figure((min(max(6.5, 0.7 * len(settings) * len(tasks) + 3.0), 24.0), 4.6))
    ax = fig.subplots()
    _grouped_bars(ax, settings, series, chance, chance_by_group=False)
    kind = str(abl.get("kind", ""))
    ax.set_xlabel(
        {"bands": "Frequency bands used", "labels": "Labels"}.get(kind, "Setting")
    )
    ax.set_title("Balanced accuracy (pooled, 95% bootstrap CI)", fontsize=10)
    fig.suptitle(_ablation_title(abl), fontweight="bold")
    return _save(fig, path, dpi)


def _ablation_title(abl: Mapping[str, Any]) -> str:
    title = _ABLATION_TITLES.get(str(abl.get("kind", "")), "Ablation")
    protocol = abl.get("protocol")
    return f"{title} ({protocol})" if protocol else title


# ---------------------------------------------------------------- write_report


def write_report(
    report: Mapping[str, Any],
    out_dir: Path | str,
    *,
    plots: bool = True,
    dpi: int = 120,
    sort_keys: bool = False,
) -> list[Path]:
    """Write the report files of a run.

    Writes ``report.json`` (strict JSON: NaN/inf as ``null``, indent 2),
    ``per_video.csv``, ``per_subject.csv``, ``per_fold.csv`` (long format, one row per
    protocol, task and group/fold; blanks for missing or non-finite values),
    ``ablation.csv`` when the report has an ablation section, and the PNG plots
    ``per_video_<protocol>.png``, ``confusion_<protocol>.png``, ``protocols.png``
    (two or more protocols) and ``ablation.png``. Tables are written before plots,
    so a plotting problem never loses them.

    Parameters
    ----------
    report : dict
        The run report (see the module docstring).
    out_dir : Path or str
        Output folder, created if missing. Existing files of the same names are
        overwritten.
    plots : bool
        Draw the PNG plots. Without matplotlib (``pip install "emomon[train]"``)
        they are skipped with a warning.
    dpi : int
        Resolution of the PNGs.
    sort_keys : bool
        Sort the JSON keys alphabetically. The default keeps the report's own order,
        which is deterministic and keeps the protocols in run order.

    Returns
    -------
    list of Path
        The files written, in writing order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    text = json.dumps(
        to_jsonable(report),
        indent=2,
        allow_nan=False,
        ensure_ascii=False,
        sort_keys=sort_keys,
    )
    json_path = out / "report.json"
    json_path.write_text(text + "\n", encoding="utf-8")
    written.append(json_path)

    for which in ("per_video", "per_subject"):
        rows = group_rows(report, which)
        written.append(_write_csv(out / f"{which}.csv", rows, GROUP_COLUMNS))
    written.append(_write_csv(out / "per_fold.csv", fold_rows(report), FOLD_COLUMNS))
    if isinstance(report.get("ablation"), Mapping):
        rows = ablation_rows(report)
        written.append(_write_csv(out / "ablation.csv", rows, ABLATION_COLUMNS))

    if not plots:
        return written
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        warnings.warn(
            'matplotlib is not installed (pip install "emomon[train]"): '
            f"PNG plots skipped, tables written to {out}",
            stacklevel=2,
        )
        return written

    used: set[str] = set()
    for name, result in _results(report):
        stem = _safe_name(name)
        while stem in used:
            stem += "_"
        used.add(stem)
        for kind, fn in (("per_video", plot_per_video), ("confusion", plot_confusion)):
            png = fn(result, out / f"{kind}_{stem}.png", name=name, dpi=dpi)
            if png is not None:
                written.append(png)
    for fn, fname in (
        (plot_protocols, "protocols.png"),
        (plot_ablation, "ablation.png"),
    ):
        png = fn(report, out / fname, dpi=dpi)
        if png is not None:
            written.append(png)
    return written


# ------------------------------------------------------------------ text tables


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: str) -> str:
    """Aligned plain-text table; ``right[i] == "r"`` right-aligns column i."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if a == "r" else c.ljust(w)
            for c, w, a in zip(cells, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _ci_text(lo: float, hi: float) -> str:
    return f"[{lo:.3f}, {hi:.3f}]" if _ok(lo) and _ok(hi) else "-"


def _header(report: Mapping[str, Any]) -> str:
    version = report.get("emomon_version")
    parts = [f"emomon {version}" if version else "emomon"]
    ds = _mapping(report.get("dataset"))
    if ds:
        counts = [
            f"{n} {label}"
            for key, label in (
                ("n_subjects", "subjects"),
                ("n_videos", "videos"),
                ("n_trials", "trials"),
                ("n_windows", "windows"),
            )
            if (n := _int_or_none(ds.get(key))) is not None
        ]
        name = str(ds.get("name", "dataset"))
        parts.append(f"{name} ({', '.join(counts)})" if counts else name)
    runs = _results(report)
    models = sorted({str(r["model"]) for _, r in runs if r.get("model") is not None})
    labels = sorted({str(r["labels"]) for _, r in runs if r.get("labels") is not None})
    run = []
    if models:
        run.append(f"model {'/'.join(models)}")
    if labels:
        run.append(f"labels {'/'.join(labels)}")
    return "\n".join(filter(None, [" | ".join(parts), " | ".join(run)]))


def format_summary(report: Mapping[str, Any]) -> str:
    """Plain-text summary table of a run, one row per (protocol, task).

    Columns: protocol (" (LEAKY)" appended for leaky protocols), task, pooled
    balanced accuracy, its 95% CI, ROC AUC, F1, the majority-class baseline's
    balanced accuracy / accuracy, the permutation p-value ("-" when not run) and the
    verdict (``verdict``). A header line names the dataset; footnotes explain the
    leaky flag and the baselines, and give the exported model when there is one.

    Parameters
    ----------
    report : dict

    Returns
    -------
    str
        Lines under 100 characters (for usual protocol and task names), no trailing
        newline.
    """
    rows = []
    n_perm: set[int] = set()
    any_leaky = False
    for name, result in _results(report):
        leaky = _is_leaky(name, result)
        any_leaky |= leaky
        for task, t in _tasks(result):
            p = _perm_p(t)
            if (n := _perm_n(t)) is not None:
                n_perm.add(n)
            maj_b, maj_a = _majority(t, "balanced_accuracy"), _majority(t, "accuracy")
            rows.append(
                [
                    _label(name, result),
                    task,
                    _fmt(_metric(t, "balanced_accuracy")),
                    _ci_text(*_ci(t)),
                    _fmt(_metric(t, "auc")),
                    _fmt(_metric(t, "f1")),
                    f"{_fmt(maj_b, 2)}/{_fmt(maj_a, 2)}",
                    _fmt_p(p),
                    verdict(p),
                ]
            )
    headers = [
        "protocol",
        "task",
        "bal.acc",
        "95% CI",
        "AUC",
        "F1",
        "maj bal/acc",
        "perm p",
        "verdict",
    ]
    lines = [_header(report), ""]
    if rows:
        lines.append(_table(headers, rows, "llrlrrrrl"))
    else:
        lines.append("(no results)")
    notes = [
        "maj = majority class of each fold's training set (null baseline).",
        f"above chance only when permutation p < {ALPHA:g}"
        + (
            f" (n = {', '.join(str(n) for n in sorted(n_perm))} permutations)."
            if n_perm
            else "."
        ),
    ]
    if any_leaky:
        notes.append(f"{LEAKY_NOTE}: content-dependent, not a cross-video result.")
    export = _mapping(report.get("export"))
    if export.get("path") is not None:
        parity = _num(export.get("parity_max_abs"))
        extra = f" (ONNX parity max |diff| {parity:.1e})" if _ok(parity) else ""
        notes.append(f"model: {export['path']}{extra}")
    lines += ["", *notes]
    return "\n".join(lines)


def format_ablation(report: Mapping[str, Any]) -> str:
    """Plain-text table of the ablation experiment.

    Parameters
    ----------
    report : dict

    Returns
    -------
    str
        Title ("Band ablation" / "Label reliability", with the protocol when
        given) and one row per (setting, task): balanced accuracy, 95% CI, AUC,
        majority baseline balanced accuracy, permutation p and verdict; the empty
        string without an ablation section.
    """
    abl = _mapping(report.get("ablation"))
    rows = _rows_of(abl.get("rows"))
    if not rows:
        return ""
    table = []
    for r in rows:
        p = _num(r.get("p_value"))
        table.append(
            [
                str(r.get("setting", "?")),
                str(r.get("task", "?")),
                _fmt(_num(r.get("balanced_accuracy"))),
                _ci_text(*_pair(r.get("ci95"))),
                _fmt(_num(r.get("auc"))),
                _fmt(_num(r.get("majority_balanced_accuracy")), 2),
                _fmt_p(p),
                verdict(p),
            ]
        )
    headers = [
        "setting",
        "task",
        "bal.acc",
        "95% CI",
        "AUC",
        "maj bal",
        "perm p",
        "verdict",
    ]
    table_text = _table(headers, table, "llrlrrrl")
    return "\n".join([_ablation_title(abl), "", table_text])
