"""The files of a run: ``report.json``, CSV tables and PNG plots.

The report itself is a :class:`~emomon.offline.runreport.RunReport`; its tables
(CSV rows, text summaries) are in :mod:`emomon.offline.tables` and its plots in
:mod:`emomon.offline.plots`. This module writes them and is the public face of
all three: every function here also takes a report dict (as read from
``report.json``), read once with :meth:`RunReport.from_dict`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emomon.offline import plots, tables
from emomon.offline.paperplots import write_paper_plots
from emomon.offline.plots import (
    plot_ablation,
    plot_confusion,
    plot_per_video,
    plot_protocols,
)
from emomon.offline.runfolder import atomic_write_text
from emomon.offline.runreport import RunReport, to_jsonable
from emomon.offline.tables import *  # noqa: F403 - re-exported, see __all__
from emomon.offline.tables import (
    ABLATION_COLUMNS,
    FOLD_COLUMNS,
    GROUP_COLUMNS,
    ablation_rows,
    fold_rows,
    group_rows,
)

# The public names of the report layer, importable from here: the tables', the
# plots' and the files'.
__all__ = [*tables.__all__, *plots.__all__, "to_jsonable", "write_report"]


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
    """``columns``, then every other key some row has a value for."""
    cols = list(columns)
    for row in rows:
        cols += [k for k, v in row.items() if k not in cols and v is not None]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in cols])
    atomic_write_text(path, buf.getvalue())
    return path


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("._") or "protocol"


def write_report(
    report: RunReport | Mapping[str, Any],
    out_dir: Path | str,
    *,
    plots: bool = True,
    paper_plots: bool = False,
    dpi: int = 120,
    sort_keys: bool = False,
) -> list[Path]:
    """Write the report files of a run.

    Writes ``report.json`` (strict JSON: undefined numbers as ``null``, indent 2),
    ``per_video.csv``, ``per_subject.csv``, ``per_fold.csv`` (long format, one row per
    protocol, task and group/fold; blanks for undefined values),
    ``ablation.csv`` when the report has an ablation section, and the PNG plots
    ``per_video_<protocol>.png``, ``confusion_<protocol>.png``, with
    ``paper_plots`` the paper plots of each protocol
    (:func:`~emomon.offline.paperplots.write_paper_plots`:
    ``features_topomap_``, ``importance_topomap_``, ``per_subject_``, ``roc_``,
    ``null_``, ``learning_curves_<protocol>.png``, those its data allows),
    ``protocols.png`` (two or more protocols) and ``ablation.png``. Tables are
    written before plots, so a plotting problem never loses them.

    Parameters
    ----------
    report : RunReport or dict
        The run report (a dict is read with :meth:`RunReport.from_dict`).
    out_dir : Path or str
        Output folder, created if missing. Existing files of the same names are
        overwritten.
    plots : bool
        Draw the PNG plots. Without matplotlib (``pip install "emomon[train]"``)
        they are skipped with a warning.
    paper_plots : bool
        Draw the paper plots too (2-3 s a protocol: MNE's scalp maps). Their
        data is in report.json either way, so they can be drawn later.
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
    report = RunReport.coerce(report)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    json_path = out / "report.json"
    atomic_write_text(json_path, report.to_json(sort_keys=sort_keys) + "\n")
    written.append(json_path)

    for which in ("per_video", "per_subject"):
        rows = group_rows(report, which)
        written.append(_write_csv(out / f"{which}.csv", rows, GROUP_COLUMNS))
    written.append(_write_csv(out / "per_fold.csv", fold_rows(report), FOLD_COLUMNS))
    if report.ablation is not None:
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
    for name, result in report.results.items():
        stem = _safe_name(name)
        while stem in used:
            stem += "_"
        used.add(stem)
        for kind, fn in (("per_video", plot_per_video), ("confusion", plot_confusion)):
            png = fn(result, out / f"{kind}_{stem}.png", name=name, dpi=dpi)
            if png is not None:
                written.append(png)
        if paper_plots:
            written += write_paper_plots(result, out, stem=stem, name=name, dpi=dpi)
    for fn, fname in (
        (plot_protocols, "protocols.png"),
        (plot_ablation, "ablation.png"),
    ):
        png = fn(report, out / fname, dpi=dpi)
        if png is not None:
            written.append(png)
    return written
