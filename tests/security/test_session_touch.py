"""A session's last seen is bookkeeping: written outside the request's transaction, once per interval and
process, and never waited for. With real connections and threads (a committed database, not the rollback
harness), on this run's backend."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text, update

from tests.builders import PASSWORD, staff
from tests.conftest import BACKEND, fresh_database, make_settings
from tripguard.app import create_app
from tripguard.core import bookkeeping
from tripguard.core.clock import utcnow
from tripguard.core.db import READ_ONLY, make_engine, make_sessionmaker, unit_of_work
from tripguard.security.auth import SESSION_COOKIE
from tripguard.security.models import StaffSession
from tripguard.security.permissions import Role
from tripguard.security.service import SESSION_TOUCH_INTERVAL

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
PARALLEL = 40


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[FastAPI, TestClient, str]]:
    url = fresh_database(f"tg_touch_{WORKER}", tmp_path)
    # Admission would refuse most of one session's parallel requests: here every one must reach the touch.
    app = create_app(make_settings(url, tmp_path / "keys", admission_principal_requests=PARALLEL))
    with make_sessionmaker(make_engine(url))() as db:
        staff(db, "trainer.qian", Role.TRAINER)
    with TestClient(app) as client:
        signed_in = client.post("/api/v1/auth/sign-in", json={"username": "trainer.qian", "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        yield app, client, url
    app.state.engine.dispose()


def _last_seen(url: str) -> datetime:
    with make_engine(url).connect().execution_options(**{READ_ONLY: True}) as connection:  # past a held writer
        return connection.scalars(select(StaffSession.last_seen_at)).one()


def _idle(url: str, past: timedelta) -> datetime:
    then = utcnow() - past
    with unit_of_work(make_sessionmaker(make_engine(url))) as db:
        db.execute(update(StaffSession).values(last_seen_at=then))
    return _last_seen(url)


@contextmanager
def _session_row_held(url: str) -> Iterator[None]:
    """Another transaction holds the session's row (PostgreSQL) or the database's writer (SQLite)."""
    if BACKEND == "sqlite":
        other = sqlite3.connect(url.split("///", 1)[-1], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.rollback()
            other.close()
        return
    engine = make_engine(url)
    with engine.connect() as connection, connection.begin():
        connection.execute(text("SELECT id FROM staff_sessions FOR UPDATE"))
        yield
    engine.dispose()


def _whoami_in_parallel(client: TestClient) -> list[tuple[int, float]]:
    def one(_: int) -> tuple[int, float]:
        started = time.monotonic()
        status = client.get("/api/v1/auth/whoami").status_code
        return status, time.monotonic() - started

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(one, range(PARALLEL)))


def test_parallel_requests_never_wait_for_the_session_row(site: tuple[FastAPI, TestClient, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _, client, url = site
    monkeypatch.setattr(bookkeeping, "RETRY_SECONDS", 0.2)
    stale = _idle(url, SESSION_TOUCH_INTERVAL + timedelta(seconds=5))
    with _session_row_held(url):
        answers = _whoami_in_parallel(client)
        slow = [(status, round(seconds, 2)) for status, seconds in answers if status != 200 or seconds > 5]
        # Answered while the row is still held: the write was skipped, not waited for (waiting would take the
        # 10 s lock timeout; 5 s leaves room for a loaded machine without a speed target in a test).
        assert not slow, slow
        assert _last_seen(url) == stale
    time.sleep(0.3)  # the skipped write is tried again by the next request past the retry pause
    assert client.get("/api/v1/auth/whoami").status_code == 200
    assert _last_seen(url) > stale


def test_parallel_requests_write_the_last_seen_once(site: tuple[FastAPI, TestClient, str]) -> None:
    app, client, url = site
    stale = _idle(url, SESSION_TOUCH_INTERVAL + timedelta(seconds=5))
    writes: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE STAFF_SESSIONS"):
            writes.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", count)
    answers = _whoami_in_parallel(client)
    assert {status for status, _ in answers} == {200}
    assert len(writes) == 1 and _last_seen(url) > stale
    assert client.get("/api/v1/auth/whoami").status_code == 200 and len(writes) == 1  # not again this minute


def test_an_idle_session_still_ends(site: tuple[FastAPI, TestClient, str]) -> None:
    app, client, url = site
    _idle(url, timedelta(minutes=app.state.settings.session_idle_minutes, seconds=1))
    assert client.get("/api/v1/auth/whoami").status_code == 401
    assert client.cookies.get(SESSION_COOKIE)  # the cookie is still sent: the session itself refused it
