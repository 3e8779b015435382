"""Bad command-line input: exit code 2 and one line naming the culprit.

Rows cover data directories, model files (``info``, ``stream --model``), TOML
configs (``train --config``) and out-of-range option values. Input errors raised
by emomon print exactly one ``emomon: error: ...`` line; argparse's own errors
print the usage and then one ``emomon VERB: error: argument --X: ...`` line. Bad
dataset *files* are in tests/datasets/test_bad_files.py.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from emomon.cli import main
from emomon.cli.argtypes import endpoint, finite_float, positive_int
from emomon.config import FeatureSpec
from emomon.contract import SCHEMA_VERSION, ModelContract

#: Builds what the row needs under a fresh directory and returns the argv.
Build = Callable[[Path], list[str]]


@dataclass(frozen=True)
class Row:
    """One bad input and the words its error line must contain."""

    id: str
    build: Build
    needles: tuple[str, ...]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Exit code (argparse's SystemExit included) and stderr lines of one run."""
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code  # type: ignore[assignment]
    return rc, capsys.readouterr().err.strip().splitlines()


# -- data directories ------------------------------------------------------------


def _train(root: Path, *extra: str, out: str = "run") -> list[str]:
    """``train`` with its outputs under ``root`` (never in the working dir)."""
    return [
        "train",
        "--quiet",
        "--jobs",
        "1",
        "--no-export",
        "--out",
        str(root / out),
        "--cache-dir",
        str(root / "cache"),
        *extra,
    ]


def _with_file(name: str, make_argv: Callable[[Path], list[str]]) -> Build:
    """Writes a small file ``name`` first (where a directory is expected)."""

    def build(root: Path) -> list[str]:
        (root / name).write_text("not a directory\n")
        return make_argv(root)

    return build


def _check(dataset: str, data_dir: Callable[[Path], Path]) -> Build:
    def build(root: Path) -> list[str]:
        d = data_dir(root)
        return ["datasets", "check", "--dataset", dataset, "--data-dir", str(d)]

    return build


def _empty_dir(root: Path) -> Path:
    (root / "empty-data").mkdir()
    return root / "empty-data"


def _small_synthetic(root: Path, *extra: str) -> list[str]:
    """``train`` on a seconds-long synthetic set (bad values that need features)."""
    return _train(
        root, "--subjects", "2", "--videos", "4", "--trial-s", "10", "--n-boot", "0"
    ) + list(extra)


DATA_DIRS = [
    Row(
        "check-missing-dir",
        _check("deap", lambda r: r / "nope"),
        ("data dir", "nope", "does not exist", "get the DEAP dataset from"),
    ),
    Row(
        "check-no-data-dir",
        lambda r: ["datasets", "check", "--dataset", "seed"],
        ("--data-dir is required for dataset 'seed'", "Preprocessed_EEG"),
    ),
    Row(
        "check-data-dir-is-a-file",
        _with_file("s01.txt", _check("deap", lambda r: r / "s01.txt")),
        ("no DEAP subject files in", "s01.txt", "data_preprocessed_python"),
    ),
    Row(
        "train-missing-dir",
        lambda r: _train(r, "--dataset", "deap", "--data-dir", str(r / "nope")),
        ("nope", "does not exist", "eecs.qmul.ac.uk"),
    ),
    Row(
        "train-empty-dir",
        lambda r: _train(r, "--dataset", "dreamer", "--data-dir", str(_empty_dir(r))),
        ("no DREAMER.mat in", "empty-data", "get DREAMER from"),
    ),
    Row(
        "train-unknown-dataset",
        lambda r: _train(r, "--dataset", "deep", "--data-dir", str(r)),
        ("unknown dataset 'deep'", "deap"),
    ),
]

#: Reader -> what its "empty directory" error must say it expected.
_EXPECTED_FILES = {
    "deap": "data_preprocessed_python/s01.dat",
    "dreamer": "DREAMER.mat",
    "amigos": "Data_Preprocessed_P01.mat",
    "seed": "Preprocessed_EEG/<subject>_<date>.mat",
    "seed-features": "ExtractedFeatures/<subject>_<date>.mat",
    "eav": "EAV/subjectN/EEG/subjectN_eeg.mat",
    "seed4": "eeg_raw_data/{1,2,3}/<subject>_<date>.mat",
    "seed4-features": "eeg_feature_smooth/{1,2,3}/<subject>_<date>.mat",
    "seed5": "EEG_raw/<subject>_<session>_<date>.cnt",
    "seed5-features": "EEG_DE_features/<subject>_123.npz",
    "openbci": "OpenBCI GUI .txt",
    "mne": ".edf",
}
DATA_DIRS += [
    Row(f"check-empty-dir-{name}", _check(name, _empty_dir), ("empty-data", expected))
    for name, expected in _EXPECTED_FILES.items()
]


