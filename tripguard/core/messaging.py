"""The NATS connection of a scaled-out process (TRIPGUARD_BUS_URL=nats://…): one per process.

A process starts whether NATS is up or not: the link connects in the background and keeps trying,
and whoever needs it asks `connected` first (ingest answers 503 meanwhile). Threads (ingest, SOS
intake) publish through `publish_threadsafe`, which hands the message to the link's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

logger = logging.getLogger("tripguard.messaging")
RETRY_SECONDS = 0.5
ERROR_LOG_EVERY_SECONDS = 10.0


def stream_name(bus_name: str) -> str:
    return f"{bus_name.upper()}_EVENTS"


def events_subject(bus_name: str, shard: int | str) -> str:
    return f"{bus_name}.events.{shard}"


def feed_subject(bus_name: str) -> str:
    return f"{bus_name}.feed"


class NatsLink:
    def __init__(self, url: str, *, name: str) -> None:
        self.url = url
        self.name = name
        self.client: Client | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscriptions: list[tuple[str, Callable[[Msg], Awaitable[None]]]] = []
        self._subscribing: set[asyncio.Future[Any]] = set()  # held until done: the loop keeps only weak references
        self.ready = asyncio.Event()
        self._last_error_logged = float("-inf")

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    @property
    def jetstream(self) -> JetStreamContext:
        if self.client is None:
            raise ConnectionError("not connected to NATS")
        return self.client.jetstream()

    def subscribe(self, subject: str, handler: Callable[[Msg], Awaitable[None]]) -> None:
        """Subscribe now if connected, and again on every (re)connection the link makes itself."""
        self._subscriptions.append((subject, handler))
        if self.client is not None:
            subscribing = asyncio.ensure_future(self.client.subscribe(subject, cb=handler))
            self._subscribing.add(subscribing)
            subscribing.add_done_callback(self._subscribing.discard)

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._connect_until_done())

    async def _connect_until_done(self) -> None:
        while True:
            try:
                # Once connected, nats-py reconnects by itself for ever (queued publishes are refused
                # while it does: pending_size 0), so this loop only covers the first connection.
                client = await nats.connect(self.url, name=self.name, connect_timeout=2,
                                            reconnect_time_wait=RETRY_SECONDS, max_reconnect_attempts=-1,
                                            pending_size=0,
                                            disconnected_cb=self._disconnected, reconnected_cb=self._reconnected,
                                            error_cb=self._error)
            except (OSError, TimeoutError, nats.errors.Error) as exc:  # down or unreachable: keep trying
                logger.warning("NATS unreachable", extra={"event": self.name, "error": type(exc).__name__})
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self.client = client
            for subject, handler in self._subscriptions:
                await client.subscribe(subject, cb=handler)
            self.ready.set()
            logger.info("NATS connected", extra={"event": self.name})
            return

    async def _error(self, exc: Exception) -> None:
        # nats-py reports every failed reconnection (twice a second in an outage): one line per 10 s is enough.
        now = asyncio.get_running_loop().time()
        if now - self._last_error_logged >= ERROR_LOG_EVERY_SECONDS:
            self._last_error_logged = now
            logger.warning("NATS error", extra={"event": self.name, "error": type(exc).__name__})

    async def _disconnected(self) -> None:
        logger.warning("NATS disconnected", extra={"event": self.name})

    async def _reconnected(self) -> None:
        logger.info("NATS reconnected", extra={"event": self.name})

    def publish_threadsafe(self, subject: str, payload: bytes) -> None:
        """Fire and forget from any thread (live updates: a lost one is superseded by the next)."""
        if self.loop is None or not self.connected:
            return
        self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._publish_quietly(subject, payload)))

    async def _publish_quietly(self, subject: str, payload: bytes) -> None:
        if self.client is None:
            return
        with contextlib.suppress(Exception):
            await self.client.publish(subject, payload)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.drain()
        self.client = None


def start_in_thread(link: NatsLink) -> None:
    """Run the link on an event loop of its own (a process without one: the scheduler)."""
    import threading

    loop = asyncio.new_event_loop()
    started = threading.Event()

    def begin() -> None:
        link.start()
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(begin)
        loop.run_forever()

    threading.Thread(target=run, name="nats-link", daemon=True).start()
    started.wait()
