"""The platform's own tables (no personal data)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import NOT_BACKED_UP, Base, UTCDateTime


class Lease(Base):
    """Who leads `name` (the scheduler) until `expires_at` (the database's clock). Each new holder gets
    the next `token`; the leader's writes carry it and are refused once it is not the current one."""

    __tablename__ = "core_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))  # host:pid:random, as the logs say it
    token: Mapped[int] = mapped_column(BigInteger)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReadChange(Base):
    """A change to what a process's read cache may keep (`core.readcache`), written in the changing
    transaction: how the other processes on one SQLite file hear of it. PostgreSQL uses NOTIFY instead."""

    __tablename__ = "core_read_changes"
    __table_args__ = ({"sqlite_autoincrement": True,
                       "info": {NOT_BACKED_UP: "change signals between running processes; meaningless after a "
                                               "restore"}},)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                    autoincrement=True)
    scope: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(200))
