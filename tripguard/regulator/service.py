"""The regulator feed's queue: uploads numbered per type, claimed in sequence, acknowledged on the platform's answer.

Queueing locks the type's `Feed` row (`SELECT … FOR UPDATE`; SQLite's writer lock) for the rest of the
transaction, so parallel producers of one type number their uploads one after the other: no number given
twice, none skipped (a rolled-back transaction gives its numbers back with the row). An upload whose key is
queued already is left out, so a retried exporter or a repeated pass-through queues it once.

Sending claims a type's next batch under its `Lane` row (`FOR UPDATE SKIP LOCKED`: senders of other types
go on), always from the type's oldest unacknowledged upload: while that one waits for its retry, nothing
of the type after it is sent, so the platform receives each type in sequence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.regulator import contract
from tripguard.regulator.models import ACKNOWLEDGED, FAILED, QUEUED, SENT, Feed, Lane, PlannedOutage
from tripguard.regulator.models import Upload as QueuedUpload
from tripguard.vault.service import Vault

# The feed's bodies are sealed under a key of their own, not a person's: an upload names a driver, a vehicle
# and a position at once, and must still go to the platform once queued (the law keeps it two years there).
SUBJECT = "system:regulator-feed"
BODY_COLUMN = "body"
_IN_CHUNK = 1000


def _row_id(kind: str, key: str) -> str:
    return f"{kind}:{key}"


def seal_body(session: Session, *, vault: Vault, upload: contract.Upload) -> bytes:
    return vault.seal_bytes(session, subject_id=SUBJECT, table=QueuedUpload.__tablename__, column=BODY_COLUMN,
                            row_id=_row_id(upload.kind, upload.key), data=upload.body)


def open_body(session: Session, *, vault: Vault, kind: str, key: str, blob: bytes) -> bytes:
    return vault.open_bytes(session, subject_id=SUBJECT, table=QueuedUpload.__tablename__, column=BODY_COLUMN,
                            row_id=_row_id(kind, key), blob=blob)


def _insert_ignoring(session: Session, model: type[Feed | Lane], values: dict[str, object]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: the row exists afterwards, whoever made it."""
    dialect = session.get_bind().dialect.name
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(maker(model).values(**values).on_conflict_do_nothing())


def ensure_type(session: Session, *, kind: str) -> None:
    """The type's feed and lane rows, made once."""
    now = utcnow()
    _insert_ignoring(session, Feed, {"kind": kind, "next_sequence": 1, "watermark": None, "updated_at": now})
    _insert_ignoring(session, Lane, {"kind": kind})


def lock_feed(session: Session, *, kind: str) -> Feed:
    """The type's feed row, locked until the transaction ends (producers of the type queue one at a time)."""
    ensure_type(session, kind=kind)
    feed = session.scalars(select(Feed).where(Feed.kind == kind).with_for_update()
                           .execution_options(populate_existing=True)).one()
    return feed


def _already_queued(session: Session, kind: str, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _IN_CHUNK):
        found.update(session.scalars(select(QueuedUpload.key).where(
            QueuedUpload.kind == kind, QueuedUpload.key.in_(keys[start:start + _IN_CHUNK]))))
    return found


def enqueue(session: Session, *, vault: Vault, uploads: Iterable[contract.Upload], origin: str = "tripguard") -> int:
    """Queue uploads in the caller's transaction, each type's in the order of their time; the number queued
    (an upload whose key is queued already, or repeated in `uploads`, is left out)."""
    by_kind: dict[str, dict[str, contract.Upload]] = defaultdict(dict)
    for upload in uploads:
        if upload.occurred_at.tzinfo is None:
            raise ValueError("an upload's time must be in UTC")
        by_kind[upload.kind].setdefault(upload.key, upload)
    queued = 0
    now = utcnow()
    for kind in sorted(by_kind):
        feed = lock_feed(session, kind=kind)
        fresh = by_kind[kind]
        for key in _already_queued(session, kind, list(fresh)):
            del fresh[key]
        ordered = sorted(fresh.values(), key=lambda u: u.occurred_at)
        if not ordered:
            continue
        rows = [{"kind": kind, "key": upload.key, "sequence": feed.next_sequence + offset,
                 "occurred_at": upload.occurred_at, "queued_at": now, "origin": origin,
                 "body": seal_body(session, vault=vault,
                                   upload=upload), "state": QUEUED, "attempts": 0, "next_attempt_at": now}
                for offset, upload in enumerate(ordered)]
        session.execute(insert(QueuedUpload), rows)
        feed.next_sequence += len(rows)
        feed.updated_at = now
        queued += len(rows)
    session.flush()
    return queued


