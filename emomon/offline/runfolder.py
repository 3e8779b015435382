"""Run folders: a manifest, each finished task's result as it lands, resume.

A run folder (``emomon train --out DIR``) holds, besides the report files:

- ``manifest.json``: the run's config, a digest of the data it trained on, the
  emomon version and the report schema version; written first, atomically;
- ``tasks/<run>/<protocol>/fold-NNN.json`` and ``perm-NNNN.json``: the result of
  each fold and permutation task, written atomically as it completes
  (:meth:`~emomon.offline.tasks.FoldResult.to_dict`; JSON floats read back
  bit for bit, so a resumed run's report equals an uninterrupted one's).

Modes (:class:`RunFolder`): ``new`` refuses a folder that holds anything;
``overwrite`` refuses a folder without an emomon manifest (so ``--out ~
--overwrite`` cannot wipe a home directory) and removes every file of the
earlier run before the first new one is written; ``resume`` refuses a folder
whose manifest differs from this run's (config apart from
:data:`RESUME_IGNORED`, data digest, emomon version, report schema) and skips
the tasks it finds. A run that stops before any task finished (a failure, Ctrl-C)
removes the folder it created; a refused run creates none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emomon import __version__
from emomon.errors import ConfigError, literal

if TYPE_CHECKING:
    from emomon.offline.dataset import Dataset

__all__ = [
    "MANIFEST",
    "MODES",
    "RESUME_IGNORED",
    "Manifest",
    "RunFolder",
    "TaskStore",
    "atomic_write_text",
    "data_digest",
]

#: The manifest's file name in a run folder.
MANIFEST = "manifest.json"
#: Its format tag.
MANIFEST_FORMAT = "emomon.run.v1"
#: What a run does with its folder (``emomon train --resume / --overwrite``).
MODES: tuple[str, ...] = ("new", "resume", "overwrite")
#: Config keys a resumed run may change: where the data and cache live and how
#: many workers run the tasks change no result.
RESUME_IGNORED: frozenset[str] = frozenset({"data_dir", "cache_dir", "n_jobs"})
_TASKS = "tasks"
#: How errors name the modes: the library's keyword (the CLI shows its flags).
_MODE_PARAMS = {
    "resume": 'mode="resume"',
    "overwrite": 'mode="overwrite"',
    "out_dir": "out_dir",
}


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    A reader (or a run killed mid-write) sees the old file or the new one, never
    a part.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def data_digest(ds: Dataset) -> str:
    """SHA-256 of what a run learns from: features, trial metadata and labels.

    Parameters
    ----------
    ds : Dataset

    Returns
    -------
    str
        ``sha256:<hex>``.
    """
    t = ds.table
    h = hashlib.sha256()
    for arr in (t.X, t.trial, t.t_end, t.ratings):
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    for names in (t.trial_subject, t.trial_video, t.trial_label, t.ch_names):
        h.update(json.dumps([str(x) for x in names]).encode())
    h.update(json.dumps(ds.tasks, sort_keys=True).encode())
    for task in sorted(ds.trial_labels):
        h.update(task.encode())
        h.update(np.ascontiguousarray(ds.trial_labels[task], dtype=np.int64).data)
    return f"sha256:{h.hexdigest()}"


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What identifies a run: ``emomon train`` resumes only a run it matches.

    Attributes
    ----------
    kind : str
        ``train``, ``evaluate`` or ``ablation``.
    config : dict
        The run's config (:func:`~emomon.offline.trainconfig.config_dict`), with
        the ablation's settings for an ablation.
    data_digest : str
        :func:`data_digest` of the (first) dataset.
    emomon_version : str
    report_schema : int
        :data:`~emomon.offline.runreport.SCHEMA_VERSION`.
    created : str
        Local time the run started (not compared).
    """

    kind: str
    config: Mapping[str, Any]
    data_digest: str
    emomon_version: str = __version__
    report_schema: int = 0
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object written to ``manifest.json``."""
        return {"format": MANIFEST_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        """Read the manifest of ``folder``; None if it has none (or a foreign one)."""
        try:
            d = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(d, dict) or d.get("format") != MANIFEST_FORMAT:
            return None
        try:
            return cls(
                kind=str(d["kind"]),
                config=dict(d["config"]),
                data_digest=str(d["data_digest"]),
                emomon_version=str(d["emomon_version"]),
                report_schema=int(d["report_schema"]),
                created=str(d.get("created", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def differences(self, other: Manifest) -> list[str]:
        """List what differs between two manifests (empty: a match)."""
        out = []
        if self.kind != other.kind:
            out.append(f"it is an `emomon {other.kind}` run, this is `{self.kind}`")
        if self.emomon_version != other.emomon_version:
            out.append(f"emomon {other.emomon_version} wrote it (this is "
                       f"{self.emomon_version})")  # fmt: skip
        if self.report_schema != other.report_schema:
            out.append(f"report schema {other.report_schema} (this is "
                       f"{self.report_schema})")  # fmt: skip
        if self.data_digest != other.data_digest:
            out.append("the data differ")
        keys = sorted((set(self.config) | set(other.config)) - RESUME_IGNORED)
        changed = [k for k in keys if self.config.get(k) != other.config.get(k)]
        if changed:
            out.append(f"config {', '.join(changed)} changed")
        return out


class TaskStore:
    """The finished task results of one (run, protocol) in a run folder.

    Parameters
    ----------
    folder : Path
        ``tasks/<run>/<protocol>`` (created on the first save).
    on_save : callable, optional
        Called after each save (the run folder counts them).
    """

    def __init__(self, folder: Path, on_save: Callable[[], None] | None = None) -> None:
        self.folder = folder
        self._on_save = on_save

    @staticmethod
    def _name(kind: str, index: int) -> str:
        width = 3 if kind == "fold" else 4
        return f"{kind}-{index:0{width}d}.json"

    def load(self, kind: str, index: int) -> dict[str, Any] | None:
        """Return the saved record of task ``kind`` (fold/perm) ``index``, or None."""
        try:
            text = (self.folder / self._name(kind, index)).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return json.loads(text)

    def save(self, kind: str, index: int, record: Mapping[str, Any]) -> None:
        """Write one task's record atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / self._name(kind, index), json.dumps(record))
        if self._on_save is not None:
            self._on_save()


