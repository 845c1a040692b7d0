"""The embedded default's durable inbox (memory:// bus): ingest checks a batch and appends its good lines, one
row per request; the embedded monitor (`detection.embedded`) applies the rows in id order, off the request.

The request does what the cluster's API does (`service.accept`): it reads the batch with the same reader,
refuses the same lines (a trip's start is known from the batches taken here as well as from the store: a
ping before its trip began is refused while the start still waits in the inbox), and answers with the same
report (`alerts` is 0: the monitor raises them moments
later). The row is written through the bulk lane (on SQLite, the writer queue's bulk side: an SOS goes first).
While the monitor is further behind than `TRIPGUARD_INGEST_INBOX_MAX_LINES`, ingest answers 503 with
Retry-After, as the cluster's bus does while NATS is away: the backlog, and so the wait of what comes after
it, stays bounded.

The id is the sequence: on SQLite one writer at a time commits the rows in id order; on PostgreSQL an
advisory lock held to the commit does the same (ids from a sequence may otherwise commit out of order, and
the monitor, past a later id, would never read an earlier one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter
from sqlalchemy import delete, select, text
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tripguard.core.clock import utcnow
from tripguard.core.errors import DomainError
from tripguard.telematics import service
from tripguard.telematics.ingest import lateness
from tripguard.telematics.ingest.events import TripStarted
from tripguard.telematics.models import InboxBatch
from tripguard.telematics.service import IngestOptions, IngestResult

REMEMBERED_STARTS = 100_000
APPEND_LOCK = 0x7467_696E_626F_78  # "tginbox": the advisory lock that orders appends on PostgreSQL
REFUSED = Counter("tripguard_inbox_batches_refused_total", "ingest batches answered 503: the inbox backlog was full")


class InboxFull(DomainError):
    status, type, title = 503, "/problems/inbox-full", "Service unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


@dataclass(frozen=True)
class InboxRow:
    id: int
    lines: int
    data: bytes


def append(session: Session, *, data: bytes, lines: int) -> int:
    """Add a batch's good lines (NDJSON, `lines` of them) to the inbox, in the session's transaction; its id."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})
    row = InboxBatch(lines=lines, data=data, received_at=utcnow())
    session.add(row)
    session.flush()
    return row.id


def rows_after(session: Session, *, seq: int, limit: int) -> list[InboxRow]:
    """The next rows after `seq`, in order."""
    return [InboxRow(id, lines, data) for id, lines, data in session.execute(
        select(InboxBatch.id, InboxBatch.lines, InboxBatch.data).where(InboxBatch.id > seq)
        .order_by(InboxBatch.id).limit(limit))]


def waiting_after(session: Session, *, seq: int) -> dict[int, int]:
    """The rows after `seq` and their line counts (the backlog at start-up)."""
    rows = session.execute(select(InboxBatch.id, InboxBatch.lines).where(InboxBatch.id > seq))
    return {row_id: lines for row_id, lines in rows}


def delete_through(session: Session, *, seq: int) -> None:
    """Rows a checkpoint covers are of no more use."""
    session.execute(delete(InboxBatch).where(InboxBatch.id <= seq))


class Consumer(Protocol):
    """What the inbox's consumer (the embedded monitor) tells ingest, and is told by it."""

    def backlog(self) -> int: ...
    def appended(self, row_id: int, lines: int) -> None: ...


class InboxBus:
    """The memory:// engine of `ingest.bus.EventBus`: batches checked at the API and kept in the inbox."""

    def __init__(self, consumer: Consumer, *, max_lines: Callable[[], int]) -> None:
        self.consumer = consumer
        self.max_lines = max_lines
        self.mark = float("-inf")  # the newest event time taken (the stream as ingest sees it)
        self.started: dict[str, float] = {}  # trips started in batches taken here: their start time

    async def ingest(self, session: Session, lines: list[str], options: IngestOptions) -> IngestResult:
        if self.consumer.backlog() > self.max_lines():
            REFUSED.inc()
            raise InboxFull("the monitor is behind; nothing was taken, retry shortly")
        return await run_in_threadpool(functools.partial(self.take, session, lines=lines, options=options))

    def take(self, session: Session, *, lines: list[str], options: IngestOptions) -> IngestResult:
        """Check the batch (as the cluster's API does) and append its good lines, in the request's transaction."""
        if self.mark == float("-inf"):  # nothing taken yet here: the stream as the store knows it
            self.mark = lateness.stored_mark(session, mark=self.mark)
        columns, numbers, rejected = service.read_batch(lines, {})
        columns, numbers, rejected = lateness.refuse_late(columns, numbers, rejected, mark=self.mark,
                                                          lateness=options.max_lateness_seconds,
                                                          starts=self._starts(session))
        taken = len(columns)
        if taken:
            row_id = append(session, data=b"\n".join(lines[n - 1].encode("utf-8", "surrogatepass") for n in numbers),
                            lines=taken)
            orm_event.listen(session, "after_commit", lambda _: self.consumer.appended(row_id, taken), once=True)
            self._remember([e for e in columns.others.values() if isinstance(e, TripStarted)])
        self.mark = lateness.newest(columns, self.mark)
        return IngestResult(accepted=taken, rejected=rejected, alerts=[])

    def _starts(self, session: Session) -> lateness.TripStarts:
        """When trips began: those started in a batch taken here (perhaps still in the inbox), else stored."""
        stored = lateness.stored_starts(session)

        def lookup(trip_ids: list[str]) -> dict[str, float]:
            found = {t: self.started[t] for t in trip_ids if t in self.started}
            missing = [t for t in trip_ids if t not in found]
            return {**stored(missing), **found} if missing else found

        return lookup

    def _remember(self, starts: list[TripStarted]) -> None:
        for start in starts:
            self.started[start.trip_id] = min(start.ts, self.started.get(start.trip_id, start.ts))
        if len(self.started) > REMEMBERED_STARTS:  # the oldest half has long been applied and stored
            self.started = dict(list(self.started.items())[len(self.started) // 2:])
