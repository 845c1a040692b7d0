"""The console's live streams (server-sent events) and their protocol, shared by every live page.

A stream never goes silent without the page knowing:
- every event carries an id, a cursor (epoch milliseconds of the server's clock when it was sent);
- a `heartbeat` event comes every `HEARTBEAT_SECONDS` when nothing else does, so the page can tell a
  dead connection from a quiet one;
- a page that reconnects sends its last cursor (`Last-Event-ID`, or `?last_event_id=` when it opens
  a new EventSource itself) and is sent again, from the database, what changed since then (minus a
  margin for changes committed just before their publication): a case opened during the gap is
  never missed;
- a viewer too slow for the feed gets `resync` and the changes since its last cursor;
- a server shutting down sends `closing` and ends the stream; the page reconnects.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from tripguard.core.clock import utcnow
from tripguard.core.fanout import CLOSING, RESYNC, Fanout, Item

HEARTBEAT_SECONDS = 15.0
RETRY_MILLISECONDS = 2000  # the browser's own reconnection delay (the page's client backs off further)
MAX_ITEMS_PER_WRITE = 500
CATCH_UP_MARGIN = timedelta(seconds=10)  # a change is published shortly after its commit, not at it
CATCH_UP_HORIZON = timedelta(hours=24)  # an older cursor catches up from here (the page reloads anyway)

CatchUp = Callable[[datetime], list[Item]]


class Watcher(Protocol):
    """Told what a viewer was sent (the live map records which trips were on its screen)."""

    async def sent(self, items: list[Item]) -> None: ...  # after each write, [] on a heartbeat

    def closed(self) -> None: ...  # the stream ended (not awaited: the viewer may be gone)


def cursor_now() -> str:
    return str(int(utcnow().timestamp() * 1000))


def since_cursor(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """Where a reconnecting viewer catches up from; None when it sent no cursor, or one not ours."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 13:
        return None
    now = now or utcnow()
    sent = datetime.fromtimestamp(int(value) / 1000, UTC)
    return max(min(sent, now) - CATCH_UP_MARGIN, now - CATCH_UP_HORIZON)


def requested_cursor(request: Request) -> str | None:
    return request.headers.get("last-event-id") or request.query_params.get("last_event_id")


def _event(data: object, *, kind: str | None = None) -> str:
    head = f"event: {kind}\n" if kind else ""
    return f"{head}id: {cursor_now()}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def stream_response(request: Request, feed: Fanout, *, kinds: frozenset[str] | None = None,
                    catch_up: CatchUp | None = None, hello: Callable[[], dict[str, object]] | None = None,
                    watcher: Watcher | None = None) -> StreamingResponse:
    """An event stream of the feed's items (of `kinds`), caught up through `catch_up` from the cursor
    the viewer sent. `hello` adds state to the first event (read after the viewer is registered, so
    nothing published meanwhile is lost). `watcher` is told what was sent, after it was."""
    since = since_cursor(requested_cursor(request)) if catch_up else None

    async def messages() -> AsyncIterator[str]:
        # StreamingResponse stops this generator when the viewer goes away. Everything already queued
        # goes out in one write: a busy city (or an SOS burst) is not a write per message. The viewer
        # is registered here, not before: a generator that never starts would never close it.
        queue = feed.open_viewer(kinds)  # before the catch-up is read: nothing falls between the two
        try:
            state = await run_in_threadpool(hello) if hello else {}
            yield f"retry: {RETRY_MILLISECONDS}\n" + _event({"heartbeat_s": HEARTBEAT_SECONDS, **state}, kind="hello")
            last_sent = utcnow()
            if catch_up and since is not None:
                yield "".join(_event(item) for item in await run_in_threadpool(catch_up, since))
            while True:
                try:
                    items = [await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)]
                except TimeoutError:
                    last_sent = utcnow()
                    yield _event({}, kind="heartbeat")
                    if watcher is not None:
                        await watcher.sent([])
                    continue
                while not queue.empty() and len(items) < MAX_ITEMS_PER_WRITE:
                    items.append(queue.get_nowait())
                out: list[str] = []
                for item in items:
                    if item is CLOSING:  # the server is stopping: end the stream; the page reconnects
                        yield "".join(out) + _event({}, kind="closing")
                        return
                    if item is RESYNC:
                        out.append(_event({}, kind="resync"))
                        if catch_up:
                            out.extend(_event(i) for i in await run_in_threadpool(
                                catch_up, last_sent - CATCH_UP_MARGIN))
                    else:
                        out.append(_event(item))
                last_sent = utcnow()
                yield "".join(out)
                if watcher is not None:
                    await watcher.sent(items)
        finally:
            feed.close_viewer(queue)
            if watcher is not None:
                watcher.closed()

    return StreamingResponse(messages(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
