"""Scale-out on the real NATS JetStream and PostgreSQL of this machine: events published by the API,
the monitor run by two `tripguard worker monitor` processes, one of them killed -9 mid-stream.

Every alert must be stored exactly once (and sent once), as the shards' own monitors would raise
them; every ping must be kept.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import BACKEND
from tests.processes import drop_stream, free_port, scale_env, start_monitor_worker, trips_ended
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.models import Lease
from tripguard.core.settings import Settings
from tripguard.notify.models import OutboxMessage
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics import service
from tripguard.telematics.detection.fast_monitor import BatchMonitor
from tripguard.telematics.detection.worker import lease_name
from tripguard.telematics.ingest.reader import read_ndjson_numbered
from tripguard.telematics.models import MonitorCheckpoint, TripAlert
from tripguard.telematics.store import trips

SHARDS = 4
# Lines per API post: each post is one stream message per shard, so about 40 per shard, more than the
# consumer lets stand unacknowledged (a worker's --batch 4 in tests.processes, times 4 in
# MonitorWorker._point_consumer): a message never acknowledged stalls its shard, and the test sees it.
BATCH = 100
MAX_ACK_PENDING = 4 * 4
pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="monitor workers share shards through PostgreSQL")


def _metrics(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return ""  # not serving yet


def _expected(batches: list[list[str]]) -> tuple[set[tuple[str, str, float]], dict[str, int]]:
    """What the shards' monitors raise over the same events, each shard in stream order; pings per trip."""
    per_shard: dict[int, list[bytes]] = defaultdict(list)
    for lines in batches:
        for shard, shard_lines in service.accept(lines, SHARDS).lines.items():
            per_shard[shard].extend(shard_lines)
    alerts: set[tuple[str, str, float]] = set()
    for shard_lines in per_shard.values():
        columns, _, rejected = read_ndjson_numbered(b"\n".join(shard_lines), {})
        assert not rejected
        alerts.update((a.trip_id, a.kind, round(a.ts, 3)) for a in BatchMonitor().process_columns(columns))
    pings: dict[str, set[str]] = defaultdict(set)
    for lines in batches:
        for line in lines:
            event = json.loads(line)
            if event["type"] == "ping":
                pings[event["trip_id"]].add(event["ts"])
    return alerts, {trip_id: len(times) for trip_id, times in pings.items()}


