"""The dashboard's server with real sockets: a real Publisher on 127.0.0.1, the
aiohttp server in process, aiohttp's client as the page (no browser).

Origin and Host checks (a foreign page cannot open the WebSocket, a rebinding
name gets nothing), history then live updates over the socket, and a closed or
vanished tab that leaves no socket and no task behind.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from emomon.dashboard.server import STATIC_DIR, Dashboard
from emomon.dashboard.settings import DashboardSettings
from emomon.realtime.messages import MetaMessage, status_message
from emomon.realtime.meta import describe
from emomon.realtime.publish import Publisher, PublisherSettings
from tests.realtime.helpers import MAX_ITERATIONS, fake_prediction

from .conftest import run_async

pytestmark = pytest.mark.integration


@pytest.fixture
def pub() -> Iterator[Publisher]:
    with Publisher(PublisherSettings(address="tcp://127.0.0.1:*")) as p:
        yield p


@pytest.fixture
def dash(pub) -> Iterator[Dashboard]:
    """The dashboard on a free port, subscribed to ``pub`` (subscriptions seen)."""
    with Dashboard(DashboardSettings(address=pub.endpoint, port=0)).start() as d:
        deadline = time.monotonic() + 10
        for _ in range(MAX_ITERATIONS):  # prediction, status, meta
            if pub.stats.subscribe_events >= 3:
                break
            assert time.monotonic() < deadline, pub.stats
            pub.poll_subscriptions(timeout_s=0.05)
        yield d


def _meta(stream: str = "s1") -> MetaMessage:
    return describe(
        stream=stream, model="m", ch_names=["Fz", "Cz"],
        tasks={"valence": ["low", "high"], "arousal": ["low", "high"]},
        sfreq=128.0, model_sfreq=128.0, window_s=2.0, hop_s=0.25,
    )  # fmt: skip


def _status(seq: int, state: str, stream: str = "s1") -> dict[str, Any]:
    return status_message(
        seq=seq, stream=stream, state=state, samples=0, dropped=0,
        buffer_lag_s=0.0, uptime_s=1.0, predictions=0,
    )  # fmt: skip


async def _health(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}healthz") as r:
        assert r.status == 200
        return await r.json()


async def _until(session, url, check, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """Poll ``/healthz`` until ``check(health)``; each poll is a real request
    (the loop's only wait), bounded by a deadline and a count."""
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        health = await _health(session, url)
        if check(health):
            return health
        assert time.monotonic() < deadline, health
    raise AssertionError(f"{MAX_ITERATIONS} polls of /healthz")


async def _receive_until(ws, done, *, timeout_s: float = 10.0) -> list[dict]:
    """The page's messages (batches flattened) until ``done(messages)``."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if done(out):
            return out
        left = deadline - time.monotonic()
        assert left > 0, [m["type"] for m in out]
        msg = await ws.receive(timeout=left)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        out += data if isinstance(data, list) else [data]
    raise AssertionError(f"{MAX_ITERATIONS} messages")


def _of(msgs: list[dict], kind: str) -> list[dict]:
    return [m for m in msgs if m["type"] == kind]


def test_history_then_live_updates_over_the_websocket(pub, dash):
    pub.publish_meta(_meta())
    pub.publish_status(_status(0, "connected"))
    for seq in range(10):
        pub.publish_prediction(fake_prediction(seq, "s1"))

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            await _until(session, dash.url, lambda h: h["points"] == 10)
            async with session.ws_connect(f"{dash.url}ws") as ws:
                first = await _receive_until(ws, lambda m: _of(m, "hello"))
                (hello,) = first  # a new page's first message: the snapshot
                (snap,) = hello["streams"]
                assert [p["seq"] for p in snap["points"]] == list(range(10))
                assert snap["meta"]["ch_names"] == ["Fz", "Cz"]
                assert snap["status"]["state"] == "connected"
                assert hello["server"]["address"] == pub.endpoint
                for seq in range(10, 15):
                    pub.publish_prediction(fake_prediction(seq, "s1"))
                pub.publish_status(_status(1, "stopped"))

                def done(msgs: list[dict]) -> bool:
                    stats = _of(msgs, "stats")
                    return bool(stats) and stats[-1]["streams"]["s1"]["state"] == (
                        "stopped"
                    )

                live = await _receive_until(ws, done)
                seqs = [p["seq"] for m in _of(live, "points") for p in m["points"]]
                assert seqs == list(range(10, 15))
                assert [m["status"]["state"] for m in _of(live, "status")] == [
                    "stopped"
                ]
                last = _of(live, "stats")[-1]
                assert last["streams"]["s1"]["received"] == 15
                assert last["streams"]["s1"]["last_seq"] == 14
                assert last["tab"] == {"dropped": 0, "resyncs": 0}

    run_async(scenario, timeout_s=60)


def test_a_websocket_from_a_foreign_origin_or_host_is_refused(dash):
    port = dash.port
    own = f"http://127.0.0.1:{port}"

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            for origin in ("http://evil.example", f"http://evil.example:{port}",
                           "null", f"https://127.0.0.1:{port}"):  # fmt: skip
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await session.ws_connect(
                        f"{dash.url}ws", headers={"Origin": origin}
                    )
                assert err.value.status == 403, origin
            # DNS rebinding: evil.example resolves to 127.0.0.1, the Host says so
            for path in ("", "ws", "healthz", "static/dashboard.js"):
                async with session.get(
                    f"{dash.url}{path}", headers={"Host": f"evil.example:{port}"}
                ) as r:
                    assert r.status == 403, path
                    assert "unknown Host" in await r.text()
            # the page's own origin, any loopback name, and no Origin (not a browser)
            for headers in (
                {"Origin": own},
                {"Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"},
                {},
            ):
                async with session.ws_connect(f"{dash.url}ws", headers=headers) as ws:
                    got = await _receive_until(ws, lambda m: _of(m, "hello"))
                    assert got[0]["type"] == "hello"
            health = await _health(session, dash.url)
            assert health["refused_origin"] == 4
            assert health["refused_host"] == 4
            assert health["tabs_opened"] == 3

    run_async(scenario, timeout_s=60)


def test_security_headers_and_nothing_from_elsewhere(dash):
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(dash.url) as r:
                assert r.status == 200
                page = await r.text()
                csp = r.headers["Content-Security-Policy"]
                assert "default-src 'none'" in csp
                assert "script-src 'self'" in csp
                assert "frame-ancestors 'none'" in csp
                assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert 'id="last-seq"' in page
            for name in ("vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css",
                         "dashboard.js", "panels.js", "dashboard.css"):  # fmt: skip
                async with session.get(f"{dash.url}static/{name}") as r:
                    assert r.status == 200, name
                    assert await r.read() == (STATIC_DIR / name).read_bytes()
            async with session.get(f"{dash.url}static/../settings.py") as r:
                assert r.status in (403, 404)

    run_async(scenario, timeout_s=30)
    # offline: the page loads nothing from another host (no CDN, no web fonts)
    page = (STATIC_DIR / "index.html").read_text()
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(links) == 6
    assert all(u.startswith("/static/") or u == "data:," for u in links), links
    script = "".join(p.read_text() for p in STATIC_DIR.glob("*.js"))
    assert set(re.findall(r"https?://[^\s\"']+", script)) == {
        "http://www.w3.org/2000/svg"  # the SVG namespace: a name, never fetched
    }
    css = (STATIC_DIR / "dashboard.css").read_text()
    assert "url(" not in css
    assert "@import" not in css


def _raw_websocket(port: int) -> socket.socket:
    """A WebSocket opened by hand on a plain TCP socket (101 read back)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    for _ in range(1000):
        head += sock.recv(1)
        if head.endswith(b"\r\n\r\n"):
            break
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_a_closed_or_vanished_tab_leaves_no_socket_or_task_behind(dash):
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            before = await _health(session, dash.url)
            assert before["tabs"] == before["websockets"] == 0
            sockets = [await session.ws_connect(f"{dash.url}ws") for _ in range(3)]
            for ws in sockets:
                await _receive_until(ws, lambda m: _of(m, "hello"))
            raw = _raw_websocket(dash.port)  # a tab whose machine vanished
            during = await _until(session, dash.url, lambda h: h["tabs"] == 4)
            assert during["websockets"] == 4
            assert during["tasks"] >= before["tasks"] + 4  # a writer per tab
            for ws in sockets:
                await ws.close()
            raw.close()  # no close frame: the connection just ends
            after = await _until(
                session,
                dash.url,
                lambda h: (
                    h["tabs"] == 0
                    and h["websockets"] == 0
                    and h["tasks"] == before["tasks"]
                ),
            )
            assert after["tabs_opened"] == 4

    run_async(scenario, timeout_s=60)


def test_a_curve_publisher_is_read_with_the_clients_keys(tmp_path):
    """The dashboard as a Curve client (``--curve-secret``/``--curve-server``,
    as ``emomon listen``): an allowed key receives, the page gets the stream."""
    from emomon.realtime.security import generate_keypair

    server_pub, server_sec = generate_keypair(tmp_path / "server", "server")
    client_pub, client_sec = generate_keypair(tmp_path / "clients", "client-dash")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / client_pub.name).write_bytes(client_pub.read_bytes())
    settings = PublisherSettings(
        address="tcp://127.0.0.1:*",
        curve_secret_key=str(server_sec),
        curve_allowed_dir=str(allowed),
    )
    with Publisher(settings) as pub:
        dash_settings = DashboardSettings(
            address=pub.endpoint,
            port=0,
            curve_secret_key=client_sec,
            curve_server_key=server_pub,
        )
        with Dashboard(dash_settings).start() as dash:
            deadline = time.monotonic() + 10
            for _ in range(MAX_ITERATIONS):  # the handshake passed authentication
                if pub.stats.subscribe_events >= 3:
                    break
                assert time.monotonic() < deadline, pub.stats
                pub.poll_subscriptions(timeout_s=0.05)
            for seq in range(5):
                pub.publish_prediction(fake_prediction(seq, "secure"))

            async def scenario() -> dict[str, Any]:
                async with aiohttp.ClientSession() as session:
                    return await _until(session, dash.url, lambda h: h["points"] == 5)

            health = run_async(scenario, timeout_s=30)
    assert health["predictions"] == 5
    assert health["missed"] == 0
