"""The transactional outbox: a message is written in the transaction that decides to send it."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

from sqlalchemy import JSON, Index, Integer, LargeBinary, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime


class Priority(IntEnum):
    """A message's lane, lowest first: claimed in this order, the emergency lane by a sender of its own."""

    EMERGENCY = 0  # the police gateway, an SOS's SMS to the caller's contacts
    PEOPLE = 1  # codes, check-ins, notices to a person
    SYSTEMS = 2  # the operator's webhooks


PENDING = text("status = 'pending'")


class OutboxMessage(Base):
    __tablename__ = "notify_outbox"
    # The claim: pending and due, by priority then due time (a partial index: sent rows pile up, pending few).
    __table_args__ = (Index("ix_notify_outbox_due", "priority", "next_attempt_at",
                            postgresql_where=PENDING, sqlite_where=PENDING),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms | email | push | webhook | emergency
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(SmallInteger, default=Priority.PEOPLE)
    # Who receives it, for the bulkheads: the channel ("sms", "emergency"), or "webhook <scheme>://<host:port>".
    destination: Mapped[str] = mapped_column(String(200))
    # To a person: destination and text sealed under their data key (erasing them erases this too).
    subject_id: Mapped[str | None] = mapped_column(String(64), index=True)
    sealed_content: Mapped[bytes | None] = mapped_column(LargeBinary)
    # To a system (the operator's webhook): no personal data, kept plain.
    content: Mapped[dict[str, object] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
