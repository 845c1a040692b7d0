"""Where an alert happened is a position like any other: sealed under the trip's key at rest, never sent
to the operator's key, its webhook or the live feed, and opened only with the trajectory, on a purpose,
audited, and blocked after a person on the trip was erased as the trajectory is (issue #26, finding 5)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.safety.test_sos_api import on_a_trip
from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tripguard.audit.models import AuditEntry
from tripguard.notify.models import OutboxMessage
from tripguard.security.permissions import Role
from tripguard.telematics.models import TripAlert
from tripguard.telematics.store import trips

POSITION_KEYS = frozenset({"lon", "lat", "position", "coordinates", "location"})
DEVIATED = [-8.604, 41.146]  # the seventh ping of `trip_with_deviation`: the third off the route confirms it


def position_keys(value: object) -> set[str]:
    """Every key anywhere in a JSON value that would carry a position."""
    if isinstance(value, dict):
        return {k for k in value if k in POSITION_KEYS} | {k for v in value.values() for k in position_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in position_keys(v)}
    return set()


def test_an_alert_position_is_sealed_under_the_trip_key(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation()))
    alert = db.scalars(select(TripAlert)).one()
    columns = set(db.execute(text("SELECT * FROM telematics_alerts")).keys())
    assert not {"lon", "lat"} & columns  # no plain column is left to land in a backup
    assert alert.position is not None and b"41.1" not in alert.position and b"-8.6" not in alert.position
    where = trips.open_alert_position(db, vault=app.state.vault, alert=alert)
    assert where is not None and [round(where[0], 6), round(where[1], 6)] == DEVIATED


def test_the_operator_key_and_an_agent_get_alerts_without_positions(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation()))
    for role, kind in ((Role.INTEGRATION, "api_key"), (Role.SAFETY_AGENT, "staff")):
        act_as(role, kind=kind, id="key_TEST" if kind == "api_key" else "stf_AGENT")
        listed = client.get("/api/v1/telematics/alerts").json()
        detail = client.get("/api/v1/telematics/trips/T1").json()
        assert [a["kind"] for a in listed] == [a["kind"] for a in detail["alerts"]] == ["route_deviation"]
        assert position_keys(listed) == position_keys(detail) == set(), role


def test_the_alert_webhook_and_the_live_feed_carry_no_position(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    app.state.settings = app.state.settings.model_copy(update={"webhook_url": "http://127.0.0.1:9/hooks"})
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation()))
    webhook = db.scalars(select(OutboxMessage).where(OutboxMessage.template == "alert")).one()
    assert webhook.content is not None and webhook.content["payload"]["kind"] == "route_deviation"  # type: ignore[index]
    assert position_keys(webhook.content) == set()
    alerts = app.state.live_monitor.feed.snapshot()["alerts"]
    assert [a["kind"] for a in alerts] == ["route_deviation"] and position_keys(alerts) == set()


def test_after_an_erasure_alert_positions_are_blocked_as_the_trajectory_is(client: TestClient, db: Session,
                                                                           act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)  # T1, passenger P1, driver D1, its first pings
    post(client, ndjson(trip_with_deviation()[5:]))  # the rest: the deviation
    assert db.scalars(select(TripAlert)).one().position is not None
    act_as(Role.PRIVACY_OFFICER)
    assert client.post("/api/v1/subjects/P1/erase", json={"reason": "subject_request"}).status_code == 200
    act_as(Role.SAFETY_AGENT, id="stf_AGENT")
    assert position_keys(client.get("/api/v1/telematics/trips/T1").json()) == set()
    assert client.get("/api/v1/telematics/trips/T1/trajectory",
                      params={"purpose": "emergency", "reason": "alert on the map"}).status_code == 403
    act_as(Role.INVESTIGATOR, id="stf_INV")
    opened = client.get("/api/v1/telematics/trips/T1/trajectory",
                        params={"purpose": "investigation", "reason": "police request R-7"})
    assert opened.status_code == 200
    placed = [f for f in opened.json()["features"] if f["properties"]["role"] == "alert"]
    assert [f["geometry"]["coordinates"] for f in placed] == [DEVIATED]
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "trip.trajectory_read",
                                                AuditEntry.actor_id == "stf_INV")).one()
    assert (entry.purpose, entry.target_id, json.loads(entry.details)["alerts"]) == ("investigation", "T1", 1)
