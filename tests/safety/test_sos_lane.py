"""The emergency lane has its own threads and connections: an SOS is answered promptly while every
thread of the shared pool (anyio's, 40, used by every sync route) is taken by slow requests, and while
every connection of the bulk engine's pool is held."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import anyio.to_thread
import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.builders import subject_token
from tripguard.app import create_app
from tripguard.core.settings import Settings

SHARED_THREADS = 40  # anyio's default limiter
PROMPTLY = 3.0


@pytest.fixture
def app(cli_site: Settings) -> FastAPI:
    return create_app(cli_site)


def press_promptly(client: TestClient, key: str) -> httpx.Response:
    waiter = ThreadPoolExecutor(1)  # not `with`: its exit would wait for a press that hangs
    answer = waiter.submit(client.post, "/api/v1/sos", json={}, headers={
        "Authorization": f"Bearer {subject_token('P1')}", "Idempotency-Key": key})
    try:
        return answer.result(timeout=PROMPTLY)
    except FutureTimeout:
        pytest.fail(f"no answer to an SOS within {PROMPTLY} s")
    finally:
        waiter.shutdown(wait=False)


def test_an_sos_is_answered_while_every_shared_thread_is_busy(app: FastAPI) -> None:
    """Admission keeps requests from taking every shared thread (tests/core/test_admission.py), so the pool
    is filled here from inside the server's event loop, as anything else using it (a stream's catch-up, a
    background task) could: 50 blocking calls for its 40 threads, ten of them waiting for one."""
    release, lock = threading.Event(), threading.Lock()
    inside = [0]

    def blocked() -> None:
        with lock:
            inside[0] += 1
        release.wait(30)

    with TestClient(app) as client:
        portal = client.portal
        assert portal is not None
        tasks = [portal.start_task_soon(anyio.to_thread.run_sync, blocked) for _ in range(SHARED_THREADS + 10)]
        try:
            deadline = time.monotonic() + 20
            while inside[0] < SHARED_THREADS:  # every shared thread holds one; the other ten wait for a thread
                assert time.monotonic() < deadline, f"only {inside[0]} blocking calls started"
                time.sleep(0.05)
            response = press_promptly(client, "while-threads-are-busy")
            assert response.status_code == 201, response.text
            assert inside[0] == SHARED_THREADS  # the pool was still full when the press was answered
        finally:
            release.set()
            for task in tasks:
                task.result(timeout=30)


def test_an_sos_is_answered_while_every_bulk_connection_is_held(app: FastAPI) -> None:
    engine = app.state.engine
    with TestClient(app) as client:  # started first: its start-up reads through the bulk pool
        held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow)]
        try:
            assert engine.pool.checkedout() == len(held)  # a bulk request would wait for one now
            response = press_promptly(client, "while-the-pool-is-held")
            assert response.status_code == 201, response.text
        finally:
            for connection in held:
                connection.close()
