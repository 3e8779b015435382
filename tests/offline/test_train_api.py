"""train() for the Python API, and errors that name library parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emomon.contract import ModelContract
from emomon.datasets import get_reader
from emomon.errors import ConfigError, DatasetError, EmomonError
from emomon.offline.features import load_features
from emomon.offline.labels import make_labels
from emomon.offline.runreport import RunReport
from emomon.offline.train import export_run, run_ablation, train
from emomon.offline.trainconfig import TrainConfig

SMALL = {
    "dataset": "synthetic",
    "synthetic": {"n_subjects": 2, "n_videos": 4, "trial_s": 10.0},
    "epochs": 2,
    "n_boot": 0,
    "permutations": 0,
    "cache_dir": None,
}


@pytest.mark.slow
def test_train_returns_the_report_it_writes_and_exports(tmp_path: Path) -> None:
    report = train(out_dir=tmp_path / "run", hparams={}, **SMALL)
    assert isinstance(report, RunReport)
    text = (tmp_path / "run" / "report.json").read_text(encoding="utf-8")
    assert text == report.to_json() + "\n"
    assert list(report.results) == ["lovo"]
    assert report.config is not None
    assert report.config["epochs"] == 2
    assert report.dataset is not None
    assert report.dataset.n_subjects == 2
    assert report.export is not None
    contract = ModelContract.from_onnx(tmp_path / "run" / report.export.path)
    # The contract carries the report's headline, undefined numbers as null.
    head = {k: h.to_dict() for k, h in report.headline().items()}
    assert contract.info["metrics"] == json.loads(json.dumps(head))
    assert set(head) == {"valence", "arousal"}
    assert head["valence"]["p_value"] is None


def test_train_takes_a_config_and_overrides(tmp_path: Path) -> None:
    cfg = TrainConfig(**SMALL, protocols=("lovo", "intra"))
    with pytest.raises(ConfigError, match="unknown protocol 'lovoo'"):
        train(cfg, out_dir=tmp_path, protocols=["lovoo"])
    with pytest.raises(ConfigError, match=r"train\.epochs must be >= 1"):
        train(dict(SMALL), out_dir=tmp_path, epochs=0)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def _render(err: EmomonError, **flags: str) -> str:
    return err.render(flags)


def test_errors_name_library_parameters(tmp_path: Path) -> None:
    """str(error) names the parameter; render() shows the caller's name for it."""
    with pytest.raises(DatasetError) as ei:
        get_reader("seed")
    assert str(ei.value).startswith("data_dir is required for dataset 'seed'")
    assert _render(ei.value, data_dir="--data-dir").startswith("--data-dir is")

    (tmp_path / "cfile").write_text("x")
    reader = get_reader("synthetic", None, n_subjects=1, n_videos=1, trial_s=6.0)
    with pytest.raises(ConfigError) as ei:
        load_features(reader, spec=TrainConfig().features, cache_dir=tmp_path / "cfile")
    assert str(ei.value).endswith("pass another cache_dir or cache_dir=None")
    assert _render(ei.value, cache_dir="--cache-dir", no_cache="--no-cache").endswith(
        "pass another --cache-dir or --no-cache"
    )

    with pytest.raises(ConfigError) as ei:
        make_labels(np.array([3.0, 7.0]), method="fixed", threshold=12)
    assert "choose threshold within [1, 9)" in str(ei.value)
    assert "choose --threshold within" in _render(ei.value, threshold="--threshold")

    with pytest.raises(ConfigError) as ei:
        train(out_dir=tmp_path / "cfile" / "run", **SMALL)
    assert str(ei.value).endswith("is a file, not a directory; pass another out_dir")

    cfg = TrainConfig(**SMALL)
    with pytest.raises(ConfigError) as ei:
        run_ablation(cfg, tmp_path / "abl", bands=["theta", "tau"])
    assert str(ei.value).startswith("bands: unknown band 'tau'; bands: theta,")
    with pytest.raises(ConfigError, match="needs bands or labels"):
        run_ablation(cfg, tmp_path / "abl")
    with pytest.raises(ConfigError) as ei:
        run_ablation(cfg, tmp_path / "abl", labels=["fixed", "{odd}"])
    assert str(ei.value).startswith("labels: unknown method '{odd}'")
    assert not (tmp_path / "abl").exists()

    with pytest.raises(ConfigError) as ei:
        export_run(tmp_path / "{no run}")
    assert "made with export=False" in str(ei.value)
    assert "{no run}" in str(ei.value)
    assert "made with --no-export" in _render(ei.value, no_export="--no-export")
