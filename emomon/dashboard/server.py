"""The dashboard's web server: ZeroMQ in, one page and a WebSocket out.

Three threads, none waiting for another:

- the *receiver* reads ZeroMQ with the project's
  :class:`~emomon.realtime.subscribe.Subscriber` (strict parsing, ``seq``
  tracking, Curve keys, the stream descriptions) and puts each message, with
  its arrival time, into a bounded inbox. The Subscriber is a blocking class:
  in its own thread it stays the one implementation of those checks (a
  ``zmq.asyncio`` socket would need a second one), and it reads ZeroMQ at its
  own pace whatever the web side is doing;
- the *event loop* (aiohttp) takes the inbox's messages into the
  :class:`~emomon.dashboard.state.DashboardState` (each stream's bounded
  backlog) and offers the updates to every open page's queue
  (:mod:`emomon.dashboard.fanout`); each page has a writer task of its own;
- the caller's thread, which starts and stops the other two
  (:class:`Dashboard`), or waits for Ctrl-C (:func:`serve`).

The dashboard is only a subscriber: it never sits in the inference loop, and a
slow page or a stalled dashboard costs ``emomon stream`` nothing.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.resources
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from aiohttp import WSCloseCode, WSMsgType, web

from emomon import __version__
from emomon.dashboard.fanout import RESYNC, Tab, Tabs
from emomon.dashboard.guard import Guard, add_security_headers, allowed_hosts
from emomon.dashboard.settings import DashboardSettings
from emomon.dashboard.state import DashboardState, Update
from emomon.errors import EmomonError, literal
from emomon.realtime._closing import Closing
from emomon.realtime.messages import META_TOPIC, PREDICTION_TOPIC, STATUS_TOPIC
from emomon.realtime.subscribe import Subscriber

__all__ = ["STATIC_DIR", "Dashboard", "serve"]

#: The page, its script and style, and the vendored plotting library.
STATIC_DIR = Path(str(importlib.resources.files("emomon.dashboard") / "static"))
#: Messages waiting between the receiver thread and the event loop, at most
#: (minutes of 8 streams at 4 Hz; only a stalled loop fills it).
INBOX_SIZE = 10_000
#: Seconds between the counters sent to each page (state, age, drops).
TICK_S = 1.0


class _Inbox:
    """Messages from the receiver thread to the event loop (bounded, drop-oldest)."""

    def __init__(self, maxlen: int) -> None:
        self._items: deque[tuple[Any, float]] = deque()
        self._maxlen = maxlen
        self._lock = threading.Lock()
        self._woken = False
        #: Messages dropped because the loop did not take them in time.
        self.dropped = 0

    def put(self, item: tuple[Any, float]) -> bool:
        """Add ``item``; True when the loop must be woken to take it."""
        with self._lock:
            if len(self._items) >= self._maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            wake, self._woken = not self._woken, True
        return wake

    def take(self) -> list[tuple[Any, float]]:
        """Everything waiting, oldest first."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._woken = False
        return items


