"""The process's shared objects (built once by `tripguard.app.create_app`), typed and read in one place.

Handlers declare what they use with the aliases below (`settings: AppSettings`), so mypy and grep can
list who uses what. Code that runs outside a dependency (middleware, error handlers, page rendering, the
hottest auth path) calls the `*_of(app)` accessors. A platform or domain package provides its own objects
the same way, in its `deps.py`; core names no domain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.fastread import FastReader
from tripguard.core.settings import Settings

if TYPE_CHECKING:  # both import core.db, which reads its session factory here
    from tripguard.core.admission import Admission
    from tripguard.core.bookkeeping import OncePer
    from tripguard.core.readfeed import ReadCacheFeed


def settings_of(app: Any) -> Settings:
    settings: Settings = app.state.settings
    return settings


def sessions_of(app: Any) -> sessionmaker[Session]:
    """The session factory, for work in a transaction of its own (bookkeeping, a long run, a stream)."""
    factory: sessionmaker[Session] = app.state.sessionmaker
    return factory


def engine_of(app: Any) -> Engine:
    engine: Engine = app.state.engine
    return engine


def use_sessions(app: Any, factory: sessionmaker[Session]) -> None:
    """Every transaction the app opens from now on comes from `factory` (the scheduler's fenced one)."""
    app.state.sessionmaker = factory


def fast_reader_of(app: Any) -> FastReader:
    reader: FastReader = app.state.fast_reader
    return reader


def read_cache_of(app: Any) -> ReadCacheFeed | None:
    cache: ReadCacheFeed | None = app.state.read_cache
    return cache


def last_seen_due_of(app: Any) -> OncePer:
    due: OncePer = app.state.last_seen_due
    return due


def admission_of(app: Any) -> Admission:
    admission: Admission = app.state.admission
    return admission


# Providers are `async def`: FastAPI runs a plain `def` dependency in the thread pool, and a thread hop per
# dependency is most of what a cheap request costs.
async def _settings(request: Request) -> Settings:
    return settings_of(request.app)


async def _sessions(request: Request) -> sessionmaker[Session]:
    return sessions_of(request.app)


async def _fast_reader(request: Request) -> FastReader:
    return fast_reader_of(request.app)


async def _engine(request: Request) -> Engine:
    return engine_of(request.app)


async def _schema_head(request: Request) -> str | None:
    head: str | None = request.app.state.schema_head
    return head


async def _secret_key(request: Request) -> str:
    return settings_of(request.app).secret_key.get_secret_value()


AppSettings = Annotated[Settings, Depends(_settings)]
Sessions = Annotated[sessionmaker[Session], Depends(_sessions)]
AppFastReader = Annotated[FastReader, Depends(_fast_reader)]
AppEngine = Annotated[Engine, Depends(_engine)]
SchemaHead = Annotated[str | None, Depends(_schema_head)]
SecretKey = Annotated[str, Depends(_secret_key)]  # the server's secret (codes, share links, invitations)
