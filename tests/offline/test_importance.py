"""Permutation importance per channel x band: the method, its records, and the
acceptance check on synthetic data with a known effect."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emomon.datasets.synthetic import LEFT_FRONTAL, RIGHT_FRONTAL
from emomon.offline.importance import (
    DEFAULT_REPEATS,
    balanced_loss,
    band_columns,
    confusion_ba,
    importance_repeats,
    pool_importance,
    shuffled_scores,
)
from emomon.offline.metrics import balanced_accuracy, confusion_matrix
from emomon.offline.tasks import FoldResult
from emomon.offline.trainconfig import TrainConfig, make_train_config

BANDS = ("theta", "alpha", "beta", "gamma")
NAMES = tuple(f"{k}_{b}" for k in ("de", "psd") for b in BANDS)


def _linear_model(ch: int, band: int):
    """P(class 1) = sigmoid(4 x (DE + PSD of one channel x band)): nothing else."""
    cols = band_columns(NAMES, BANDS)[band]

    def predict(x: np.ndarray) -> dict[str, np.ndarray]:
        z = 4.0 * x[:, ch, cols].sum(axis=1)
        p1 = 1.0 / (1.0 + np.exp(-z))
        return {"valence": np.stack([1.0 - p1, p1], axis=1)}

    return predict


def test_band_columns_take_every_kind_of_a_band() -> None:
    cols = band_columns(NAMES, BANDS)
    assert [c.tolist() for c in cols] == [[0, 4], [1, 5], [2, 6], [3, 7]]
    # A band name with an underscore is matched whole.
    assert band_columns(("de_low_gamma", "de_gamma"), ("gamma",))[0].tolist() == [1]


def test_only_the_cell_the_model_reads_matters() -> None:
    rng = np.random.default_rng(3)
    n, n_ch = 400, 5
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, n_ch, len(NAMES)))
    x[:, 2, [1, 5]] += (2 * y - 1)[:, None] * 1.5  # channel 2, alpha: the signal
    predict = _linear_model(2, 1)
    before = x.copy()

    def run(batch_rows: int) -> dict[str, np.ndarray]:
        return shuffled_scores(
            x,
            {"valence": y},
            predict,
            columns=band_columns(NAMES, BANDS),
            n_classes={"valence": 2},
            n_repeats=3,
            rng=np.random.default_rng(0),
            batch_rows=batch_rows,
        )["valence"]

    out = run(16384)
    one = run(1)  # one shuffled copy per call: the same shuffles, the same counts
    assert (one["confusion"] == out["confusion"]).all()
    assert one["loss"] == pytest.approx(out["loss"], rel=1e-12)
    assert out["confusion"].shape == (n_ch, 4, 2, 2)
    assert out["loss"].shape == (n_ch, 4, 2)
    assert (out["confusion"].sum(axis=(-1, -2)) == 3 * n).all()
    observed = confusion_matrix(y, np.argmax(predict(x)["valence"], axis=1), 2)
    ba = confusion_ba(out["confusion"])
    # Shuffling a cell the model does not read changes no prediction at all.
    untouched = np.ones((n_ch, 4), dtype=bool)
    untouched[2, 1] = False
    assert (out["confusion"][untouched] == 3 * observed).all()
    assert ba[2, 1] < balanced_accuracy(y, np.argmax(predict(x)["valence"], 1)) - 0.3
    assert np.argmax(out["loss"].sum(-1)) == 2 * 4 + 1
    assert (x == before).all()  # the caller's array is not shuffled


def test_confusion_ba_is_the_metrics_balanced_accuracy() -> None:
    rng = np.random.default_rng(5)
    for k in (2, 3, 4):
        y = rng.integers(0, k, 300)
        y[y == k - 1] = 0  # a class absent from y: not counted, as in metrics
        pred = rng.integers(0, k, 300)
        conf = confusion_matrix(y, pred, k)
        assert confusion_ba(conf) == pytest.approx(balanced_accuracy(y, pred))
    assert np.isnan(confusion_ba(np.zeros((2, 2))))
    # Class-balanced cross-entropy: the mean of each class's mean.
    assert balanced_loss(np.array([2.0, 9.0]), np.array([2, 3])) == pytest.approx(2.0)


def _fold(conf: np.ndarray, loss: np.ndarray, **kw) -> FoldResult:
    return FoldResult(
        fold="v01",
        index=0,
        seed=0,
        n_train=10,
        n_val=0,
        n_test=2,
        test=np.array([0, 1]),
        proba={"valence": np.array([[0.2, 0.8], [0.6, 0.4]])},
        best_epoch={"valence": 0},
        importance={"valence": {"confusion": conf, "loss": loss}},
        importance_bands=("alpha",),
        importance_repeats=1,
        **kw,
    )


def test_fold_records_round_trip_and_old_records_read_without_them() -> None:
    conf = np.array([[[[1, 0], [0, 1]]]], dtype=np.int64)  # (1 ch, 1 band, 2, 2)
    loss = np.array([[[0.5, 0.25]]])
    hist = {"valence": [{"epoch": 1, "loss": 0.7, "val_loss": 0.6}]}
    f = _fold(conf, loss, history=hist)
    d = json.loads(json.dumps(f.to_dict()))
    back = FoldResult.from_dict(d)
    assert back.history == hist
    assert back.importance_bands == ("alpha",)
    assert (back.importance["valence"]["confusion"] == conf).all()
    assert back.importance["valence"]["loss"] == pytest.approx(loss)
    # A record written before the fields existed reads with them empty, and a
    # run that resumes from it draws no importance (not a partial one).
    for key in ("importance", "history"):
        d.pop(key)
    old = FoldResult.from_dict(d)
    assert old.importance == {}
    assert old.history == {}
    assert pool_importance([f, old], "valence", observed=0.5, observed_loss=0.6) is None
    assert "importance" not in old.to_dict()  # its layout is unchanged


def test_pool_importance_sums_the_folds() -> None:
    a = _fold(np.array([[[[3, 1], [0, 4]]]]), np.array([[[1.0, 2.0]]]))
    b = _fold(np.array([[[[1, 3], [2, 2]]]]), np.array([[[3.0, 2.0]]]))
    pooled = pool_importance([a, b], "valence", observed=0.9, observed_loss=0.5)
    assert pooled is not None
    # pooled counts [[4, 4], [2, 6]]: recalls 0.5 and 0.75
    assert pooled["shuffled"] == [[pytest.approx(0.625)]]
    assert pooled["drop"] == [[pytest.approx(0.275)]]
    # loss sums [4, 4] over 8 windows per class: 0.5 each
    assert pooled["loss_increase"] == [[pytest.approx(0.0)]]


def test_when_importance_runs() -> None:
    assert importance_repeats(TrainConfig()) == 0  # opt-in: it costs a run again
    assert importance_repeats(TrainConfig(importance=DEFAULT_REPEATS)) == 5
    assert importance_repeats(TrainConfig(model="mlp")) == 0
    assert importance_repeats(TrainConfig(model="mlp", importance=3)) == 3
    assert importance_repeats(TrainConfig(importance=0)) == 0
    # Raw-EEG models have no band features to shuffle.
    assert importance_repeats(TrainConfig(model="cnn_transformer", importance=3)) == 0
    with pytest.raises(Exception, match="importance"):
        make_train_config(importance=-1)


# ---------------------------------------------------------------- acceptance

#: Where the synthetic generator's emotion effect acts (emomon/datasets/
#: synthetic.py, _band_log_gain). Valence: alpha at the frontal sites (opposite
#: signs), beta and gamma at T7/T8. Arousal: alpha, beta and gamma everywhere.
VALENCE_CHANNELS = {*LEFT_FRONTAL, *RIGHT_FRONTAL, "T7", "T8"}
EFFECT_BANDS = {"alpha", "beta", "gamma"}
#: k: fewer cells than the smallest effect set (valence: 10 channels x 3 bands
#: counted loosely), so a map that ranks the effect first passes; five random
#: cells of 128 all landing there has probability below (30/128)^5 < 0.001.
TOP_K = 5


@pytest.mark.slow
def test_importance_map_ranks_the_generators_effect_first(effect_run) -> None:
    report, _ = effect_run
    tasks = report.results["lovo"].tasks
    val = tasks["valence"].figures.importance
    aro = tasks["arousal"].figures.importance
    assert val.n_repeats == 5
    assert val.observed == tasks["valence"].metrics.balanced_accuracy
    # The values drawn are the drops the map ranks.
    top = val.top(TOP_K)
    assert all(ch in VALENCE_CHANNELS and b in EFFECT_BANDS for ch, b in top), top
    # Its two largest cells (T7/T8 gamma, 0.55 log-amplitude per unit of felt
    # valence) are among the top three, as channel and band together.
    assert {("T7", "gamma"), ("T8", "gamma")} <= set(val.top(3)), val.top(3)
    top = aro.top(TOP_K)
    assert all(b in EFFECT_BANDS for _, b in top), top  # theta carries nothing


@pytest.mark.slow
def test_feature_maps_show_the_generators_effect(effect_run) -> None:
    report, _ = effect_run
    tasks = report.results["lovo"].tasks
    c = tasks["valence"].figures.contrast
    assert c.kind == "de"
    assert c.rows[0].label == "high - low"
    diff = np.array(c.rows[0].diff, dtype=float)
    at = {ch: i for i, ch in enumerate(c.ch_names)}
    alpha, gamma = c.bands.index("alpha"), c.bands.index("gamma")
    # Frontal alpha asymmetry in the generator's direction: right up, left down.
    assert all(diff[at[ch], alpha] > 0.1 for ch in RIGHT_FRONTAL)
    assert all(diff[at[ch], alpha] < -0.1 for ch in LEFT_FRONTAL)
    assert diff[at["T7"], gamma] > 0.2
    assert diff[at["T8"], gamma] > 0.2
    a = np.array(tasks["arousal"].figures.contrast.rows[0].diff, dtype=float)
    assert (a[:, alpha] < 0).all()
    assert (a[:, gamma] > 0).all()


def test_the_importance_flag_reaches_the_config() -> None:
    from emomon.cli import build_parser
    from emomon.cli.train import _train_config

    parser = build_parser()
    for argv, want in (
        ([], None),
        (["--importance", "0"], 0),
        (["--importance", "3"], 3),
    ):
        args = parser.parse_args(["train", "--model", "mlp", *argv])
        assert _train_config(args).importance == want
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--importance", "-1"])
