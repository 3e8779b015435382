"""The page in a real browser, fed by a real ``emomon stream``.

Headless Chromium (Debian's ``chromium``, through Playwright) opens the page of
``emomon dashboard`` (a subprocess, as a user runs it) while ``emomon stream
--source replay`` publishes a recording with a bad stretch; what uPlot plots is
compared, seq by seq, with what a plain pyzmq subscriber received.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from emomon.realtime.broker import Broker
from emomon.realtime.meta import describe
from emomon.realtime.publish import Publisher, PublisherSettings
from tests.realtime.helpers import fake_prediction, free_tcp_port

from .conftest import CHART_DATA_JS, SEED_CLASSES, poll_until, text_of, wait_page

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LAST_SEQ_ABOVE = "n => { const t = document.getElementById('last-seq').textContent;" \
    " return /^[0-9]+$/.test(t) && +t > n ? +t : 0; }"  # fmt: skip


def _rows(chart: dict[str, Any]) -> tuple[list[int], list[list[float | None]]]:
    """The chart's (seqs, value columns) without its break rows (seq null)."""
    seq, *cols = chart["data"][1:]
    keep = [i for i, s in enumerate(seq) if s is not None]
    return [seq[i] for i in keep], [[c[i] for i in keep] for c in cols]


def _check_chart_matches(
    chart: dict[str, Any], preds: list[dict[str, Any]], task: str, classes: list[str]
) -> set[int]:
    """The plotted seqs and values are the received ones; gaps are the flagged
    windows; returns the flagged seqs."""
    seqs, cols = _rows(chart)
    assert seqs == [p["seq"] for p in preds]
    flagged = {p["seq"] for p in preds if not p["quality"]["ok"]}
    for k, cls in enumerate(classes):
        gaps = {s for s, v in zip(seqs, cols[k], strict=True) if v is None}
        assert gaps == flagged, (cls, sorted(gaps ^ flagged))
        for p, v in zip(preds, cols[k], strict=True):
            if p["quality"]["ok"]:
                sent = p[task]["p_high"] if len(classes) == 1 else p[task]["probs"][cls]
                assert v == sent  # the number sent, not a rounded copy
    return flagged


def test_page_plots_exactly_what_a_plain_subscriber_receives(
    page, dashboard, plain_sub, emomon_cli, va_model, bad_recording
):
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    dash = dashboard(address)
    sub = plain_sub(address)
    # Before any publisher: the page says it waits, and where.
    page.goto(dash.url)
    wait_page(page, "() => window.emomonDashboard !== undefined", timeout_s=10)
    wait_page(
        page,
        "() => document.getElementById('link').dataset.link === 'live'",
        timeout_s=10,
    )
    wait_page(
        page,
        "a => document.getElementById('waiting-address').textContent === a",
        arg=address,
        timeout_s=10,
    )
    assert page.get_attribute("#state", "data-state") == "waiting"
    assert text_of(page, "state") == "waiting for stream"
    assert page.is_visible("#waiting")
    # Both subscribers are connected (ZeroMQ retries until the port is bound).
    stream = emomon_cli.start(
        "stream", "--source", "replay", "--file", str(bad_recording),
        "--model", str(va_model), "--speed", "4", "--quiet", "--address", address,
    )  # fmt: skip
    # The page, read twice while the stream runs: the shown seq grows.
    first = wait_page(page, LAST_SEQ_ABOVE, arg=-1, timeout_s=60)
    assert stream.poll() is None, "the stream ended before the first read"
    second = wait_page(page, LAST_SEQ_ABOVE, arg=first, timeout_s=20)
    assert stream.poll() is None, "the stream ended before the second read"
    assert second > first
    assert page.get_attribute("#state", "data-state") == "connected"

    _, err = emomon_cli.finish(stream, 60.0)
    assert stream.returncode == 0, err
    poll_until(
        lambda: sub.stopped("emomon-replay"),
        timeout_s=10,
        tick=sub.recv,
        what="the stopped status on the plain subscriber",
    )
    preds = sub.predictions()
    assert preds[0]["seq"] == 0
    assert [p["seq"] for p in preds] == list(range(len(preds)))  # none missed
    last = preds[-1]["seq"]
    wait_page(
        page,
        "n => document.getElementById('state').dataset.state === 'stopped' && "
        "document.getElementById('last-seq').textContent === String(n)",
        arg=last,
        timeout_s=10,
    )
    assert "stopped" in text_of(page, "state")

    charts = page.evaluate(CHART_DATA_JS)
    assert set(charts) == {"valence", "arousal"}
    for task in ("valence", "arousal"):
        assert charts[task]["labels"] == ["time", "seq", "p(high)"]
        flagged = _check_chart_matches(charts[task], preds, task, ["high"])
        assert 3 <= len(flagged) < len(preds) // 2, flagged
    # the scalp map names the bad channel of the last flagged window's reason
    assert "FC1: nonfinite" in text_of(page, "scalp-history")
    assert page.emomon_errors == []
    rc, err = dash.interrupt()
    assert rc == 0, err
    assert "emomon dashboard: stopped (1 page(s) served" in err


