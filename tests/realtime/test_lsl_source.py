"""LSLSource against real liblsl outlets: resolve, units, loss and return."""

from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest

from emomon.realtime.sources import LSLSource, SourceError
from emomon.realtime.sources.lsl import build_predicate, unit_scale_to_uv

from .helpers import collect, make_outlet, unique, wait_until

LABELS = ("C3", "Cz", "C4", "Pz")


def test_predicate_and_units():
    # name and source_id exactly, the type in any case (XPath's translate)
    lower = "translate(type,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz')"
    assert build_predicate(name="a", stream_type="EEG") == f"name='a' and {lower}='eeg'"
    assert build_predicate(stream_type="ExG-Ä") == f"{lower}='exg-Ä'"  # ASCII only
    assert build_predicate(source_id="it's") == 'source_id="it\'s"'
    assert LSLSource("a").describe_query() == "name='a' and type='EEG' (any case)"
    assert LSLSource("a", type="").describe_query() == "name='a'"
    with pytest.raises(SourceError, match="quote"):
        build_predicate(name="'\"")
    for unit, factor in [("microvolts", 1.0), ("uV", 1.0), ("µV", 1.0), ("", 1.0),
                         ("millivolts", 1e3), ("mV", 1e3), ("volts", 1e6),
                         ("V", 1e6), ("-6", 1.0), ("0", 1e6)]:  # fmt: skip
        assert unit_scale_to_uv(unit) == pytest.approx(factor), unit
    assert unit_scale_to_uv("counts") is None
    with pytest.raises(SourceError, match="give the LSL stream's name, type or "):
        LSLSource(None, type=None)


@pytest.mark.integration
def test_open_without_stream_fails_within_timeout_naming_the_query():
    name = unique()
    src = LSLSource(name, timeout_s=0.5)
    t = time.monotonic()
    with pytest.raises(SourceError) as info:
        src.open()
    assert time.monotonic() - t < 1.5
    msg = str(info.value)
    assert f"name='{name}'" in msg
    assert "type='EEG'" in msg
    assert "0.5 s" in msg
    assert "\n" not in msg
    assert src.state == "stopped"


@pytest.mark.integration
@pytest.mark.parametrize("sent", ["eeg", "Eeg", "EEG"])
def test_the_type_matches_in_any_case(sent):
    name = unique()
    out = make_outlet(name, name, LABELS, stream_type=sent)
    with LSLSource(name, timeout_s=5.0) as src:  # the default type, "EEG"
        assert src.ch_names == LABELS
    with LSLSource(name, type="eEg", timeout_s=5.0) as src:
        assert src.ch_names == LABELS
    del out


@pytest.mark.integration
@pytest.mark.parametrize(
    ("sent", "advice"),
    [("ExG", "pass type='ExG' or type=\"\" to match any type"),
     ("", "pass type=\"\" to match any type")],
)  # fmt: skip
def test_a_stream_of_another_type_is_named_in_the_error(sent, advice):
    name = unique()
    out = make_outlet(name, name, LABELS, stream_type=sent)
    src = LSLSource(name, timeout_s=1.5)
    t = time.monotonic()
    with pytest.raises(SourceError) as info:
        src.open()
    assert time.monotonic() - t < 3.0  # the second search runs beside the first
    msg = str(info.value)
    assert msg.startswith(
        f"no LSL stream matching name='{name}' and type='EEG' (any case) found "
        "within 1.5 s; "
    ), msg
    assert f"a stream named '{name}' exists with type '{sent}'; {advice}" in msg
    # the command line names its flag
    assert "pass --type=" in info.value.render({"type": "--type"})
    with LSLSource(name, type=sent or None, timeout_s=5.0) as src:
        assert src.ch_names == LABELS
    del out


@pytest.mark.integration
def test_without_a_name_the_error_says_how_to_match_any_type():
    src = LSLSource(type=unique("no-such-type"), timeout_s=0.3)
    with pytest.raises(SourceError) as info:
        src.open()
    assert str(info.value).endswith('or pass type="" to match any type')


