"""``emomon stream`` against LSL senders emomon did not write, with its defaults.

MNE-LSL's ``PlayerLSL`` in its own process (its own liblsl; type ``"eeg"``, units
as powers of ten of volts), an independent pylsl outlet with a trigger channel
in unit ``"none"`` beside the EEG, and a stream of another type than the one
asked for. Same rules as ``test_stream.py``: real liblsl/ZeroMQ/onnxruntime,
unique stream names, 127.0.0.1 only, no sleeps as synchronisation, every loop
bounded in iterations and time.
"""

from __future__ import annotations

import signal

import numpy as np
import pylsl
import pytest

from emomon.dsp.layout import DEAP_CHANNELS
from emomon.realtime.model import load_model
from emomon.realtime.pipeline import ChannelError
from emomon.realtime.stream import StreamSettings, run_stream
from emomon.realtime.subscribe import Subscriber

from .helpers import (
    LOOPBACK,
    SF,
    check_prediction_payload,
    free_tcp_port,
    make_outlet,
    predictions,
    read_line,
    receive_until,
    session_eeg,
    unique,
)

# -- MNE-LSL's PlayerLSL, in its own process, found and read with the defaults --------
#: PlayerLSL stamps a chunk's last sample with the time of its next push (its
#: _stream bumps _target_timestamp by one chunk's duration before push_chunk):
#: its default 10-sample chunks are stamped that far ahead.
PLAYER_AHEAD_S = 10 / SF


@pytest.mark.integration
@pytest.mark.slow
def test_an_mne_lsl_player_streams_predictions_with_the_defaults(
    live_rig, mne_lsl_player, synthetic_trials, deap_model
):
    # the EEG written to a FIF by MNE and played by PlayerLSL: type "eeg", float64
    # samples in volts, units "0" (10^0 V), chunks of 10 samples
    name = unique("emomon-mne-lsl")
    eeg = session_eeg(synthetic_trials)
    mne_lsl_player(eeg, DEAP_CHANNELS, name)
    rig = live_rig()
    rig.subscribed()
    src = rig.lsl(name)  # LSLSource's defaults: type "EEG", matched in any case
    assert src.ch_names == DEAP_CHANNELS
    assert src.sfreq == SF
    assert src.unconverted_units == {}
    run = rig.stream(src, deap_model, max_predictions=4)
    msgs = rig.receive_until(lambda m: len(predictions(m)) >= 4, timeout_s=30.0)
    stats = run.join(30.0)
    assert stats.predictions == 4
    assert stats.dropped == 0
    assert len(predictions(msgs)) == 4
    for payload in predictions(msgs):
        check_prediction_payload(payload, stream=name, stamped_ahead_s=PLAYER_AHEAD_S)
        assert payload["quality"]["ok"], payload
    # what arrived is the EEG in microvolts, sample for sample (FIF stores float32)
    got = np.hstack([data for data, _ in run.chunks])
    start = int(np.argmin(np.abs(eeg - got[:, :1]).max(axis=0)))
    n = min(got.shape[1], eeg.shape[1] - start)  # before the player loops
    assert n >= int(3 * SF)
    np.testing.assert_allclose(got[:, :n], eeg[:, start : start + n], atol=1e-3)


@pytest.mark.integration
@pytest.mark.slow
def test_cli_stream_gets_predictions_from_an_mne_lsl_player_with_the_defaults(
    emomon_cli, mne_lsl_player, synthetic_trials, deap_model
):
    name = unique("emomon-mne-lsl-cli")
    mne_lsl_player(session_eeg(synthetic_trials), DEAP_CHANNELS, name)
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    with Subscriber(address) as sub:
        # no --type, no --timeout: the defaults
        proc = emomon_cli.start("stream", "--name", name, "--model", str(deap_model),
                                "--address", address, "--quiet",
                                "--duration", "6")  # fmt: skip
        msgs = receive_until(sub, lambda m: len(predictions(m)) >= 3, timeout_s=30.0)
        # Ctrl-C once they came (--duration only bounds a run that fails)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        _, err = emomon_cli.finish(proc, 30.0)
    assert proc.returncode == 0, err
    lines = err.strip().splitlines()
    query = f"name='{name}' and type='EEG' (any case)"
    assert lines[0] == f"waiting up to 10 s for LSL stream {query}", err
    assert lines[1].startswith(f"emomon stream: {name} (32 ch @ 128 Hz) -> "), err
    assert len(predictions(msgs)) >= 3, err
    for payload in predictions(msgs):
        check_prediction_payload(payload, stream=name, stamped_ahead_s=PLAYER_AHEAD_S)
        assert payload["quality"]["ok"], payload


