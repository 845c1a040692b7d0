"""A process that has taken no event yet (a restart, a new replica) judges lateness from the store: a lone
event from 1970 as its first batch is refused, and no false `gps_lost` follows (found by the review of #27)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tripguard.security.permissions import Role
from tripguard.telematics.ingest import lateness
from tripguard.telematics.models import Trip, TripAlert

STORED_START = datetime(2026, 3, 1, 7, 59, tzinfo=UTC)  # a trip taken before this process started


def _stored_trip(db: Session) -> None:
    db.add(Trip(id="T_BEFORE", status="active", crs="wgs84", started_at=STORED_START, points=0,
                updated_at=STORED_START))
    db.commit()


def test_the_first_batch_after_a_restart_is_judged_by_the_store(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                act_as) -> None:
    _stored_trip(db)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    first = post(client, ndjson([{"type": "trip_started", "trip_id": "T1970", "ts": "1970-01-01T00:00:00Z",
                                  "pickup": [-8.61, 41.14], "dropoff": [-8.60, 41.15]}]))
    assert first.status_code in (200, 422) and "T1970" not in str(db.scalars(select(Trip.id)).all()), first.text
    post(client, ndjson(trip_with_deviation("T1")))
    assert db.scalars(select(TripAlert).where(TripAlert.trip_id == "T1970")).all() == []


def test_the_stored_mark_is_asked_only_while_nothing_was_taken(db: Session) -> None:
    assert lateness.stored_mark(db, mark=float("-inf")) == float("-inf")  # an empty store: nothing to judge by
    _stored_trip(db)
    assert lateness.stored_mark(db, mark=float("-inf")) == STORED_START.timestamp()
    assert lateness.stored_mark(db, mark=5.0) == 5.0  # a process that has taken events keeps its own mark