# -- model files -------------------------------------------------------------------


def _contract(**changes: object) -> dict[str, object]:
    """A valid contract JSON object for a 2-channel flat model, then ``changes``."""
    spec = FeatureSpec(layout="flat")
    c = ModelContract(
        input_name="features",
        input_kind="flat",
        input_shape=(2 * spec.n_features,),
        spec=spec,
        ch_names=("Fp1", "Fp2"),
        sfreq=128.0,
        norm_mean=np.zeros((2, spec.n_features)),
        norm_std=np.ones((2, spec.n_features)),
        tasks={"valence": ["low", "high"], "arousal": ["low", "high"]},
        model="logreg",
    )
    d = json.loads(c.to_json())
    for key, value in changes.items():
        if value is None:
            del d[key]
        else:
            d[key] = value
    return d


def _onnx(path: Path, metadata: str | None) -> Path:
    """A real ONNX file (features -> softmax valence/arousal) with the given
    ``metadata_props["emomon"]`` (None: no emomon metadata at all)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    n_in = 2 * FeatureSpec().n_features
    w = numpy_helper.from_array(np.ones((n_in, 2), np.float32), "W")
    nodes = [
        helper.make_node("MatMul", ["features", "W"], ["z"]),
        helper.make_node("Softmax", ["z"], ["valence"], axis=-1),
        helper.make_node("Softmax", ["z"], ["arousal"], axis=-1),
    ]
    out = [
        helper.make_tensor_value_info(t, TensorProto.FLOAT, ["batch", 2])
        for t in ("valence", "arousal")
    ]
    inp = [
        helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", n_in])
    ]
    graph = helper.make_graph(nodes, "tiny", inp, out, [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every supported onnxruntime
    if metadata is not None:
        helper.set_model_props(model, {"emomon": metadata})
    onnx.save(model, path)
    return path


def _model(metadata: str | None) -> Callable[[Path], Path]:
    return lambda r: _onnx(r / "model.onnx", metadata)


def _contract_model(**changes: object) -> Callable[[Path], Path]:
    return _model(json.dumps(_contract(**changes)))


def _not_onnx(r: Path) -> Path:
    (r / "model.onnx").write_text("definitely not protobuf\n")
    return r / "model.onnx"


#: (id, makes the model file, words of the error)
MODELS: list[tuple[str, Callable[[Path], Path], tuple[str, ...]]] = [
    ("missing-file", lambda r: r / "gone.onnx", ("gone.onnx", "does not exist")),
    ("directory", lambda r: r, ("is a directory", "model.onnx")),
    (
        "not-onnx",
        _not_onnx,
        ("model.onnx", "not a readable ONNX model", "emomon train"),
    ),
    (
        "onnx-without-contract",
        _model(None),
        ("model.onnx", "without the emomon contract", "metadata_props['emomon']"),
    ),
    (
        "newer-schema",
        _contract_model(schema=SCHEMA_VERSION + 1),
        (f"contract schema {SCHEMA_VERSION + 1} is newer", "upgrade emomon"),
    ),
    ("contract-not-json", _model("{not json"), ("model.onnx", "not valid JSON")),
    ("contract-no-schema", _contract_model(schema=None), ("no schema version",)),
    (
        "contract-missing-field",
        _contract_model(sfreq=None),
        ("model.onnx", "lacks the field 'sfreq'", "re-export"),
    ),
    (
        "contract-bad-feature-spec",
        _contract_model(feature_spec={"window_s": "two"}),
        ("bad feature_spec", "features.window_s", "expected a number"),
    ),
    (
        "contract-duplicate-channel",
        _contract_model(ch_names=["Cz", "Cz"]),
        ("contract ch_names names Cz twice", "one name per channel"),
    ),
    (
        "contract-rate-too-low-for-bands",
        _contract_model(sfreq=64.0),
        ("contract sfreq 64 Hz is too low", "up to 45 Hz"),
    ),
    (
        "contract-zero-rate",
        _contract_model(sfreq=0.0),
        ("contract sfreq is 0.0", "> 0"),
    ),
    (
        "contract-norm-shape",
        _contract_model(normalization={"mean": [[0.0]], "std": [[1.0]]}),
        ("normalisation shape (1, 1) does not match 2 channels",),
    ),
]


def _info(make: Callable[[Path], Path]) -> Build:
    return lambda r: ["info", str(make(r))]


def _stream(make: Callable[[Path], Path], *extra: str) -> Build:
    # A stream name no LSL outlet has: were it resolved before the model is
    # checked, the error would be about the stream (and take the timeout).
    return lambda r: [
        "stream",
        "--model",
        str(make(r)),
        "--source",
        "lsl",
        "--name",
        "emomon-test-no-such-stream",
        "--timeout",
        "0.1",
        "--quiet",
        *extra,
    ]


MODEL_ROWS = [Row(f"info-{i}", _info(m), n) for i, m, n in MODELS] + [
    Row(f"stream-{i}", _stream(m), n) for i, m, n in MODELS
]


# -- TOML configs ---------------------------------------------------------------------


def _config(text: str, *extra: str) -> Build:
    def build(r: Path) -> list[str]:
        (r / "c.toml").write_text(text)
        return _train(r, "--config", str(r / "c.toml"), *extra)

    return build


CONFIGS = [
    Row(
        "unknown-train-key",
        _config("[train]\nepoch = 3\n"),
        ("unknown key train.epoch", "valid keys:", "epochs"),
    ),
    Row(
        "wrong-type-train-key",
        _config('[train]\nepochs = "ten"\n'),
        ("train.epochs: expected an integer, got 'ten'",),
    ),
    Row(
        "nan-threshold",
        _config("[train]\nthreshold = nan\n"),
        ("train.threshold: expected a finite number",),
    ),
    Row(
        "subjects-not-strings",
        _config("[train]\nsubjects = [1, 2]\n"),
        ("train.subjects: expected a list of strings", "quote it: '1'"),
    ),
    Row(
        "unknown-section",
        _config("[trian]\nepochs = 3\n"),
        ("c.toml", "unknown section [trian]", "valid: [train]"),
    ),
    Row(
        "section-not-a-table",
        _config("train = 3\n"),
        ("c.toml", "train must be a [train] table", "got 3"),
    ),
    Row(
        "unknown-features-key",
        _config("[features]\nwindow = 2.0\n"),
        ("unknown key features.window", "window_s"),
    ),
    Row(
        "wrong-type-features-key",
        _config('[features]\nwindow_s = "2"\n'),
        ("features.window_s: expected a number, got '2'",),
    ),
    Row(
        "band-edge-not-a-number",
        _config('[features]\nbands = [["alpha", "8", 13]]\n'),
        ("features.bands", "numbers in Hz", "'8'"),
    ),
    Row(
        "band-table-unknown-key",
        _config('[features]\nbands = [{name = "alpha", low = 8, hi = 13}]\n'),
        ("features.bands: unknown key 'low'", "name, lo, hi"),
    ),
    Row(
        "bad-notch",
        _config("[features]\nnotch = 55\n"),
        ("features.notch must be 50, 60 or none", "55"),
    ),
    Row(
        "unknown-model-hparam",
        _config('[train]\nmodel = "mlp"\n[model]\ndepth = 3\n'),
        ("unknown hyper-parameter model.depth for model 'mlp'", "dropout"),
    ),
    Row(
        "unknown-synthetic-key",
        _config("[synthetic]\nn_subject = 2\n", "--n-boot", "0"),
        ("no option(s) n_subject", "n_subjects"),
    ),
    Row(
        "invalid-toml",
        _config("[train\nepochs = 3\n"),
        ("c.toml", "invalid TOML"),
    ),
    Row(
        "missing-config",
        lambda r: _train(r, "--config", str(r / "missing.toml")),
        ("config file", "missing.toml", "not found"),
    ),
]


# -- option values --------------------------------------------------------------
# argparse rejects these before anything runs: the last stderr line names the
# option and the rule.


def _argv(command: str) -> Build:
    """``command`` split on spaces, ``{tmp}`` standing for the row's directory."""
    return lambda r: [a.replace("{tmp}", str(r)) for a in command.split()]


