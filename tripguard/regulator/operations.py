"""What people and the operator's backend do to the feed: pass an upload through, back-fill a range."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit.actor import Actor
from tripguard.audit.service import record
from tripguard.core.errors import DomainError, FieldProblem
from tripguard.regulator import contract, feed, service
from tripguard.regulator.models import Upload as QueuedUpload
from tripguard.vault.service import Vault

LONGEST_BACKFILL = timedelta(days=7)  # from the console or the API; the CLI takes any range


class NotPassedThrough(DomainError):
    status, type, title = 409, "/problems/regulator-type-exported", "TripGuard sends this type itself"


class KeyReused(DomainError):
    status, type, title = 409, "/problems/regulator-key-reused", "Key already used for another message"


class NotProtobuf(DomainError):
    status, type, title = 422, "/problems/regulator-not-protobuf", "Not a protobuf message"


class BadRange(DomainError):
    status, type, title = 422, "/problems/regulator-bad-range", "Range refused"


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    raise ValueError("truncated varint")


def well_formed(data: bytes) -> bool:
    """Whether `data` parses as protobuf wire format (fields, their types and lengths): a check that the body
    is a message at all, not of its fields, which the operator's own generated code wrote."""
    at = 0
    try:
        while at < len(data):
            tag, at = _varint(data, at)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                return False
            if wire == 0:
                _, at = _varint(data, at)
            elif wire == 1:
                at += 8
            elif wire == 2:
                length, at = _varint(data, at)
                at += length
            elif wire == 5:
                at += 4
            else:
                return False
            if at > len(data):
                return False
    except ValueError:
        return False
    return True


def submit(session: Session, *, vault: Vault, kind: str, key: str, occurred_at: datetime,
           body: bytes) -> tuple[QueuedUpload, bool]:
    """Queue the operator's message unchanged; the same key again is the same upload (and must say the same)."""
    if kind in contract.EXPORTERS:
        raise NotPassedThrough(f"TripGuard produces {kind} from its own data", errors=[
            FieldProblem(field="kind", message="exported by TripGuard, not passed through")])
    if not well_formed(body):
        raise NotProtobuf("the body is not a serialized protobuf message",
                          errors=[FieldProblem(field="body", message="not protobuf wire format")])
    queued = service.enqueue(session, vault=vault, uploads=[contract.Upload(kind, key, occurred_at, body)],
                             origin="operator")
    row = session.scalars(select(QueuedUpload).where(QueuedUpload.kind == kind, QueuedUpload.key == key)).one()
    if not queued and service.open_body(session, vault=vault, kind=kind, key=key, blob=row.body) != body:
        raise KeyReused(f"{kind} {key} was queued with another body",
                        errors=[FieldProblem(field="key", message="already used for another message")])
    return row, bool(queued)


def backfill(session: Session, *, factory: sessionmaker[Session], vault: Vault, actor: Actor,
             kinds: Collection[str] | None, start: datetime, end: datetime,
             longest: timedelta | None = LONGEST_BACKFILL) -> dict[str, int]:
    """`feed.backfill`, audited in `session` (the request's), each window committed by itself."""
    if end <= start:
        raise BadRange("the range ends before it starts", errors=[FieldProblem(field="end", message="not after start")])
    if longest is not None and end - start > longest:
        raise BadRange("at most 7 days at once here; `tripguard regulator backfill` takes longer ranges",
                       errors=[FieldProblem(field="end", message="more than 7 days after start")])
    try:
        queued = feed.backfill(factory, vault=vault, kinds=kinds, start=start, end=end)
    except feed.UnknownType as exc:
        raise BadRange(str(exc), errors=[FieldProblem(field="kind", message="no exporter")]) from exc
    record(session, actor=actor, action="regulator.backfill", target_type="regulator_feed",
           target_id=",".join(sorted(queued))[:64] or None,
           details={"start": start.isoformat(), "end": end.isoformat(), "queued": sum(queued.values())})
    return queued
