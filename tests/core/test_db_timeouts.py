"""Every engine's waits are bounded: settings become libpq parameters and server settings on each
connection; the emergency lane's are tighter; a timeout or a full pool is a 503, never a 500."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tests.conftest import BACKEND
from tripguard.core.db import engine_for, make_engine
from tripguard.core.db_timeouts import (
    bulk_timeouts,
    emergency_timeouts,
    interrupt_busy_connections,
    maintenance_timeouts,
    postgres_connect_args,
)
from tripguard.core.errors import install_error_handlers
from tripguard.core.settings import Settings


@pytest.mark.no_database
def test_settings_become_libpq_parameters_and_server_settings() -> None:
    settings = Settings(db_connect_timeout_seconds=7, db_statement_timeout_seconds=45, db_lock_timeout_seconds=4,
                        db_idle_in_transaction_timeout_seconds=90, db_keepalives_idle_seconds=11,
                        db_keepalives_interval_seconds=2, db_keepalives_count=5, db_tcp_user_timeout_seconds=12.5)
    assert postgres_connect_args(bulk_timeouts(settings)) == {
        "connect_timeout": 7, "keepalives": 1, "keepalives_idle": 11, "keepalives_interval": 2,
        "keepalives_count": 5, "tcp_user_timeout": 12500,
        "options": "-c statement_timeout=45000 -c lock_timeout=4000 -c idle_in_transaction_session_timeout=90000",
    }


@pytest.mark.no_database
def test_the_emergency_lane_is_bounded_tighter_than_bulk_work() -> None:
    settings = Settings()
    lane = postgres_connect_args(emergency_timeouts(settings))
    assert lane == {
        "connect_timeout": 2, "keepalives": 1, "keepalives_idle": 1, "keepalives_interval": 1,
        "keepalives_count": 2, "tcp_user_timeout": 2000,
        "options": "-c statement_timeout=2000 -c lock_timeout=1000 -c idle_in_transaction_session_timeout=5000",
    }
    bulk = postgres_connect_args(bulk_timeouts(settings))
    assert bulk["connect_timeout"] == 5 and bulk["tcp_user_timeout"] == 15000
    assert bulk["options"] == ("-c statement_timeout=60000 -c lock_timeout=10000 "
                               "-c idle_in_transaction_session_timeout=60000")
    # Migrations and backups run long statements; a dead peer is still found.
    maintenance = postgres_connect_args(maintenance_timeouts(settings))
    assert "statement_timeout=0 " in maintenance["options"] and "idle_in_transaction_session_timeout=0" in \
        maintenance["options"] and maintenance["tcp_user_timeout"] == 15000


@pytest.mark.skipif(BACKEND != "postgres", reason="libpq parameters and server settings are PostgreSQL's")
def test_each_lane_s_connections_carry_their_bounds(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, key_dir=tmp_path)
    for lane, statement, lock, user_timeout_ms in (("bulk", "1min", "10s", 15000), ("emergency", "2s", "1s", 2000)):
        engine = engine_for(settings, lane)  # type: ignore[arg-type]
        try:
            with engine.connect() as connection:
                assert connection.execute(text("SHOW statement_timeout")).scalar() == statement
                assert connection.execute(text("SHOW lock_timeout")).scalar() == lock
                raw = connection.connection.dbapi_connection
                sock = socket.socket(fileno=raw.pgconn.socket)  # type: ignore[union-attr]
                try:
                    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == user_timeout_ms
                    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                finally:
                    sock.detach()  # the descriptor stays libpq's
        finally:
            engine.dispose()


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's busy timeout")
def test_sqlite_writers_wait_for_the_file_a_bounded_time(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, key_dir=tmp_path, db_lock_timeout_seconds=7,
                        sos_deadline_seconds=2.5)
    for lane, busy_ms in (("bulk", 7000), ("emergency", 2500)):
        engine = engine_for(settings, lane)  # type: ignore[arg-type]
        try:
            with engine.connect() as connection:
                assert connection.execute(text("PRAGMA busy_timeout")).scalar() == busy_ms
        finally:
            engine.dispose()


@pytest.mark.no_database
def test_no_free_connection_in_time_is_a_503_to_retry() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/simulated-busy-pool")
    async def busy() -> None:
        raise PoolTimeout("QueuePool limit of size 5 overflow 10 reached")

    response = TestClient(app).get("/simulated-busy-pool")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["type"] == "/problems/database-unavailable"


@pytest.mark.skipif(BACKEND != "postgres", reason="cuts a libpq connection's socket")
def test_a_connection_waiting_for_an_answer_is_cut_and_an_idle_one_is_kept(database_url: str) -> None:
    engine = make_engine(database_url)
    errors: list[Exception] = []

    def waits_for_an_answer() -> None:
        with engine.connect() as connection:
            try:
                connection.execute(text("SELECT pg_sleep(5)"))  # what a silent server looks like from here
            except OperationalError as exc:
                errors.append(exc)

    try:
        with engine.connect() as idle:
            idle.execute(text("SELECT 1"))
            idle.commit()
            waiting = threading.Thread(target=waits_for_an_answer)
            waiting.start()
            time.sleep(0.5)
            cut_at = time.monotonic()
            assert interrupt_busy_connections(engine) == 1
            waiting.join(5)
            assert errors and time.monotonic() - cut_at < 2  # woken at once, not when the server answers
            assert idle.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
