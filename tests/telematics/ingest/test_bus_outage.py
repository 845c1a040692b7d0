"""NATS unreachable for 30 s, then back: ingest answers 503 with Retry-After meanwhile (nothing taken,
nothing dropped), and once NATS is back every event sent reaches the monitor and the store.

A NATS server of the test's own (the machine's `nats-server`, JetStream on a directory of the test),
killed and started again on the same port and store, stands in for an outage of the real one.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import BACKEND
from tests.processes import free_port, scale_env, start_monitor_worker, trips_ended
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics.models import TrackChunk
from tripguard.telematics.store import trips

OUTAGE_SECONDS = 30
pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="monitor workers share shards through PostgreSQL")


def _nats(port: int, store: Path, log: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                              stdout=subprocess.DEVNULL, stderr=log.open("a"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.05)
    raise RuntimeError(log.read_text())


def _stored_positions(factory: sessionmaker[Session]) -> int:
    with unit_of_work(factory) as session:
        return int(session.scalar(select(func.count()).select_from(TrackChunk)) or 0)


def test_ingest_refuses_while_nats_is_down_and_loses_nothing(cli_site: Settings, tmp_path: Path) -> None:
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    server = _nats(port, tmp_path / "js", tmp_path / "nats.log")
    settings = cli_site.model_copy(update={"bus_url": url, "bus_name": "outage", "bus_shards": 2})
    events, _ = build_stream(load_trips()[:12], stagger_s=20)
    lines = [json.dumps(e) for e in events]
    third = len(lines) // 3
    before, during, after = lines[:third], lines[third:2 * third], lines[2 * third:]
    pings: dict[str, set[str]] = {}
    for event in events:
        if event["type"] == "ping":
            pings.setdefault(str(event["trip_id"]), set()).add(str(event["ts"]))

    app = create_app(settings)
    app.dependency_overrides[resolve_principal] = lambda: Principal.for_roles(
        "apikey", "key_TEST", frozenset({Role.INTEGRATION}), name="Test")
    env = {**scale_env(cli_site, "outage", 2), "TRIPGUARD_BUS_URL": url}
    worker = start_monitor_worker(env, "all", "", tmp_path / "worker.log")
    engine = make_engine(cli_site.database_url)
    factory = make_sessionmaker(engine)
    try:
        with TestClient(app) as client:
            def send(batch: list[str]) -> int:
                answer = client.post("/api/v1/telematics/events", content="\n".join(batch),
                                     headers={"content-type": "application/x-ndjson"})
                assert answer.status_code in (200, 503), answer.text
                if answer.status_code == 503:
                    assert answer.headers["retry-after"] == "2"
                    assert answer.json()["type"] == "/problems/bus-unavailable"
                else:
                    assert answer.json()["accepted"] == len(batch)
                return answer.status_code

            deadline = time.monotonic() + 20
            while send(before) != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            deadline = time.monotonic() + 30
            while not _stored_positions(factory) and time.monotonic() < deadline:  # the worker is at work
                time.sleep(0.1)
            assert _stored_positions(factory), (tmp_path / "worker.log").read_text()[-3000:]
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            down_until = time.monotonic() + OUTAGE_SECONDS
            refused = 0
            while time.monotonic() < down_until:  # the operator's backend retries, as Retry-After says
                assert send(during) == 503
                refused += 1
                time.sleep(2)
            server = _nats(port, tmp_path / "js", tmp_path / "nats.log")
            deadline = time.monotonic() + 30
            while send(during) != 200:
                assert time.monotonic() < deadline, "ingest did not come back with NATS"
                time.sleep(0.2)
            assert send(after) == 200
        assert refused >= OUTAGE_SECONDS // 3
        ended = trips_ended(factory, len(pings), 60)
        assert ended == len(pings), (tmp_path / "worker.log").read_text()[-3000:]
        with unit_of_work(factory) as session:  # every ping kept: the ones sent before, during and after
            kept = {trip_id: len(trips.load_track(session, vault=app.state.vault,
                                                  trip_id=trip_id)) for trip_id in pings}
        assert kept == {trip_id: len(times) for trip_id, times in pings.items()}
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        engine.dispose()
