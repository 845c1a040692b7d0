"""Digests (the weekly and monthly progress summaries, and who receives them) and the daily snapshots
the reports read where the source keeps no history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime
from tripguard.privacy.catalogue import Category, personal_column


class DigestSubscription(Base):
    __tablename__ = "reporting_subscriptions"
    __table_args__ = (UniqueConstraint("staff_id", "kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8))  # weekly | monthly
    email: Mapped[bytes | None] = personal_column(Category.EMAIL, subject_column="staff_id", person="staff")
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


class DeviceDay(Base):
    """The device registry as it stood each day (the registry keeps only each device's last heartbeat):
    what the install and operating rates of a past period are computed from."""

    __tablename__ = "reporting_device_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)  # in TRIPGUARD_TIMEZONE
    vehicles: Mapped[int] = mapped_column(Integer)
    with_device: Mapped[int] = mapped_column(Integer)
    installed: Mapped[int] = mapped_column(Integer)
    heard: Mapped[int] = mapped_column(Integer)  # installed devices heard in the 24 hours before the snapshot
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PeriodFigures(Base):
    """A closed quarter's figures, frozen: version 1 when it was closed, each restatement the next, with
    its reason. Reports show the latest version; the earlier ones stay, and the audit log records each."""

    __tablename__ = "reporting_period_figures"

    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    figures: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # key, value, numerator, denominator, detail, …
    reason: Mapped[str | None] = mapped_column(String(500))  # a restatement's; None for the closing
    made_by: Mapped[str] = mapped_column(String(80))
    made_at: Mapped[datetime] = mapped_column(UTCDateTime)
