"""TrainConfig assembly: defaults < base (TOML, TrainConfig, report config) <
overrides, in one function."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from emomon.config import FeatureSpec
from emomon.errors import ConfigError
from emomon.offline.runreport import RunReport
from emomon.offline.trainconfig import (
    TrainConfig,
    config_dict,
    config_from_report,
    load_train_config,
    make_train_config,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_and_overrides() -> None:
    assert make_train_config() == TrainConfig()
    cfg = make_train_config(epochs=3, protocols=["lovo", "intra"])
    assert cfg.epochs == 3
    assert cfg.protocols == ("lovo", "intra")
    with pytest.raises(ConfigError, match=r"train\.epochs: expected an integer"):
        make_train_config(epochs="3")
    with pytest.raises(ConfigError, match=r"unknown key train\.epoch\b"):
        make_train_config(epoch=3)


def test_toml_then_overrides_with_nested_tables_merged() -> None:
    cfg = make_train_config(
        CONFIGS / "synthetic_null.toml",
        epochs=2,
        synthetic={"n_subjects": 3},
    )
    assert cfg.epochs == 2  # override
    assert cfg.batch_size == 256  # TOML
    assert cfg.protocols == ("lovo", "intra")  # TOML
    assert cfg.synthetic["n_subjects"] == 3  # merged over the TOML's 8
    assert cfg.synthetic["n_videos"] == 20
    assert cfg.synthetic["emotion_effect"] == 0.0
    assert cfg.patience == 3  # TOML
    assert cfg.lr == TrainConfig().lr  # default


def test_none_override_sets_none_but_load_train_config_ignores_it() -> None:
    path = CONFIGS / "synthetic_null.toml"
    assert make_train_config(path, cache_dir=None).cache_dir is None  # --no-cache
    assert load_train_config(path, cache_dir=None).cache_dir == ".emomon_cache"
    assert load_train_config(path, epochs=4).epochs == 4


def test_paths_are_accepted_for_directories(tmp_path: Path) -> None:
    cfg = make_train_config(dataset="deap", data_dir=tmp_path, cache_dir=tmp_path)
    assert cfg.data_dir == str(tmp_path)
    assert cfg.cache_dir == str(tmp_path)


def test_a_train_config_base_keeps_its_nested_tables() -> None:
    base = TrainConfig(
        model="mlp",
        hparams={"dropout": 0.3},
        synthetic={"n_videos": 5},
        features=FeatureSpec(kinds=("de",)),
    )
    cfg = make_train_config(base, hparams={"hidden": [8]}, seed=3)
    assert cfg.hparams == {"dropout": 0.3, "hidden": [8]}
    assert cfg.synthetic == {"n_videos": 5}
    assert cfg.features.kinds == ("de",)
    assert cfg.seed == 3
    assert make_train_config(base) == base
    with pytest.raises(ConfigError, match="unknown hyper-parameter model.depth"):
        make_train_config(base, hparams={"depth": 2})


def test_dataset_table_holds_reader_options(tmp_path: Path) -> None:
    """``[dataset]`` reaches the reader as keyword options, merged under -o ones."""
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[train]\ndataset = "seed-features"\n\n'
        '[dataset]\nfeatures = "de_LDS"\nextra = 2\n'
    )
    cfg = make_train_config(toml, dataset_options={"extra": 3})
    assert cfg.dataset_options == {"features": "de_LDS", "extra": 3}
    assert cfg.targets == ()  # the dataset's own, resolved when it is read
    toml.write_text('[train]\nfeatures = "de"\n')
    with pytest.raises(ConfigError, match=r"put features in its own \[features\]"):
        make_train_config(toml)
    toml.write_text("[datasets]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"valid: \[train\], .*\[dataset\]"):
        make_train_config(toml)


def test_report_config_round_trips() -> None:
    cfg = TrainConfig(
        protocols=("lovo", "intra"),
        threshold=4.5,
        subjects=("s01", "s02"),
        dataset_options={"features": "de_LDS,psd_LDS"},
        synthetic={"n_subjects": 2},
        features=FeatureSpec(kinds=("de",), layout="grid"),
    )
    report = RunReport(config=config_dict(cfg))
    back = config_from_report(RunReport.from_json(report.to_json()), where="r.json")
    assert back == cfg
    assert make_train_config(config_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="r.json: no 'config' object"):
        config_from_report(RunReport(), where="r.json")
    bad = RunReport(config={**config_dict(cfg), "epochs": "x"})
    with pytest.raises(ConfigError, match=r"r\.json config\.epochs"):
        config_from_report(bad, where="r.json")


def test_features_override_replaces_the_spec() -> None:
    path = CONFIGS / "synthetic_null.toml"
    cfg = make_train_config(path, features={"kinds": ["psd"]})
    assert cfg.features.kinds == ("psd",)
    spec = FeatureSpec(window_s=1.0)
    assert dataclasses.replace(TrainConfig(), features=spec) == make_train_config(
        features=spec
    )