def test_three_class_stream_behind_a_broker_opened_mid_stream_and_resumed(
    page, dashboard, plain_sub, emomon_cli, va_model, class3_model, bad_recording
):
    """Two streams into one broker; the page opens after the 3-class one has
    started (its history is there at once), switches streams by name, and
    follows the valence/arousal stream through a stop and a new run."""
    with Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as broker:
        broker.start()
        back = broker.backend_endpoint
        dash = dashboard(back)
        sub = plain_sub(back)

        def stream(name: str, model, *extra: str):
            return emomon_cli.start(
                "stream", "--source", "replay", "--file", str(bad_recording),
                "--model", str(model), "--speed", "4", "--quiet", "--connect",
                "--address", broker.frontend_endpoint, "--name", name, *extra,
            )  # fmt: skip

        seed = stream("seed-like", class3_model)
        va = stream("va-headset", va_model, "--duration", "4")
        # Mid-stream: the dashboard holds a history before the page exists.
        poll_until(
            lambda: len(sub.predictions("seed-like")) >= 12,
            timeout_s=60,
            tick=sub.recv,
            what="12 predictions of the 3-class stream",
        )
        page.goto(f"{dash.url}#stream=seed-like")
        history = wait_page(
            page,
            "() => { const c = window.emomonDashboard.charts['class'];"
            " return c && c.data[1].filter(s => s !== null).length; }",
            timeout_s=10,
        )
        assert history >= 12  # at once: the page did not wait for 12 new ones
        assert page.input_value("#stream-select") == "seed-like"
        assert page.is_hidden("#va-card")  # no valence/arousal in this model
        assert "chance level 1/3" in page.inner_text("#charts")

        _, err = emomon_cli.finish(va, 60.0)
        assert va.returncode == 0, err
        _, err = emomon_cli.finish(seed, 60.0)
        assert seed.returncode == 0, err
        poll_until(
            lambda: sub.stopped("seed-like") and sub.stopped("va-headset"),
            timeout_s=10,
            tick=sub.recv,
            what="both streams' stopped status",
        )
        preds = sub.predictions("seed-like")
        wait_page(
            page,
            "n => document.getElementById('last-seq').textContent === String(n)",
            arg=preds[-1]["seq"],
            timeout_s=10,
        )
        charts = page.evaluate(CHART_DATA_JS)
        assert list(charts) == ["class"]
        assert charts["class"]["labels"] == ["time", "seq"] + [
            f"p({c})" for c in SEED_CLASSES
        ]
        flagged = _check_chart_matches(charts["class"], preds, "class", SEED_CLASSES)
        assert flagged
        for p in preds:
            if p["quality"]["ok"]:
                assert math.isclose(
                    sum(p["class"]["probs"].values()), 1.0, rel_tol=1e-5
                )

        # The other stream, by name: stopped, trace kept; then a new run resumes it.
        page.select_option("#stream-select", "va-headset")
        wait_page(
            page,
            "() => document.getElementById('state').dataset.state === 'stopped'",
            timeout_s=10,
        )
        first_run = [p["seq"] for p in sub.predictions("va-headset")]
        assert first_run == list(range(len(first_run)))
        mark = len(sub.payloads)
        again = stream("va-headset", va_model, "--duration", "3")
        wait_page(
            page,
            "() => document.getElementById('state').dataset.state === 'connected'",
            timeout_s=60,
        )
        _, err = emomon_cli.finish(again, 60.0)
        assert again.returncode == 0, err
        poll_until(
            lambda: sub.stopped("va-headset", after=mark),
            timeout_s=10,
            tick=sub.recv,
            what="the second run's predictions",
        )
        both = [p["seq"] for p in sub.predictions("va-headset")]
        wait_page(
            page,
            "n => { const c = window.emomonDashboard.charts['valence'];"
            " return c && c.data[1].filter(s => s !== null).length === n; }",
            arg=len(both),
            timeout_s=10,
        )
        wait_page(
            page,
            "() => document.getElementById('state').dataset.state === 'stopped'",
            timeout_s=10,
        )
        seq_col = page.evaluate(CHART_DATA_JS)["valence"]["data"][1]
        # the old run's trace is kept, a break (null) and the new run from seq 0
        cut = seq_col.index(None)
        assert seq_col[:cut] == first_run
        assert seq_col[cut + 1 :] == both[len(first_run) :]
        assert seq_col[cut + 1] == 0
        assert page.emomon_errors == []
        rc, err = dash.interrupt()
        assert rc == 0, err


