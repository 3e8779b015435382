"""A model for the user's headset: the BrainFlow montage table, the stream's
refusal naming the ``train --montage`` command, and issue 12's acceptance
(train on the synthetic board's montage, stream the synthetic board)."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from emomon.contract import ModelContract
from emomon.dsp import _brainflow_montages as table
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.realtime.pipeline import ChannelError, map_channels
from tests.realtime.helpers import MAX_ITERATIONS, free_tcp_port

pytest.importorskip("brainflow.board_shim")

REPO = Path(__file__).resolve().parents[2]


def _generator():
    path = REPO / "benchmarks" / "tools" / "gen_brainflow_montages.py"
    spec = importlib.util.spec_from_file_location("gen_brainflow_montages", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_table_is_the_installed_brainflows():
    """The table the library reads without BrainFlow is what BrainFlow says;
    after a BrainFlow upgrade, run benchmarks/tools/gen_brainflow_montages.py."""
    gen = _generator()
    assert table.BRAINFLOW_VERSION == gen.brainflow_version()
    live = {
        name: (bid, None if names is None else ",".join(names), n)
        for name, (bid, names, n) in gen.board_table().items()
    }
    assert table.BOARDS == live
    assert table.BOARDS["SYNTHETIC_BOARD"][1].count(",") == 15
    assert table.BOARDS["GANGLION_BOARD"][1] is None  # no names: comma list asked


def test_a_brainflow_source_knows_its_montage():
    from emomon.realtime.sources.brainflow import BrainFlowSource

    assert BrainFlowSource("synthetic").montage == "brainflow:synthetic"
    assert BrainFlowSource("CYTON_WIFI_BOARD").montage is None  # ch1..ch8


@pytest.mark.parametrize(
    ("source_ch", "montage", "hint"),
    [
        (("Fz", "C3", "Cz"), "brainflow:synthetic",
         "(emomon train --montage brainflow:synthetic ...)"),
        (("FZ", "c3", "Cz"), None, "(emomon train --montage Fz,C3,Cz ...)"),
        (("ch1", "ch2"), None,
         "(its channels have no electrode names: train with emomon train "
         "--montage NAME1,NAME2,... naming the electrodes on its inputs)"),
    ],
)  # fmt: skip
def test_a_refused_stream_names_the_train_command_that_fits(source_ch, montage, hint):
    with pytest.raises(ChannelError) as info:
        map_channels(DEAP_CHANNELS, source_ch, montage=montage)
    msg = str(info.value)
    assert msg.startswith("the stream lacks model channel(s) Fp1, AF3, ")
    assert msg.endswith(
        "— use a stream with these channels or a model trained on this montage " + hint
    ), msg


def test_stream_refuses_the_synthetic_board_for_a_deap_model(
    deap_model, capsys, tmp_path, monkeypatch
):
    from emomon.cli import main

    monkeypatch.chdir(tmp_path)
    rc = main(["stream", "--source", "brainflow", "--board-id", "synthetic",
               "--model", str(deap_model), "--address",
               f"tcp://127.0.0.1:{free_tcp_port()}"])  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("emomon: error: the stream lacks model channel(s) ")
    assert lines[0].endswith(
        "it has Fz, C3, Cz, C4, Pz, PO7, Oz, PO8, F5, F7, F3, F1, F2, F4, F6, F8 — "
        "use a stream with these channels or a model trained on this montage "
        "(emomon train --montage brainflow:synthetic ...)"
    ), lines[0]


@pytest.mark.integration
def test_train_for_the_synthetic_board_then_stream_it(tmp_path, emomon_cli):
    """Issue 12's acceptance: ``emomon train --dataset synthetic --montage
    brainflow:synthetic``, then ``emomon stream --source brainflow --board-id
    synthetic`` with its model publishes predictions, >= 80% of them unflagged."""
    import emomon

    run = tmp_path / "run"
    proc = emomon_cli.start(
        "train", "--dataset", "synthetic", "--montage", "brainflow:synthetic",
        "--subjects", "3", "--videos", "8", "--trial-s", "20", "--epochs", "5",
        "--permutations", "0", "--n-boot", "20", "--jobs", "1", "--out", str(run),
        "--cache-dir", str(tmp_path / "cache"), "--quiet",
    )  # fmt: skip
    out, err = emomon_cli.finish(proc, 240.0)
    assert proc.returncode == 0, err
    assert (
        "montage brainflow:synthetic: trained on 16 of its 16 channels (Fz, C3, Cz, "
        "C4, Pz, PO7, Oz, PO8, F5, F7, F3, F1, F2, F4, F6, F8); dataset synthetic "
        "has them all"
    ) in out
    report = json.loads((run / "report.json").read_text())
    assert report["dataset"]["montage"]["name"] == "brainflow:synthetic"
    assert report["config"]["montage"] == "brainflow:synthetic"
    contract = ModelContract.from_onnx(run / "model.onnx")
    assert list(contract.ch_names) == table.BOARDS["SYNTHETIC_BOARD"][1].split(",")
    assert contract.info["montage"]["missing"] == []

    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    duration = 12.0
    with emomon.Subscriber(address, topics=("emomon.prediction.v1",)) as sub:
        proc = emomon_cli.start(
            "stream", "--source", "brainflow", "--board-id", "synthetic",
            "--model", str(run / "model.onnx"), "--address", address,
            "--duration", str(duration), "--quiet",
        )  # fmt: skip
        preds = []
        deadline = time.monotonic() + duration + 60.0
        for _ in range(MAX_ITERATIONS):
            msg = sub.recv(timeout_s=0.5)
            if msg is not None:
                preds.append(msg.prediction)
            elif proc.poll() is not None or time.monotonic() > deadline:
                break
        out, err = emomon_cli.finish(proc, 30.0)
    assert proc.returncode == 0, err
    assert "emomon stream: SYNTHETIC_BOARD (16 ch @ 250 Hz)" in err
    # 12 s at a 0.25 s hop after the 2 s window and 1 s warm-up: ~36; the
    # subscriber may miss the first while it connects
    assert len(preds) >= 25, (len(preds), err)
    ok = [p for p in preds if p.quality.ok]
    assert len(ok) >= 0.8 * len(preds), [p.quality for p in preds if not p.quality.ok]
    for p in ok:
        for task in ("valence", "arousal"):
            assert 0.0 <= p.tasks[task].p_high <= 1.0
