"""``emomon broker``: a ZeroMQ XSUB/XPUB forwarder so many monitors meet many apps.

Publishers (``emomon stream`` with a connecting publisher,
``PublisherSettings(connect=True)``) connect to the *frontend* (XSUB);
subscribers (``emomon listen``, :class:`~emomon.realtime.subscribe.Subscriber`)
connect to the *backend* (XPUB). The forwarding is ``zmq.proxy_steerable`` in a
thread, stopped through an inproc control socket (DESIGN.md section 10).

The backend is verbose (every subscription travels upstream), so each
publisher still sees late joiners and re-sends its latest status. Both sides
follow the publisher's security rules: loopback needs nothing; any other address
needs CurveZMQ (``curve_secret_key`` and ``curve_allowed_dir``, applied to both
sockets; connecting publishers and subscribers are then Curve clients) unless
``insecure``.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import zmq

from emomon.errors import EmomonError, literal
from emomon.realtime._closing import Closing
from emomon.realtime.messages import DEFAULT_BACKEND, DEFAULT_FRONTEND
from emomon.realtime.publish import (
    check_curve_settings,
    is_loopback_address,
    warn_insecure,
)
from emomon.realtime.security import CurveServer, apply_server_keys

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_FRONTEND",
    "Broker",
]


class Broker(Closing):
    """XSUB (frontend) to XPUB (backend) forwarder running in a thread.

    Parameters
    ----------
    frontend : str
        Address publishers connect to (bound here). ``tcp://127.0.0.1:*`` picks
        a free port; read it back from :attr:`frontend_endpoint`.
    backend : str
        Address subscribers connect to (bound here).
    curve_secret_key : str or Path, optional
        Server secret key file; with ``curve_allowed_dir`` enables Curve on both
        sockets.
    curve_allowed_dir : str or Path, optional
        Directory of allowed clients' (publishers' and subscribers') public keys.
    insecure : bool
        Permit non-loopback addresses without Curve (warns once).

    Raises
    ------
    EmomonError
        On a security-rule violation, a bad key, or an address that cannot be
        bound.
    """

    def __init__(
        self,
        frontend: str = DEFAULT_FRONTEND,
        backend: str = DEFAULT_BACKEND,
        *,
        curve_secret_key: str | Path | None = None,
        curve_allowed_dir: str | Path | None = None,
        insecure: bool = False,
    ) -> None:
        for address in (frontend, backend):
            check_curve_settings(
                address,
                secret=curve_secret_key,
                allowed=curve_allowed_dir,
                insecure=insecure,
            )
        self._ctx = zmq.Context()
        self._auth: CurveServer | None = None
        self._sockets: list[zmq.Socket] = []
        self._thread: threading.Thread | None = None
        self._control_addr = f"inproc://emomon-broker-{uuid.uuid4().hex}"
        try:
            if curve_secret_key is not None and curve_allowed_dir is not None:
                self._auth = CurveServer(self._ctx, curve_allowed_dir)
            self._xsub = self._bind(zmq.XSUB, frontend, curve_secret_key)
            self._xpub = self._bind(zmq.XPUB, backend, curve_secret_key)
            self._control = self._ctx.socket(zmq.PAIR)
            self._sockets.append(self._control)
            self._control.bind(self._control_addr)
            self._steer = self._ctx.socket(zmq.PAIR)
            self._sockets.append(self._steer)
            self._steer.setsockopt(zmq.LINGER, 1000)
            self._steer.connect(self._control_addr)
        except BaseException:
            self._teardown()
            raise
        if curve_secret_key is None:
            for address in (frontend, backend):
                if not is_loopback_address(address):
                    warn_insecure(address)
        self.frontend_endpoint = _endpoint(self._xsub)
        self.backend_endpoint = _endpoint(self._xpub)

    def _bind(self, kind: int, address: str, secret: str | Path | None) -> zmq.Socket:
        sock = self._ctx.socket(kind)
        self._sockets.append(sock)
        sock.setsockopt(zmq.LINGER, 0)
        if kind == zmq.XPUB:
            sock.setsockopt(getattr(zmq, "XPUB_VERBOSER", zmq.XPUB_VERBOSE), 1)
        if secret is not None:
            apply_server_keys(sock, secret)
        if address.startswith("tcp://["):
            sock.setsockopt(zmq.IPV6, 1)
        try:
            sock.bind(address)
        except zmq.ZMQError as exc:
            raise EmomonError(
                f"cannot bind the broker to {literal(address)}: "
                f"{literal(exc.strerror)}; choose another address or port "
                "({frontend}/{backend})",
                params=("frontend", "backend"),
            ) from None
        return sock

    def start(self) -> Broker:
        """Start forwarding in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="emomon-broker", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            zmq.proxy_steerable(self._xsub, self._xpub, None, self._control)
        except zmq.ContextTerminated:  # pragma: no cover - closed under us
            pass

    @property
    def running(self) -> bool:
        """Whether the forwarding thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the forwarding thread to end (after :meth:`stop`)."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop forwarding, close the sockets and the context. Idempotent."""
        if self._thread is not None and self._thread.is_alive():
            self._steer.send(b"TERMINATE")
            self._thread.join(timeout_s)
        self._teardown()

    def _teardown(self) -> None:
        for sock in self._sockets:
            sock.close(linger=0)
        self._sockets = []
        if self._auth is not None:
            self._auth.close()
            self._auth = None
        if self._ctx is not None and not self._ctx.closed:
            self._ctx.term()

    def close(self) -> None:
        """Stop forwarding and release everything (:meth:`stop`)."""
        self.stop()

    def __enter__(self) -> Broker:
        return self.start()


def _endpoint(sock: zmq.Socket) -> str:
    return sock.getsockopt(zmq.LAST_ENDPOINT).decode("utf-8", "replace")
