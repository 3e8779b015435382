"""Tables of a run report: the CSV rows and the plain-text summaries.

Verdicts follow :func:`emomon.offline.scoring.verdict`: "above chance" only when
the permutation p-value is below 0.05, "inconclusive" when the reruns cannot
reach that, "at chance" otherwise, "not tested" without a permutation test, and
then no interval is shown either. Leaky protocols (videos shared by train and
test, ``intra``) are flagged "LEAKY" in every table. Undefined numbers are
blanks in the CSV rows' files and ``-`` in the text.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from emomon.offline.cvcompare import MC_FLIPS
from emomon.offline.holdout import HOLDOUTS
from emomon.offline.protocols import LEAKY_PROTOCOLS
from emomon.offline.runreport import (
    ALPHA,
    Ablation,
    ProtocolResult,
    RunReport,
    TaskResult,
)
from emomon.offline.scoring import verdict

__all__ = [
    "ABLATION_COLUMNS",
    "ALPHA",
    "FOLD_COLUMNS",
    "GROUP_COLUMNS",
    "LEAKY_NOTE",
    "SHARES_NOTE",
    "ablation_rows",
    "augment_notes",
    "fold_rows",
    "format_ablation",
    "format_summary",
    "group_rows",
    "interval_text",
    "mark_note",
    "shows_interval",
    "verdict",
    "verdict_notes",
]


#: What "LEAKY" means, in titles and footnotes.
LEAKY_NOTE: str = "LEAKY (same trials in train and test)"

#: What "SHARES VIDEOS" means, in titles and footnotes.
SHARES_NOTE: str = "SHARES VIDEOS (test videos seen in training)"


def mark_note(mark: str) -> str:
    """Return the footnote of a protocol mark (``"LEAKY"``, ``"SHARES VIDEOS"``)."""
    return {"LEAKY": LEAKY_NOTE, "SHARES VIDEOS": SHARES_NOTE}.get(mark, "")


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

# The report's name of a CSV column where it differs.
_SOURCE_KEY: dict[str, str] = {"majority_true": "true_majority"}

_ABLATION_TITLES = {
    "bands": "Band ablation",
    "labels": "Label reliability",
    "bands+labels": "Band ablation and label reliability",
}


def natural_key(s: str) -> tuple[Any, ...]:
    """Sort key ordering ``v2`` before ``v10``."""
    parts = re.split(r"(\d+)", s)
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in parts)


def ablation_title(abl: Ablation, result: ProtocolResult | None = None) -> str:
    """Title an ablation: "Band ablation (lovo)", "Label reliability".

    The protocol carries its mark: "Band ablation (loso, SHARES VIDEOS)". It is
    the run's measured one when ``result`` (the first setting's run of the
    protocol) is given, else the protocol's declaration
    (:mod:`emomon.offline.holdout`).
    """
    title = _ABLATION_TITLES.get(abl.kind or "", "Ablation")
    if not abl.protocol:
        return title
    if result is not None:
        return f"{title} ({abl.protocol}{', ' + result.mark if result.mark else ''})"
    decl = HOLDOUTS.get(abl.protocol)
    mark = ""
    if abl.protocol in LEAKY_PROTOCOLS:
        mark = ", LEAKY"
    elif decl is not None and decl.shares_videos:
        mark = ", SHARES VIDEOS"
    return f"{title} ({abl.protocol}{mark})"


# ------------------------------------------------------------------------ CSV rows


def _long_rows(
    base: Mapping[str, Any], rows: Iterable[Mapping[str, Any]], columns: Sequence[str]
) -> list[dict[str, Any]]:
    """``columns`` first (from ``base``, then the row), then the row's other keys."""
    out = []
    for row in rows:
        rec: dict[str, Any] = dict(base)
        used: set[str] = set()
        for col in columns:
            if col not in rec:
                key = _SOURCE_KEY.get(col, col)
                rec[col] = row.get(key)
                used.add(key)
        rec.update((k, v) for k, v in row.items() if k not in used and k not in rec)
        out.append(rec)
    return out