@dataclass(frozen=True)
class Numbered:
    """A queued upload as a sender hands it over: its sequence in its type, and the message opened."""

    id: int
    sequence: int
    upload: contract.Upload


@dataclass(frozen=True)
class Claim:
    kind: str
    items: list[Numbered]

    @property
    def first(self) -> int:
        return self.items[0].sequence

    @property
    def last(self) -> int:
        return self.items[-1].sequence


def in_planned_outage(session: Session, *, at: datetime) -> PlannedOutage | None:
    return session.scalars(select(PlannedOutage).where(PlannedOutage.starts_at <= at, PlannedOutage.ends_at > at)
                           .limit(1)).first()


def kinds(session: Session) -> list[str]:
    """Every type ever queued (each has a lane): a look at its lane costs one row, however long its backlog."""
    return list(session.scalars(select(Lane.kind).order_by(Lane.kind)))


def claim_batch(session: Session, *, vault: Vault, kind: str, limit: int, claim_for: timedelta) -> Claim | None:
    """The type's next batch, from its oldest unacknowledged upload on, if that one is due and no other sender
    holds the type; marked sent until `claim_for` from now (then due again: its sender died). The caller
    commits at once, before sending."""
    now = utcnow()
    lane = session.scalars(select(Lane).where(Lane.kind == kind).with_for_update(skip_locked=True)).first()
    if lane is None:
        return None
    rows = session.scalars(select(QueuedUpload).where(QueuedUpload.kind == kind, QueuedUpload.state != ACKNOWLEDGED)
                           .order_by(QueuedUpload.sequence).limit(limit)).all()
    if not rows or rows[0].next_attempt_at > now:
        return None  # nothing queued, or the oldest waits for its retry: nothing after it may overtake it
    items = [Numbered(row.id, row.sequence, contract.Upload(
        kind=kind, key=row.key, occurred_at=row.occurred_at,
        body=open_body(session, vault=vault, kind=kind, key=row.key, blob=row.body))) for row in rows]
    ids = [row.id for row in rows]
    for start in range(0, len(ids), _IN_CHUNK):
        session.execute(update(QueuedUpload).where(QueuedUpload.id.in_(ids[start:start + _IN_CHUNK]))
                        .values(state=SENT, attempts=QueuedUpload.attempts + 1, next_attempt_at=now + claim_for,
                                sent_at=func.coalesce(QueuedUpload.sent_at, now))
                        .execution_options(synchronize_session=False))
    lane.last_sent_at = now
    return Claim(kind, items)


def backoff(attempts: int, most: timedelta) -> timedelta:
    """2, 4, 8, … seconds after the first, second, third failed try, at most `most`."""
    return min(most, timedelta(seconds=2 ** min(max(attempts, 1), 30)))


def record_outcome(session: Session, *, claim: Claim, error: str | None, max_backoff: timedelta) -> None:
    """The platform's answer to a batch: acknowledged, or failed (retried after a backoff, never dropped)."""
    now = utcnow()
    ids = [item.id for item in claim.items]
    lane = session.get(Lane, claim.kind)
    if error is None:
        values: dict[str, object] = {"state": ACKNOWLEDGED, "acknowledged_at": now, "last_error": None}
        if lane is not None:
            lane.last_acknowledged_at = now
    else:
        attempts = session.scalar(select(func.max(QueuedUpload.attempts)).where(QueuedUpload.id == ids[0])) or 1
        values = {"state": FAILED, "last_error": error[:500], "next_attempt_at": now + backoff(attempts, max_backoff)}
        if lane is not None:
            lane.last_error, lane.last_error_at = error[:500], now
    for start in range(0, len(ids), _IN_CHUNK):
        session.execute(update(QueuedUpload).where(QueuedUpload.id.in_(ids[start:start + _IN_CHUNK]),
                                                   QueuedUpload.state != ACKNOWLEDGED)
                        .values(**values).execution_options(synchronize_session=False))


def sequences(session: Session, *, kind: str, states: Sequence[str] | None = None) -> list[int]:
    """A type's sequence numbers in order (tests and the console's checks)."""
    query = select(QueuedUpload.sequence).where(QueuedUpload.kind == kind)
    if states is not None:
        query = query.where(QueuedUpload.state.in_(list(states)))
    return list(session.scalars(query.order_by(QueuedUpload.sequence)))
