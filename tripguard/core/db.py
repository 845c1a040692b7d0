"""Database engine, ORM base and the request-scoped session (the request owns the transaction)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator
from starlette.concurrency import run_in_threadpool

from tripguard.core.db_timeouts import (
    DEFAULTS,
    DatabaseTimeouts,
    bulk_timeouts,
    emergency_timeouts,
    maintenance_timeouts,
    postgres_connect_args,
    track_connections,
)
from tripguard.core.deps import sessions_of
from tripguard.core.settings import Settings
from tripguard.core.sqlite_writer import queued_writer_connection, writer_queue_for

Lane = Literal["bulk", "emergency", "maintenance"]

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
# Table info key: the table is left out of data backups, with the reason as its value (a cache that holds
# personal data under a key no erasure shreds, and means nothing outside the running system).
NOT_BACKED_UP = "tripguard.not_backed_up"
# Execution option for bookkeeping writes (last seen, view counts), which may be skipped but never wait: on
# SQLite their transaction starts only if the writer is free within BOOKKEEPING_WAIT_S, else WriterBusy.
BOOKKEEPING = "tripguard_bookkeeping"
BOOKKEEPING_WAIT_S = 0.05


def _configure_sqlite(engine: Engine, busy_seconds: float) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT and delays BEGIN; take it over
    # (SQLAlchemy's documented recipe) and start write-ready transactions to avoid upgrade deadlocks.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_seconds * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # A shredded data key is overwritten on disk, not left in a free page of the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.dbapi_connection
        if options.get(BOOKKEEPING):
            _begin_bookkeeping(connection, dbapi_connection, busy_seconds)
            return
        dbapi_connection.begin_write()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.end_write()
            raise


class WriterBusy(Exception):
    """A bookkeeping write found SQLite's writer taken: it is skipped, to be done another time."""


def _begin_bookkeeping(connection: Any, dbapi_connection: Any, busy_seconds: float) -> None:
    if not dbapi_connection.begin_write(BOOKKEEPING_WAIT_S):
        raise WriterBusy
    try:  # another process (the CLI) may hold the file's lock: wait for it as briefly
        connection.exec_driver_sql(f"PRAGMA busy_timeout={round(BOOKKEEPING_WAIT_S * 1000)}")
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={round(busy_seconds * 1000)}")
    except OperationalError as exc:
        dbapi_connection.end_write()
        raise WriterBusy from exc
    except BaseException:
        dbapi_connection.end_write()
        raise


def make_engine(url: str, *, timeouts: DatabaseTimeouts = DEFAULTS, urgent: bool = False,
                **kwargs: Any) -> Engine:
    """An engine whose every wait is bounded by `timeouts`. `urgent`: the emergency lane's engine (on
    SQLite its writers go first in the file's writer queue; its busy connections can be interrupted)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Created private: SQLite gives its -wal and -shm files the database file's mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        factory = queued_writer_connection(writer_queue_for(path), urgent=urgent,
                                           wait_seconds=timeouts.sqlite_busy_seconds)
        engine = create_engine(url, connect_args={"check_same_thread": False, "factory": factory,
                                                  "timeout": timeouts.sqlite_busy_seconds},
                               hide_parameters=True, **kwargs)
        _configure_sqlite(engine, timeouts.sqlite_busy_seconds)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    connect_args = {**postgres_connect_args(timeouts), **kwargs.pop("connect_args", {})}
    # hide_parameters: an error's text (and so a log line) never carries the values of a statement.
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args, **kwargs)
    track_connections(engine)
    return engine


def engine_for(settings: Settings, lane: Lane = "bulk", **kwargs: Any) -> Engine:
    """The configured database, with the lane's timeouts: `bulk` for requests, jobs and workers,
    `emergency` for SOS intake (its own small pool), `maintenance` for migrations and backups."""
    if lane == "emergency":
        kwargs.setdefault("pool_size", settings.db_emergency_pool_size)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", settings.sos_deadline_seconds)
        return make_engine(settings.database_url, timeouts=emergency_timeouts(settings), urgent=True, **kwargs)
    timeouts = maintenance_timeouts(settings) if lane == "maintenance" else bulk_timeouts(settings)
    return make_engine(settings.database_url, timeouts=timeouts, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


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


def unreachable(exc: Exception) -> bool:
    """The database, not what was being stored, failed: a lost or timed-out connection, no connection free."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, (OperationalError, InterfaceError)) or (isinstance(exc, DBAPIError)
                                                                  and exc.connection_invalidated)


async def _request_session(request: Request) -> AsyncIterator[Session]:
    # The session connects on first use (a route that reads nothing never touches the database), and
    # its commit or rollback runs in the thread pool, off the event loop.
    session: Session = sessions_of(request.app)()
    request.state.db_session = session  # the page's renderer names staff through it (console.readable.People)
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
