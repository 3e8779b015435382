"""``emomon stream`` against LSL senders emomon did not write, with its defaults.

MNE-LSL's ``PlayerLSL`` in its own process (its own liblsl; type ``"eeg"``, units
as powers of ten of volts), an independent pylsl outlet with a trigger channel
in unit ``"none"`` beside the EEG, and a stream of another type than the one
asked for. Same rules as ``test_stream.py``: real liblsl/ZeroMQ/onnxruntime,
unique stream names, 127.0.0.1 only, no sleeps as synchronisation, every loop
bounded in iterations and time.
"""

from __future__ import annotations

import pytest

from emomon.dsp.layout import DEAP_CHANNELS

from .helpers import LOOPBACK, SF, make_outlet, read_line, unique


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
