"""Fan-out to the open pages: one bounded queue per page, never a wait.

The web server's event loop offers every :class:`~emomon.dashboard.state.Update`
to every :class:`Tab`; offering never blocks and never grows a queue past its
bound. Each tab's own writer task sends what its queue holds (in batches) and
is the only one that waits for that tab's socket, so a slow or frozen tab
delays nobody: not the ZeroMQ side, not the other tabs.

A tab that falls ``maxsize`` messages behind loses its queue (the messages are
counted in :attr:`Tab.dropped`) and is marked for a *resync*: its writer sends
a fresh snapshot of the whole (bounded) history instead, after which the tab is
complete again. Dropping the oldest messages one by one would leave holes in
the page's trace that look like real gaps; a snapshot cannot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final

from emomon.dashboard.state import Update

__all__ = ["RESYNC", "Tab", "Tabs"]

#: What :meth:`Tab.take` returns when the tab needs a fresh snapshot.
RESYNC: Final = "resync"


class Tab:
    """The queue of one open page (one WebSocket).

    Parameters
    ----------
    maxsize : int
        Messages queued before the tab is marked for a resync.

    Notes
    -----
    Used from the event loop's thread only.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = int(maxsize)
        self._queue: deque[Update] = deque()
        self._ready = asyncio.Event()
        self._resync = True  # the first thing a tab gets is a snapshot: at once
        self._ready.set()
        #: Messages this tab lost to a full queue (each loss ends in a resync).
        self.dropped = 0
        #: Snapshots sent after the first (one per overflow).
        self.resyncs = 0
        #: Messages handed to the socket.
        self.sent = 0
        self.closed = False

    def offer(self, update: Update) -> None:
        """Queue ``update`` without waiting; a full queue turns into a resync."""
        if self.closed:
            return
        if self._resync:  # the coming snapshot holds it already
            self._ready.set()
            return
        if len(self._queue) >= self.maxsize:
            self.dropped += len(self._queue) + 1
            self._queue.clear()
            self._resync = True
            self.resyncs += 1
        else:
            self._queue.append(update)
        self._ready.set()

    def pending(self) -> int:
        """Messages waiting in the queue."""
        return len(self._queue)

    async def take(self) -> list[Update] | str:
        """Wait for something to send: the queued updates, or :data:`RESYNC`."""
        await self._ready.wait()
        self._ready.clear()
        if self._resync:
            self._resync = False
            self._queue.clear()
            return RESYNC
        batch = list(self._queue)
        self._queue.clear()
        return batch

    def close(self) -> None:
        """Stop queueing (the page went away) and wake the writer."""
        self.closed = True
        self._queue.clear()
        self._ready.set()


class Tabs:
    """The open pages; :meth:`broadcast` offers an update to each."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = int(maxsize)
        self._tabs: set[Tab] = set()
        #: Pages that ever connected, and their messages lost (closed ones too).
        self.opened = 0
        self._dropped_closed = 0

    def add(self) -> Tab:
        """Open the queue of a new tab."""
        tab = Tab(self.maxsize)
        self._tabs.add(tab)
        self.opened += 1
        return tab

    def remove(self, tab: Tab) -> None:
        """Forget ``tab`` (idempotent)."""
        if tab in self._tabs:
            self._tabs.discard(tab)
            self._dropped_closed += tab.dropped
        tab.close()

    def broadcast(self, update: Update) -> None:
        """Offer ``update`` to every open tab (never waits)."""
        for tab in self._tabs:
            tab.offer(update)

    def __iter__(self):
        return iter(list(self._tabs))

    def __len__(self) -> int:
        return len(self._tabs)

    @property
    def dropped(self) -> int:
        """Messages lost to full queues, over every tab so far."""
        return self._dropped_closed + sum(t.dropped for t in self._tabs)