def group_rows(
    report: RunReport | Mapping[str, Any], which: str
) -> list[dict[str, Any]]:
    """Long-format per-group rows of every (protocol, task).

    Parameters
    ----------
    report : RunReport or dict
        The run report.
    which : {"per_video", "per_subject"}
        Which table of each task.

    Returns
    -------
    list of dict
        One row per (protocol, task, group) with the ``GROUP_COLUMNS`` keys first
        (``majority_true`` is the report's ``true_majority``), then the row's other
        keys. Undefined values are None.
    """
    if which not in ("per_video", "per_subject"):
        raise ValueError(f"which must be 'per_video' or 'per_subject', got {which!r}")
    return _task_table(report, which, GROUP_COLUMNS)


def fold_rows(report: RunReport | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Long-format per-fold rows of every (protocol, task).

    Parameters
    ----------
    report : RunReport or dict

    Returns
    -------
    list of dict
        ``FOLD_COLUMNS`` keys first, then the fold rows' other keys.
    """
    return _task_table(report, "per_fold", FOLD_COLUMNS)


def _task_table(
    report: RunReport | Mapping[str, Any], which: str, columns: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows of table ``which`` of every (protocol, task), long format."""
    out = []
    for name, result in RunReport.coerce(report).results.items():
        for task, t in result.tasks.items():
            rows = [r.to_dict() for r in getattr(t, which)]
            out += _long_rows({"protocol": name, "task": task}, rows, columns)
    return out


def ablation_rows(report: RunReport | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of the ablation experiment, CI split into two columns.

    Parameters
    ----------
    report : RunReport or dict

    Returns
    -------
    list of dict
        ``ABLATION_COLUMNS`` keys first; empty without an ablation section.
    """
    abl = RunReport.coerce(report).ablation
    if abl is None:
        return []
    out = []
    for row in abl.rows:
        rec = {k: v for k, v in row.to_dict().items() if k != "ci95"}
        rec["ci95_low"], rec["ci95_high"] = row.ci95
        out += _long_rows({"kind": abl.kind}, [rec], ABLATION_COLUMNS)
    return out


# --------------------------------------------------------------------- text tables


def fmt(x: float | None, nd: int = 3) -> str:
    """``x`` with ``nd`` decimals, ``-`` when undefined."""
    return "-" if x is None or not math.isfinite(x) else f"{x:.{nd}f}"


def fmt_p(p: float | None) -> str:
    """p-value text whose rounding never crosses ``ALPHA`` (0.04995 -> "0.04995")."""
    if p is None or not math.isfinite(p):
        return "-"
    if p < 1e-3:
        return f"{p:.1e}"
    for nd in range(3, 7):
        text = f"{p:.{nd}f}"
        if (float(text) < ALPHA) == (p < ALPHA):
            return text
    return repr(p)


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


def _ci_text(ci: tuple[float | None, float | None]) -> str:
    lo, hi = ci
    return "-" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


def _header(report: RunReport) -> str:
    version = report.emomon_version
    parts = [f"emomon {version}" if version else "emomon"]
    ds = report.dataset
    if ds is not None:
        counts = [
            f"{n} {label}"
            for n, label in (
                (ds.n_subjects, "subjects"),
                (ds.n_videos, "videos"),
                (ds.n_trials, "trials"),
                (ds.n_windows, "windows"),
            )
            if n is not None
        ]
        name = ds.name or "dataset"
        parts.append(f"{name} ({', '.join(counts)})" if counts else name)
        if ds.channels_assumed:
            parts.append("channel names ASSUMED (the files carry none)")
        pre = ds.precomputed
        if pre:  # the features came with the dataset: say what they cannot do
            fams = ", ".join(str(f) for f in pre.get("families") or [])
            parts.append(f"precomputed features {fams} (not causal: offline only)")
    runs = report.results.values()
    models = sorted({r.model for r in runs if r.model is not None})
    labels = sorted({r.labels for r in runs if r.labels is not None})
    run = []
    if models:
        run.append(f"model {'/'.join(models)}")
    if labels:
        run.append(f"labels {'/'.join(labels)}")
    return "\n".join(filter(None, [" | ".join(parts), " | ".join(run)]))


def format_summary(report: RunReport | Mapping[str, Any]) -> str:
    """Plain-text summary table of a run, one row per (protocol, task).

    Columns: protocol (" (LEAKY)" or " (SHARES VIDEOS)" appended to a protocol
    whose number is content-dependent), task, pooled
    balanced accuracy, its 95% CI, ROC AUC, F1, the majority-class baseline's
    balanced accuracy / accuracy, the permutation p-value ("-" when not run) and the
    verdict (``verdict``). A header line names the dataset; footnotes explain the
    leaky flag and the baselines, and give the exported model when there is one;
    a run with augmentation ends with :func:`augment_notes`.

    Parameters
    ----------
    report : RunReport or dict

    Returns
    -------
    str
        Lines under 100 characters for usual protocol and task names (a
        protocol marked "(SHARES VIDEOS)" widens its column to about 105), no
        trailing newline.
    """
    report = RunReport.coerce(report)
    rows = []
    n_perm: set[int] = set()
    units: dict[str, str] = {}
    for result in report.results.values():
        for task, t in result.tasks.items():
            h, maj = t.headline(), t.majority_baseline
            if t.permutation is not None:
                n_perm.add(t.permutation.n)
            if t.ci_unit is not None:
                units.setdefault(result.protocol, t.ci_unit)
            rows.append(
                [
                    result.label,
                    task,
                    fmt(h.balanced_accuracy),
                    interval_text(t),
                    fmt(h.auc),
                    fmt(t.metrics.f1),
                    f"{fmt(maj.balanced_accuracy, 2)}/{fmt(maj.accuracy, 2)}",
                    fmt_p(h.p_value),
                    t.verdict,
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
    lines.append(_table(headers, rows, "llrlrrrrl") if rows else "(no results)")
    perms = ", ".join(str(n) for n in sorted(n_perm))
    problems = [
        f"{r.protocol}, {note}" for r in report.results.values() for note in r.notes
    ]
    if problems:
        lines += ["", "fold problems:", *(f"  {p}" for p in problems)]
    notes = [
        "maj = majority class of each fold's training set (null baseline).",
        f"above chance only when permutation p < {ALPHA:g}"
        + (f" (n = {perms} permutations)." if n_perm else "."),
        *verdict_notes(
            (r.protocol, task, t)
            for r in report.results.values()
            for task, t in r.tasks.items()
        ),
    ]
    if units:
        notes.append(
            "95% CI: bootstrap over "
            + ", ".join(f"{p}'s {u}s" for p, u in units.items())
            + " (the units exchangeable under each protocol's null)."
        )
    notes = [w for n in notes for w in textwrap.wrap(n, 98, subsequent_indent="  ")]
    for mark in dict.fromkeys(r.mark for r in report.results.values() if r.marked):
        notes.append(f"{mark_note(mark)}: content-dependent, not a cross-video result.")
    if report.export is not None:
        parity = report.export.parity_max_abs
        extra = f" (ONNX parity max |diff| {parity:.1e})" if parity is not None else ""
        notes.append(f"model: {report.export.path}{extra}")
    aug = augment_notes(report)
    if aug:
        notes += [
            "",
            *(w for n in aug for w in textwrap.wrap(n, 98, subsequent_indent="  ")),
        ]
    return "\n".join([*lines, "", *notes])


def augment_notes(report: RunReport) -> list[str]:
    """Say, per (protocol, task) with augmentation, whether it helped.

    And whether the samples passed their sanity checks, without which the
    comparison is not evidence about augmentation with samples that pass.

    Parameters
    ----------
    report : RunReport

    Returns
    -------
    list of str
        Unwrapped; empty when no task has an augmentation summary
        (:class:`~emomon.offline.augreport.AugmentSummary`).
    """
    out = []
    for r in report.results.values():
        for task, t in r.tasks.items():
            a = t.augment
            if a is None:
                continue
            d = a.mean_difference
            # round(): a mean of -1e-18 (float noise) reads +0.000, not -0.000
            diff = "-" if d is None else f"{round(d, 12) or 0.0:+.3f}"
            flip = "" if a.sign_flip_exact else f", {MC_FLIPS} draws"
            text = (
                f"augmentation {a.method} (ratio {a.ratio:g}): {r.label} {task} "
                f"{fmt(a.balanced_accuracy_with)} with, "
                f"{fmt(a.balanced_accuracy_without)} without, diff {diff} "
                f"(corrected p {fmt_p(a.corrected_p)}; sign-flip p "
                f"{fmt_p(a.sign_flip_p)}{flip}, ignores fold overlap): {a.verdict}; "
            )
            s = a.sanity
            if s is None:
                text += (
                    "generator sanity not checked (augment_check false): the "
                    "comparison is not evidence about samples that pass."
                )
            else:
                text += (
                    f"generator sanity {a.sanity_status} "
                    f"(TSTR {fmt(s.tstr_mean, 2)} vs TRTR {fmt(s.trtr_mean, 2)}, "
                    f"chance {fmt(s.chance, 2)}; above "
                    f"chance in {s.tstr_above_chance}/{s.n_folds} folds, p "
                    f"{fmt_p(s.tstr_p)} taking folds as independent; MMD² "
                    f"{fmt(s.mmd2_mean)} vs real-real {fmt(s.mmd2_real_mean)}; "
                    "class-mean Gaussian reference TSTR "
                    f"{fmt(s.tstr_reference_mean, 2)}, MMD² "
                    f"{fmt(s.mmd2_reference_mean)}; variance "
                    f"{fmt(s.var_ratio_mean, 2)} of the real windows'"
                    + (
                        "; real windows are not above chance there either, "
                        f"p {fmt_p(s.trtr_p)}, so the check cannot tell"
                        if a.sanity_status == "inconclusive"
                        else ""
                    )
                    + "): "
                    + (
                        "the comparison stands for samples that pass (the "
                        "minimum, not realism: read the MMD beside the reference's)."
                        if a.evidence
                        else "the comparison is not evidence about samples that pass."
                    )
                )
            out.append(text)
    return out


def interval_text(t: TaskResult) -> str:
    """Return the 95% CI of a task, or ``-`` where it is not to be shown.

    Shown only beside a permutation p-value and when it resampled the
    protocol's exchangeable unit (reports before issue 15 resampled (subject,
    video) pairs: far too narrow under leave-one-video-out).
    """
    return _ci_text(t.ci95) if shows_interval(t) else "-"


def shows_interval(t: TaskResult) -> bool:
    """Whether a task's interval is shown: beside a p, resampled by its unit."""
    return t.p_value is not None and t.ci_unit is not None


