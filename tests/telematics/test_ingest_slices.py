"""The synchronous ingest (the demo city's) writes the trip store in slices; SQLite's writer queue puts an SOS first.

(An SOS while the embedded monitor works a large backlog: tests/telematics/detection/test_embedded.py.)"""

from __future__ import annotations

import json
import threading
import time

from fastapi.testclient import TestClient

from tripguard.core.db import unit_of_work
from tripguard.core.sqlite_writer import WriterQueue
from tripguard.telematics import service
from tripguard.telematics.ingest.events import DeviceHeartbeat, Event, Ping, TripEnded, TripStarted
from tripguard.telematics.models import Trip
from tripguard.telematics.service import trip_slices
from tripguard.telematics.store import trips


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


def test_trips_that_ping_together_are_merged_in_different_batches(client: TestClient, app, db,  # type: ignore[no-untyped-def]
                                                                  monkeypatch) -> None:
    """The synchronous path (the demo city's ingest) merges a trip's chunks every COMPACT_EVERY pings; the
    monitor's held positions go in as one chunk per checkpoint and are merged when the trip ends."""
    def ingest(events: list[dict[str, object]]) -> None:
        with unit_of_work(app.state.sessionmaker) as session:
            service.ingest(session, live=app.state.live_monitor, vault=app.state.vault,
                           lines=[json.dumps(e) for e in events], options=app.state.ingest_options())

    t0 = time.time() - 3600
    count = 64
    starts: list[dict[str, object]] = [{"type": "trip_started", "trip_id": f"CM{k}", "ts": _iso(t0),
                                        "pickup": [116.3, 39.9], "dropoff": [116.4, 39.9]} for k in range(count)]
    ingest(starts)
    merged: list[int] = []
    compact_many = trips.compact_many

    def counting(session, vault, trip_ids):  # type: ignore[no-untyped-def]
        merged.append(len(trip_ids))
        return compact_many(session, vault=vault, trip_ids=trip_ids)

    monkeypatch.setattr(trips, "compact_many", counting)
    for r in range(1, trips.COMPACT_EVERY + 1):  # every trip passes its 16th ping once
        pings = [{"type": "ping", "trip_id": f"CM{k}", "ts": _iso(t0 + 15 * r), "lon": 116.3 + r * 1e-4, "lat": 39.9}
                 for k in range(count)]
        ingest(pings)
    assert sum(merged) == count  # each merged once in the cycle...
    assert max(merged) <= count // 4  # ...spread over the batches, not all in the same one
    trip = db.get(Trip, "CM0")
    db.refresh(trip)
    assert trip.points == trips.COMPACT_EVERY
