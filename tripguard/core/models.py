"""The platform's own tables (no personal data)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime


class Lease(Base):
    """Who leads `name` (the scheduler) until `expires_at` (the database's clock). Each new holder gets
    the next `token`; the leader's writes carry it and are refused once it is not the current one."""

    __tablename__ = "core_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))  # host:pid:random, as the logs say it
    token: Mapped[int] = mapped_column(BigInteger)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