class RunFolder:
    """A run's folder: checked before the data loads, opened once it has.

    Parameters
    ----------
    path : path
    mode : {"new", "resume", "overwrite"}

    Raises
    ------
    ConfigError
        When the folder cannot be this run's (checked at once, before any data
        loads): a file in the way, a non-empty folder in mode ``new``, a folder
        without an emomon manifest in mode ``overwrite``.
    """

    def __init__(self, path: str | os.PathLike[str], *, mode: str = "new") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.saved = 0  # task results written by this run
        self._created = False
        self._check()

    def _check(self) -> None:
        out = self.path
        for p in (out, *out.parents):
            if p.exists():
                if not p.is_dir():
                    raise ConfigError(
                        f"run directory {literal(out)}: {literal(p)} is a file, not "
                        "a directory; pass another {out_dir}",
                        params=("out_dir",),
                    )
                break
        if not out.is_dir() or not any(out.iterdir()):
            return
        has_manifest = Manifest.read(out) is not None
        if self.mode == "new":
            what = "an earlier emomon run" if has_manifest else "files"
            raise ConfigError(
                f"run directory {literal(out)} already holds {what}; pass "
                "{resume} to continue that run, {overwrite} to replace it, or "
                "another {out_dir}",
                params=_MODE_PARAMS,
            )
        if not has_manifest:
            raise ConfigError(
                f"run directory {literal(out)} is not empty and has no emomon "
                f"{MANIFEST}, so it is not a run folder; emomon replaces or resumes "
                "only its own runs: pass another {out_dir}",
                params=("out_dir",),
            )

    def open(self, manifest: Manifest) -> None:
        """Make the folder this run's: create, replace or resume, per the mode.

        Raises
        ------
        ConfigError
            In mode ``resume``, when the earlier run's manifest differs.
        """
        out = self.path
        earlier = Manifest.read(out) if out.is_dir() else None
        if self.mode == "resume" and earlier is not None:
            diff = manifest.differences(earlier)
            if diff:
                raise ConfigError(
                    f"cannot resume the run in {literal(out)}: {'; '.join(diff)}; "
                    "rerun with its settings, or pass {overwrite} to start over",
                    params={"overwrite": _MODE_PARAMS["overwrite"]},
                )
            return
        if self.mode == "overwrite" and earlier is not None:
            for child in list(out.iterdir()):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        self._created = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"run directory {literal(out)}: cannot create it "
                f"({literal(exc.strerror)}); pass another {{out_dir}}",
                params=("out_dir",),
            ) from None
        m = dataclasses.replace(manifest, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        atomic_write_text(out / MANIFEST, json.dumps(m.to_dict(), indent=2) + "\n")

    def tasks(self, run: str, protocol: str) -> TaskStore:
        """Return the task results of ``protocol`` in run ``run``."""

        def count() -> None:
            self.saved += 1

        # Setting names such as "all but alpha" become "all-but-alpha".
        folder = re.sub(r"[^A-Za-z0-9._-]+", "-", run).strip("-") or "run"
        return TaskStore(self.path / _TASKS / folder / protocol, count)

    def abandon(self) -> None:
        """After a failure or interrupt: remove the folder if nothing was kept.

        Only a folder this run created (or emptied, with ``overwrite``) and in
        which no task finished; a resumed run's folder stays.
        """
        if self.mode == "resume" or self.saved:
            return
        if self._created or self.mode == "overwrite":
            shutil.rmtree(self.path, ignore_errors=True)
