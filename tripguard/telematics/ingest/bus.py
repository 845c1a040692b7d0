"""The event bus between ingest and the trip monitor: one interface, two engines (TRIPGUARD_BUS_URL).

- `inbox.InboxBus` (memory://, the embedded default): ingest checks the batch and appends its good
  lines to a durable inbox in the database; a thread of the server (`detection.embedded`) runs the
  monitor over it, in order, as a monitor worker runs a shard.
- `NatsBus` (nats://…, scale-out): ingest checks the batch and publishes its good lines to NATS
  JetStream, on one subject per shard (`<bus>.events.<n>`, n from the trip id), and answers once the
  stream has confirmed them. `tripguard worker monitor` processes run the monitor per shard
  (`telematics.detection.worker`). A retried batch is published under the same message ids (a hash of each
  part), so JetStream keeps it once within its two-minute duplicate window.

NATS down or slow: the batch is refused with 503 and Retry-After, never dropped quietly. A batch
cut off half-published is safe to send again: the parts already kept are duplicates, and the
monitor and the trip store both take a re-sent event once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from typing import Protocol

import nats.errors
import nats.js.errors
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from prometheus_client import Counter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tripguard.core.errors import DomainError
from tripguard.core.messaging import NatsLink, events_subject, stream_name
from tripguard.core.settings import Settings
from tripguard.telematics import service
from tripguard.telematics.ingest import lateness
from tripguard.telematics.service import IngestOptions, IngestResult

logger = logging.getLogger("tripguard.bus")
DUPLICATE_WINDOW_SECONDS = 120
MAX_MESSAGE_BYTES = 768 * 1024  # under NATS's default 1 MiB max_payload, with room for headers
PUBLISHED = Counter("tripguard_bus_events_published_total", "events confirmed by JetStream")
REFUSED = Counter("tripguard_bus_batches_refused_total", "ingest batches answered 503: NATS unreachable or slow")


class BusUnavailable(DomainError):
    status, type, title = 503, "/problems/bus-unavailable", "Service unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}


class EventBus(Protocol):
    async def ingest(self, session: Session, lines: list[str], options: IngestOptions) -> IngestResult: ...


def parts(lines: list[bytes], limit: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """A shard's lines as NDJSON messages of at most `limit` bytes (a longer single line goes alone)."""
    messages: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > limit:
            messages.append(b"\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        messages.append(b"\n".join(current))
    return messages


def message_id(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:40]


async def ensure_stream(link: NatsLink, settings: Settings) -> None:
    """The events stream, created or brought to the configured retention (idempotent)."""
    config = StreamConfig(name=stream_name(settings.bus_name), subjects=[events_subject(settings.bus_name, "*")],
                          retention=RetentionPolicy.LIMITS, storage=StorageType.FILE, discard=DiscardPolicy.OLD,
                          max_age=settings.bus_retention_minutes * 60.0, duplicate_window=DUPLICATE_WINDOW_SECONDS)
    try:
        await link.jetstream.add_stream(config)
    except nats.js.errors.BadRequestError:  # it exists with another configuration: bring it up to date
        await link.jetstream.update_stream(config)


class NatsBus:
    def __init__(self, link: NatsLink, settings: Settings) -> None:
        self.link = link
        self.settings = settings
        self._stream_ready = False
        self.mark = float("-inf")  # the newest event time this replica took (the stream as it sees it)

    async def ingest(self, session: Session, lines: list[str], options: IngestOptions) -> IngestResult:
        if not self.link.connected:
            REFUSED.inc()
            raise BusUnavailable("the event bus (NATS) is unreachable; nothing was taken, retry")
        if self.mark == float("-inf"):  # nothing taken yet here: the stream as the store knows it
            self.mark = await run_in_threadpool(lateness.stored_mark, session, mark=self.mark)
        accepted = await run_in_threadpool(functools.partial(
            service.accept, lines, self.settings.bus_shards, mark=self.mark,
            max_lateness=options.max_lateness_seconds, starts=lateness.stored_starts(session)))
        messages = [(events_subject(self.settings.bus_name, shard), payload)
                    for shard, shard_lines in sorted(accepted.lines.items()) for payload in parts(shard_lines)]
        try:
            if not self._stream_ready:
                await ensure_stream(self.link, self.settings)
                self._stream_ready = True
            await asyncio.gather(*(self._publish(subject, payload) for subject, payload in messages))
        except (TimeoutError, nats.errors.Error) as exc:
            REFUSED.inc()
            logger.warning("event bus publish failed", extra={"event": "bus.publish", "error": type(exc).__name__})
            raise BusUnavailable("the event bus (NATS) did not confirm the batch; retry it (parts already "
                                 "taken are kept once)") from exc
        PUBLISHED.inc(accepted.accepted)
        self.mark = max(self.mark, accepted.mark)
        return IngestResult(accepted=accepted.accepted, rejected=accepted.rejected, alerts=[])

    async def _publish(self, subject: str, payload: bytes) -> None:
        ack = await self.link.jetstream.publish(subject, payload, timeout=self.settings.bus_publish_timeout_seconds,
                                                headers={"Nats-Msg-Id": message_id(payload)})
        if ack.stream != stream_name(self.settings.bus_name):
            raise nats.errors.Error(f"published into the wrong stream {ack.stream}")
