"""Who may talk to the dashboard: ``Host`` and ``Origin`` checks, security headers.

Any page open in the user's browser can make it connect to ``127.0.0.1``; the
browser does not stop a foreign page from *opening a WebSocket* to another
origin, and a DNS-rebinding site can make its own name resolve to
``127.0.0.1`` and read the answers. The dashboard shows health data, so:

- every request must name this server in ``Host``: a loopback name
  (``127.0.0.1``, ``localhost``, ``[::1]``), the address it was bound to, or a
  name the user allowed, with the server's port. A rebinding site's requests
  carry its own name and are refused.
- a request that carries an ``Origin`` (browsers send one with every WebSocket
  handshake and cross-site request) must come from one of those same
  ``http://host:port`` origins. A WebSocket from any other page is refused
  before it is opened. Clients that are not browsers send no ``Origin``; they
  cannot be made to connect by a web page.

Refusals are ``403`` with a one-line reason and are counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from emomon.dashboard.settings import LOOPBACK_NAMES

__all__ = ["SECURITY_HEADERS", "Guard", "add_security_headers", "allowed_hosts"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Sent with every answer: no framing, no sniffing, nothing loaded from
#: elsewhere (the page and its library are served from here; no CDN).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def allowed_hosts(host: str, port: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """Return the ``Host`` header values (lower case) this server answers.

    Parameters
    ----------
    host : str
        The bound address.
    port : int
        The bound port (the actual one, not 0).
    extra : iterable of str
        Names the user allowed (``--allow-host``).

    Returns
    -------
    frozenset of str
        ``name:port`` for each name (and the bare name on port 80).
    """
    names = set(LOOPBACK_NAMES)
    bound = host.strip().lower()
    if bound not in ("", "0.0.0.0", "::", "[::]"):
        names.add(f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound)
    names.update(n.strip().lower() for n in extra)
    out = {f"{n}:{port}" for n in names}
    if port == 80:
        out.update(names)
    return frozenset(out)


class Guard:
    """The ``Host``/``Origin`` check as an aiohttp middleware.

    Parameters
    ----------
    hosts : frozenset of str
        Allowed ``Host`` values (:func:`allowed_hosts`), filled in once the
        port is known (:meth:`allow`).
    """

    def __init__(self, hosts: frozenset[str] = frozenset()) -> None:
        self.hosts = hosts
        self.origins = frozenset(f"http://{h}" for h in hosts)
        #: Requests refused for their Host, and for their Origin.
        self.refused_host = 0
        self.refused_origin = 0

    def allow(self, hosts: frozenset[str]) -> None:
        """Set the allowed ``Host`` values (and the matching origins)."""
        self.hosts = hosts
        self.origins = frozenset(f"http://{h}" for h in hosts)

    def check(self, request: web.Request) -> str | None:
        """Why ``request`` is refused, or None when it may go on."""
        host = request.headers.get("Host", "").strip().lower()
        if host not in self.hosts:
            self.refused_host += 1
            return (
                f"unknown Host {host!r}: open the page through {self._example()}, "
                "or allow that name (emomon dashboard --allow-host NAME)"
            )
        origin = request.headers.get("Origin")
        if origin is not None and origin.strip().lower() not in self.origins:
            self.refused_origin += 1
            return f"requests from origin {origin!r} are not allowed"
        return None

    def _example(self) -> str:
        loop = sorted(h for h in self.hosts if h.startswith("127.0.0.1"))
        return f"http://{loop[0]}/" if loop else "the address it printed"

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """Refuse a request with a foreign ``Host`` or ``Origin`` (403)."""
        reason = self.check(request)
        if reason is not None:
            return web.Response(status=403, text=f"emomon dashboard: {reason}\n")
        return await handler(request)


async def add_security_headers(
    request: web.Request, response: web.StreamResponse
) -> None:
    """``on_response_prepare``: the :data:`SECURITY_HEADERS` on every answer."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