def _publish(pub, seqs, stream: str = "s1") -> None:
    for seq in seqs:
        pub.publish_prediction(fake_prediction(seq, stream))


def _subscribed(pub, n: int, timeout_s: float = 20.0) -> None:
    """Wait until the publisher saw ``n`` subscriptions in all (bounded)."""
    poll_until(
        lambda: pub.stats.subscribe_events >= n,
        timeout_s=timeout_s,
        tick=lambda: pub.poll_subscriptions(timeout_s=0.05),
        what=f"{n} subscriptions",
    )


def test_the_page_survives_a_dashboard_restart_and_zooms(page, dashboard):
    """The server goes away and comes back on its port: the page says so,
    reconnects by itself and keeps its trace; drag zooms, double-click
    follows again."""
    with Publisher(PublisherSettings(address="tcp://127.0.0.1:*")) as pub:
        first = dashboard(pub.endpoint)
        _subscribed(pub, 3)  # prediction, status, meta
        pub.publish_meta(
            describe(
                stream="s1", model="m", ch_names=["Fz", "Cz", "Pz"],
                tasks={"valence": ["low", "high"], "arousal": ["low", "high"]},
                sfreq=128.0, model_sfreq=128.0, window_s=2.0, hop_s=0.25,
            )
        )  # fmt: skip
        _publish(pub, range(20))
        page.goto(first.url)
        wait_page(page, LAST_SEQ_ABOVE, arg=18, timeout_s=20)

        # drag across the valence chart: zoomed, no longer following
        box = page.locator("[data-task=valence] .u-over").bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.2, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
        page.mouse.up()
        assert page.is_visible("#follow")
        # redrawn on the next frame: the newest windows are outside the view
        wait_page(
            page,
            "() => { const u = window.emomonDashboard.charts.valence;"
            " return u.scales.x.max < u.data[0][u.data[0].length - 1]; }",
            timeout_s=5,
        )
        page.dblclick("[data-task=valence] .u-over")
        assert page.is_hidden("#follow")

        rc, err = first.interrupt()
        assert rc == 0, err
        wait_page(
            page,
            "() => document.getElementById('link').dataset.link === 'down'",
            timeout_s=10,
        )
        assert "dashboard unreachable" in text_of(page, "link")
        # the same dashboard again, on the same port: no history of its own
        again = dashboard(pub.endpoint, port=first.port)
        _subscribed(pub, 6)  # the newcomer gets the description and status again
        wait_page(
            page,
            "() => document.getElementById('link').dataset.link === 'live'",
            timeout_s=30,
        )
        _publish(pub, range(20, 30))
        wait_page(page, LAST_SEQ_ABOVE, arg=28, timeout_s=20)
        seqs = page.evaluate(
            "() => window.emomonDashboard.charts.valence.data[1]"
            ".filter(s => s !== null)"
        )
        assert seqs == list(range(30))  # what it had, then what came after
        assert again.health()["points"] == 10
        # the browser logs the refused reconnection attempts; nothing else
        unexpected = [
            e for e in page.emomon_errors if "ERR_CONNECTION_REFUSED" not in e
        ]
        assert unexpected == []
        rc, err = again.interrupt()
        assert rc == 0, err