def _push(outlet: pylsl.StreamOutlet, value: float, n: int = 5) -> None:
    outlet.push_chunk(np.full((n, outlet.channel_count), value, dtype=np.float32))


def _received_value(
    src: LSLSource,
    value: float,
    timeout_s: float,
    outlet: pylsl.StreamOutlet,
    *,
    pushed: float | None = None,
) -> bool:
    """Push ``pushed`` (default ``value``) repeatedly until the source delivers
    ``value`` (bounded)."""
    seen = {"ok": False}

    def tick() -> None:
        _push(outlet, value if pushed is None else pushed)
        chunk = src.read(timeout_s=0.02)
        if chunk.n_times and np.all(chunk.data[:, -1] == value):
            seen["ok"] = True

    return wait_until(lambda: seen["ok"], timeout_s=timeout_s, tick=tick)


@pytest.mark.integration
def test_labels_fallback_names_and_unknown_units():
    name = unique()
    out = make_outlet(name, name, LABELS)
    with LSLSource(name, timeout_s=5.0) as src:
        assert src.ch_names == LABELS
        assert src.sfreq == 100.0
        assert src.source_id == name
    del out
    name2 = unique()
    out = make_outlet(name2, name2, ("", "", ""), unit=None)  # no labels, no unit
    with LSLSource(name2, timeout_s=5.0) as src:
        assert src.ch_names == ("ch1", "ch2", "ch3")
        assert _received_value(src, 7.5, 5.0, out)  # unit missing: taken as µV
        chunk = src.read()
        assert chunk.data.shape == (3, 0)
        assert chunk.timestamps.shape == (0,)
    # a unit that is no voltage: the channel comes unconverted, and is listed
    name3 = unique()
    out = make_outlet(name3, name3, LABELS, unit="mV", units={"Pz": "none"})
    with LSLSource(name3, timeout_s=5.0) as src:
        assert src.unconverted_units == {"Pz": "none"}
        seen: list[np.ndarray] = []

        def tick() -> None:
            _push(out, 2.0)
            chunk = src.read(timeout_s=0.02)
            if chunk.n_times:
                seen.append(chunk.data[:, -1])

        assert wait_until(lambda: bool(seen), timeout_s=5.0, tick=tick)
        np.testing.assert_array_equal(seen[-1], [2000.0, 2000.0, 2000.0, 2.0])


@pytest.mark.integration
def test_millivolt_stream_is_scaled_to_microvolts():
    name = unique()
    out = make_outlet(name, name, LABELS, unit="mV")
    with LSLSource(name, timeout_s=5.0) as src:
        assert _received_value(src, 500.0, 5.0, out, pushed=0.5)


@pytest.mark.integration
def test_a_read_for_a_window_returns_its_samples_and_keeps_the_rest_in_order():
    name = unique()
    out = make_outlet(name, name, LABELS)
    with LSLSource(name, timeout_s=5.0) as src:
        # 40 numbered samples are queued before the read asks for 25 ...
        out.push_chunk(
            np.repeat(np.arange(40, dtype=np.float32)[:, None], len(LABELS), axis=1)
        )
        got: list[np.ndarray] = []

        def first() -> None:
            chunk = src.read(timeout_s=0.5, min_samples=25 - sum(map(len, got)))
            if chunk.n_times:
                got.append(chunk.data[0])

        assert wait_until(lambda: sum(map(len, got)) >= 25, timeout_s=5.0, tick=first)
        assert sum(map(len, got)) == 25  # exactly those the window needs
        # ... the rest comes with the next reads, nothing lost or reordered
        for _ in range(20):
            chunk = src.read(timeout_s=0.2, min_samples=1)
            got.append(chunk.data[0])
            if sum(map(len, got)) >= 40:
                break
        np.testing.assert_array_equal(np.concatenate(got), np.arange(40.0))
        # a read that must wait gets its samples as they are pushed
        out.push_chunk(np.full((3, len(LABELS)), 40.0, dtype=np.float32))
        chunk = src.read(timeout_s=2.0, min_samples=3)
        np.testing.assert_array_equal(chunk.data[0], [40.0, 40.0, 40.0])


