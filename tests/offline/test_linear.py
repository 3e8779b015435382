"""The full-batch logreg fit: the optimum, scikit-learn's answer, the exported
model's probabilities, threads, and the same result from every executor."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.linear_model import LogisticRegression

from emomon.errors import ConfigError
from emomon.models import build_model, model_full_batch
from emomon.offline import linear
from emomon.offline.crossval import protocol_splits
from emomon.offline.dataset import Dataset, load_dataset
from emomon.offline.executors import ProcessExecutor, SerialExecutor
from emomon.offline.export import export_onnx
from emomon.offline.fit import class_weights, fit_model, predict_proba
from emomon.offline.linear import ABSENT_BIAS, blas_threads, fit_multinomial
from emomon.offline.tasks import fold_tasks, run_fold
from emomon.offline.trainconfig import TrainConfig

L2 = 0.05


def _problem(n: int, d: int, k: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping Gaussian classes, unbalanced (so class weights matter)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=np.linspace(1, 2, k) / np.linspace(1, 2, k).sum())
    centres = rng.standard_normal((k, d))
    return centres[y] + 1.5 * rng.standard_normal((n, d)), y


def _fit(x, y, k, l2=L2, **kw):
    return fit_multinomial(
        x,
        {"t": y},
        n_classes={"t": k},
        class_weights={"t": class_weights(y, k)},
        l2=l2,
        **kw,
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sklearn(x, y, c):
    clf = LogisticRegression(
        C=c, class_weight="balanced", solver="lbfgs", tol=1e-10, max_iter=10_000
    )
    return clf.fit(x, y)


def test_reaches_the_optimum_and_matches_sklearn_binary():
    x, y = _problem(600, 12, 2, seed=1)
    fit = _fit(x, y, 2)  # the default tolerance, as in training
    assert fit.grad_norm < 1e-6
    assert 0 < fit.n_iter < 500
    # Two classes: the binomial objective with C = 2 / (n * l2) (module doc).
    ref = _sklearn(x, y, 2.0 / (len(y) * L2))
    np.testing.assert_allclose(
        _softmax(x @ fit.weight["t"].T + fit.bias["t"]),
        ref.predict_proba(x),
        atol=1e-4,
    )
    # Solved tighter, the same optimum to solver precision.
    tight = _fit(x, y, 2, gtol=1e-10)
    w, b = tight.weight["t"], tight.bias["t"]
    np.testing.assert_allclose(w.sum(axis=0), 0.0, atol=1e-6)  # W[1] = -W[0]
    np.testing.assert_allclose(w[1] - w[0], ref.coef_[0], atol=1e-6)
    np.testing.assert_allclose(b[1] - b[0], ref.intercept_[0], atol=1e-6)
    np.testing.assert_allclose(_softmax(x @ w.T + b), ref.predict_proba(x), atol=1e-6)


def test_matches_sklearn_multinomial_with_three_classes():
    x, y = _problem(900, 10, 3, seed=2)
    fit = _fit(x, y, 3)
    assert fit.grad_norm < 1e-6
    ref = _sklearn(x, y, 1.0 / (len(y) * L2))
    np.testing.assert_allclose(
        _softmax(x @ fit.weight["t"].T + fit.bias["t"]),
        ref.predict_proba(x),
        atol=1e-4,
    )
    tight = _fit(x, y, 3, gtol=1e-10)
    w, b = tight.weight["t"], tight.bias["t"]
    np.testing.assert_allclose(w, ref.coef_, atol=1e-6)
    # The biases are free up to a common shift: compare them centred.
    np.testing.assert_allclose(
        b - b.mean(), ref.intercept_ - ref.intercept_.mean(), atol=1e-6
    )
    np.testing.assert_allclose(_softmax(x @ w.T + b), ref.predict_proba(x), atol=1e-6)


def test_a_joint_fit_equals_separate_fits_and_weighs_each_task():
    x, ya = _problem(500, 8, 2, seed=3)
    _, yb = _problem(500, 8, 3, seed=4)
    joint = fit_multinomial(
        x,
        {"a": ya, "b": yb},
        n_classes={"a": 2, "b": 3},
        class_weights={"a": class_weights(ya, 2), "b": class_weights(yb, 3)},
        l2=L2,
        loss_weights={"a": 1.0, "b": 2.0},
    )
    alone_a = _fit(x, ya, 2)
    # Loss weight 2 on the data term is a penalty of l2 / 2.
    alone_b = _fit(x, yb, 3, l2=L2 / 2)
    np.testing.assert_allclose(joint.weight["a"], alone_a.weight["t"], atol=1e-5)
    np.testing.assert_allclose(joint.weight["b"], alone_b.weight["t"], atol=1e-5)


def test_absent_and_single_classes_get_no_probability():
    x, y = _problem(300, 5, 2, seed=5)
    y3 = np.where(y == 1, 2, 0)  # class 1 of 3 never seen
    fit = _fit(x, y3, 3)
    assert fit.bias["t"][1] == ABSENT_BIAS
    assert np.all(fit.weight["t"][1] == 0)
    p = _softmax(x @ fit.weight["t"].T + fit.bias["t"])
    assert p[:, 1].max() < 1e-12
    only = _fit(x, np.zeros_like(y), 2)
    assert only.n_iter == 0
    assert np.all(only.weight["t"] == 0)
    assert _softmax(only.bias["t"][None])[0, 0] == pytest.approx(1.0)


def test_logreg_refuses_a_penalty_that_is_not_positive():
    for bad in (0.0, -1.0, float("inf"), True, "1"):
        with pytest.raises(ConfigError, match="l2 must be a finite number > 0"):
            build_model("logreg", input_shape=(4,), tasks={"v": 2}, l2=bad)
    assert model_full_batch("logreg")
    assert not model_full_batch("mlp")


def test_the_exported_model_gives_the_fitted_probabilities(tmp_path):
    x, ya = _problem(400, 16, 2, seed=6)
    _, yb = _problem(400, 16, 3, seed=7)
    x = x.astype(np.float32)
    cfg = TrainConfig(model="logreg", hparams={"l2": L2}, targets=("valence",))
    tasks = {"valence": 2, "class": 3}
    res = fit_model(cfg, tasks=tasks, x_train=x, y_train={"valence": ya, "class": yb})
    assert res.best_epoch == 0
    ref = _sklearn(x.astype(np.float64), ya, 2.0 / (len(ya) * L2)).predict_proba(x)
    torch_p = predict_proba(res.model, x)
    np.testing.assert_allclose(torch_p["valence"], ref, atol=1e-5)
    path = tmp_path / "m.onnx"
    export_onnx(
        res.model,
        input_shape=(16,),
        input_name="features",
        path=path,
        exporter="torchscript-first",
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_p = dict(
        zip(["valence", "class"], sess.run(None, {"features": x}), strict=True)
    )
    for task in tasks:
        np.testing.assert_allclose(onnx_p[task], torch_p[task], atol=1e-5)
    np.testing.assert_allclose(onnx_p["valence"], ref, atol=1e-5)


def test_the_fit_runs_with_the_task_thread_count(monkeypatch):
    from threadpoolctl import threadpool_info

    seen: list[set[int]] = []
    inner = linear._objective

    def spy(*args):
        if not seen:
            seen.append(
                {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
            )
        return inner(*args)

    def blas() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    monkeypatch.setattr(linear, "_objective", spy)
    x, y = _problem(200, 4, 2, seed=8)
    before = blas()
    for n in (1, 2):
        seen.clear()
        cfg = TrainConfig(model="logreg", task_threads=n)
        fit_model(cfg, tasks={"valence": 2}, x_train=x, y_train={"valence": y})
        assert seen == [{n}]
        assert blas() == before  # restored afterwards
    with blas_threads(1):
        assert set(blas()) == {1}


CFG = TrainConfig(
    dataset="synthetic",
    synthetic={"n_subjects": 3, "n_videos": 4, "trial_s": 10.0},
    model="logreg",
    permutations=0,
    n_boot=20,
    n_jobs=2,
)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    cache = tmp_path_factory.mktemp("cache")
    return load_dataset(dataclasses.replace(CFG, cache_dir=str(cache)), progress=False)


@pytest.mark.integration
def test_logreg_folds_are_identical_in_this_process_and_in_workers(ds):
    splits, _ = protocol_splits(ds, CFG, "lovo")
    assert all(s.val.size for s in splits)  # the inner validation is trained on
    tasks = fold_tasks(splits, CFG)
    with SerialExecutor() as ex:
        serial = list(ex.map(run_fold, ex.share(ds), tasks))
    with ProcessExecutor(2) as ex:
        workers = list(ex.map(run_fold, ex.share(ds), tasks))
    assert len({r.worker for r in workers} - {r.worker for r in serial}) >= 1
    for a, b, split in zip(serial, workers, splits, strict=True):
        assert a.best_epoch == b.best_epoch == {"valence": 0, "arousal": 0}
        assert a.n_train == split.train.size + split.val.size
        assert a.n_val == 0
        for task in ("valence", "arousal"):
            np.testing.assert_array_equal(a.proba[task], b.proba[task])
