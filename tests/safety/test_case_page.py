"""The case page drives the response: the caller's name and phone opened through the gate (audited),
a call through the telephony adapter, who was told, the police dispatch, assign and reassign, the
trip's route and last minutes, what opened the case, and a timeline that names people."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import staff
from tests.safety.test_sos_api import on_a_trip
from tripguard.audit.models import AuditEntry
from tripguard.safety.models import EmergencyContact, Incident, IncidentEvent
from tripguard.security.permissions import Role


def sos_with_contact(client: TestClient, db: Session, act_as) -> str:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    contact = client.post("/api/v1/me/contacts", json={"name": "王芳", "phone": "13800005678"}).json()
    row = db.get(EmergencyContact, contact["id"])
    assert row is not None
    row.verified_at = row.created_at
    db.flush()
    return str(client.post("/api/v1/sos", json={}).json()["incident_id"])


def reads_of(db: Session, table: str, actor: str = "stf_TEST") -> list[AuditEntry]:
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read",
                                                    AuditEntry.target_type == table,
                                                    AuditEntry.actor_id == actor)))


def test_the_case_page_shows_the_caller_through_the_gate_with_an_audit_entry(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    incident_id = sos_with_contact(client, db, act_as)
    act_as(Role.SAFETY_AGENT)
    page = client.get(f"/console/incidents/{incident_id}", headers={"accept-language": "zh-CN"})
    assert page.status_code == 200, page.text
    assert 'data-testid="caller-name">王小明<' in page.text and 'data-testid="caller-phone">13800001234<' in page.text
    assert "王芳" in page.text and "13800005678" in page.text  # the contact, and whether they were told
    assert "正在发送" in page.text  # their SMS is queued (nobody has sent the outbox here)
    assert "正在发送至紧急接警网关" in page.text  # the police dispatch
    caller_reads = reads_of(db, "privacy_subjects")
    assert [(e.target_id, e.purpose, json.loads(e.details)["plaintext"]) for e in caller_reads] == [
        ("P1", "emergency", "name,phone")]
    assert reads_of(db, "safety_contacts")[0].purpose == "emergency"
    trajectory = db.scalars(select(AuditEntry).where(AuditEntry.action == "trip.trajectory_read")).one()
    assert (trajectory.target_id, trajectory.purpose) == ("T1", "emergency")
    assert "data-route=" in page.text and "data-recent=" in page.text


def test_a_call_goes_through_the_adapter_and_on_the_timeline_without_the_number(
        client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    incident_id = sos_with_contact(client, db, act_as)
    act_as(Role.SAFETY_AGENT)
    called = client.post(f"/console/incidents/{incident_id}/call", data={"to": "caller"}, follow_redirects=False)
    assert called.status_code == 303 and called.headers["location"].endswith("?call=recorded")
    assert app.state.telephony.requests[-1][1:3] == (incident_id, "stf_TEST")
    event = db.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id,
                                                   IncidentEvent.kind == "call")).one()
    assert event.details["to"] == "caller" and event.details["via"] == "record-only"
    assert "13800001234" not in str(event.details)
    page = client.get(called.headers["location"], headers={"accept-language": "en"})
    assert "The built-in telephony dials nobody" in page.text
    contact = db.scalars(select(EmergencyContact)).one()
    assert client.post(f"/console/incidents/{incident_id}/call", data={"to": f"contact:{contact.id}"},
                       follow_redirects=False).status_code == 303
    someone_else = client.post(f"/console/incidents/{incident_id}/call", data={"to": "contact:ctc_NOT_THEIRS"},
                               headers={"accept-language": "en"})
    assert someone_else.status_code == 422 and "nobody to call" in someone_else.text
    assert client.post(f"/console/incidents/{incident_id}/call", data={"to": "+8613800001234"}).status_code == 422


def test_assign_and_reassign_show_names_on_the_page_and_its_timeline(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    incident_id = sos_with_contact(client, db, act_as)
    first = staff(db, "agent.one", Role.SAFETY_AGENT)
    second = staff(db, "agent.two", Role.INVESTIGATOR)
    staff(db, "trainer.x", Role.TRAINER)
    act_as(Role.SAFETY_AGENT)
    page = client.get(f"/console/incidents/{incident_id}")
    assert f'<option value="{first.id}"' in page.text and f'<option value="{second.id}"' in page.text
    assert "trainer.x" not in page.text
    for who in (first.id, second.id):
        assigned = client.post(f"/console/incidents/{incident_id}/action", data={"action": "assign", "assignee": who},
                               follow_redirects=False)
        assert assigned.status_code == 303
    incident = db.get(Incident, incident_id)
    assert incident is not None and incident.assigned_to == second.id
    page = client.get(f"/console/incidents/{incident_id}", headers={"accept-language": "en"})
    assert "Reassign" in page.text
    timeline = page.text[page.text.index('data-testid="timeline"'):]
    assert "stf_" not in timeline and "subject:" not in timeline and "system:" not in timeline
    assert timeline.count("王芳") >= 2  # the two staff (display name 王芳 in the builder) on the assign lines
    assert "caller" in timeline  # the press is the caller's, not "subject:P1"
    wrong = client.post(f"/console/incidents/{incident_id}/action", data={"action": "assign", "assignee": "stf_NOBODY"})
    assert wrong.status_code == 422


def test_a_case_opened_by_an_alert_shows_the_alert_and_its_evidence(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation()))
    incident = db.scalars(select(Incident).where(Incident.source == "alert")).one()
    act_as(Role.SAFETY_AGENT)
    page = client.get(f"/console/incidents/{incident.id}", headers={"accept-language": "en"})
    triggers = page.text[page.text.index('data-testid="triggers"'):]
    assert "Route deviation" in triggers or "route_deviation" in triggers
    assert "Distance from the route (m)" in triggers
