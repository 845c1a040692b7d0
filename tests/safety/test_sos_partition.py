"""A network partition between the app and PostgreSQL: an SOS is answered 503 within 3 s (so the app can
dial 110 instead), whether the partition finds the emergency pool empty or holding idle connections,
and SOS works again once the network does.

The partition is a TCP proxy (`SimulatedPartition`) between the app and PostgreSQL that, on command,
stops forwarding bytes both ways and keeps every socket open: packets lost, not a reset. Its kernel
still acknowledges what the app sends, so no TCP timeout of the app's fires: this is also what a hung
primary looks like, and only the emergency lane's own deadline can answer in time.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.builders import subject_token
from tests.conftest import BACKEND, fresh_database, make_settings
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.safety.models import Incident

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="a network partition needs a networked database: "
                                                              "PostgreSQL (the SQLite file is local)")
ANSWER_WITHIN = 3.0


class SimulatedPartition:
    """A TCP proxy to PostgreSQL that forwards bytes until `cut()`, holds them until `heal()`."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.flowing.clear()

    def heal(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.closed.set()
        self.flowing.set()
        self.listener.close()
        for sock in list(self.sockets):
            sock.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        source.settimeout(0.1)
        while not self.closed.is_set():
            if not self.flowing.wait(0.1):
                continue  # cut: nothing is read, so nothing is passed on; the sender's bytes wait in buffers
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            self.flowing.wait()  # bytes read just as the cut came are held back too
            try:
                target.sendall(data)
            except OSError:
                break
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def partition() -> Iterator[SimulatedPartition]:
    proxy = SimulatedPartition()
    yield proxy
    proxy.close()


@pytest.fixture
def direct_url(tmp_path: Path) -> str:
    return fresh_database("tg_partition", tmp_path)


@pytest.fixture
def client(direct_url: str, partition: SimulatedPartition, tmp_path: Path) -> Iterator[TestClient]:
    proxied = direct_url.replace("127.0.0.1:5432", f"127.0.0.1:{partition.port}")
    assert proxied != direct_url
    app = create_app(make_settings(proxied, tmp_path / "keys"))
    with TestClient(app) as test_client:
        try:
            yield test_client
        finally:
            partition.heal()  # a request still hanging (no deadline) ends, so the app can stop


def press(client: TestClient, key: str, within: float = ANSWER_WITHIN) -> tuple[httpx.Response, float]:
    """One SOS press; fails the test if it is not answered within `within` seconds."""
    headers = {"Authorization": f"Bearer {subject_token('P1')}", "Idempotency-Key": key}
    started = time.monotonic()
    waiter = ThreadPoolExecutor(1)  # not `with`: its exit would wait for a press that never ends
    answer = waiter.submit(client.post, "/api/v1/sos", json={"lon": 116.4, "lat": 39.9}, headers=headers)
    try:
        response = answer.result(timeout=within)
    except FutureTimeout:
        pytest.fail(f"no answer to an SOS within {within} s")
    finally:
        waiter.shutdown(wait=False)
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "/problems/database-unavailable"


def pressed_again_after_healing(client: TestClient, key: str) -> httpx.Response:
    deadline = time.monotonic() + 15
    while True:  # the lane's connections cut during the partition are replaced on the way
        response, _ = press(client, key, within=10)
        if response.status_code in (200, 201) or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def incidents(url: str) -> int:
    engine = make_engine(url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            return int(session.scalar(select(func.count()).select_from(Incident)) or 0)
    finally:
        engine.dispose()


def test_a_partition_that_starts_while_connections_are_idle_in_the_pool(client: TestClient,
                                                                        partition: SimulatedPartition,
                                                                        direct_url: str) -> None:
    first, _ = press(client, "before", within=10)
    assert first.status_code == 201, first.text  # the lane's pool now holds an idle connection
    partition.cut()
    for key in ("during-1", "during-2"):  # each press is bounded by itself, not queued behind the stuck one
        response, seconds = press(client, key)
        assert_unavailable(response)
        assert seconds < ANSWER_WITHIN
    partition.heal()
    after = pressed_again_after_healing(client, "after")
    assert after.status_code in (200, 201), after.text  # 200: a second press within a minute is the same case
    assert incidents(direct_url) == 1


def test_a_partition_before_the_lane_ever_connected(client: TestClient, partition: SimulatedPartition,
                                                    direct_url: str) -> None:
    partition.cut()
    response, seconds = press(client, "during")
    assert_unavailable(response)
    assert seconds < ANSWER_WITHIN
    partition.heal()
    after = pressed_again_after_healing(client, "after")
    assert after.status_code == 201, after.text
    assert incidents(direct_url) == 1
