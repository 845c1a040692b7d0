"""The transactional outbox: a message is written in the transaction that decides to send it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime


class OutboxMessage(Base):
    __tablename__ = "notify_outbox"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms | email | push | webhook
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
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