def test_a_killed_monitor_worker_loses_and_repeats_nothing(cli_site: Settings, tmp_path: Path) -> None:
    bus_name = f"t{uuid.uuid4().hex[:10]}"
    settings = cli_site.model_copy(update={"bus_url": "nats://127.0.0.1:4222", "bus_name": bus_name,
                                           "bus_shards": SHARDS, "webhook_url": "http://127.0.0.1:9/hooks"})
    events, injected = build_stream(load_trips()[:90], stagger_s=20,
                                    inject={"off_route": 4, "long_stop": 4, "gps_lost": 4, "possible_crash": 4})
    lines = [json.dumps(e) for e in events]
    batches = [lines[k:k + BATCH] for k in range(0, len(lines), BATCH)]
    expected_alerts, expected_pings = _expected(batches)
    assert len(expected_alerts) >= 12 and len(injected) >= 12
    per_shard = Counter(shard for lines in batches for shard in service.accept(lines, SHARDS).lines)
    assert min(per_shard[shard] for shard in range(SHARDS)) > 2 * MAX_ACK_PENDING, per_shard

    app = create_app(settings)  # also makes the keys the workers read
    app.dependency_overrides[resolve_principal] = lambda: Principal.for_roles(
        "apikey", "key_TEST", frozenset({Role.INTEGRATION}), name="Test")
    env = scale_env(cli_site, bus_name, SHARDS)
    # A long grace: on a loaded machine one worker may start seconds after the other, and must still
    # find its own shards free (the grace delays only the first look at standby shards, not a takeover).
    first_port, metrics_port = free_port(), free_port()
    first = start_monitor_worker(env, "0-1", "2-3", tmp_path / "first.log", first_port, grace=15)
    second = start_monitor_worker(env, "2-3", "0-1", tmp_path / "second.log", metrics_port, grace=15)
    engine = make_engine(cli_site.database_url)
    factory = make_sessionmaker(engine)
    try:
        with TestClient(app) as client:
            deadline = time.monotonic() + 20
            while not app.state.nats.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            deadline = time.monotonic() + 120  # each worker runs its own shards (imports are slow on a busy machine)
            while not (all(f'tripguard_monitor_shard_owned{{shard="{n}"}} 1.0' in _metrics(metrics_port)
                           for n in (2, 3))
                       and all(f'tripguard_monitor_shard_owned{{shard="{n}"}} 1.0' in _metrics(first_port)
                               for n in (0, 1))):
                assert time.monotonic() < deadline and second.poll() is None and first.poll() is None, (
                    (tmp_path / "first.log").read_text()[-2000:], (tmp_path / "second.log").read_text()[-2000:])
                time.sleep(0.1)
            for number, batch in enumerate(batches):
                while True:
                    answer = client.post("/api/v1/telematics/events", content="\n".join(batch),
                                         headers={"content-type": "application/x-ndjson"})
                    if answer.status_code != 503:
                        break
                    time.sleep(0.2)
                assert answer.status_code == 200, answer.text
                assert answer.json()["accepted"] == len(batch)
                if number == len(batches) // 3:
                    # Mid-stream, once the first worker has checkpointed some of its shards' work: kill it.
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline:
                        with unit_of_work(factory) as session:
                            if session.scalar(select(func.count()).select_from(MonitorCheckpoint).where(
                                    MonitorCheckpoint.shard < 2, MonitorCheckpoint.seq > 0)) == 2:
                                break
                        time.sleep(0.05)
                    # Meanwhile the second, standing by for them, has not run them: each shard one worker.
                    standing_by = _metrics(metrics_port)
                    assert 'tripguard_monitor_shard_owned{shard="0"} 1.0' not in standing_by
                    assert 'tripguard_monitor_shard_owned{shard="1"} 1.0' not in standing_by
                    first.send_signal(signal.SIGKILL)
                    first.wait(10)
                time.sleep(0.05)
        ended = trips_ended(factory, len(expected_pings), 90)
        second_log = (tmp_path / "second.log").read_text()
        assert ended == len(expected_pings), second_log[-3000:]
        taken = {json.loads(line)["event"] for line in second_log.splitlines()
                 if line.startswith("{") and json.loads(line)["msg"] == "shard taken"}
        assert taken == {"shard 0", "shard 1", "shard 2", "shard 3"}, second_log[-3000:]  # its own, then the dead one's
        assert "Traceback" not in second_log, second_log[-3000:]
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        for shard in range(SHARDS):
            assert f'tripguard_monitor_shard_owned{{shard="{shard}"}} 1.0' in metrics
        assert "tripguard_monitor_events_total" in metrics and "tripguard_monitor_checkpoint_seq" in metrics

        with unit_of_work(factory) as session:
            stored = [(a.trip_id, a.kind, round(a.ts.timestamp(), 3)) for a in session.scalars(select(TripAlert))]
            sent = Counter(session.scalars(select(OutboxMessage.idempotency_key).where(
                OutboxMessage.idempotency_key.like("alert:%"))))
            kept = {trip_id: len(trips.load_track(session, vault=app.state.vault,
                                                  trip_id=trip_id)) for trip_id in expected_pings}
        assert len(stored) == len(set(stored))
        assert set(stored) == expected_alerts
        assert len(sent) == len(stored) and set(sent.values()) == {1}  # one webhook per alert
        assert kept == expected_pings  # no ping lost
    finally:
        for worker in (first, second):
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        engine.dispose()
        drop_stream(bus_name)


def _shard_holder(factory: sessionmaker[Session], name: str) -> str | None:
    with unit_of_work(factory) as session:
        lease = session.get(Lease, name)
        return None if lease is None else lease.holder


def test_a_stopped_monitor_workers_shard_is_taken_over_within_its_lease(cli_site: Settings, tmp_path: Path) -> None:
    """SIGSTOP keeps a process's connections open: its shard must still pass to the standby."""
    bus_name = f"t{uuid.uuid4().hex[:8]}"
    lease_seconds = 3.0
    env = {**scale_env(cli_site, bus_name, 2), "TRIPGUARD_LEADER_LEASE_SECONDS": str(lease_seconds)}
    create_app(cli_site)  # the keys
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = start_monitor_worker(env, "0", "1", logs[0], grace=1)
    second = start_monitor_worker(env, "1", "0", logs[1], grace=1)
    engine = make_engine(cli_site.database_url)
    factory = make_sessionmaker(engine)
    shard_0 = lease_name(bus_name, 0)
    try:
        deadline = time.monotonic() + 120  # (imports are slow on a busy machine)
        while not all('"msg": "shard taken"' in log.read_text() for log in logs) and time.monotonic() < deadline:
            time.sleep(0.2)
        holder = _shard_holder(factory, shard_0)
        assert holder is not None and holder.split(":")[1] == str(first.pid), holder
        first.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        while _shard_holder(factory, shard_0) == holder and time.monotonic() < stopped_at + lease_seconds + 15:
            time.sleep(0.1)
        taken_after = time.monotonic() - stopped_at
        new_holder = _shard_holder(factory, shard_0)
        assert new_holder is not None and new_holder.split(":")[1] == str(second.pid), logs[1].read_text()[-2000:]
        assert taken_after < lease_seconds + 3, taken_after  # the lease, the standby's poll, a busy machine
        first.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 15
        while '"msg": "shard lost' not in logs[0].read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert '"msg": "shard lost' in logs[0].read_text(), logs[0].read_text()[-2000:]  # it woke and let go
        assert _shard_holder(factory, shard_0) == new_holder
    finally:
        for worker in (first, second):
            worker.send_signal(signal.SIGCONT)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        engine.dispose()
        drop_stream(bus_name)