def verdict_notes(results: Iterable[tuple[str, str, TaskResult]]) -> list[str]:
    """Footnotes explaining the "not tested" and "inconclusive" verdicts shown.

    Parameters
    ----------
    results : iterable of (protocol, task, TaskResult)
    """
    notes, short, same = [], set(), []
    tested = False
    for protocol, task, t in results:
        if t.verdict == "not tested":
            tested = True
        elif t.verdict == "inconclusive" and t.permutation is not None:
            if t.permutation.n_same:
                same.append(
                    f"{protocol} {task}: {t.permutation.n_same} of "
                    f"{t.permutation.n} reruns leave the labels unchanged"
                )
            else:
                short.add(t.permutation.n)
    if tested:
        notes.append(
            "not tested: no permutation test was run (--permutations N; none by "
            "default for neural models), so no interval is shown either."
        )
    if short:
        notes.append(
            f"inconclusive: {min(short)} permutations cannot reach p < {ALPHA:g} "
            f"(the smallest p is 1/(n+1)); use at least {math.ceil(1 / ALPHA)}."
        )
    if same:
        notes.append(
            "inconclusive: "
            + "; ".join(same)
            + " (the labels do not vary between the units the null exchanges, "
            "so those reruns score the observed value and p cannot reach "
            f"{ALPHA:g})."
        )
    return notes


def format_ablation(report: RunReport | Mapping[str, Any]) -> str:
    """Plain-text table of the ablation experiment.

    Parameters
    ----------
    report : RunReport or dict

    Returns
    -------
    str
        Title ("Band ablation" / "Label reliability", with the protocol when
        given) and one row per (setting, task): balanced accuracy, 95% CI, AUC,
        majority baseline balanced accuracy, permutation p and verdict; the empty
        string without an ablation section.
    """
    rep = RunReport.coerce(report)
    abl = rep.ablation
    if abl is None or not abl.rows:
        return ""
    table = [
        [
            r.setting,
            r.task,
            fmt(r.balanced_accuracy),
            _ci_text(r.ci95) if r.p_value is not None and r.ci_unit else "-",
            fmt(r.auc),
            fmt(r.majority_balanced_accuracy, 2),
            fmt_p(r.p_value),
            verdict(r.p_value, r.n_permutations),
        ]
        for r in abl.rows
    ]
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
    title = ablation_title(abl, rep.results.get(abl.protocol or ""))
    return "\n".join([title, "", _table(headers, table, "llrlrrrl")])
