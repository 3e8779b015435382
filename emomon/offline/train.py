"""Training runs, start to end: what ``emomon train`` and :func:`train` run.

:func:`run_training` calls each step in its own module:

1. the data (:mod:`~emomon.offline.dataset`): features of the whole dataset
   (cached) and the labels of each task;
2. per protocol (:mod:`~emomon.offline.evaluate`): the folds of
   :func:`~emomon.offline.protocols.make_splits` as pure tasks
   (:mod:`~emomon.offline.tasks`) run by an executor
   (:mod:`~emomon.offline.executors`); per fold, z-score statistics from the
   training windows only and a model trained with Adam
   (:mod:`~emomon.offline.fit`: batch 64, lr 1e-3 halved on plateau, early stopping
   on the inner validation videos/subjects, class-balanced loss, fixed seeds);
   pooled metrics with (subject, video) bootstrap CIs, the majority-class baseline
   of each fold, and a permutation test that reruns the whole cross-validation with
   trial labels shuffled by video;
3. a final model trained on all data, exported to ONNX with its contract
   (:mod:`~emomon.offline.final`);
4. the report (:class:`~emomon.offline.runreport.RunReport`) and its files
   (:mod:`~emomon.offline.report`).

:func:`run_ablation` runs step 2 once per band or label method;
:func:`export_run` runs step 3 for an earlier run.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from emomon import __version__
from emomon.errors import ConfigError, literal
from emomon.offline.dataset import Dataset, dataset_info, load_dataset
from emomon.offline.evaluate import evaluate_protocol
from emomon.offline.executors import FoldExecutor, run_executor
from emomon.offline.final import export_model
from emomon.offline.fit import check_device, fit_model
from emomon.offline.labels import LABEL_METHODS
from emomon.offline.report import write_report
from emomon.offline.runfolder import Manifest, RunFolder, data_digest
from emomon.offline.runreport import (
    SCHEMA_VERSION,
    Ablation,
    AblationRow,
    ExportInfo,
    ProtocolResult,
    RunReport,
)
from emomon.offline.trainconfig import (
    TrainConfig,
    config_dict,
    config_from_report,
    default_run_dir,
    load_train_config,
    make_train_config,
)

__all__ = [
    "TrainConfig",
    "evaluate_protocol",
    "export_run",
    "fit_model",
    "load_dataset",
    "load_train_config",
    "make_train_config",
    "run_ablation",
    "run_training",
    "train",
]


def _new_report(cfg: TrainConfig, ds: Dataset, **parts: Any) -> RunReport:
    return RunReport(
        emomon_version=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        config=config_dict(cfg),
        dataset=dataset_info(ds),
        **parts,
    )


def run_training(
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
    export: bool | None = None,
    executor: FoldExecutor | str = "auto",
    ray_address: str | None = None,
    mode: str = "new",
    paper_plots: bool = False,
) -> RunReport:
    """Cross-validate every protocol of ``cfg``, export the model, write the reports.

    Parameters
    ----------
    cfg : TrainConfig
    out_dir : str or path
        The run directory (:mod:`~emomon.offline.runfolder`), created once the
        data has loaded; each fold and permutation result is saved there as it
        finishes.
    progress : bool
        Progress bars (stderr).
    export : bool, optional
        Override ``cfg.export``.
    executor : FoldExecutor or {"auto", "serial", "process", "ray"}
        Where folds and permutation runs are trained; every choice gives the same
        report (apart from :data:`~emomon.offline.runreport.VOLATILE_FIELDS`).
        ``ray``: on the Ray cluster at ``ray_address``, joined once for the run
        (:mod:`~emomon.offline.ray_executor`).
    ray_address : str, optional
        With ``executor="ray"`` only: the head node's ``host:port``, or ``auto``.
    mode : {"new", "resume", "overwrite"}
        ``new`` refuses a non-empty ``out_dir``; ``resume`` continues the run in
        it (the same config and data), rerunning only the unfinished tasks;
        ``overwrite`` replaces an earlier emomon run.
    paper_plots : bool
        Also draw the paper plots (:func:`~emomon.offline.report.write_report`).

    Returns
    -------
    RunReport
        Also written to ``out_dir/report.json``, with CSV tables and plots.

    Raises
    ------
    ConfigError
        When ``out_dir`` cannot hold this run (checked before the data loads),
        ``resume`` finds another run there, or the executor cannot start (Ray
        not installed, no cluster at ``ray_address``).
    """
    check_device(cfg.device)
    folder = RunFolder(out_dir, mode=mode)
    out = folder.path
    do_export = cfg.export if export is None else export
    # A cluster is joined before the data loads: a wrong address fails in seconds.
    with run_executor(
        executor, task_threads=cfg.task_threads, ray_address=ray_address
    ) as ex:
        ds = load_dataset(cfg, progress=progress)
        # Opened once the data loaded: a missing dataset leaves no empty run dir.
        config = {**config_dict(cfg), "export": do_export}
        folder.open(_manifest("train", config, ds))
        try:
            results = {
                protocol: evaluate_protocol(
                    ds,
                    cfg,
                    protocol,
                    progress=progress,
                    executor=ex,
                    store=folder.tasks("main", protocol),
                )
                for protocol in cfg.protocols
            }
        except BaseException:
            folder.abandon()  # no empty folder after a failure or Ctrl-C
            raise
    try:
        report = _new_report(cfg, ds, results=results)
        if do_export:
            report = report.with_export(
                export_model(ds, cfg, report, out, progress=progress)
            )
        write_report(report, out, paper_plots=paper_plots)
    except BaseException:
        folder.abandon()
        raise
    return report


def _manifest(kind: str, config: dict[str, Any], ds: Dataset) -> Manifest:
    return Manifest(
        kind=kind,
        config=config,
        data_digest=data_digest(ds),
        emomon_version=__version__,
        report_schema=SCHEMA_VERSION,
    )


def train(
    config: TrainConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    /,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    executor: FoldExecutor | str = "auto",
    ray_address: str | None = None,
    mode: str = "new",
    **overrides: Any,
) -> RunReport:
    """Train and evaluate leak-free; the library form of ``emomon train``.

    Parameters
    ----------
    config : TrainConfig, mapping, path or None
        A ``TrainConfig``, a mapping of its fields (``features``, ``synthetic``
        and ``hparams`` nested, as in a report's ``config``), or a TOML config
        file. None: the defaults (logreg, LOVO, on the synthetic dataset).
    out_dir : str or path, optional
        The run directory (default ``runs/<dataset>-<protocol>-<model>``).
    progress : bool
        Progress bars (stderr).
    executor : FoldExecutor or {"auto", "serial", "process", "ray"}
        Where folds and permutation runs are trained.
    ray_address : str, optional
        For ``executor="ray"``: the cluster's ``host:port``, or ``auto``.
    mode : {"new", "resume", "overwrite"}
        What to do with a non-empty ``out_dir`` (see :func:`run_training`).
    **overrides
        ``TrainConfig`` fields replacing the config's (``dataset="deap"``,
        ``data_dir=...``, ``protocols=("lovo", "intra")``, ``export=False``,
        ...); ``synthetic`` and ``hparams`` mappings are merged into the
        config's, ``features`` replaces its spec.

    Returns
    -------
    RunReport
        Also written to ``out_dir/report.json``; ``report.export`` names the
        ``model.onnx`` written there.

    Raises
    ------
    ConfigError
        On an invalid config or run directory.
    DatasetError
        When the data cannot be read.

    Examples
    --------
    >>> report = train(dataset="synthetic", synthetic={"n_subjects": 3},
    ...                epochs=5, out_dir="runs/try")  # doctest: +SKIP
    >>> report.headline()["valence"].balanced_accuracy  # doctest: +SKIP
    """
    cfg = make_train_config(config, **overrides)
    out = Path(out_dir) if out_dir is not None else default_run_dir(cfg)
    return run_training(
        cfg,
        out,
        progress=progress,
        executor=executor,
        ray_address=ray_address,
        mode=mode,
    )


def export_run(
    run_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> ExportInfo:
    """Export the final model of an earlier run without cross-validating again.

    Reads ``run_dir/report.json`` (from ``emomon evaluate`` or a run with
    ``export=False``), reloads the same data with the same config, trains the
    final model on all of it (as many epochs as the run's folds chose) and writes
    ``run_dir/model.onnx``, whose contract carries the run's headline metrics.
    ``report.json`` gains the ``export`` entry.

    Parameters
    ----------
    run_dir : str or path
        The run directory.
    data_dir : str or path, optional
        Where the data is now, if it moved since the run.
    progress : bool
        Show progress bars.

    Returns
    -------
    ExportInfo
        The report's new ``export`` entry.

    Raises
    ------
    ConfigError
        If the run has no usable ``report.json`` or the data no longer matches it.
    """
    out = Path(run_dir)
    path = out / "report.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{literal(path)} not found; export needs the directory of a run made "
            "with {no_export} (or by `emomon evaluate`)",
            params={"no_export": "export=False"},
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it as JSON ({exc})") from None
    report = RunReport.from_json(text, where=str(path))
    if report.ablation is not None:
        raise ConfigError(
            f"{literal(path)} is an ablation run, which has no single model to export; "
            "export a run made without {bands} or a list of {labels}",
            params=("bands", "labels"),
        )
    cfg = config_from_report(report, where=str(path))
    check_device(cfg.device)
    if data_dir is not None:
        cfg = dataclasses.replace(cfg, data_dir=os.fspath(data_dir))
    main = report.results.get(cfg.protocols[0])
    if main is None or not main.tasks:
        raise ConfigError(f"{path}: no results for protocol '{cfg.protocols[0]}'")
    ds = load_dataset(cfg, progress=progress)
    now, then = dataset_info(ds), report.dataset
    for key in ("n_subjects", "n_trials", "n_windows", "ch_names"):
        was = getattr(then, key) if then is not None else None
        if was in (None, ()):
            continue  # not recorded by the run
        is_ = getattr(now, key)
        if is_ != was:
            a, b = (list(v) if isinstance(v, tuple) else v for v in (is_, was))
            raise ConfigError(
                f"the data in {cfg.data_dir or cfg.dataset} no longer matches the "
                f"run in {out} ({key}: {a!r} now, {b!r} then); run "
                "`emomon train` again instead"
            )
    info = export_model(ds, cfg, report, out, progress=progress)
    write_report(report.with_export(info), out, plots=False)
    return info


def _band_settings(
    cfg: TrainConfig, bands: Sequence[str]
) -> list[tuple[str, TrainConfig]]:
    """All bands, then each band alone and every band but it (``"all but B"``)."""
    from emomon.datasets import reader_class

    if reader_class(cfg.dataset).precomputed:
        raise ConfigError(
            "{bands}: a band ablation computes the features again with fewer "
            f"bands, and dataset '{literal(cfg.dataset)}' ships its features "
            "precomputed; ablate on the recordings (e.g. seed), or train on one "
            "family at a time with {dataset_options} features=...",
            params=("bands", "dataset_options"),
        )
    valid = cfg.features.band_names
    bad = [b for b in bands if b not in valid]
    if bad:
        raise ConfigError(
            f"{{bands}}: unknown band '{literal(bad[0])}'; "
            f"bands: {literal(', '.join(valid))}",
            params=("bands",),
        )

    def keeping(keep: Callable[[str], bool]) -> TrainConfig:
        bands_kept = tuple(x for x in cfg.features.bands if keep(x.name))
        return dataclasses.replace(
            cfg, features=dataclasses.replace(cfg.features, bands=bands_kept)
        )

    runs = [("all", cfg)]
    for b in list(bands) or valid:
        runs.append((b, keeping(lambda name, b=b: name == b)))
        if len(valid) > 1:  # leave-one-band-out: what the others lose without it
            runs.append((f"all but {b}", keeping(lambda name, b=b: name != b)))
    return runs


def run_ablation(
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    bands: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    progress: bool = True,
    executor: FoldExecutor | str = "auto",
    ray_address: str | None = None,
    mode: str = "new",
    paper_plots: bool = False,
) -> RunReport:
    """Run the seed papers' factor experiments: bands, label methods, or both.

    Evaluates the first protocol of ``cfg`` once per setting, all in one table.

    Parameters
    ----------
    cfg : TrainConfig
    out_dir : str or path
        The run directory.
    bands : sequence of str, optional
        Run with all bands, then with each of these bands alone and with every
        band but it (empty: every band of ``cfg.features``).
    labels : sequence of str, optional
        Run with each of these label methods. With ``bands`` too, the band
        settings use ``cfg.labels`` and the other methods follow as
        ``"labels <method>"`` rows of the same table.
    progress : bool
    executor : FoldExecutor or {"auto", "serial", "process", "ray"}
    ray_address : str, optional
    mode : {"new", "resume", "overwrite"}
        As for :func:`run_training`.
    paper_plots : bool
        As for :func:`run_training`.

    Returns
    -------
    RunReport
        With the ``ablation`` rows; ``results`` holds the first setting's run.
        Also written to ``out_dir``.

    Raises
    ------
    ConfigError
        On an unknown band or label method, or when neither ``bands`` nor
        ``labels`` is given.
    """
    if bands is None and labels is None:
        raise ConfigError(
            "an ablation needs {bands} or {labels}", params=("bands", "labels")
        )
    for m in labels or ():
        if m not in LABEL_METHODS:
            raise ConfigError(
                f"{{labels}}: unknown method '{literal(m)}'; "
                f"choose from {', '.join(LABEL_METHODS)}",
                params=("labels",),
            )
    runs: list[tuple[str, TrainConfig]] = []
    kinds = []
    if bands is not None:
        kinds.append("bands")
        runs += _band_settings(cfg, bands)
    if labels is not None:
        kinds.append("labels")
        if bands is None:
            runs += [(m, dataclasses.replace(cfg, labels=m)) for m in labels]
        else:
            runs[0] = (f"all, labels {cfg.labels}", cfg)
            runs += [
                (f"labels {m}", dataclasses.replace(cfg, labels=m))
                for m in labels
                if m != cfg.labels
            ]
    if not runs:
        raise ConfigError(
            "an ablation needs at least one method in {labels}", params=("labels",)
        )
    kind = "+".join(kinds)
    check_device(cfg.device)
    folder = RunFolder(out_dir, mode=mode)
    protocol = cfg.protocols[0]
    rows: list[AblationRow] = []
    first: tuple[Dataset, ProtocolResult] | None = None
    try:
        with run_executor(
            executor, task_threads=cfg.task_threads, ray_address=ray_address
        ) as ex:
            for name, c in runs:
                ds = load_dataset(c, progress=progress)
                if first is None:
                    config = {
                        **config_dict(cfg),
                        "ablation": [kind, [n for n, _ in runs]],
                    }
                    folder.open(_manifest("ablation", config, ds))
                res = evaluate_protocol(
                    ds,
                    c,
                    protocol,
                    progress=progress,
                    executor=ex,
                    store=folder.tasks(name, protocol),
                )
                first = first or (ds, res)
                rows += [
                    AblationRow.from_task(name, task, r)
                    for task, r in res.tasks.items()
                ]
        assert first is not None  # runs is not empty
        report = _new_report(
            cfg,
            first[0],
            results={protocol: first[1]},
            ablation=Ablation(kind, protocol, tuple(rows)),
        )
        write_report(report, folder.path, paper_plots=paper_plots)
    except BaseException:
        folder.abandon()
        raise
    return report