class Dashboard(Closing):
    """The dashboard's server, run in background threads.

    Parameters
    ----------
    settings : DashboardSettings, optional
        Where to subscribe and serve; default loopback everywhere
        (``tcp://127.0.0.1:5556`` -> ``http://127.0.0.1:8765/``).

    Raises
    ------
    EmomonError
        From the constructor: a bad address or Curve key file. From
        :meth:`start`: the port is in use or the address cannot be bound.

    Examples
    --------
    >>> from emomon.dashboard import Dashboard, DashboardSettings
    >>> with Dashboard(DashboardSettings(port=0)).start() as dash:  # doctest: +SKIP
    ...     print(dash.url)   # open it in a browser
    http://127.0.0.1:41234/
    """

    def __init__(self, settings: DashboardSettings | None = None) -> None:
        self.settings = s = settings if settings is not None else DashboardSettings()
        # Built here, so a bad address or key fails in the caller's thread; the
        # receiver thread uses and closes it (thread start is the barrier).
        self._sub = Subscriber(
            s.address,
            topics=(PREDICTION_TOPIC, STATUS_TOPIC, META_TOPIC),
            curve_secret_key=s.curve_secret_key,
            curve_server_key=s.curve_server_key,
        )
        self.state = DashboardState(
            history_s=s.history_s,
            max_points=s.max_points,
            silent_after_s=s.silent_after_s,
        )
        self.tabs = Tabs(s.client_queue)
        self.guard = Guard()
        self._inbox = _Inbox(INBOX_SIZE)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._port: int | None = None
        self._started = time.monotonic()
        self._server_thread: threading.Thread | None = None
        self._receiver: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------
    def start(self, timeout_s: float = 30.0) -> Self:
        """Bind the web server and start receiving; returns once the page is served.

        Parameters
        ----------
        timeout_s : float
            Longest wait for the web server to bind (default 30 s).

        Returns
        -------
        Dashboard
            ``self``, started (``with Dashboard(...).start() as dash:``).

        Raises
        ------
        EmomonError
            If the port is in use or the address cannot be bound (the
            dashboard is closed again).
        """
        if self._server_thread is not None:
            raise RuntimeError("the dashboard was started already")
        self._server_thread = threading.Thread(
            target=self._serve_forever, name="emomon-dashboard-web", daemon=True
        )
        self._server_thread.start()
        if not self._ready.wait(timeout_s):
            self.close()
            raise EmomonError(
                f"the dashboard's web server did not start in {timeout_s} s"
            )
        if self._error is not None:
            error = self._error
            self.close()
            raise error
        self._receiver = threading.Thread(
            target=self._receive, name="emomon-dashboard-zmq", daemon=True
        )
        self._receiver.start()
        return self

    @property
    def running(self) -> bool:
        """Whether both threads are alive."""
        return all(
            t is not None and t.is_alive()
            for t in (self._server_thread, self._receiver)
        )

    @property
    def port(self) -> int:
        """The port the page is served on (the actual one when ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the dashboard is not started")
        return self._port

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8765/``."""
        base = self.settings.url.rsplit(":", 1)[0]
        return f"{base}:{self.port}/"

    def close(self) -> None:
        """Close the pages' sockets, stop the server and the receiver. Idempotent."""
        self._stop.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop has ended already
                pass
        for th in (self._server_thread, self._receiver):
            if th is not None and th is not threading.current_thread():
                th.join(15.0)
        if self._receiver is None:  # never started: the socket is still ours
            self._sub.close()

    # -- the receiver thread ----------------------------------------------------
    def _receive(self) -> None:
        sub = self._sub
        try:
            while not self._stop.is_set():
                msg = sub.recv(0.1)
                if msg is None:
                    continue
                if self._inbox.put((msg, time.time())):
                    self._wake()
        finally:
            sub.close()

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._take_inbox)
        except RuntimeError:  # the loop is closing
            pass

    # -- the event loop ----------------------------------------------------------
    def _serve_forever(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
        finally:
            self._ready.set()
            self._stop.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = self._app()
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await runner.setup()
        s = self.settings
        try:
            site = web.TCPSite(runner, s.host, s.port)
            try:
                await site.start()
            except OSError as exc:
                self._error = _bind_error(s, exc)
                return
            self._port = int(runner.addresses[0][1])
            self.guard.allow(allowed_hosts(s.host, self._port, s.allowed_hosts))
            self._ready.set()
            ticker = asyncio.create_task(self._tick_forever())
            if self._stop.is_set():
                self._stopping.set()
            await self._stopping.wait()
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            for ws in list(self._sockets):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopped")
        finally:
            await runner.cleanup()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard.middleware])
        app.on_response_prepare.append(add_security_headers)
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
        return app

    def _take_inbox(self) -> None:
        """Ingest what the receiver put in the inbox; one update per kind and stream."""
        points: dict[str, list[Any]] = {}
        for msg, t_recv in self._inbox.take():
            for update in self.state.ingest(msg, t_recv):
                if update.kind == "points":  # coalesced below
                    points.setdefault(update.body["stream"], []).extend(
                        update.body["points"]
                    )
                    continue
                self._flush_points(points)
                self.tabs.broadcast(update)
        self._flush_points(points)

    def _flush_points(self, points: dict[str, list[Any]]) -> None:
        for stream, batch in points.items():
            self.tabs.broadcast(Update("points", {"stream": stream, "points": batch}))
        points.clear()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = time.time()
            self.state.tick(now)
            streams = self.state.stats(now)
            server = self._server_counts()
            for tab in self.tabs:
                tab.offer(
                    Update(
                        "stats",
                        {
                            "now": now,
                            "streams": streams,
                            "server": server,
                            "tab": {"dropped": tab.dropped, "resyncs": tab.resyncs},
                        },
                    )
                )

    def _server_counts(self) -> dict[str, Any]:
        sub = self._sub
        return {
            "address": self.settings.address,
            "received": sum(sub.received.values()),
            "invalid": sub.invalid,
            "inbox_dropped": self._inbox.dropped,
        }

    def _hello(self, tab: Tab) -> Update:
        s, now = self.settings, time.time()
        return Update(
            "hello",
            {
                "server": {
                    **self._server_counts(),
                    "version": __version__,
                    "history_s": s.history_s,
                    "max_points": s.max_points,
                    "silent_after_s": s.silent_after_s,
                    "now": now,
                },
                "tab": {"dropped": tab.dropped, "resyncs": tab.resyncs},
                "streams": self.state.snapshot(now),
            },
        )

    # -- handlers ------------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.health())

    def health(self) -> dict[str, Any]:
        """Counters for monitoring and the benchmark (no stream data).

        Call it from the event loop (the ``/healthz`` handler) or after
        :meth:`close`; from another thread the numbers may be a moment old.

        Returns
        -------
        dict
            ``tabs`` (open pages), ``websockets`` (open sockets), ``tasks``
            (the event loop's tasks: one per open page, plus the server's),
            ``tabs_opened``, ``tab_dropped``, ``streams``, ``points`` (kept),
            ``predictions`` (received), ``missed`` (``seq`` gaps),
            ``refused_host``, ``refused_origin``, ``uptime_s`` and the
            subscriber's counts (``received`` messages of every topic,
            ``invalid``, ``inbox_dropped``).
        """
        loop = self._loop
        tasks = len(asyncio.all_tasks(loop)) if loop is not None else 0
        return {
            "ok": True,
            "tabs": len(self.tabs),
            "websockets": len(self._sockets),
            "tasks": tasks,
            "tabs_opened": self.tabs.opened,
            "tab_dropped": self.tabs.dropped,
            **self.state.counts(),
            **self._server_counts(),
            "refused_host": self.guard.refused_host,
            "refused_origin": self.guard.refused_origin,
            "uptime_s": time.monotonic() - self._started,
        }

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            heartbeat=10.0, timeout=2.0, max_msg_size=1 << 16, compress=False
        )
        await ws.prepare(request)
        self._sockets.add(ws)
        tab = self.tabs.add()
        writer = asyncio.create_task(self._write(ws, tab))
        try:
            # The page sends nothing the server needs; reading notices the close.
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.tabs.remove(tab)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            self._sockets.discard(ws)
        return ws

    async def _write(self, ws: web.WebSocketResponse, tab: Tab) -> None:
        """Send ``tab`` what it is offered, as it can take it (one task per page)."""
        try:
            while not ws.closed and not tab.closed:
                batch = await tab.take()
                if tab.closed:
                    return
                if batch == RESYNC:
                    text, n = self._hello(tab).text, 1
                else:
                    assert isinstance(batch, list)
                    if not batch:
                        continue
                    n = len(batch)
                    text = (
                        batch[0].text
                        if n == 1
                        else "[" + ",".join(u.text for u in batch) + "]"
                    )
                await ws.send_str(text)
                tab.sent += n
        except ConnectionResetError:  # the page went away mid-send
            pass
        finally:
            if not ws.closed:
                await ws.close()