ARGPARSE = [
    Row("train-subjects-0", _argv("train --subjects 0"), ("--subjects", ">= 1")),
    Row("train-videos-neg", _argv("train --videos -1"), ("--videos", ">= 1, got -1")),
    Row("train-epochs-0", _argv("train --epochs 0"), ("--epochs", ">= 1")),
    Row(
        "train-batch-size-text",
        _argv("train --batch-size x"),
        ("--batch-size", "expected a whole number, got 'x'"),
    ),
    Row("train-lr-0", _argv("train --lr 0"), ("--lr", "> 0, got 0")),
    Row("train-lr-nan", _argv("train --lr nan"), ("--lr", "finite")),
    Row("train-jobs-0", _argv("train --jobs 0"), ("--jobs", ">= 1")),
    Row(
        "train-permutations-neg",
        _argv("train --permutations -1"),
        ("--permutations", ">= 0"),
    ),
    Row(
        "train-threshold-nan", _argv("train --threshold nan"), ("--threshold", "finite")
    ),
    Row(
        "train-threshold-inf", _argv("train --threshold inf"), ("--threshold", "finite")
    ),
    Row("train-trial-s-0", _argv("train --trial-s 0"), ("--trial-s", "> 0")),
    Row(
        "train-emotion-effect-neg",
        _argv("train --emotion-effect -1"),
        ("--emotion-effect", ">= 0"),
    ),
    Row(
        "train-synth-seed-neg", _argv("train --synth-seed -1"), ("--synth-seed", ">= 0")
    ),
    Row("train-device", _argv("train --device tpu"), ("--device", "invalid choice")),
    Row(
        "synth-trial-s-0",
        _argv("datasets synth --out {tmp} --trial-s 0"),
        ("--trial-s", "> 0"),
    ),
    Row(
        "synth-videos-0",
        _argv("datasets synth --out {tmp} --videos 0"),
        ("--videos", ">= 1"),
    ),
    Row(
        "replay-speed-0",
        _argv("replay --dataset synthetic --speed 0"),
        ("--speed", "> 0"),
    ),
    Row(
        "replay-speed-neg",
        _argv("replay --dataset synthetic --speed -2"),
        ("--speed", "finite number > 0, got -2"),
    ),
    Row(
        "replay-chunk-0",
        _argv("replay --dataset synthetic --chunk 0"),
        ("--chunk", ">= 1"),
    ),
    Row(
        "replay-duration-0",
        _argv("replay --dataset synthetic --duration 0"),
        ("--duration", "> 0"),
    ),
    Row(
        "replay-option-without-value",
        _argv("replay --dataset synthetic -o n_videos"),
        ("--option", "expected KEY=VALUE"),
    ),
    Row("listen-count-0", _argv("listen --count 0"), ("--count", ">= 1")),
    Row("listen-duration-neg", _argv("listen --duration -1"), ("--duration",)),
    Row("listen-topic", _argv("listen --topic gossip"), ("--topic", "'gossip'")),
    Row("stream-hop-text", _argv("stream --model m --hop x"), ("--hop",)),
    Row(
        "stream-source",
        _argv("stream --model m --source wifi"),
        ("--source", "invalid choice: 'wifi'"),
    ),
    Row(
        "stream-timeout-neg",
        _argv("stream --model m --timeout -1"),
        ("--timeout", "> 0"),
    ),
    Row(
        "stream-duration-0",
        _argv("stream --model m --duration 0"),
        ("--duration", "> 0"),
    ),
    Row(
        "stream-address-port",
        _argv("stream --model m --address tcp://127.0.0.1:99999"),
        ("--address", "not a number in 1-65535"),
    ),
    Row(
        "stream-address-transport",
        _argv("stream --model m --address udp://127.0.0.1:5556"),
        ("--address", "expected e.g. tcp://"),
    ),
    Row(
        "listen-address-no-port",
        _argv("listen --address tcp://127.0.0.1"),
        ("--address", "no host:port"),
    ),
    Row(
        "broker-frontend-port",
        _argv("broker --frontend tcp://127.0.0.1:99999"),
        ("--frontend", "not a number in 1-65535"),
    ),
    Row(
        "broker-backend-port",
        _argv("broker --backend tcp://127.0.0.1:0"),
        ("--backend", "not a number in 1-65535"),
    ),
]

