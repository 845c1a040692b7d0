"""Shards rebalance on the real NATS JetStream and PostgreSQL of this machine: a worker that starts alone
takes every shard; a second that joins is given its share within TRIPGUARD_MONITOR_REBALANCE_SECONDS, and
what is stored (alerts, positions, position counts) equals what one worker would have stored."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import BACKEND
from tests.processes import drop_stream, scale_env, start_monitor_worker, trips_ended
from tests.telematics.detection.test_monitor_worker_faults import _expected
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.models import Lease
from tripguard.core.settings import Settings
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics.models import Trip, TripAlert
from tripguard.telematics.store import trips

SHARDS = 4
BATCH = 100
REBALANCE_SECONDS = 6.0
pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="monitor workers share shards through PostgreSQL")


def _held(factory: sessionmaker[Session], bus_name: str) -> Counter[str]:
    """Shards held now, per worker pid."""
    with unit_of_work(factory) as session:
        holders = session.scalars(select(Lease.holder).where(
            Lease.name.startswith(f"monitor.{bus_name}."), Lease.expires_at > func.clock_timestamp()))
        return Counter(holder.split(":")[1] for holder in holders)


def _joined(factory: sessionmaker[Session], bus_name: str, pid: int) -> bool:
    with unit_of_work(factory) as session:
        return bool(session.scalar(select(func.count()).select_from(Lease).where(
            Lease.name.startswith(f"members.{bus_name}."), Lease.holder.contains(f":{pid}:"),
            Lease.expires_at > func.clock_timestamp())))


def test_a_joining_worker_gets_its_share_in_time_and_nothing_is_lost_or_repeated(
        cli_site: Settings, tmp_path: Path) -> None:
    bus_name = f"t{uuid.uuid4().hex[:10]}"
    settings = cli_site.model_copy(update={"bus_url": "nats://127.0.0.1:4222", "bus_name": bus_name,
                                           "bus_shards": SHARDS, "webhook_url": "http://127.0.0.1:9/hooks"})
    events, _ = build_stream(load_trips()[:60], stagger_s=20,
                             inject={"off_route": 3, "long_stop": 3, "gps_lost": 3, "possible_crash": 3})
    lines = [json.dumps(e) for e in events]
    batches = [lines[k:k + BATCH] for k in range(0, len(lines), BATCH)]
    expected_alerts, expected_pings = _expected(batches)
    assert len(expected_alerts) >= 8

    app = create_app(settings)  # also makes the keys the workers read
    app.dependency_overrides[resolve_principal] = lambda: Principal.for_roles(
        "apikey", "key_TEST", frozenset({Role.INTEGRATION}), name="Test")
    env = {**scale_env(cli_site, bus_name, SHARDS), "TRIPGUARD_LEADER_LEASE_SECONDS": "3",
           "TRIPGUARD_MONITOR_REBALANCE_SECONDS": str(REBALANCE_SECONDS)}
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = start_monitor_worker(env, "all", "", logs[0])
    workers = [first]
    engine = make_engine(cli_site.database_url)
    factory = make_sessionmaker(engine)
    try:
        deadline = time.monotonic() + 120  # alone, it takes every shard (imports are slow on a busy machine)
        while _held(factory, bus_name) != Counter({str(first.pid): SHARDS}):
            assert time.monotonic() < deadline and first.poll() is None, logs[0].read_text()[-2000:]
            time.sleep(0.1)
        with TestClient(app) as client:
            deadline = time.monotonic() + 20
            while not app.state.nats.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            for number, batch in enumerate(batches):
                if number == len(batches) // 3:
                    second = start_monitor_worker(env, "all", "", logs[1])
                    workers.append(second)
                    deadline = time.monotonic() + 120
                    while not _joined(factory, bus_name, second.pid):
                        assert time.monotonic() < deadline and second.poll() is None, logs[1].read_text()[-2000:]
                        time.sleep(0.05)
                    joined = time.monotonic()
                    split = Counter({str(first.pid): SHARDS // 2, str(second.pid): SHARDS // 2})
                    while _held(factory, bus_name) != split:
                        assert time.monotonic() - joined < REBALANCE_SECONDS, (
                            _held(factory, bus_name), logs[0].read_text()[-2000:], logs[1].read_text()[-2000:])
                        time.sleep(0.05)
                while True:
                    answer = client.post("/api/v1/telematics/events", content="\n".join(batch),
                                         headers={"content-type": "application/x-ndjson"})
                    if answer.status_code != 503:
                        break
                    time.sleep(0.2)
                assert answer.status_code == 200, answer.text
        ended = trips_ended(factory, len(expected_pings), 90)
        assert ended == len(expected_pings), logs[1].read_text()[-3000:]
        assert _held(factory, bus_name) == split  # and it stays so: no shard passed back and forth
        for log in logs:
            text = log.read_text()
            assert "Traceback" not in text and '"msg": "shard lost' not in text, text[-3000:]
        given_up = [line for line in logs[0].read_text().splitlines() if "shard given up to rebalance" in line]
        assert len(given_up) == SHARDS // 2, given_up

        with unit_of_work(factory) as session:
            stored = [(a.trip_id, a.kind, round(a.ts.timestamp(), 3)) for a in session.scalars(select(TripAlert))]
            kept = {trip_id: len(trips.load_track(session, vault=app.state.vault, trip_id=trip_id))
                    for trip_id in expected_pings}
            counted = dict(session.execute(select(Trip.id, Trip.points)).all())  # type: ignore[arg-type]
        assert len(stored) == len(set(stored)) and set(stored) == expected_alerts
        assert kept == expected_pings
        assert {t: counted[t] for t in expected_pings} == expected_pings
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        engine.dispose()
        drop_stream(bus_name)
