"""Contract of every model in ``MODELS``: shapes, training, ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from emomon.errors import ConfigError  # noqa: E402
from emomon.models import (  # noqa: E402
    MODELS,
    EmotionModel,
    build_model,
    model_hparams,
    model_input_kind,
    multitask_loss,
)
from emomon.offline.export import export_onnx, read_onnx_metadata  # noqa: E402

#: Small per-sample input shapes per input kind (without the batch axis).
SHAPES: dict[str, tuple[int, ...]] = {
    "flat": (256,),
    "grid": (8, 8, 9),
    "eeg": (4, 256),
}
VA = {"valence": 2, "arousal": 2}
# eegpt needs a user's checkpoint and 4 s at 256 Hz: tests/models/test_eegpt.py
# runs the same contract (shapes, frozen training, export parity) on a tiny one.
ALL = sorted(m for m in MODELS if m != "eegpt")
# mtcnn is multi-task only; every other model also runs a single 3-class task.
TASK_SETS = [(name, VA) for name in ALL] + [
    (name, {"class": 3}) for name in ALL if name != "mtcnn"
]


def _build(name: str, tasks: dict[str, int] = VA, **hparams: object) -> EmotionModel:
    shape = SHAPES[model_input_kind(name)]
    return build_model(name, input_shape=shape, tasks=tasks, **hparams)


def _input_name(name: str) -> str:
    return "eeg" if model_input_kind(name) == "eeg" else "features"


# --------------------------------------------------------------------------- registry


def test_registry_names_and_kinds() -> None:
    assert set(MODELS) == {
        "logreg",
        "mlp",
        "cnn2d",
        "mtcnn",
        "cnn_transformer",
        "eegpt",
    }
    for name, cls in MODELS.items():
        assert cls.name == name
        assert model_input_kind(name) == cls.input_kind
        assert cls.input_kind in ("flat", "grid", "eeg")


def test_unknown_model_is_config_error_listing_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        build_model("resnet", input_shape=(256,), tasks=VA)
    for name in MODELS:
        assert name in str(err.value)
    with pytest.raises(ConfigError, match="resnet"):
        model_input_kind("resnet")


def test_unknown_hparam_is_config_error() -> None:
    with pytest.raises(ConfigError, match="hiden"):
        _build("mlp", hiden=(8,))


@pytest.mark.parametrize(
    ("name", "shape", "tasks"),
    [
        ("cnn2d", (256,), VA),  # flat features into a grid model
        ("logreg", (8, 8, 9), VA),  # grid into a flat model
        ("cnn_transformer", (4, 4), VA),  # window too short for the stem
        ("mlp", (256,), {}),
        ("mlp", (256,), {"valence": 1}),
        ("mlp", (256,), {"bad name": 2}),
        ("mtcnn", (8, 8, 9), {"valence": 2}),  # multi-task model, one task
    ],
)
def test_invalid_shapes_and_tasks_are_config_errors(
    name: str, shape: tuple[int, ...], tasks: dict[str, int]
) -> None:
    with pytest.raises(ConfigError):
        build_model(name, input_shape=shape, tasks=tasks)


def test_loss_weights_default_and_configurable() -> None:
    for name in ALL:
        assert _build(name).loss_weights == {"valence": 1.0, "arousal": 1.0}
    model = _build("mtcnn", loss_weights={"arousal": 0.5})
    assert model.loss_weights == {"valence": 1.0, "arousal": 0.5}
    with pytest.raises(ConfigError, match="dominance"):
        _build("mtcnn", loss_weights={"dominance": 1.0})
    with pytest.raises(ConfigError):
        _build("mtcnn", loss_weights={"valence": -1.0})


def test_multitask_loss_is_weighted_sum_of_cross_entropies() -> None:
    logits = {"valence": torch.randn(6, 2), "arousal": torch.randn(6, 2)}
    targets = {t: torch.randint(0, 2, (6,)) for t in logits}
    ce = {t: torch.nn.functional.cross_entropy(logits[t], targets[t]) for t in logits}
    loss = multitask_loss(logits, targets, weights={"valence": 0.3, "arousal": 2.0})
    torch.testing.assert_close(loss, 0.3 * ce["valence"] + 2.0 * ce["arousal"])


def test_model_hparams_lists_defaults() -> None:
    assert model_hparams("cnn2d")["channels"] == (64, 128, 256)
    assert model_hparams("cnn_transformer")["d_model"] == 64
    assert "loss_weights" in model_hparams("logreg")


# ---------------------------------------------------------------------- every model


@pytest.mark.parametrize(("name", "tasks"), TASK_SETS)
def test_forward_returns_logits_per_task_in_order(
    name: str, tasks: dict[str, int]
) -> None:
    model = _build(name, tasks)
    for mode in ("train", "eval"):
        model.train(mode == "train")
        for batch in (1, 5):
            out = model(torch.randn(batch, *model.input_shape))
            assert list(out) == list(tasks)
            for task, n_classes in tasks.items():
                assert out[task].shape == (batch, n_classes)
                assert out[task].dtype == torch.float32
                assert torch.isfinite(out[task]).all()


@pytest.mark.parametrize("name", ALL)
def test_training_steps_reduce_loss_on_a_fixed_batch(name: str) -> None:
    model = _build(name)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(16, *model.input_shape, generator=gen)
    y = {t: torch.randint(0, 2, (16,), generator=gen) for t in model.tasks}

    def fit_loss() -> float:
        # Batch statistics and no dropout: BatchNorm's running averages lag far
        # behind after a dozen steps, so eval mode would not show the fit.
        model.train()
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.eval()
        with torch.no_grad():
            return float(multitask_loss(model(x), y, weights=model.loss_weights))

    before = fit_loss()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(12):
        model.train()
        opt.zero_grad()
        loss = multitask_loss(model(x), y, weights=model.loss_weights)
        loss.backward()
        if step == 0:  # every parameter takes part in the forward pass
            dead = [n for n, p in model.named_parameters() if p.grad is None]
            assert not dead, dead
        opt.step()
    after = fit_loss()
    assert np.isfinite(after)
    assert after < 0.5 * before, (before, after)


@pytest.mark.parametrize("exporter", ["auto", "torchscript"])
@pytest.mark.parametrize("name", ALL)
def test_onnx_export_parity_probabilities_and_metadata(
    name: str, exporter: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = _build(name)
    model.train()
    path = tmp_path / "model.onnx"
    contract = json.dumps({"schema": 1, "model": name, "note": "µV, ± ünïcode"})
    input_name = _input_name(name)

    diff = export_onnx(
        model,
        input_shape=model.input_shape,
        input_name=input_name,
        path=path,
        metadata={"emomon": contract},
        n_check=8,
        exporter=exporter,  # type: ignore[arg-type]
    )
    assert 0.0 <= diff < 1e-4
    # "auto" exports with dynamo: no fallback to the TorchScript exporter.
    assert not [r for r in caplog.records if "export failed" in r.getMessage()]
    assert model.training  # mode restored after the eval-mode export
    assert read_onnx_metadata(path)["emomon"] == contract
    assert json.loads(read_onnx_metadata(path)["emomon"])["model"] == name
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == [input_name]
    assert [o.name for o in sess.get_outputs()] == list(model.tasks)
    model.eval()
    for batch in (1, 3):  # a batch size not used by the export's own check
        x = np.random.default_rng(batch).standard_normal((batch, *model.input_shape))
        x = x.astype(np.float32)
        probs = sess.run(None, {input_name: x})
        with torch.no_grad():
            logits = model(torch.from_numpy(x))
        for task, p in zip(model.tasks, probs, strict=True):
            assert p.shape == (batch, model.tasks[task])
            np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
            assert (p >= 0).all()
            expected = torch.softmax(logits[task], dim=-1).numpy()
            np.testing.assert_allclose(p, expected, atol=1e-4)


# ------------------------------------------------------------------ specific models


def test_mtcnn_heads_share_one_trunk() -> None:
    model = _build("mtcnn")
    cnn2d = _build("cnn2d")
    assert type(model.trunk) is type(cnn2d.trunk)  # the same trunk code as cnn2d
    assert set(model.heads.task_names) == {"valence", "arousal"}
    # One trunk: its parameters exist once and are counted once.
    trunk_params = list(model.trunk.parameters())
    head_params = list(model.heads.parameters())
    assert model.n_parameters() == sum(p.numel() for p in trunk_params + head_params)
    assert not {id(p) for p in trunk_params} & {id(p) for p in head_params}
    # Both heads read the same trunk parameter objects...
    out = model(torch.randn(4, 8, 8, 9))
    for task in ("valence", "arousal"):
        grads = torch.autograd.grad(out[task].sum(), trunk_params, retain_graph=True)
        assert all(g.abs().sum() > 0 for g in grads), task
    # ...while each head's own parameters only see their own task.
    arousal_head = list(model.heads["arousal"].parameters())
    g_cross = torch.autograd.grad(out["valence"].sum(), arousal_head, allow_unused=True)
    assert all(g is None for g in g_cross)


@pytest.mark.parametrize("n_features", [4, 10])
def test_cnn2d_accepts_any_number_of_feature_maps(n_features: int) -> None:
    model = build_model("cnn2d", input_shape=(n_features, 8, 9), tasks={"class": 3})
    assert model(torch.randn(2, n_features, 8, 9))["class"].shape == (2, 3)


@pytest.mark.parametrize("n_times", [200, 384, 512])
def test_cnn_transformer_positional_encoding_follows_window_length(
    n_times: int,
) -> None:
    model = build_model("cnn_transformer", input_shape=(14, n_times), tasks=VA)
    assert model.pos_encoding.shape == (1, model.n_tokens + 1, 64)
    assert model(torch.randn(2, 14, n_times))["arousal"].shape == (2, 2)
