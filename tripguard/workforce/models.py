"""Supervision over the audit log: findings about staff access, with the audit entries as evidence,
and how far the rules have read the log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime


class SupervisionCursor(Base):
    """The last audit leaf (seq) the supervision rules have read: they never read the log twice."""

    __tablename__ = "workforce_supervision_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=-1)


class Finding(Base):
    __tablename__ = "workforce_findings"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    rule: Mapped[str] = mapped_column(String(24), index=True)  # many_people | after_hours | bulk_export
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64), index=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[list[int]] = mapped_column(JSON)  # audit entry ids (the first 500)
    status: Mapped[str] = mapped_column(String(12), index=True)  # open | reviewed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
