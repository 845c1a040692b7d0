"""Database engine, ORM base and the request-scoped session (the request owns the transaction)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator
from starlette.concurrency import run_in_threadpool

from tripguard.core.writer import WriterQueue

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Execution option for connections that never write: on SQLite they do not queue for the writer.
READ_ONLY = "tripguard_read_only"
# Execution option of the emergency lane (SOS intake): on SQLite it goes ahead of every bulk writer waiting.
URGENT = "tripguard_urgent"


BUSY_TIMEOUT_S = 10


def _queued_writer_connection() -> type[sqlite3.Connection]:
    """A sqlite3 connection class whose writers queue on one lock (per engine).

    SQLite lets one transaction write at a time and makes the others poll, sleeping 1, 2, 5, 10, 25,
    50 ms between tries: a writer can sit idle long after the lock came free (begin waits of up to
    36 ms were measured under an SOS burst). Writers of this process wait on a lock instead and start
    the moment the previous one commits. Other processes (the CLI, a second server) still meet SQLite's own
    locking, and a writer that waited BUSY_TIMEOUT_S for the lock goes on to that as before.
    """
    writer = WriterQueue()

    class QueuedWriterConnection(sqlite3.Connection):
        holds_writer = False
        queue = writer

        def begin_write(self, *, urgent: bool = False) -> None:
            if not self.holds_writer:
                self.holds_writer = writer.acquire(timeout=BUSY_TIMEOUT_S, urgent=urgent)

        def end_write(self) -> None:
            if self.holds_writer:
                self.holds_writer = False
                writer.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.end_write()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.end_write()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.end_write()

    return QueuedWriterConnection


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT and delays BEGIN; take it over
    # (SQLAlchemy's documented recipe) and start write-ready transactions to avoid upgrade deadlocks.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # A shredded data key is overwritten on disk, not left in a free page of the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.dbapi_connection
        dbapi_connection.begin_write(urgent=bool(connection.get_execution_options().get(URGENT)))
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.end_write()
            raise


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Created private: SQLite gives its -wal and -shm files the database file's mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        engine = create_engine(url, connect_args={"check_same_thread": False, "factory": _queued_writer_connection()},
                               hide_parameters=True, **kwargs)
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # hide_parameters: an error's text (and so a log line) never carries the values of a statement.
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def urgent_sessionmaker(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """The same sessions on the emergency lane: on SQLite their writes go ahead of bulk writers waiting."""
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine):  # bound to one connection (the tests' rollback per test): one writer anyway
        return factory
    return sessionmaker(**{**factory.kw, "bind": bind.execution_options(**{URGENT: True})})


def writer_queue(engine: Engine) -> WriterQueue | None:
    """The engine's SQLite writer queue (None on PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as connection:
        queue: WriterQueue = connection.connection.dbapi_connection.queue  # type: ignore[union-attr]
    return queue


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error, always closed."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def _request_session(request: Request) -> AsyncIterator[Session]:
    # The session connects on first use (a route that reads nothing never touches the database), and
    # its commit or rollback runs in the thread pool, off the event loop.
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        if session.in_transaction():
            await run_in_threadpool(session.commit)
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        raise
    finally:
        session.close()  # the connection went back to the pool at commit or rollback: no I/O here


# scope="function": the commit happens before the response is sent, so a failed commit is a 500
# rather than a success the client was told about.
DbSession = Annotated[Session, Depends(_request_session, scope="function")]



class hour_of(FunctionElement[Any]):  # a SQL function, named like one
    """The start of the hour a timestamp falls in, on both backends (for counts per hour)."""

    inherit_cache = True
    name = "hour_of"


@compiles(hour_of, "postgresql")
def _hour_of_postgresql(element: hour_of, compiler: Any, **kw: Any) -> str:
    return f"date_trunc('hour', ({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC')"


@compiles(hour_of, "sqlite")
def _hour_of_sqlite(element: hour_of, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%dT%H:00:00', {compiler.process(element.clauses, **kw)})"


def as_hour(value: object) -> datetime:
    """An `hour_of` result as an aware UTC datetime (PostgreSQL gives a datetime, SQLite text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
