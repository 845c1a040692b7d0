"""Trip data past its retention period (≥ 2 years, DESIGN.md §5): deleted, and its key shredded.

A legal hold on the trip (subject `trip:<id>`) or on its passenger or driver keeps it. On PostgreSQL
positions are kept in monthly partitions, and a month past the period is dropped whole, the chunks of
trips still kept moved out first (`partitions`). Shredding
goes through the vault's erasure journal, so an older backup restored later cannot bring the
positions back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, delete, func, literal, not_, or_, select
from sqlalchemy.orm import Session

from tripguard.telematics.models import CheckIn, IngestBatch, TrackChunk, Trip, TripAlert
from tripguard.telematics.store import partitions
from tripguard.telematics.store.trips import trip_key
from tripguard.vault.service import Vault

BATCH = 200
logger = logging.getLogger("tripguard.retention")


def _held(held_subjects: Select[str]) -> ColumnElement[bool]:
    """A legal hold on the trip itself, its passenger or its driver (filtered in SQL: no stall)."""
    return or_(literal("trip:").concat(Trip.id).in_(held_subjects),
               Trip.passenger_id.in_(held_subjects), Trip.driver_id.in_(held_subjects))


def expired_trips(keep: timedelta, held_subjects: Callable[[], Select[str]],
                  ) -> Callable[[Session, Vault, datetime, bool], tuple[int, int]]:
    def run(session: Session, vault: Vault, now: datetime, dry_run: bool) -> tuple[int, int]:
        cutoff = now - keep
        expired = or_(Trip.ended_at < cutoff, (Trip.ended_at.is_(None)) & (Trip.updated_at < cutoff))
        on_hold = _held(held_subjects())
        held = session.scalar(select(func.count()).select_from(Trip).where(expired, on_hold)) or 0
        free = and_(expired, not_(func.coalesce(on_hold, False)))
        # PostgreSQL: whole months of positions go at once (the trips' other rows and keys below).
        connection = session.connection()
        if not dry_run:
            partitions.ensure(connection, now)
        dropped = partitions.drop_expired(connection, cutoff=cutoff, now=now, kept=not_(free), dry_run=dry_run)
        if dropped and not dry_run:
            logger.info("position months dropped", extra={"event": ", ".join(dropped)})
        if dry_run:
            return session.scalar(select(func.count()).select_from(Trip).where(free)) or 0, held
        ids = list(session.scalars(select(Trip.id).where(free).order_by(Trip.updated_at).limit(BATCH)))
        if ids:
            for model in (TrackChunk, TripAlert, CheckIn):
                session.execute(delete(model).where(model.trip_id.in_(ids)))
            session.execute(delete(Trip).where(Trip.id.in_(ids)))
            for trip_id in ids:
                vault.shred(session, subject_id=trip_key(trip_id), reason="retention")
        return len(ids), held
    return run


def old_ingest_keys(keep: timedelta) -> Callable[[Session, Vault, datetime, bool], tuple[int, int]]:
    """Idempotency keys of ingest batches: a retry comes within minutes, a day is plenty."""
    def run(session: Session, vault: Vault, now: datetime, dry_run: bool) -> tuple[int, int]:
        old = IngestBatch.created_at < now - keep
        if dry_run:
            return session.scalar(select(func.count()).select_from(IngestBatch).where(old)) or 0, 0
        keys = list(session.scalars(select(IngestBatch.key).where(old).limit(BATCH)))
        if keys:
            session.execute(delete(IngestBatch).where(IngestBatch.key.in_(keys)))
        return len(keys), 0
    return run