# emomon rejects these itself, before any work that depends on them.
VALUES = [
    Row(
        f"stream-{opt.strip('-')}-{val}",
        _stream(_contract_model(), opt, val),
        (f"{opt} must be", val),
    )
    for opt, val in (
        ("--hop", "0"),
        ("--hop", "-1"),
        ("--smoothing", "1"),
        ("--smoothing", "-0.5"),
    )
] + [
    Row(
        "train-hparams-not-json",
        lambda r: _train(r, "--hparams", "{depth: 3"),
        ("--hparams: not valid JSON",),
    ),
    Row(
        "train-hparams-not-object",
        lambda r: _train(r, "--hparams", "[1]"),
        ("--hparams: expected a JSON object",),
    ),
    Row(
        "train-hparams-unknown-key",
        lambda r: _train(r, "--model", "logreg", "--hparams", '{"dropout": 0.5}'),
        ("unknown hyper-parameter model.dropout for model 'logreg'",),
    ),
    Row(
        "train-synthetic-option-on-deap",
        lambda r: _train(r, "--dataset", "deap", "--data-dir", str(r), "--videos", "3"),
        ("only apply to --dataset synthetic",),
    ),
    Row(
        "train-out-is-a-file",
        _with_file("taken", lambda r: _train(r, out="taken/run")),
        ("run directory", "taken is a file", "pass another --out"),
    ),
    Row(
        "train-cache-dir-is-a-file",
        _with_file(
            "cfile", lambda r: _small_synthetic(r, "--cache-dir", str(r / "cfile"))
        ),
        ("cache dir", "cfile", "--no-cache"),
    ),
    Row(
        "train-threshold-outside-scale",
        lambda r: _small_synthetic(r, "--threshold", "12"),
        ("threshold 12 is outside the rating scale 1-9", "--threshold"),
    ),
    Row(
        "replay-neither-dataset-nor-file",
        _argv("replay"),
        ("give either --dataset", "--file"),
    ),
    Row(
        "replay-missing-file",
        _argv("replay --file {tmp}/rec.edf"),
        ("rec.edf", "file not found"),
    ),
    Row(
        "listen-missing-curve-key",
        _argv(
            "listen --curve-secret {tmp}/no.key_secret "
            "--curve-server {tmp}/server.key --duration 0.1"
        ),
        ("no.key_secret", "not found", "emomon keys"),
    ),
    Row(
        "broker-public-address-without-curve",
        _argv("broker --frontend tcp://0.0.0.0:5599"),
        ("tcp://0.0.0.0:5599", "needs --curve-secret", "--insecure"),
    ),
]


