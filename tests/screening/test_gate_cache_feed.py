"""The read cache's feeds of other processes' changes, attacked (`core.readfeed`): a SQLite reader that fell
behind the pruned change log, a PostgreSQL listener that stalls or fails, a transaction's NOTIFY over 8000
bytes. Each must leave the gate reading the database rather than answering from what it kept."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tests.conftest import BACKEND
from tripguard.core import readfeed
from tripguard.core.fastread import SqliteReader, run_now
from tripguard.core.models import ReadChange
from tripguard.core.readcache import CHANNEL, KEPT_CHANGES, ReadCache, publish
from tripguard.core.readfeed import PgListener, ReadCacheFeed, SqliteChanges

KEPT = {("first", "SELECT", ()): ("active",)}


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition()


# -- SQLite: the change log ----------------------------------------------------------------------------------

@pytest.fixture
def change_log(tmp_path: Path) -> str:
    path = str(tmp_path / "changes.db")
    engine = create_engine(f"sqlite:///{path}")
    ReadChange.__table__.create(engine)  # type: ignore[attr-defined]
    engine.dispose()
    return path


def test_a_reader_behind_a_hole_in_the_change_log_drops_everything(change_log: str) -> None:
    cache, reader = ReadCache(10, cross_process=True), SqliteReader(change_log)
    changes = SqliteChanges(cache)
    assert run_now(changes.check(reader)) and cache.live
    cache.put(("worker", "drv_revoked"), KEPT, cache.generation)
    writer = sqlite3.connect(change_log, isolation_level=None)
    for name in ("drv_a", "drv_revoked", "drv_b"):  # three commits by another process
        writer.execute("INSERT INTO core_read_changes (scope, key) VALUES ('worker', ?)", (name,))
    writer.execute("DELETE FROM core_read_changes WHERE id = 2")  # pruned before this reader came to it
    assert run_now(changes.check(reader))
    assert cache.get(("worker", "drv_revoked")) is None


def test_the_change_log_is_pruned_oldest_first_without_holes(change_log: str) -> None:
    engine = create_engine(f"sqlite:///{change_log}")
    with Session(engine) as session:
        publish(session, keys={("worker", f"drv_{n}") for n in range(KEPT_CHANGES + 300)})
        session.commit()
        low, high, count = session.execute(text("SELECT MIN(id), MAX(id), COUNT(*) FROM core_read_changes")).one()
    engine.dispose()
    assert count == KEPT_CHANGES and high - low + 1 == count


# -- PostgreSQL: the listener --------------------------------------------------------------------------------

postgres_only = pytest.mark.skipif(BACKEND != "postgres", reason="the LISTEN connection is PostgreSQL's")


@pytest.fixture
def listening(database_url: str):  # type: ignore[no-untyped-def]
    cache = ReadCache(10, cross_process=True)
    listener = PgListener(cache, database_url)
    listener.start()
    wait_for(lambda: cache.live and listener.trusted())
    yield ReadCacheFeed(cache, listener=listener)
    listener.stop()


@postgres_only
def test_a_stalled_listener_is_not_trusted(listening: ReadCacheFeed, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, listener = listening.cache, listening.listener
    assert listener is not None
    release = threading.Event()
    stalled = threading.Event()

    def stall(keys: object) -> None:  # the listener's thread stops here, its connection still open
        stalled.set()
        release.wait(10)

    cache.put(("worker", "drv_revoked"), KEPT, cache.generation)
    monkeypatch.setattr(cache, "invalidate", stall)
    try:
        with psycopg.connect(listener.conninfo, autocommit=True) as other:
            other.execute(f"NOTIFY {CHANNEL}, 'worker\tdrv_a'")
            wait_for(stalled.is_set)
            other.execute(f"NOTIFY {CHANNEL}, 'worker\tdrv_revoked'")  # heard by nobody while it stalls
        time.sleep(listener.trusted_seconds + 0.2)
        assert run_now(listening.ready(SqliteReader(":memory:"))) is None  # bypassed: the database is read
    finally:
        release.set()


@postgres_only
def test_a_listener_that_fails_starts_again_emptied(listening: ReadCacheFeed,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cache, listener = listening.cache, listening.listener
    assert listener is not None
    first = listener.backend_pid
    cache.put(("worker", "drv_kept"), KEPT, cache.generation)

    def unexpected(payload: str) -> list[tuple[str, str]]:
        raise ValueError(payload)

    monkeypatch.setattr(readfeed, "parse_payload", unexpected)
    with psycopg.connect(listener.conninfo, autocommit=True) as other:
        other.execute(f"NOTIFY {CHANNEL}, 'worker\tdrv_kept'")
    wait_for(lambda: listener.backend_pid not in (None, first))
    monkeypatch.undo()
    wait_for(lambda: cache.live and listener.trusted())
    assert cache.get(("worker", "drv_kept")) is None


@postgres_only
def test_a_notification_over_8000_bytes_drops_the_scope(database_url: str) -> None:
    engine = create_engine(database_url)
    keys = {("worker", f"{'司机' * 6}{n:04d}") for n in range(300)}  # under 7000 characters, over 8000 bytes
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as listen:
        listen.execute(f"LISTEN {CHANNEL}")
        with Session(engine) as session:
            publish(session, keys=keys)
            session.commit()
        heard = [notice.payload for notice in listen.notifies(timeout=2, stop_after=1)]
    engine.dispose()
    assert heard == ["worker\t*"]
