"""Live items fanned out to the viewers of a stream (the console's server-sent events), in process.

Whoever publishes (ingest on a worker thread, a request, a background job) passes items to every viewer
whose kinds they are; each viewer's queue receives them on its own event loop. A viewer too slow to keep
up never blocks the publisher: its queue is emptied and it is told to resync (read afresh what it
missed) instead. A process shutting down ends every viewer's stream with `CLOSING`.

What the items are (the live map's trips, positions, alerts and cases) is the publisher's: the live
feed (`telematics.detection.feed.LiveFeed`) is a fan-out that also keeps the map's state.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

QUEUE_SIZE = 1000


Item = dict[str, object]
CLOSING: Item = {"type": "server_closing"}  # the last item a viewer gets from a process shutting down
RESYNC: Item = {"type": "resync"}  # the viewer fell behind: what it missed must be read afresh


@dataclass
class _Viewer:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Item]
    kinds: frozenset[str] | None  # the item types this viewer takes (None: all)

    def takes(self, item: Item) -> bool:
        return self.kinds is None or item.get("type") in self.kinds


def _offer(queue: asyncio.Queue[Item], item: Item) -> None:
    """Queue an item on the viewer's loop. A full queue is emptied and restarted with RESYNC: dropping
    single updates could silently drop a case, so the viewer reloads what it missed instead."""
    if queue.full():
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(RESYNC)
    queue.put_nowait(item)


@dataclass
class Fanout:
    """The viewers of a stream. `_lock` guards them (a subclass's own state may share it, so that what
    it keeps and who is told change together)."""

    _viewers: list[_Viewer] = field(default_factory=list)
    _closing: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def apply(self, items: list[Item]) -> None:
        """Pass updates to every viewer that takes them."""
        with self._lock:
            viewers = list(self._viewers)
        self._pass(viewers, items)

    @staticmethod
    def _pass(viewers: Iterable[_Viewer], items: list[Item]) -> None:
        for viewer in viewers:
            for item in items:
                if viewer.takes(item):
                    viewer.loop.call_soon_threadsafe(_offer, viewer.queue, item)

    def open_viewer(self, kinds: frozenset[str] | None = None) -> asyncio.Queue[Item]:
        """A queue the caller awaits on its own event loop, of the item types in `kinds` (all when
        None); close it with `close_viewer`. After `close_viewers` it holds only `CLOSING`."""
        viewer = _Viewer(asyncio.get_running_loop(), asyncio.Queue(QUEUE_SIZE), kinds)
        with self._lock:
            if self._closing:
                viewer.queue.put_nowait(CLOSING)
            else:
                self._viewers.append(viewer)
        return viewer.queue

    def close_viewers(self) -> None:
        """The process is shutting down: every viewer's stream ends now (its browser reconnects, to
        another replica or to this one restarted), instead of holding the old process open."""
        with self._lock:
            self._closing = True
            viewers, self._viewers = self._viewers, []
        for viewer in viewers:
            viewer.loop.call_soon_threadsafe(_offer, viewer.queue, CLOSING)

    def close_viewer(self, queue: asyncio.Queue[Item]) -> None:
        with self._lock:
            self._viewers = [v for v in self._viewers if v.queue is not queue]