def _bind_error(settings: DashboardSettings, exc: OSError) -> EmomonError:
    where = literal(f"{settings.host}:{settings.port}")
    if exc.errno == errno.EADDRINUSE:
        return EmomonError(
            f"cannot serve the dashboard on {where}: the port is in use (another "
            "`emomon dashboard`?); choose another {port} or stop the process "
            "that uses it",
            params=("port",),
        )
    reason = literal(exc.strerror or str(exc))
    return EmomonError(
        f"cannot serve the dashboard on {where}: {reason}; choose another {{host}} "
        "or {port}",
        params=("host", "port"),
    )


def serve(
    settings: DashboardSettings | None = None,
    *,
    stop_event: threading.Event,
    announce: Callable[[Dashboard], None] | None = None,
) -> dict[str, Any]:
    """Run the dashboard until ``stop_event`` is set (``emomon dashboard``).

    Parameters
    ----------
    settings : DashboardSettings, optional
        Where to subscribe and serve.
    stop_event : threading.Event
        Set it (Ctrl-C does, through the command line) to stop.
    announce : callable, optional
        Called with the started :class:`Dashboard` (its :attr:`Dashboard.url`),
        once the page is served.

    Returns
    -------
    dict
        The final :meth:`Dashboard.health` counters.

    Raises
    ------
    EmomonError
        If the address, a key file or the port is unusable, or the server
        stops by itself.
    """
    with Dashboard(settings).start() as dash:
        if announce is not None:
            announce(dash)
        while not stop_event.wait(0.2):
            if not dash.running:
                raise EmomonError("the dashboard's server stopped unexpectedly")
    return dash.health()
