"""Reads on the event loop, with no hop to the thread pool and no ORM, for the hottest read paths: an
API key's look-up and the dispatch gate, asked before every dispatch. On this kind of machine a thread
hop costs more than the read, and the ORM's session several times more again.

Each read is one hand-written SELECT by key with named parameters (`:name`). PostgreSQL is read
through psycopg's async connection pool: the loop never blocks on the network. A SQLite file is read
in place on one read-only connection kept by the loop: a local read of one row by its key takes
microseconds, and in WAL mode a reader never waits for the writer. Where the app is bound to a given
session factory (tests), reads go through it, so they see what the test wrote.

Values come back as the driver gives them: `as_utc` and `as_json` even out the two backends.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Awaitable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.db_timeouts import (
    DEFAULTS,
    DatabaseTimeouts,
    bulk_timeouts,
    postgres_conninfo_params,
)
from tripguard.core.settings import Settings

Row = tuple[Any, ...]
T = TypeVar("T")


class FastReader(Protocol):
    async def first(self, sql: str, **params: object) -> Row | None: ...

    async def all(self, sql: str, **params: object) -> list[Row]: ...

    async def close(self) -> None: ...


def as_utc(value: object) -> datetime | None:
    """A timestamp column as an aware UTC datetime (SQLite gives its stored text, PostgreSQL a datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_json(value: object) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


class SessionReader:
    """Reads through a session factory (tests: the test's own connection and transaction)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    async def first(self, sql: str, **params: object) -> Row | None:
        with self.factory() as session:
            row = session.execute(text(sql), params).first()
            return tuple(row) if row is not None else None

    async def all(self, sql: str, **params: object) -> list[Row]:
        with self.factory() as session:
            return [tuple(row) for row in session.execute(text(sql), params)]

    async def close(self) -> None:
        return None


class BoundReader:
    """Reads inside a session's open transaction, for a caller that already holds one (assignment, the
    access gate, ingest): the same SQL as the event loop's readers, seeing what the transaction wrote.
    Its reads never suspend, so a coroutine that reads only through it finishes in `run_now`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def first(self, sql: str, **params: object) -> Row | None:
        row = self.session.execute(text(sql), params).first()
        return tuple(row) if row is not None else None

    async def all(self, sql: str, **params: object) -> list[Row]:
        return [tuple(row) for row in self.session.execute(text(sql), params)]

    async def close(self) -> None:
        return None


def run_now(awaitable: Awaitable[T]) -> T:
    """The result of a coroutine that never waits (its reads through a `BoundReader`), from sync code: no
    event loop, no thread hop."""
    steps = awaitable.__await__()
    try:
        next(steps)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise RuntimeError("run_now: the coroutine waited on something; read through a BoundReader")


class SqliteReader:
    """One read-only connection to the SQLite file, used only from the event loop's thread."""

    def __init__(self, path: str, busy_seconds: float = 2.0) -> None:
        self.path = path
        self.busy_seconds = busy_seconds
        self.connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=self.busy_seconds)
        connection.execute("PRAGMA query_only=ON")
        connection.execute(f"PRAGMA busy_timeout={round(self.busy_seconds * 1000)}")
        return connection

    async def first(self, sql: str, **params: object) -> Row | None:
        if self.connection is None:
            self.connection = self._connect()
        row = self.connection.execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    async def all(self, sql: str, **params: object) -> list[Row]:
        if self.connection is None:
            self.connection = self._connect()
        return [tuple(row) for row in self.connection.execute(sql, params).fetchall()]

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@lru_cache(maxsize=64)
def _pyformat(sql: str) -> str:
    return re.sub(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)", r"%(\1)s", sql)


class PostgresReader:
    """psycopg's async pool; opened on first use (inside the running loop). Its connections carry the bulk
    timeouts, and a wait for a free one is bounded by the connect timeout."""

    def __init__(self, url: str, timeouts: DatabaseTimeouts = DEFAULTS) -> None:
        self.conninfo = re.sub(r"^postgresql(\+psycopg)?://", "postgresql://", url)
        self.timeouts = timeouts
        self.pool: AsyncConnectionPool | None = None
        self.opening = asyncio.Lock()  # the first requests all wait for the one pool to open

    async def _pool(self) -> AsyncConnectionPool:
        if self.pool is None:
            async with self.opening:
                if self.pool is None:
                    pool = AsyncConnectionPool(self.conninfo, min_size=1, max_size=10, open=False,
                                               timeout=self.timeouts.connect_seconds,
                                               kwargs={"autocommit": True,
                                                       **postgres_conninfo_params(self.timeouts)})
                    await pool.open()
                    self.pool = pool
        return self.pool

    async def first(self, sql: str, **params: object) -> Row | None:
        async with (await self._pool()).connection() as connection:
            cursor = await connection.execute(_pyformat(sql), params)
            row = await cursor.fetchone()
            return tuple(row) if row is not None else None

    async def all(self, sql: str, **params: object) -> list[Row]:
        async with (await self._pool()).connection() as connection:
            cursor = await connection.execute(_pyformat(sql), params)
            return [tuple(row) for row in await cursor.fetchall()]

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None


def make_fast_reader(settings: Settings, factory: sessionmaker[Session] | None) -> FastReader:
    if factory is not None:
        return SessionReader(factory)
    if settings.is_sqlite:
        return SqliteReader(settings.database_url.split("///", 1)[-1])
    return PostgresReader(settings.database_url, bulk_timeouts(settings))