def _outlet_and_source() -> tuple[str, str, pylsl.StreamOutlet, LSLSource]:
    """A new outlet and an opened source on it (name and source_id), which
    waits for a lost stream without a stall timeout."""
    name = unique()
    sid = f"{name}-sid"
    out = make_outlet(name, sid, LABELS)
    src = LSLSource(name, source_id=sid, timeout_s=5.0, stall_timeout_s=None)
    src.open()
    return name, sid, out, src


@pytest.mark.integration
def test_stream_vanishes_and_returns():
    name, sid, out, src = _outlet_and_source()
    try:
        assert src.state == "connected"
        assert _received_value(src, 1.0, 5.0, out)
        del out  # destroys the outlet: the stream vanishes
        assert wait_until(
            lambda: src.state == "reconnecting",
            timeout_s=5.0,
            tick=lambda: src.read(timeout_s=0.02),
        )
        assert "lost" in src.last_error
        assert name in src.last_error
        assert src.read().n_times == 0  # non-blocking while reconnecting
        assert "lost" in src.last_error  # kept while reconnecting
        out2 = make_outlet(name, sid, LABELS)  # same source comes back
        assert _received_value(src, 2.0, 8.0, out2)
        assert src.state == "connected"
        assert src.reconnects == 1
        assert src.last_error is None  # back: the loss is over
        # timestamps stay on the local clock and non-decreasing after the return
        got = collect(src, 1, timeout_s=1.0)
        _push(out2, 2.0)
        got = collect(src, 5, timeout_s=5.0, into=got)
        ts = got.timestamps()
        assert np.all(np.diff(ts) >= 0)
        assert abs(ts[-1] - pylsl.local_clock()) < 1.0
    finally:
        src.close()
    assert src.state == "stopped"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("labels", "units", "why"),
    [(("C3", "Cz", "C4"), None, "channel count"),
     (("C3", "Cz", "C4", "Oz"), None, "labels"),
     # the pipeline checked the units once: a channel may not turn unconvertible
     (LABELS, {"Cz": "counts"}, "channel 'Cz' in unit 'counts'")],
)  # fmt: skip
def test_a_returned_stream_with_another_layout_is_refused(labels, units, why):
    name, sid, out, src = _outlet_and_source()
    try:
        assert _received_value(src, 1.0, 5.0, out)
        del out
        assert wait_until(
            lambda: src.state == "reconnecting",
            timeout_s=5.0,
            tick=lambda: src.read(timeout_s=0.02),
        )
        wrong = make_outlet(name, sid, labels, units=units)
        assert wait_until(
            lambda: why in (src.last_error or ""),
            timeout_s=8.0,
            tick=lambda: (_push(wrong, 9.0), src.read(timeout_s=0.02)),
        ), src.last_error
        assert "refusing" in src.last_error
        # it stays refused: no data, still reconnecting, while the wrong one pushes
        for _ in range(20):
            _push(wrong, 9.0)
            assert src.read(timeout_s=0.02).n_times == 0
            assert src.state == "reconnecting"
        right = make_outlet(name, sid, LABELS)
        assert _received_value(src, 3.0, 8.0, right)
        assert src.state == "connected"
        assert src.ch_names == LABELS
        assert src.unconverted_units == {}
        assert src.last_error is None
    finally:
        src.close()


@pytest.mark.integration
def test_a_silent_stream_counts_as_lost_and_resumes():
    name = unique()
    out = make_outlet(name, name, LABELS)
    with LSLSource(name, timeout_s=5.0, stall_timeout_s=0.3) as src:
        assert _received_value(src, 1.0, 5.0, out)
        # the outlet stays but sends nothing: after 0.3 s the source reconnects
        assert wait_until(
            lambda: src.state == "reconnecting",
            timeout_s=5.0,
            tick=lambda: src.read(timeout_s=0.02),
        )
        assert "no data" in src.last_error
        assert _received_value(src, 2.0, 8.0, out)
        assert src.reconnects == 1
        assert src.last_error is None
