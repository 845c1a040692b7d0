"""Embedded ingest writes the trip store in slices, and an SOS takes the SQLite writer between two of them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import BACKEND, fresh_database, make_settings
from tests.telematics.test_ingest_api import ndjson
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.sqlite_writer import WriterQueue
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.telematics.ingest.events import DeviceHeartbeat, Event, Ping, TripEnded, TripStarted
from tripguard.telematics.models import Trip
from tripguard.telematics.service import trip_slices
from tripguard.telematics.store import trips

TRIPS = 600
SLICE = 50


def _as_caller(request: Request) -> Principal:
    if request.url.path.endswith("/sos"):
        return Principal.for_roles("subject", "P_SLICE", frozenset({Role.PASSENGER}))
    return Principal.for_roles("api_key", "key_SLICE", frozenset({Role.INTEGRATION}))


@pytest.mark.skipif(BACKEND != "sqlite", reason="the SQLite writer of the embedded default")
def test_an_sos_is_committed_while_a_large_batch_is_still_being_stored(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tripguard.app import create_app

    url = fresh_database("tg_slices", tmp_path)
    app = create_app(make_settings(url, tmp_path / "keys", ingest_write_slice=SLICE))
    app.dependency_overrides[resolve_principal] = _as_caller
    t0 = time.time() - 3600
    starts: list[dict[str, object]] = [{"type": "trip_started", "trip_id": f"SL{k}", "ts": _iso(t0),
                                        "vehicle_id": f"V{k}", "pickup": [116.30, 39.90], "dropoff": [116.40, 39.90]}
                                       for k in range(TRIPS)]
    pings = [{"type": "ping", "trip_id": f"SL{k}", "ts": _iso(t0 + 15), "lon": 116.301, "lat": 39.90}
             for k in range(TRIPS)]
    storing = threading.Event()
    record = trips.record

    def slow_record(*args, **kwargs):  # type: ignore[no-untyped-def]
        stored = record(*args, **kwargs)
        time.sleep(0.03)  # a slow disk: each slice holds the writer a while
        storing.set()  # the batch holds the writer now
        return stored

    finished: dict[str, float] = {}
    with TestClient(app) as client:
        assert client.post("/api/v1/telematics/events", content=ndjson(starts),
                           headers={"Content-Type": "application/x-ndjson"}).status_code == 200
        monkeypatch.setattr(trips, "record", slow_record)

        def ingest() -> None:
            answer = client.post("/api/v1/telematics/events", content=ndjson(pings),
                                 headers={"Content-Type": "application/x-ndjson"})
            finished["ingest"] = time.perf_counter()
            assert answer.status_code == 200, answer.text

        batch = threading.Thread(target=ingest)
        batch.start()
        assert storing.wait(20)
        sos = client.post("/api/v1/sos", json={"lon": 116.4, "lat": 39.9})
        finished["sos"] = time.perf_counter()
        batch.join(60)
    assert sos.status_code == 201, sos.text
    # It waited for one slice, not for the whole batch: the batch's other slices (30 ms each at least) came after.
    assert finished["sos"] < finished["ingest"] - 0.1
    with unit_of_work(make_sessionmaker(make_engine(url))) as session:  # and every slice was kept
        assert session.scalar(select(func.sum(Trip.points))) == TRIPS


def test_a_batch_is_cut_by_trips_each_trip_whole_and_in_order() -> None:
    events: list[Event] = [TripStarted("A", 1.0, None, None, None, None, None), Ping("A", 2.0, 1.0, 1.0),
              DeviceHeartbeat("D1", "V1", 2.5, True, True), Ping("B", 3.0, 1.0, 1.0), Ping("C", 4.0, 1.0, 1.0),
              Ping("A", 5.0, 1.0, 1.0), TripEnded("B", 6.0, None, None)]
    slices = trip_slices(events, 2)
    assert [[(type(e).__name__, e.ts) for e in part] for part in slices] == [
        [("TripStarted", 1.0), ("Ping", 2.0), ("DeviceHeartbeat", 2.5), ("Ping", 3.0), ("Ping", 5.0),
         ("TripEnded", 6.0)],
        [("Ping", 4.0)]]


def test_an_urgent_writer_goes_ahead_of_bulk_writers_waiting() -> None:
    queue = WriterQueue()
    assert queue.acquire(timeout=1)
    order: list[str] = []

    def wait(name: str, urgent: bool) -> threading.Thread:
        def run() -> None:
            assert queue.acquire(timeout=5, urgent=urgent)
            order.append(name)
            queue.release()

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(0.1)  # queued
        return thread

    waiting = [wait("bulk 1", False), wait("bulk 2", False), wait("sos", True)]
    queue.release()
    for thread in waiting:
        thread.join(5)
    assert order == ["sos", "bulk 1", "bulk 2"]


def test_a_writer_that_asks_again_at_once_goes_behind_the_one_waiting() -> None:
    queue = WriterQueue()
    assert queue.acquire(timeout=1)
    order: list[str] = []

    def other() -> None:
        assert queue.acquire(timeout=5)
        order.append("other")
        queue.release()

    thread = threading.Thread(target=other)
    thread.start()
    time.sleep(0.1)
    queue.release()
    assert queue.acquire(timeout=5)  # the next slice of the same batch
    order.append("next slice")
    queue.release()
    thread.join(5)
    assert order == ["other", "next slice"]


def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    queue = WriterQueue()
    assert queue.acquire(timeout=1)
    assert not queue.acquire(timeout=0.05)
    queue.release()
    assert queue.acquire(timeout=0.05)  # free again: nobody was left queued to hand it to


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def test_trips_that_ping_together_are_merged_in_different_batches(client: TestClient, act_as, db,  # type: ignore[no-untyped-def]
                                                                  monkeypatch) -> None:
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    t0 = time.time() - 3600
    count = 64
    starts: list[dict[str, object]] = [{"type": "trip_started", "trip_id": f"CM{k}", "ts": _iso(t0),
                                        "pickup": [116.3, 39.9], "dropoff": [116.4, 39.9]} for k in range(count)]
    assert client.post("/api/v1/telematics/events", content=ndjson(starts)).status_code == 200
    merged: list[int] = []
    compact_many = trips.compact_many

    def counting(session, vault, trip_ids):  # type: ignore[no-untyped-def]
        merged.append(len(trip_ids))
        return compact_many(session, vault=vault, trip_ids=trip_ids)

    monkeypatch.setattr(trips, "compact_many", counting)
    for r in range(1, trips.COMPACT_EVERY + 1):  # every trip passes its 16th ping once
        pings = [{"type": "ping", "trip_id": f"CM{k}", "ts": _iso(t0 + 15 * r), "lon": 116.3 + r * 1e-4, "lat": 39.9}
                 for k in range(count)]
        assert client.post("/api/v1/telematics/events", content=ndjson(pings)).status_code == 200
    assert sum(merged) == count  # each merged once in the cycle...
    assert max(merged) <= count // 4  # ...spread over the batches, not all in the same one
    trip = db.get(Trip, "CM0")
    db.refresh(trip)
    assert trip.points == trips.COMPACT_EVERY
