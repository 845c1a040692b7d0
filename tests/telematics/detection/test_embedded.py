"""The embedded monitor: the inbox applied off the request equals the synchronous path; a kill loses nothing and
stores nothing twice; the backlog is bounded; an SOS goes through while the monitor works a large backlog."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.builders import drain
from tests.conftest import fresh_database, make_settings
from tests.telematics.test_ingest_api import ROUTE, ndjson
from tripguard.core.db import unit_of_work
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.telematics import service
from tripguard.telematics.detection import embedded
from tripguard.telematics.models import InboxBatch, MonitorCheckpoint, Trip, TripAlert
from tripguard.telematics.store import trips

pytestmark = pytest.mark.drain_by_hand


def _as_caller(request: Request) -> Principal:
    if request.url.path.endswith("/sos"):
        return Principal.for_roles("subject", "P_EMB", frozenset({Role.PASSENGER}))
    return Principal.for_roles("api_key", "key_EMB", frozenset({Role.INTEGRATION}))


def _stream() -> list[list[dict[str, object]]]:
    """Batches of a small city: trips that leave their route, stop sending, end; a device heartbeat."""
    events: list[dict[str, object]] = []
    for k in range(6):
        trip = f"E{k}"
        events.append({"type": "trip_started", "trip_id": trip, "ts": "2026-03-01T08:00:00Z", "vehicle_id": f"V{k}",
                       "pickup": ROUTE[0], "dropoff": ROUTE[-1], "route": ROUTE})
    for n in range(14):
        for k in range(6):
            if k == 5 and n > 3:
                continue  # E5 falls silent
            lat = 41.14 + (0.006 if k % 2 and n >= 4 else 0.0)  # odd trips leave the route
            events.append({"type": "ping", "trip_id": f"E{k}", "ts": f"2026-03-01T08:{n * 15 // 60:02d}:"
                           f"{n * 15 % 60:02d}Z", "lon": ROUTE[n][0], "lat": lat, "speed_mps": 8.0})
    events.append({"type": "device_heartbeat", "device_id": "DEV1", "vehicle_id": "V1", "ts": "2026-03-01T08:03:20Z"})
    events.extend({"type": "trip_ended", "trip_id": f"E{k}", "ts": "2026-03-01T08:03:30Z"} for k in (0, 1))
    return [events[start:start + 23] for start in range(0, len(events), 23)]


def _app(tmp_path: Path, name: str, **overrides: Any) -> FastAPI:
    from tripguard.app import create_app

    url = fresh_database(name, tmp_path)
    app = create_app(make_settings(url, tmp_path / f"keys-{name}", **{"monitor_thread": False, **overrides}))
    app.dependency_overrides[resolve_principal] = _as_caller
    return app


Outcome = tuple[list[tuple[object, ...]], list[tuple[object, ...]], dict[str, list[tuple[float, ...]]]]


def _outcome(app: FastAPI) -> Outcome:
    """The alerts, trips and positions the store holds."""
    with unit_of_work(app.state.sessionmaker) as session:
        alerts = sorted((a.trip_id, a.kind, a.severity, a.ts) for a in session.scalars(select(TripAlert)))
        rows = sorted((t.id, t.status, t.points, t.started_at, t.ended_at) for t in session.scalars(select(Trip)))
        positions = {t[0]: [(p.ts, p.lon, p.lat) for p in service.positions_of(session, vault=app.state.vault,
                                                                               trip_id=str(t[0]))] for t in rows}
    return alerts, rows, positions


def _post(client: TestClient, events: list[dict[str, object]]) -> Any:
    return client.post("/api/v1/telematics/events", content=ndjson(events),
                       headers={"content-type": "application/x-ndjson"})


def test_the_inbox_drained_equals_the_synchronous_path(tmp_path: Path) -> None:
    reference = _app(tmp_path, "tg_emb_sync")
    with TestClient(reference):
        options = reference.state.ingest_options()
        for batch in _stream():
            with unit_of_work(reference.state.sessionmaker) as session:
                service.ingest(session, live=reference.state.live_monitor, vault=reference.state.vault,
                               lines=[json.dumps(e) for e in batch], options=options)
    inboxed = _app(tmp_path, "tg_emb_inbox", monitor_slice_lines=7)  # batches cut, and put together
    with TestClient(inboxed) as client:
        for batch in _stream():
            assert _post(client, batch).json()["accepted"] == len(batch)
        assert len(drain(inboxed)) > 0
    expected = _outcome(reference)
    assert expected[0] and {kind for _, kind, *_ in expected[0]} >= {"route_deviation"}
    assert _outcome(inboxed) == expected


def test_a_killed_monitor_resumes_from_its_checkpoint_without_loss_or_duplicates(tmp_path: Path) -> None:
    from tripguard.app import create_app

    whole = _app(tmp_path, "tg_emb_whole")
    with TestClient(whole) as client:
        for batch in _stream():
            _post(client, batch)
        drain(whole)
    killed = _app(tmp_path, "tg_emb_killed", monitor_slice_lines=5, monitor_checkpoint_seconds=3600)
    batches = _stream()
    client = TestClient(killed)
    client.__enter__()
    _post(client, batches[0])
    drain(killed)  # a checkpoint
    for batch in batches[1:]:
        _post(client, batch)
    monitor = killed.state.embedded_monitor
    for _ in range(9):  # part of the rest applied and stored, positions held, no checkpoint since: then killed
        monitor.step()
    assert monitor.seq > monitor.saved_seq
    # A new process on the same database: it never ran the old one's shutdown.
    after = create_app(killed.state.settings)
    after.dependency_overrides[resolve_principal] = _as_caller
    with TestClient(after):
        drain(after)
        with unit_of_work(after.state.sessionmaker) as session:
            assert session.scalar(select(func.count()).select_from(InboxBatch)) == 0  # covered: deleted
    assert _outcome(after) == _outcome(whole)


def test_ingest_answers_503_while_the_backlog_is_over_its_bound(client: TestClient, app: FastAPI, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    app.state.settings = app.state.settings.model_copy(update={"ingest_inbox_max_lines": 10})
    batch = _stream()[0]
    assert _post(client, batch[:12]).status_code == 200  # 12 waiting now: over the bound
    refused = _post(client, batch[12:])
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert app.state.embedded_monitor.backlog() == 12
    drain(app)
    assert app.state.embedded_monitor.backlog() == 0
    assert _post(client, batch[12:]).status_code == 200


TRIPS = 400


def test_an_sos_is_stored_while_the_monitor_thread_works_a_large_backlog(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = _app(tmp_path, "tg_emb_sos", monitor_thread=True, monitor_slice_lines=50)
    t0 = time.time() - 3600
    starts: list[dict[str, object]] = [{"type": "trip_started", "trip_id": f"SL{k}", "ts": _iso(t0),
                                        "vehicle_id": f"V{k}", "pickup": [116.30, 39.90], "dropoff": [116.40, 39.90]}
                                       for k in range(TRIPS)]
    pings = [{"type": "ping", "trip_id": f"SL{k}", "ts": _iso(t0 + 15 * r), "lon": 116.301, "lat": 39.90}
             for r in range(1, 4) for k in range(TRIPS)]
    record = trips.record
    working = threading.Event()

    def slow_record(*args, **kwargs):  # type: ignore[no-untyped-def]
        working.set()
        time.sleep(0.03)  # a slow disk: each slice holds the writer a while
        return record(*args, **kwargs)

    monkeypatch.setattr(trips, "record", slow_record)
    with TestClient(app) as client:
        assert _post(client, starts).status_code == 200
        assert _post(client, pings).status_code == 200
        assert working.wait(20)
        sos = client.post("/api/v1/sos", json={"lon": 116.4, "lat": 39.9})
        assert sos.status_code == 201, sos.text
        assert app.state.embedded_monitor.backlog() > 0  # answered and stored while the monitor still works
        deadline = time.monotonic() + 60
        while app.state.embedded_monitor.backlog() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.embedded_monitor.backlog() == 0
    # A clean stop checkpointed everything: the inbox is empty, and every ping was stored once.
    with unit_of_work(app.state.sessionmaker) as session:
        assert session.scalar(select(func.count()).select_from(InboxBatch)) == 0
        checkpoint = session.get(MonitorCheckpoint, (embedded.STREAM, embedded.SHARD))
        assert checkpoint is not None and checkpoint.seq == 2
        assert session.scalar(select(func.sum(Trip.points))) == 3 * TRIPS
        from tripguard.safety.models import Incident
        assert session.scalar(select(func.count()).select_from(Incident)) == 1


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("count", [0, 1, 7])
def test_held_positions_are_written_in_parts_each_trip_whole(count: int) -> None:
    import numpy as np

    trip_ids = [f"T{k % 3}" for k in range(count)]
    table = np.arange(6 * count, dtype=np.int64).reshape(6, count)
    parts = embedded._trip_slices(trip_ids, table, 2)
    assert sum(len(ids) for ids, _ in parts) == count
    for ids, part in parts:
        assert part.shape == (6, len(ids))
        for trip in set(ids):
            assert ids.count(trip) == trip_ids.count(trip)  # a trip's positions all in one part
