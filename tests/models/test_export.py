"""Failure paths of the ONNX export and of reading a model's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from emomon.errors import ModelError  # noqa: E402
from emomon.models import build_model  # noqa: E402
from emomon.offline.export import export_onnx, read_onnx_metadata  # noqa: E402


def _logreg():  # noqa: ANN202
    return build_model("logreg", input_shape=(16,), tasks={"class": 3})


def _export(path: Path, model: torch.nn.Module | None = None, **options: Any) -> float:
    """export_onnx of ``model`` (default a new _logreg()) on 16 "features"."""
    model = _logreg() if model is None else model
    return export_onnx(
        model, input_shape=(16,), input_name="features", path=path, **options
    )


def test_parity_failure_raises_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous model")
    with pytest.raises(RuntimeError, match="does not match torch"):
        _export(path, atol=0.0, exporter="torchscript")  # no difference is < 0
    assert path.read_bytes() == b"previous model"  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_export_creates_parent_dirs_and_keeps_eval_mode(tmp_path: Path) -> None:
    model = _logreg().eval()
    path = tmp_path / "a" / "b" / "m.onnx"
    diff = _export(path, model, n_check=1, exporter="torchscript")
    assert path.is_file()
    assert diff < 1e-4
    assert not model.training
    assert read_onnx_metadata(path) == {}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"input_name": "x"}, ValueError),
        ({"exporter": "tf"}, ValueError),
        ({"n_check": 0}, ValueError),
        ({"metadata": {"emomon": {"a": 1}}}, TypeError),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], tmp_path: Path) -> None:
    args = {"input_shape": (16,), "input_name": "features", "path": tmp_path / "m.onnx"}
    with pytest.raises(error):
        export_onnx(_logreg(), **{**args, **kwargs})
    assert not (tmp_path / "m.onnx").exists()


def test_model_must_return_a_dict_of_logits(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="dict"):
        _export(tmp_path / "m.onnx", torch.nn.Linear(16, 2))


def test_read_metadata_of_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        read_onnx_metadata(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_text("this is not a protobuf\n")
    with pytest.raises(ModelError, match="bad.onnx"):
        read_onnx_metadata(bad)


def test_auto_falls_back_to_torchscript_when_dynamo_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from emomon.offline import export

    def broken(*args: object) -> None:
        raise RuntimeError("no dynamo today")

    monkeypatch.setitem(export._EXPORTERS, "dynamo", broken)
    path = tmp_path / "m.onnx"
    diff = _export(path)
    assert diff < 1e-4
    assert path.is_file()
    assert "no dynamo today" in caplog.text
    with pytest.raises(RuntimeError, match="no dynamo today"):
        _export(path, exporter="dynamo")
