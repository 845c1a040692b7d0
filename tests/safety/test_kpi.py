"""The safety-feature use rate the plan sets a target for (≥ 80 %)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.telematics.test_ingest_api import ndjson, post
from tripguard.core.clock import utcnow
from tripguard.safety.models import EmergencyContact
from tripguard.security.permissions import Role
from tripguard.telematics.ingest.events import format_ts


def test_use_rate_counts_trips_shared_with_contacts_or_sos(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PASSENGER, kind="subject", id="P1")
    contact_id = client.post("/api/v1/me/contacts", json={"name": "甲", "phone": "13800000001"}).json()["id"]
    contact = db.get(EmergencyContact, contact_id)
    contact.verified_at = contact.created_at - timedelta(days=30)  # type: ignore[union-attr]
    db.commit()
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    now = format_ts(utcnow().timestamp() - 3600)
    post(client, ndjson([{"type": "trip_started", "trip_id": t, "ts": now, "passenger_id": p}
                         for t, p in (("A", "P1"), ("B", "P2"), ("C", "P3"), ("D", "P4"))]))
    act_as(Role.PASSENGER, kind="subject", id="P2")
    client.post("/api/v1/trips/B/shares")
    act_as(Role.PASSENGER, kind="subject", id="P3")
    client.post("/api/v1/sos", json={"trip_id": "C"})
    act_as(Role.SAFETY_AGENT)
    kpi = client.get("/api/v1/kpi/safety-use", params={"days": 1}).json()
    assert (kpi["trips"], kpi["with_contacts"], kpi["shared"], kpi["sos"], kpi["used"]) == (4, 1, 2, 1, 3)
    assert kpi["use_rate"] == 0.75


def test_the_use_rates_denominator_is_the_trips_started_in_the_period(db: Session) -> None:
    """From `since` up to, not including, `until`: a trip on either side of the period is not counted."""
    from tripguard.safety.kpi import safety_use
    from tripguard.telematics.models import Trip

    since = utcnow().replace(microsecond=0) - timedelta(days=7)
    until = since + timedelta(days=1)
    starts = {"before": since - timedelta(seconds=1), "first": since, "inside": since + timedelta(hours=5),
              "last": until - timedelta(seconds=1), "at_until": until, "after": until + timedelta(hours=1)}
    for trip_id, started in starts.items():
        db.add(Trip(id=trip_id, status="ended", passenger_id=f"P_{trip_id}", started_at=started, ended_at=started,
                    updated_at=started))
    db.flush()
    period = safety_use(db, since=since, until=until)
    assert (period.trips, period.used, period.use_rate) == (3, 0, 0.0)  # first, inside, last
    assert safety_use(db, since=since).trips == 5  # open-ended: everything from `since` on
