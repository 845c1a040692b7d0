"""The trip store over HTTP: trips kept, positions sealed at rest, evidence as GeoJSON and CSV, audited."""

from __future__ import annotations

import csv
import io
import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.telematics.test_ingest_api import ROUTE, ndjson, post, trip_with_deviation
from tripguard.audit.models import AuditEntry
from tripguard.privacy.models import FreeText
from tripguard.security.permissions import Role
from tripguard.telematics.models import TrackChunk, Trip

EVIDENCE = "/api/v1/telematics/trips/T1/trajectory"


def ended(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return [*events, {"type": "trip_ended", "trip_id": "T1", "ts": "2026-03-01T08:03:00Z",
                      "lon": ROUTE[-1][0], "lat": ROUTE[-1][1]}]


def test_a_trip_and_its_pings_are_kept_sealed(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    events = trip_with_deviation()
    events[0]["driver_id"], events[0]["passenger_id"] = "D1", "P1"
    post(client, ndjson(events[:6]))
    post(client, ndjson(events[6:]))
    trip = db.get(Trip, "T1")
    assert trip is not None \
        and (trip.status, trip.driver_id, trip.passenger_id, trip.points) == ("active", "D1", "P1", 12)
    chunks = db.scalars(select(TrackChunk).where(TrackChunk.trip_id == "T1")).all()
    assert len(chunks) in (1, 2)  # one a batch, or one once merged (each trip at its own point of a 16-ping cycle)
    assert all(b"41.14" not in (c.packed or b"") and b"TGT1" not in (c.packed or b"") for c in chunks)
    assert trip.plan is not None and b"route" not in trip.plan


def test_the_end_merges_the_chunks_and_a_resent_batch_adds_no_position(client: TestClient, db: Session,
                                                                      act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    events = ended(trip_with_deviation())
    post(client, ndjson(events[:7]))
    post(client, ndjson(events[:7]))  # re-sent
    post(client, ndjson(events[7:]))
    assert db.get(Trip, "T1").status == "ended"  # type: ignore[union-attr]
    assert len(db.scalars(select(TrackChunk)).all()) == 1
    act_as(Role.INVESTIGATOR)
    response = client.get(EVIDENCE, params={"purpose": "investigation", "reason": "complaint C-1", "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 12 and rows[0]["ts"] == "2026-03-01T08:00:00Z" and float(rows[4]["lat"]) == 41.146


def test_geojson_evidence_names_purpose_and_reason_in_the_audit_log(client: TestClient, db: Session,
                                                                    act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(ended(trip_with_deviation())))
    act_as(Role.SAFETY_AGENT)
    response = client.get(EVIDENCE, params={"purpose": "emergency", "reason": "alert on the live map"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/geo+json"
    features = {f["properties"]["role"]: f for f in response.json()["features"]}
    assert set(features) == {"trajectory", "planned_route", "pickup", "dropoff", "end", "alert"}
    assert len(features["trajectory"]["geometry"]["coordinates"]) == 12
    # Where the alert happened comes with the trajectory, through the same gate (it is one of its positions).
    alert = features["alert"]
    assert alert["properties"]["kind"] == "route_deviation"
    assert alert["geometry"]["coordinates"] in features["trajectory"]["geometry"]["coordinates"]
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "trip.trajectory_read")).one()
    assert (entry.purpose, entry.target_id) == ("emergency", "T1")
    # The reason is typed text: the log keeps a reference and a keyed MAC; the text is sealed under the trip's key.
    assert "alert on the live map" not in entry.details
    details = json.loads(entry.details)
    kept = db.get(FreeText, details["reason_ref"])
    assert kept is not None and kept.subject_id == "trip:T1"
    # Its MAC is keyed by the trip's data key (it dies with it), not by the keyring.
    vault = client.app.state.vault  # type: ignore[attr-defined]
    assert vault.verify_subject_mac(db, "trip:T1", text="alert on the live map", mac=details["reason_mac"])


def test_positions_need_a_purpose_the_role_holds_and_a_reason(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation()))
    act_as(Role.SAFETY_AGENT)
    assert client.get(EVIDENCE, params={"purpose": "investigation", "reason": "curious"}).status_code == 403
    assert client.get(EVIDENCE, params={"purpose": "emergency"}).status_code == 422
    act_as(Role.SUPERVISOR)
    assert client.get(EVIDENCE, params={"purpose": "emergency", "reason": "looking"}).status_code == 403
    act_as(Role.SAFETY_AGENT)
    assert client.get("/api/v1/telematics/trips/nope/trajectory",
                      params={"purpose": "emergency", "reason": "alert"}).status_code == 404


def test_trip_detail_lists_alerts_without_positions(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    client.put("/api/v1/telematics/vehicles/V1", json={"plate": "粤B12345", "colour": "white", "model": "BYD Qin"})
    post(client, ndjson(trip_with_deviation()))
    act_as(Role.SAFETY_AGENT)
    detail = client.get("/api/v1/telematics/trips/T1").json()
    assert detail["trip"]["status"] == "active" and detail["vehicle"]["plate"] == "粤B12345"
    assert [a["kind"] for a in detail["alerts"]] == ["route_deviation"]
    assert "lon" not in detail["trip"]
    listed = client.get("/api/v1/telematics/trips", params={"status": "active"}).json()
    assert [t["id"] for t in listed] == ["T1"]


def test_opening_positions_or_a_recording_takes_a_visible_reason(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    """Found by the second review of #27: "..." or blanks passed as the reason for opening a trip's positions."""
    act_as(Role.INVESTIGATOR)
    for reason in ("...", "     ", "\u3164" * 5):
        answer = client.get("/api/v1/telematics/trips/T-none/trajectory",
                            params={"purpose": "investigation", "reason": reason})
        assert answer.status_code == 422, (reason, answer.status_code, answer.text)
        played = client.get("/api/v1/recordings/rec_none/content", params={"incident_id": "inc_none", "reason": reason})
        assert played.status_code == 422, (reason, played.status_code, played.text)
