"""In-car recordings: resumable upload, checked whole, sealed, opened only inside an open case, kept on time."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.safety.test_sos_api import on_a_trip
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.safety import recordings
from tripguard.safety.models import Incident, Recording, RecordingChunk
from tripguard.security.permissions import Role

CLIP = bytes(range(256)) * 40  # 10 KiB of "audio"


def announce(client: TestClient, act_as, body: bytes = CLIP) -> str:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    created = client.post("/api/v1/recordings", json={
        "trip_id": "T1", "device_id": "DEV1", "kind": "audio", "content_type": "audio/ogg",
        "started_at": "2026-03-01T08:00:00Z", "duration_s": 60, "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest()})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def put(client: TestClient, recording_id: str, start: int, piece: bytes, total: int = len(CLIP)):  # type: ignore[no-untyped-def]
    return client.put(f"/api/v1/recordings/{recording_id}/content", content=piece,
                      headers={"Content-Range": f"bytes {start}-{start + len(piece) - 1}/{total}",
                               "content-type": "application/octet-stream"})


def test_upload_resumes_and_is_checked_whole(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    recording_id = announce(client, act_as)
    assert announce(client, act_as) == recording_id  # announced twice: one recording
    assert put(client, recording_id, 0, CLIP[:4096]).json()["received"] == 4096
    assert put(client, recording_id, 0, CLIP[:4096]).json()["received"] == 4096  # a retry of the same piece
    assert put(client, recording_id, 8192, CLIP[8192:]).status_code == 409  # a gap: resume from 4096
    assert client.get(f"/api/v1/recordings/{recording_id}").json()["received"] == 4096
    done = put(client, recording_id, 4096, CLIP[4096:]).json()
    assert done["status"] == "complete" and done["received"] == len(CLIP)
    chunks = db.scalars(select(RecordingChunk)).all()
    assert len(chunks) == 2 and all(CLIP[:64] not in c.sealed for c in chunks)


def test_a_damaged_upload_is_marked_corrupt(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    recording_id = announce(client, act_as)
    damaged = bytes([CLIP[0] ^ 1]) + CLIP[1:]
    assert put(client, recording_id, 0, damaged).json()["status"] == "corrupt"


def test_only_an_investigator_on_an_open_case_of_the_trip_plays_it(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    recording_id = announce(client, act_as)
    put(client, recording_id, 0, CLIP)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    url = f"/api/v1/recordings/{recording_id}/content"
    act_as(Role.SAFETY_AGENT)
    assert client.get(url, params={"incident_id": incident_id, "reason": "SOS call"}).status_code == 403
    act_as(Role.INVESTIGATOR)
    assert client.get(url, params={"incident_id": "inc_nope", "reason": "SOS call"}).status_code == 403
    played = client.get(url, params={"incident_id": incident_id, "reason": "SOS on trip T1"})
    assert played.status_code == 200 and played.content == CLIP and played.headers["content-type"] == "audio/ogg"
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "recording.open")).one()
    assert entry.purpose == "investigation" and json.loads(entry.details)["incident"] == incident_id
    timeline = client.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
    assert timeline[-1]["kind"] == "evidence" and timeline[-1]["details"] == {"recording": recording_id}
    incident = db.get(Incident, incident_id)
    incident.status = "closed"  # type: ignore[union-attr]
    db.commit()
    assert client.get(url, params={"incident_id": incident_id, "reason": "later"}).status_code == 403


def test_kept_seven_days_or_while_a_case_is_open(client: TestClient, db: Session, act_as, app: FastAPI) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    recording_id = announce(client, act_as)
    put(client, recording_id, 0, CLIP)
    rule = recordings.expired()
    week_later = utcnow() + timedelta(days=8)
    assert rule(db, app.state.vault, utcnow(), False) == (0, 0)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    assert rule(db, app.state.vault, week_later, False) == (0, 1)  # held by the open case
    db.get(Incident, incident_id).status = "closed"  # type: ignore[union-attr]
    db.commit()
    assert rule(db, app.state.vault, week_later, False) == (1, 0)
    assert db.get(Recording, recording_id) is None and db.scalars(select(RecordingChunk)).all() == []


def test_the_incident_page_offers_the_trips_recordings_to_investigators_only(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                            act_as) -> None:
    on_a_trip(client, act_as, db)
    recording_id = announce(client, act_as)
    put(client, recording_id, 0, CLIP)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    act_as(Role.INVESTIGATOR)
    page = client.get(f"/console/incidents/{incident_id}", headers={"accept-language": "en"})
    assert page.status_code == 200 and f'data-recording="{recording_id}"' in page.text and 'id="map"' in page.text
    act_as(Role.SAFETY_AGENT)
    page = client.get(f"/console/incidents/{incident_id}", headers={"accept-language": "en"})
    assert page.status_code == 200 and "data-recording=" not in page.text and "Complete" in page.text


def test_the_case_page_shows_only_its_trips_clips_in_the_order_they_were_made(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as) -> None:
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    now, start = utcnow(), datetime(2026, 3, 1, 8, tzinfo=UTC)
    # Stored (and named) in neither the order they were made nor by trip: the page must sort them itself.
    for recording_id, trip_id, minutes in (("rec_c_late", "T1", 10), ("rec_b_other", "T2", 5),
                                           ("rec_a_early", "T1", 0)):
        db.add(Recording(id=recording_id, trip_id=trip_id, device_id="DEV1", kind="audio", content_type="audio/ogg",
                         started_at=start + timedelta(minutes=minutes), duration_s=60, size=len(CLIP),
                         sha256=hashlib.sha256(CLIP).hexdigest(), received=len(CLIP), status="complete",
                         created_at=now, keep_until=now + timedelta(days=7)))
    db.commit()
    act_as(Role.INVESTIGATOR)
    page = client.get(f"/console/incidents/{incident_id}", headers={"accept-language": "en"})
    assert page.status_code == 200, page.text
    assert re.findall(r'data-recording="([^"]+)"', page.text) == ["rec_a_early", "rec_c_late"]
