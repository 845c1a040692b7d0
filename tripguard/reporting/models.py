"""Digests: the weekly and monthly progress summaries (the plan's progress reports), and who receives them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime
from tripguard.privacy.catalogue import Category, personal_column


class DigestSubscription(Base):
    __tablename__ = "reporting_subscriptions"
    __table_args__ = (UniqueConstraint("staff_id", "kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8))  # weekly | monthly
    email: Mapped[bytes | None] = personal_column(Category.EMAIL, subject_column="staff_id")
    locale: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Digest(Base):
    """One summary of a finished week or month: the figures (no personal data) and how many it went to.
    One per kind and period, whichever scheduler gets there first."""

    __tablename__ = "reporting_digests"
    __table_args__ = (UniqueConstraint("kind", "period"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    period: Mapped[str] = mapped_column(String(8))
    figures: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # key, value, status
    recipients: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