# -- the search: what it waits for, and a stream of another type ----------------------
@pytest.mark.integration
def test_cli_says_at_once_what_it_waits_for_and_names_another_type(
    emomon_cli, deap_model
):
    name = unique("emomon-exg")
    out = make_outlet(name, name, DEAP_CHANNELS, sfreq=SF, stream_type="ExG")
    proc = emomon_cli.start("stream", "--name", name, "--model", str(deap_model),
                            "--address", LOOPBACK, "--timeout", "4",
                            "--quiet")  # fmt: skip
    first = read_line(proc.stderr, timeout_s=30.0)
    # printed before the search, which lasts the 4 s (nothing matches)
    assert proc.poll() is None, first
    query = f"name='{name}' and type='EEG' (any case)"
    assert first == f"waiting up to 4 s for LSL stream {query}\n"
    _, err = emomon_cli.finish(proc, 30.0)
    assert proc.returncode == 2, err
    assert err.strip().splitlines() == [
        f"emomon: error: no LSL stream matching {query} found within 4 s; a stream "
        f"named '{name}' exists with type 'ExG'; pass --type='ExG' or --type=\"\" "
        "to match any type"
    ]
    del out


def test_cli_any_type_alone_is_no_query(capsys, deap_model):
    from emomon.cli import main

    assert main(["stream", "--type", "", "--model", str(deap_model)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "emomon: error: nothing to look for: give the LSL stream's --name, --type "
        "or --source-id (an empty type matches any type, but not alone)"
    ]


# -- units: a channel nobody reads may be in any unit, a model channel may not ---------
@pytest.mark.integration
def test_a_trigger_channel_in_unit_none_is_accepted_and_predictions_flow(
    live_rig, synthetic_trials, deap_model
):
    # 32 EEG channels in microvolts and a trigger channel in "none", from a plain
    # pylsl outlet, as a lab's own acquisition script would send them
    name = unique("emomon-trig")
    out = make_outlet(name, name, (*DEAP_CHANNELS, "TRIG"), sfreq=SF,
                      units={"TRIG": "none"})  # fmt: skip
    rig = live_rig()
    rig.subscribed()
    src = rig.lsl(name)  # the defaults: type "EEG"
    assert src.unconverted_units == {"TRIG": "none"}
    run = rig.stream(src, deap_model, max_predictions=4)
    eeg = session_eeg(synthetic_trials)[:, : int(8 * SF)]
    trig = np.zeros((1, eeg.shape[1]))
    trig[0, :: int(SF)] = 255.0  # a marker a second, in no unit at all
    # 8 s at once, stamped as if just acquired (the last sample now)
    out.push_chunk(
        np.vstack([eeg, trig]).T.astype(np.float32), timestamp=pylsl.local_clock()
    )
    msgs = rig.receive_until(lambda m: len(predictions(m)) >= 4, timeout_s=20.0)
    stats = run.join(20.0)
    assert stats.predictions == 4
    assert len(predictions(msgs)) == 4
    for payload in predictions(msgs):
        check_prediction_payload(payload, stream=name)
        assert payload["quality"]["ok"], payload
    # the model saw the EEG only: the trigger channel is not among its inputs
    window, _ = run.preds[0]
    assert window.features.shape[0] == len(DEAP_CHANNELS)
    del out


@pytest.mark.integration
def test_a_model_channel_in_an_unknown_unit_is_refused_naming_it(
    live_rig, emomon_cli, deap_model
):
    name = unique("emomon-counts")
    out = make_outlet(name, name, DEAP_CHANNELS, sfreq=SF, units={"Fz": "counts"})
    src = live_rig().lsl(name)
    assert src.unconverted_units == {"Fz": "counts"}
    why = (
        "model channel 'Fz' arrives in unit 'counts', not in microvolts, "
        "millivolts or volts, so emomon cannot convert it to microvolts; send it "
        "in one of those units (an LSL stream's desc/channels/channel/unit) or "
        "use a model without it"
    )
    with pytest.raises(ChannelError) as info:
        run_stream(src, load_model(deap_model), settings=StreamSettings())
    assert str(info.value) == why
    # the command line: exit 2, what it waited for, then the error alone
    proc = emomon_cli.start("stream", "--name", name, "--model", str(deap_model),
                            "--address", LOOPBACK, "--timeout", "10",
                            "--quiet")  # fmt: skip
    out_text, err = emomon_cli.finish(proc, 30.0)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("waiting up to 10 s for LSL stream")
    assert lines[1] == f"emomon: error: {why}"
    assert out_text == ""
    del out