@pytest.mark.parametrize(
    "row", DATA_DIRS + MODEL_ROWS + CONFIGS + VALUES, ids=lambda r: r.id
)
def test_input_error_exits_2_with_one_line(
    row: Row,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[argparse.Namespace] = []

    def no_source(args: argparse.Namespace) -> None:
        opened.append(args)
        raise AssertionError("stream opened its source before checking its input")

    # stream must reject a bad model or setting before it connects to anything.
    monkeypatch.setattr("emomon.cli.stream._open_source", no_source)
    monkeypatch.chdir(tmp_path)  # anything written by mistake lands here
    rc, lines = _run(row.build(tmp_path), capsys)
    assert rc == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("emomon: error: "), lines
    for needle in row.needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert not opened


@pytest.mark.parametrize("row", ARGPARSE, ids=lambda r: r.id)
def test_bad_option_value_is_a_usage_error(
    row: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, lines = _run(row.build(tmp_path), capsys)
    assert rc == 2
    assert lines[0].startswith("usage: emomon"), lines
    assert ": error: argument " in lines[-1], lines
    for needle in row.needles:
        assert needle in lines[-1], f"{needle!r} not in {lines[-1]!r}"


def test_failed_train_leaves_no_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _ = _run(
        _train(tmp_path, "--dataset", "deap", "--data-dir", str(tmp_path)), capsys
    )
    assert rc == 2
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("foo", "expected e.g. tcp://127.0.0.1:5556"),
        ("udp://h:1", "expected e.g."),
        ("tcp://127.0.0.1", "no host:port"),
        ("tcp://:5556", "no host:port"),
        ("tcp://127.0.0.1:99999", "not a number in 1-65535"),
        ("tcp://127.0.0.1:0", "not a number in 1-65535"),
        ("tcp://127.0.0.1:port", "not a number in 1-65535"),
    ],
)
def test_endpoint_type_rejects_bad_addresses(text: str, needle: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=needle):
        endpoint(text)


@pytest.mark.parametrize(
    "text",
    ["tcp://127.0.0.1:5556", "tcp://*:5556", "tcp://[::1]:5556", "tcp://h:*",
     "ipc:///tmp/emomon", "inproc://x"],
)  # fmt: skip
def test_endpoint_type_accepts_zeromq_endpoints(text: str) -> None:
    assert endpoint(text) == text


def test_number_types_name_the_rule() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=">= 1, got -3"):
        positive_int("-3")  # not ">= 0", which -3 also breaks
    assert finite_float("-2.5") == -2.5
    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
        finite_float("-inf")
