"""A breach from discovery to report: contain, find who read whom, notify with the Art. 57 fields."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import builders
from tests.builders import TEST_ACTOR
from tripguard.core.clock import utcnow
from tripguard.notify.channels import RecordingChannel
from tripguard.notify.service import Notifier, dispatch_due
from tripguard.privacy import service
from tripguard.security.models import StaffSession
from tripguard.security.permissions import Role


def test_breach_lifecycle(client: TestClient, db: Session, app, session_factory, act_as) -> None:  # type: ignore[no-untyped-def]
    service.publish_notice(db, actor=TEST_ACTOR, version="n1", purposes=["emergency"], categories=["user.name"],
                           retention_zh="两年", retention_en="two years", text_zh="说明", text_en="notice")
    for subject_id, phone in (("psg_a", "13800000001"), ("psg_b", "13800000002"), ("psg_c", "13800000003")):
        service.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id=subject_id, kind="passenger",
                               notice_version="n1", values={"name": "测试", "phone": phone})
    rogue = builders.staff(db, "rogue.agent", Role.SAFETY_AGENT)
    db.add(StaffSession(id="ses_ROGUE", staff_id=rogue.id, token_hash="x" * 64, created_at=utcnow(),
                        last_seen_at=utcnow(), expires_at=utcnow() + timedelta(hours=1)))
    db.commit()

    act_as(Role.SAFETY_AGENT, id=rogue.id)
    for subject_id in ("psg_a", "psg_b"):
        assert client.get(f"/api/v1/subjects/{subject_id}", params={"purpose": "emergency"}).status_code == 200
    act_as(Role.SAFETY_AGENT, id="stf_OTHER")
    client.get("/api/v1/subjects/psg_c", params={"purpose": "emergency"})

    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    now = utcnow()
    opened = client.post("/api/v1/privacy/breaches", json={
        "title": "Agent account misused", "serious": True,
        "occurred_from": (now - timedelta(hours=1)).isoformat(), "occurred_to": (now + timedelta(hours=1)).isoformat(),
        "categories": ["user.name", "user.contact.phone_number"], "cause": "a safety agent's account was misused",
        "harm": "unwanted calls", "measures": "account locked, sessions ended", "advice": "ignore unknown callers",
        "contact": "privacy@example.com"}).json()
    assert opened["status"] == "open" and opened["authority_due_at"] is not None

    version_before = app.state.vault.keys.current_version()
    contained = client.post(f"/api/v1/privacy/breaches/{opened['id']}/contain",
                            json={"staff_ids": [rogue.id], "rotate_keys": True}).json()
    assert contained["status"] == "contained"
    assert [a["action"] for a in contained["containment"]] == ["revoke_sessions", "rotate_keys"]
    assert app.state.vault.keys.current_version() == version_before + 1
    assert db.get(StaffSession, "ses_ROGUE").revoked_at is not None  # type: ignore[union-attr]

    found = client.post(f"/api/v1/privacy/breaches/{opened['id']}/investigate", json={"reader_id": rogue.id}).json()
    assert found["subjects"] == ["psg_a", "psg_b"] and found["readers"] == {f"staff:{rogue.id}": 2}

    assert client.post(f"/api/v1/privacy/breaches/{opened['id']}/notify").json() == {"notified": 2}
    assert client.post(f"/api/v1/privacy/breaches/{opened['id']}/notify").json() == {"notified": 0}
    sms = RecordingChannel(name="sms")
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms}))
    assert sorted(m.to for m in sms.sent) == ["13800000001", "13800000002"]
    body = sms.sent[0].body
    assert "user.contact.phone_number" not in body  # the kinds of data named, in the person's language
    for art57 in ("姓名、手机号码", "a safety agent's account was misused", "unwanted calls",
                  "account locked", "ignore unknown callers", "privacy@example.com"):
        assert art57 in body

    client.post(f"/api/v1/privacy/breaches/{opened['id']}/authority-report", json={"reference": "CAC-2026-0001"})
    closed = client.post(f"/api/v1/privacy/breaches/{opened['id']}/close").json()
    assert closed["status"] == "closed"
    report = closed["report"]
    assert (report["affected"], report["notified"], report["containment_actions"]) == (2, 2, 2)
    assert report["serious"] is True and report["authority_report_on_time"] is True
    assert client.post(f"/api/v1/privacy/breaches/{opened['id']}/notify").status_code == 409


def test_window_must_be_in_order(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    now = utcnow()
    response = client.post("/api/v1/privacy/breaches", json={
        "title": "x", "serious": False, "occurred_from": now.isoformat(),
        "occurred_to": (now - timedelta(hours=1)).isoformat(), "categories": ["user.name"], "cause": "c",
        "harm": "h", "measures": "m", "advice": "a", "contact": "c"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "occurred_to"


def test_investigation_counts_every_personal_data_read(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """Not only subject records: a trip's positions, a case page, a share view are reads of people's data."""
    from tests.safety.test_sos_api import on_a_trip

    on_a_trip(client, act_as, db)  # trip T1: passenger P1, driver D1
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={"lon": -8.61, "lat": 41.15}).json()["incident_id"]
    act_as(Role.INVESTIGATOR, id="stf_ROGUE")
    assert client.get("/api/v1/telematics/trips/T1/trajectory",
                      params={"purpose": "investigation", "reason": "curious"}).status_code == 200
    assert client.get(f"/api/v1/incidents/{incident_id}").status_code == 200
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    now = utcnow()
    opened = client.post("/api/v1/privacy/breaches", json={
        "title": "Investigator looked around", "serious": False,
        "occurred_from": (now - timedelta(hours=1)).isoformat(), "occurred_to": (now + timedelta(hours=1)).isoformat(),
        "categories": ["user.location"], "cause": "curiosity", "harm": "location exposed", "measures": "access removed",
        "advice": "none", "contact": "privacy@example.com"}).json()
    found = client.post(f"/api/v1/privacy/breaches/{opened['id']}/investigate", json={"reader_id": "stf_ROGUE"}).json()
    assert found["subjects"] == ["D1", "P1"], found
    assert found["readers"] == {"staff:stf_ROGUE": 2}


def test_investigating_someone_who_only_watched_the_live_map_finds_the_people_on_it(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """The live map showed trip T1 (passenger P1, driver D1): its opening names the trips on screen."""
    from tests.safety.test_sos_api import on_a_trip

    on_a_trip(client, act_as, db)
    act_as(Role.SAFETY_AGENT, id="stf_WATCHER")
    assert [t["trip_id"] for t in client.get("/console/live/snapshot").json()["trips"]] == ["T1"]
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    now = utcnow()
    opened = client.post("/api/v1/privacy/breaches", json={
        "title": "Agent watched the map", "serious": False,
        "occurred_from": (now - timedelta(hours=1)).isoformat(), "occurred_to": (now + timedelta(hours=1)).isoformat(),
        "categories": ["user.location"], "cause": "curiosity", "harm": "location exposed", "measures": "access removed",
        "advice": "none", "contact": "privacy@example.com"}).json()
    found = client.post(f"/api/v1/privacy/breaches/{opened['id']}/investigate",
                        json={"reader_id": "stf_WATCHER"}).json()
    assert found["subjects"] == ["D1", "P1"] and found["readers"] == {"staff:stf_WATCHER": 1}
