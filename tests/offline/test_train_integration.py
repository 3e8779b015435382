"""Acceptance of the offline half on synthetic data (small sizes, logreg)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from emomon.offline.scoring import verdict
from emomon.offline.train import load_train_config, run_training
from emomon.offline.trainconfig import DEFAULT_PERMUTATIONS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Seeds of these statistical tests: the generator seed (1) and the run seed (0,
# the default, which seeds the folds, the permutations and the bootstrap) are
# the configs' values as written in November, before issue 15 and before any
# of these tests' numbers were seen; none was picked afterwards. The tests with
# the default 199 permutations run 6 subjects x 12 videos instead of the
# configs' 8 x 20, a size fixed for the suite's time, also before the results.
SMALLER = {"n_subjects": 6, "n_videos": 12}
# Worker processes: the 199 reruns are most of each run, and CI has 2 cores
# (auto keeps runs this small in one process).
EXECUTOR = "process"


def _run(cfg, out):
    return run_training(cfg, out, progress=False, export=False, executor=EXECUTOR)


def _smaller(cfg):
    return dataclasses.replace(cfg, synthetic={**cfg.synthetic, **SMALLER})


def test_intra_is_high_while_lovo_is_at_chance_without_emotion_effect(tmp_path):
    cfg = load_train_config(CONFIGS / "synthetic_null.toml", cache_dir=str(tmp_path))
    assert cfg.synthetic["emotion_effect"] == 0.0
    assert cfg.synthetic["content_effect"] > 0
    assert (cfg.synthetic["n_subjects"], cfg.synthetic["n_videos"]) == (8, 20)
    # The leaky reference needs no permutation test here; LOVO gets the
    # default test (199 reruns, labels permuted by video).
    lovo = run_training(
        dataclasses.replace(_smaller(cfg), protocols=("lovo",)),
        tmp_path / "lovo",
        progress=False,
        export=False,
        executor=EXECUTOR,
    ).to_dict()
    intra = run_training(
        dataclasses.replace(cfg, protocols=("intra",), permutations=0),
        tmp_path / "intra",
        progress=False,
        export=False,
    ).to_dict()
    for task in ("valence", "arousal"):
        r_lovo = lovo["results"]["lovo"]["tasks"][task]
        r_intra = intra["results"]["intra"]["tasks"][task]
        assert r_intra["metrics"]["balanced_accuracy"] >= 0.85, task
        assert intra["results"]["intra"]["leaky"] is True
        # At chance means inside its null, not near 0.5: with 12 videos the
        # video-level null of lovo spreads far (0.36 is within it here).
        null = r_lovo["permutation"]["null"]
        assert min(null) <= r_lovo["metrics"]["balanced_accuracy"] <= max(null), task
        perm = r_lovo["permutation"]
        assert perm["n"] == DEFAULT_PERMUTATIONS == len(perm["null"])
        assert isinstance(perm["p_value"], float)
        assert verdict(perm["p_value"], perm["n"], alpha=0.01) == "at chance", task
        assert r_lovo["above_chance"] is False
        assert r_lovo["ci95"]["resamples"] == "video"
        # The majority-class null with video-level labels scores at most 50%
        # (far below it when the videos' labels are balanced).
        assert r_lovo["majority_baseline"]["accuracy"] <= 0.5


def test_both_protocols_side_by_side_in_one_report(tmp_path):
    cfg = load_train_config(CONFIGS / "synthetic_null.toml", cache_dir=str(tmp_path))
    small = dataclasses.replace(
        cfg,
        permutations=0,
        n_boot=50,
        synthetic={**cfg.synthetic, "n_subjects": 3, "n_videos": 6},
    )
    report = run_training(small, tmp_path / "run", progress=False, export=False)
    report = report.to_dict()
    assert list(report["results"]) == ["lovo", "intra"]
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["results"]["intra"]["leaky"] is True
    assert saved["results"]["lovo"]["leaky"] is False
    assert (tmp_path / "run" / "protocols.png").stat().st_size > 10_000


def test_lovo_is_above_chance_with_a_clear_emotion_effect(tmp_path):
    cfg = load_train_config(CONFIGS / "synthetic_effect.toml", cache_dir=str(tmp_path))
    assert cfg.synthetic["emotion_effect"] > 0
    report = _run(_smaller(cfg), tmp_path / "run")
    report = report.to_dict()
    for task in ("valence", "arousal"):
        r = report["results"]["lovo"]["tasks"][task]
        assert r["metrics"]["balanced_accuracy"] >= 0.60, task
        assert r["permutation"]["n"] == DEFAULT_PERMUTATIONS
        assert r["permutation"]["p_value"] < 0.05, task
        assert r["above_chance"] is True
        assert r["verdict"] == "above chance"
        lo, hi = r["ci95"]["balanced_accuracy"]
        assert r["ci95"]["resamples"] == "video"
        assert lo <= r["metrics"]["balanced_accuracy"] <= hi


def test_the_shuffled_label_control_is_at_chance_by_its_permutation_test(tmp_path):
    """The label-reliability control (``--labels random``) on the data with an
    effect: whatever it scores, its own permutation test does not call it."""
    cfg = load_train_config(
        CONFIGS / "synthetic_effect.toml", cache_dir=str(tmp_path), labels="random"
    )
    report = _run(_smaller(cfg), tmp_path / "run")
    for task, r in report.results["lovo"].tasks.items():
        assert r.permutation is not None
        assert r.permutation.n == DEFAULT_PERMUTATIONS
        assert r.verdict != "above chance", (task, r.metrics.balanced_accuracy)


def test_protocols_that_share_videos_are_marked_everywhere(tmp_path, monkeypatch):
    from emomon.offline import plots
    from emomon.offline.report import format_summary

    shown: dict[str, list[str]] = {}

    def keep_texts(fig, path, dpi):  # every text the figure draws, then save
        texts = [fig._suptitle.get_text()] if fig._suptitle else []
        texts += [t.get_text() for ax in fig.axes for t in ax.texts]
        texts += [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
        texts += [
            t.get_text()
            for ax in fig.axes
            if ax.get_legend()
            for t in ax.get_legend().get_texts()
        ]
        shown[Path(path).name] = texts
        return None  # the texts are what this test reads; rendering: test_report

    monkeypatch.setattr(plots, "_save", keep_texts)
    cfg = load_train_config(CONFIGS / "synthetic_null.toml", cache_dir=str(tmp_path))
    small = dataclasses.replace(
        cfg,
        protocols=("lovo", "loso", "intra"),
        permutations=0,
        importance=1,
        n_boot=20,
        synthetic={**cfg.synthetic, "n_subjects": 3, "n_videos": 6},
    )
    run_training(
        small, tmp_path / "run", progress=False, export=False, paper_plots=True
    )
    saved = json.loads((tmp_path / "run" / "report.json").read_text())["results"]
    assert saved["loso"]["content_dependent"] is True  # measured on the splits
    assert saved["loso"]["holds_out"].startswith("subjects")
    assert saved["loso"]["exchangeable"] == "subject"
    assert saved["intra"]["content_dependent"] is True
    assert saved["lovo"]["content_dependent"] is False
    assert saved["lovo"]["holds_out"].startswith("videos")
    summary = format_summary(json.loads((tmp_path / "run" / "report.json").read_text()))
    assert "loso (SHARES VIDEOS)" in summary
    assert "intra (LEAKY)" in summary
    assert "lovo (" not in summary
    assert "SHARES VIDEOS (test videos seen in training)" in summary
    # every plot of a marked protocol says so; lovo's do not
    for name, texts in shown.items():
        text = "\n".join(texts)
        if name.endswith("_loso.png"):
            assert "SHARES VIDEOS" in text, name
        elif name.endswith("_lovo.png"):
            assert "SHARES VIDEOS" not in text, name
            assert "LEAKY" not in text, name
    assert {"per_video_loso.png", "confusion_loso.png", "protocols.png"} <= set(shown)
    # the paper plots too (emomon.offline.paperplots)
    assert {
        "roc_loso.png",
        "per_subject_loso.png",
        "importance_topomap_loso.png",
    } <= set(shown)
    assert "SHARES VIDEOS" in "\n".join(shown["protocols.png"])
