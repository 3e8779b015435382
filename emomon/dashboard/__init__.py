"""``emomon dashboard``: the live predictions in a browser (an optional extra).

A web server (aiohttp) subscribes to the ``emomon stream`` topics over ZeroMQ,
like ``emomon listen`` (a publisher or a broker, Curve keys), keeps a bounded
backlog per stream, and serves one page that it updates over a WebSocket: each
task's class probabilities over time, the valence-arousal plane, the stream's
state and counters, and each channel's signal quality on a scalp map. It is a
subscriber only: it never sits in the inference loop.

Modules: :mod:`~emomon.dashboard.settings` (:class:`DashboardSettings`),
:mod:`~emomon.dashboard.state` (streams, backlog, what the pages are told; no
I/O), :mod:`~emomon.dashboard.fanout` (one bounded queue per page),
:mod:`~emomon.dashboard.guard` (``Host``/``Origin`` checks),
:mod:`~emomon.dashboard.server` (:class:`Dashboard`, :func:`serve`), and
``static/`` (the page, its script and style, and the vendored uPlot).

Needs ``pip install 'emomon[dashboard]'`` (aiohttp); the names that need it are
imported on first use, so ``emomon.dashboard.settings`` works without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emomon.dashboard.server import Dashboard, serve
    from emomon.dashboard.settings import DashboardSettings

__all__ = ["Dashboard", "DashboardSettings", "serve"]

_LAZY = {
    "Dashboard": "emomon.dashboard.server",
    "serve": "emomon.dashboard.server",
    "DashboardSettings": "emomon.dashboard.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emomon.dashboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
