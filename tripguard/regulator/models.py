"""The regulator feed's durable queue, its per-type lanes, and the planned outages it announced."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime

QUEUED, SENT, ACKNOWLEDGED, FAILED = "queued", "sent", "acknowledged", "failed"
STATES = (QUEUED, SENT, ACKNOWLEDGED, FAILED)
UNACKNOWLEDGED = text("state <> 'acknowledged'")
ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite's rowid alias autoincrements only as INTEGER


class Upload(Base):
    """One message for the platform, numbered in its type's sequence, its body sealed by the vault."""

    __tablename__ = "regulator_uploads"
    __table_args__ = (
        UniqueConstraint("kind", "key", name="uq_regulator_uploads_kind_key"),  # the same upload twice: queued once
        UniqueConstraint("kind", "sequence", name="uq_regulator_uploads_kind_sequence"),
        # The senders' claim: a type's unacknowledged uploads in sequence (a partial index: acknowledged pile up).
        Index("ix_regulator_uploads_due", "kind", "sequence", postgresql_where=UNACKNOWLEDGED,
              sqlite_where=UNACKNOWLEDGED),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))  # the upload type: "positionVehicle", "operatePay", …
    key: Mapped[str] = mapped_column(String(200))  # the source record and its version
    sequence: Mapped[int] = mapped_column(BigInteger)  # 1, 2, 3, … per type, in the order queued
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    origin: Mapped[str] = mapped_column(String(16))  # tripguard (an exporter) | operator (passed through)
    # The serialized message (personal data: drivers, plates, positions), sealed under the feed's system key,
    # so a database backup holds no plaintext of it.
    body: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))  # queued | sent | acknowledged | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first sent
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Feed(Base):
    """A type's producer side: the next sequence number and how far its exporter has run. Its row is locked
    by whoever queues uploads of the type, so numbers are given in order, without gaps or repeats."""

    __tablename__ = "regulator_feeds"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_sequence: Mapped[int] = mapped_column(BigInteger, default=1)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the exporter has run over [start, watermark)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Lane(Base):
    """A type's sender side: its row is locked (SKIP LOCKED) by the sender claiming the type's next batch, so
    one batch of a type is claimed at a time and never before an earlier one is answered."""

    __tablename__ = "regulator_lanes"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PlannedOutage(Base):
    """A planned interruption of the feed, announced to the platform at least 72 hours ahead."""

    __tablename__ = "regulator_planned_outages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    announced_at: Mapped[datetime] = mapped_column(UTCDateTime)
    announced_by: Mapped[str] = mapped_column(String(80))
