"""Where the dashboard listens and serves, and what it keeps: the settings."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from pathlib import Path

from emomon.errors import ConfigError, literal
from emomon.realtime.messages import DEFAULT_ADDRESS

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DashboardSettings",
    "is_loopback_host",
]

#: Where the page is served by default: loopback only.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: Names of this machine a browser may put in ``Host`` for a loopback server.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the web server reachable from this machine only.

    Parameters
    ----------
    host : str
        An IP address (``127.0.0.1``, ``::1``, ``0.0.0.0``) or ``localhost``.

    Returns
    -------
    bool
        True for a loopback IP (all of 127.0.0.0/8, ``::1``) and ``localhost``;
        False for wildcards (``0.0.0.0``, ``::``, ``""``), other addresses and
        other names.
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class DashboardSettings:
    """How ``emomon dashboard`` subscribes, serves and keeps history.

    Attributes
    ----------
    address : str
        The ZeroMQ endpoint to subscribe to: an ``emomon stream`` publisher or
        an ``emomon broker`` backend (default ``tcp://127.0.0.1:5556``).
    host : str
        Address the web server binds (default ``127.0.0.1``). Anything that is
        not loopback needs ``insecure``.
    port : int
        TCP port of the web server (default 8765; 0 picks a free one, read it
        back from :attr:`Dashboard.url <emomon.dashboard.server.Dashboard.url>`).
    insecure : bool
        Permit a non-loopback ``host``: the page and its WebSocket are plain
        HTTP, so anyone on the network who can reach the port sees the health
        data. Default False.
    allowed_hosts : tuple of str
        Extra names (``labpc.local``) the browser may use to reach the server
        (the ``Host`` header, and the ``Origin`` of the WebSocket). The
        loopback names and a non-wildcard ``host`` are always allowed.
    curve_secret_key : str or Path, optional
        This client's secret key file, for a CurveZMQ publisher or broker;
        needs ``curve_server_key``.
    curve_server_key : str or Path, optional
        The publisher's (or broker's) public key file.
    history_s : float
        Seconds of predictions kept per stream by the server and shown by the
        page (default 300: the last five minutes).
    max_points : int
        Most predictions kept per stream, whatever ``history_s`` says (default
        2400: ten minutes at the default 4 Hz); bounds the server's and the
        page's memory for a stream with a short hop.
    client_queue : int
        Messages queued for one browser tab; a tab further behind loses its
        queue (counted) and gets a fresh copy of the history instead
        (default 256).
    silent_after_s : float
        A stream that sent nothing (not even its once-a-second status) for this
        long is shown as ``silent`` (default 5).
    """

    address: str = DEFAULT_ADDRESS
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    insecure: bool = False
    allowed_hosts: tuple[str, ...] = ()
    curve_secret_key: str | Path | None = None
    curve_server_key: str | Path | None = None
    history_s: float = 300.0
    max_points: int = 2400
    client_queue: int = 256
    silent_after_s: float = 5.0

    def __post_init__(self) -> None:
        port = self.port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
            raise ConfigError(
                f"{{port}} must be a TCP port 0-65535, got {literal(port)}",
                params=("port",),
            )
        for name in ("history_s", "silent_after_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value > 0
            ):
                raise ConfigError(
                    f"{{{name}}} must be a number > 0, got {literal(value)}",
                    params=(name,),
                )
        for name in ("max_points", "client_queue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{{{name}}} must be an integer >= 1, got {literal(value)}",
                    params=(name,),
                )
        if not self.insecure and not is_loopback_host(self.host):
            raise ConfigError(
                f"serving the dashboard on {literal(self.host)} needs {{insecure}}: "
                "the page is plain HTTP and shows health data to anyone who can "
                f"reach it; loopback ({DEFAULT_HOST}) needs nothing",
                params={"insecure": "insecure=True", "host": "host"},
            )
        for name in self.allowed_hosts:
            if not name or any(c in name for c in "/ \t@"):
                raise ConfigError(
                    f"{{allowed_hosts}} takes host names such as labpc.local, got "
                    f"{literal(name)}",
                    params=("allowed_hosts",),
                )

    @property
    def url(self) -> str:
        """The page's address as configured (port 0 until the server is bound)."""
        return f"http://{_url_host(self.host)}:{self.port}/"


def _url_host(host: str) -> str:
    """``host`` as it appears in a URL (IPv6 in brackets, wildcards as loopback)."""
    name = host.strip()
    if name in ("", "0.0.0.0"):
        return DEFAULT_HOST
    if name == "::":
        return "[::1]"
    if ":" in name and not name.startswith("["):
        return f"[{name}]"
    return name
