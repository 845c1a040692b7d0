"""Trip data after the retention period: gone, positions unreadable for good, held trips kept."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tripguard.core.clock import utcnow
from tripguard.privacy.retention import held_subjects, place_hold
from tripguard.security.permissions import Role
from tripguard.telematics.models import TrackChunk, Trip, TripAlert
from tripguard.telematics.store.retention import expired_trips
from tripguard.telematics.store.trips import trip_key
from tripguard.vault.models import DataKey


def test_expired_trips_are_deleted_and_their_key_shredded_unless_held(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                                      app: FastAPI) -> None:
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for trip_id, passenger in (("T1", "P1"), ("T2", "P2")):
        events = trip_with_deviation(trip_id)
        events[0]["passenger_id"] = passenger
        events.append({"type": "trip_ended", "trip_id": trip_id, "ts": "2026-03-01T08:03:00Z"})
        post(client, ndjson(events))
    place_hold(db, actor=TEST_ACTOR, subject_id="P2", case_ref="C-7", reason="court order")
    rule = expired_trips(timedelta(days=730), held_subjects)
    assert rule(db, app.state.vault, utcnow(), False) == (0, 0)  # nothing is old enough yet
    later = utcnow() + timedelta(days=731)
    assert rule(db, app.state.vault, later, True) == (1, 1)  # a dry run counts, the held one apart
    assert rule(db, app.state.vault, later, False) == (1, 1)
    assert [t.id for t in db.scalars(select(Trip))] == ["T2"]
    assert {c.trip_id for c in db.scalars(select(TrackChunk))} == {"T2"}
    assert {a.trip_id for a in db.scalars(select(TripAlert))} == {"T2"}
    key = db.get(DataKey, trip_key("T1"))
    assert key is not None and key.wrapped_key is None


def test_held_trips_never_stall_the_rule(client: TestClient, db: Session, act_as, app: FastAPI,  # type: ignore[no-untyped-def]
                                        monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """More held trips than fit in a batch: the free ones are still found, counted and erased."""
    from tripguard.telematics.store import retention

    monkeypatch.setattr(retention, "BATCH", 2)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for n in range(5):
        events = trip_with_deviation(f"T{n}")
        events[0]["passenger_id"] = f"P{n}"
        events.append({"type": "trip_ended", "trip_id": f"T{n}", "ts": "2026-03-01T08:03:00Z"})
        post(client, ndjson(events))
    for n in range(3):  # the three oldest are held: a batch of 2 would be all held
        place_hold(db, actor=TEST_ACTOR, subject_id=f"P{n}" if n else trip_key("T0"), case_ref="C", reason="court")
    rule = expired_trips(timedelta(days=730), held_subjects)
    later = utcnow() + timedelta(days=731)
    assert rule(db, app.state.vault, later, True) == (2, 3)
    assert rule(db, app.state.vault, later, False) == (2, 3)
    assert sorted(t.id for t in db.scalars(select(Trip))) == ["T0", "T1", "T2"]
