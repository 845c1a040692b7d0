"""The emergency button: one incident per press, contacts and the emergency gateway told once each."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import builders
from tests.builders import TEST_ACTOR
from tests.screening.conftest import apply as apply_as_applicant
from tests.screening.conftest import screening_app  # noqa: F401 (a fixture)
from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tripguard.audit.models import AuditEntry
from tripguard.notify.models import OutboxMessage
from tripguard.privacy import service as privacy
from tripguard.safety.models import EmergencyContact, Incident, IncidentEvent
from tripguard.security.permissions import Role


def on_a_trip(client: TestClient, act_as, db: Session) -> None:  # type: ignore[no-untyped-def]
    privacy.publish_notice(db, actor=TEST_ACTOR, version="2026-11", purposes=["emergency"], categories=["user.name"],
                           retention_zh="两年", retention_en="two years", text_zh="说明", text_en="notice")
    db.commit()
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    put = client.put("/api/v1/subjects/P1", json={"kind": "passenger", "name": "王小明", "phone": "13800001234",
                                                  "notice_version": "2026-11"})
    assert put.status_code == 200, put.text
    client.put("/api/v1/telematics/vehicles/V1", json={"plate": "粤B12345", "colour": "white", "model": "BYD Qin"})
    events = trip_with_deviation()[:5]
    events[0]["passenger_id"], events[0]["driver_id"] = "P1", "D1"
    post(client, ndjson(events))


def test_sos_creates_one_incident_and_tells_everyone_once(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    contact = client.post("/api/v1/me/contacts", json={"name": "王芳", "phone": "13800005678"}).json()
    db.get(EmergencyContact, contact["id"]).verified_at = db.get(EmergencyContact, contact["id"]).created_at  # type: ignore[union-attr]
    db.flush()
    headers = {"Idempotency-Key": "press-1"}
    first = client.post("/api/v1/sos", json={}, headers=headers)
    assert first.status_code == 201 and first.json()["new"] is True
    retry = client.post("/api/v1/sos", json={}, headers=headers)
    double_tap = client.post("/api/v1/sos", json={})
    assert retry.status_code == double_tap.status_code == 200
    assert first.json()["incident_id"] == retry.json()["incident_id"] == double_tap.json()["incident_id"]
    incident = db.scalars(select(Incident)).one()
    assert (incident.trip_id, incident.vehicle_id, incident.driver_id, incident.status) == ("T1", "V1", "D1", "open")
    assert incident.position is not None and b"-8.6" not in incident.position  # sealed
    gateway = db.scalars(select(OutboxMessage).where(OutboxMessage.channel == "emergency")).one()
    assert gateway.subject_id == "P1" and gateway.sealed_content is not None
    sms = db.scalars(select(OutboxMessage).where(OutboxMessage.template == "sos_contact")).all()
    assert len(sms) == 1
    actions = [(e.action, e.target_type, e.purpose) for e in db.scalars(select(AuditEntry))]
    assert actions.count(("sos.raise", "incident", "emergency")) == 1  # with what telling people opened


def test_the_gateway_payload_names_caller_place_vehicle_and_driver(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                                   app) -> None:
    from tripguard.notify.service import dispatch_due

    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    client.post("/api/v1/sos", json={"silent": True, "lon": 116.4, "lat": 39.9})
    dispatch_due(lambda: db, vault=app.state.vault, notifier=app.state.notifier)  # type: ignore[arg-type]
    sent = app.state.notifier.channels["emergency"].sent
    payload = json.loads(sent[-1].body)
    assert payload["caller"]["name"] == "王小明" and payload["caller"]["phone"] == "13800001234"
    assert payload["location"]["lon"] == 116.4 and payload["silent"] is True
    assert payload["vehicle"] == {"plate": "粤B12345", "colour": "white", "model": "BYD Qin"}
    assert payload["driver"]["id"] == "D1"


@pytest.mark.usefixtures("screening_app")
def test_the_gateway_payload_names_the_driver_the_screening_holds(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                                  app) -> None:
    """The operator recorded no name for the driver, but TripGuard screened them: the police are told it."""
    from tripguard.notify.service import dispatch_due

    on_a_trip(client, act_as, db)
    assert apply_as_applicant(client, act_as, "D1").status_code == 201  # 李师傅, screened by TripGuard
    act_as(Role.PASSENGER, kind="subject", id="P1")
    client.post("/api/v1/sos", json={})
    dispatch_due(lambda: db, vault=app.state.vault, notifier=app.state.notifier)  # type: ignore[arg-type]
    payload = json.loads(app.state.notifier.channels["emergency"].sent[-1].body)
    assert payload["driver"] == {"id": "D1", "name": "李师傅"}
    opened = [e for e in db.scalars(select(AuditEntry).where(AuditEntry.action == "sos.raise"))]
    assert len(opened) == 1 and opened[0].purpose == "emergency"  # what telling people opened, audited


def test_agents_work_the_case_and_only_they_see_where(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    assert client.get("/api/v1/incidents").status_code == 403
    act_as(Role.SAFETY_AGENT)
    assert [i["id"] for i in client.get("/api/v1/incidents").json()] == [incident_id]
    detail = client.get(f"/api/v1/incidents/{incident_id}").json()
    assert detail["position"].startswith("-8.") and [e["kind"] for e in detail["timeline"]] == ["created", "notified"]
    url = f"/api/v1/incidents/{incident_id}/actions"
    assert client.post(url, json={"action": "close"}).status_code == 409
    assert client.post(url, json={"action": "assign", "assignee": "stf_NOBODY"}).status_code == 422
    agent = builders.staff(db, "agent.two", Role.SAFETY_AGENT)
    assert client.post(url, json={"action": "assign", "assignee": agent.id}).json()["assigned_to"] == agent.id
    assert client.post(url, json={"action": "acknowledge"}).json()["status"] == "acknowledged"
    assert client.post(url, json={"action": "resolve"}).status_code == 422  # needs an outcome
    assert client.post(url, json={"action": "resolve", "outcome": "false_alarm"}).json()["outcome"] == "false_alarm"
    assert client.post(url, json={"action": "close"}).json()["status"] == "closed"
    assert client.get("/api/v1/incidents").json() == []


def test_unacknowledged_cases_escalate(client: TestClient, db: Session, act_as, session_factory) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from tripguard.safety.service import escalate_overdue

    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    assert escalate_overdue(session_factory, webhook_url=None) == []
    incident = db.get(Incident, incident_id)
    incident.ack_due_at -= timedelta(minutes=5)  # type: ignore[union-attr]
    db.commit()
    escalated = escalate_overdue(session_factory, webhook_url=None)
    assert [e["id"] for e in escalated] == [incident_id]


def test_a_deviation_and_a_call_for_help_open_one_case_for_the_trip(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    from tripguard.telematics.models import CheckIn

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    events = trip_with_deviation()
    events[0]["passenger_id"] = "P1"
    assert post(client, ndjson(events)).status_code == 200  # the monitor stores the alert just after
    incident = db.scalars(select(Incident)).one()
    assert (incident.source, incident.severity, incident.trip_id, incident.caller_id) == ("alert", "high", "T1", "P1")
    check_in = db.scalars(select(CheckIn)).one()
    act_as(Role.PASSENGER, kind="subject", id="P1")
    client.post(f"/api/v1/telematics/check-ins/{check_in.id}/answer", json={"answer": "help"})
    db.expire_all()
    incident = db.scalars(select(Incident)).one()  # the same case, now critical
    assert incident.severity == "critical"
    act_as(Role.SAFETY_AGENT)
    kinds = [e["kind"] for e in client.get(f"/api/v1/incidents/{incident.id}").json()["timeline"]]
    assert kinds == ["created", "alert", "check_in"]


def test_a_delivery_order_is_named_in_the_case_and_the_police_payload(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                                     app) -> None:
    from tests.delivery.conftest import place_order
    from tripguard.notify.service import dispatch_due

    place_order(client, db, act_as, "O42", "C1", courier_id="R1")
    place_order(client, db, act_as, "O43", "C1")
    place_order(client, db, act_as, "O44", "C2")
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    pressed = client.post("/api/v1/sos", json={"order_id": "O42", "lon": 121.47, "lat": 31.23})
    assert pressed.status_code == 201, pressed.text
    incident = db.get(Incident, pressed.json()["incident_id"])
    assert incident is not None \
        and (incident.order_id, incident.trip_id, incident.caller_role) == ("O42", None, "customer")
    assert client.post("/api/v1/sos", json={"order_id": "O43"}).status_code == 201  # another order: another case
    dispatch_due(lambda: db, vault=app.state.vault, notifier=app.state.notifier)  # type: ignore[arg-type]
    payloads = [json.loads(m.body) for m in app.state.notifier.channels["emergency"].sent]
    assert {p["order_id"] for p in payloads} == {"O42", "O43"}
    act_as(Role.COURIER, kind="subject", id="R1")  # the courier carrying it may press too
    assert client.post("/api/v1/sos", json={"order_id": "O42"}).status_code == 201


def test_the_police_payload_leaves_at_once_not_at_the_next_outbox_round(database_url: str, tmp_path,  # type: ignore[no-untyped-def]
                                                                       session_factory) -> None:
    import time

    from tests.conftest import make_settings
    from tripguard.app import create_app
    from tripguard.security.auth import resolve_principal
    from tripguard.security.principal import Principal

    app = create_app(make_settings(database_url, tmp_path / "keys", outbox_interval_seconds=60),
                     session_factory=session_factory)
    app.dependency_overrides[resolve_principal] = lambda: Principal.for_roles("subject", "P7",
                                                                              frozenset({Role.PASSENGER}))
    gateway = app.state.notifier.channels["emergency"]
    with TestClient(app) as client:
        time.sleep(0.2)  # the outbox's first round at startup has passed; the next one is a minute away
        assert client.post("/api/v1/sos", json={"lon": 116.4, "lat": 39.9}).status_code == 201
        deadline = time.monotonic() + 10
        while not gateway.sent and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(gateway.sent) == 1 and json.loads(gateway.sent[0].body)["caller"]["id"] == "P7"


def test_trip_positions_asked_for_from_a_case_go_on_its_timeline(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    act_as(Role.SAFETY_AGENT)
    page = client.get(f"/console/incidents/{incident_id}", headers={"accept-language": "zh-CN"})
    assert 'class="trajectory"' in page.text and '<option value="emergency">' in page.text
    assert 'value="investigation"' not in page.text  # a safety agent holds the emergency purpose only
    url = "/api/v1/telematics/trips/T1/trajectory"
    asked = client.get(url, params={"purpose": "emergency", "reason": "核实求助位置", "format": "csv",
                                    "incident_id": incident_id})
    assert asked.status_code == 200 and asked.headers["content-type"].startswith("text/csv")
    evidence = [e.details for e in db.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id))
                if e.kind == "evidence"]
    assert evidence == [{"trajectory": "T1", "format": "csv", "purpose": "emergency"}]
    assert client.get(url, params={"purpose": "emergency", "reason": "核实求助位置",
                                   "incident_id": "inc_NOT_ABOUT_T1"}).status_code == 404


def test_an_erased_or_unknown_caller_still_opens_a_case(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """Help first: an SOS from someone erased, or someone TripGuard never heard of, is a case, not a 410."""
    on_a_trip(client, act_as, db)
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    assert client.post("/api/v1/subjects/P1/erase", json={"reason": "subject_request"}).status_code == 200
    act_as(Role.PASSENGER, kind="subject", id="P1")
    pressed = client.post("/api/v1/sos", json={"lon": -8.61, "lat": 41.15})
    assert pressed.status_code == 201, pressed.text
    incident = db.get(Incident, pressed.json()["incident_id"])
    assert incident is not None and incident.trip_id == "T1" and incident.vehicle_id == "V1"
    assert incident.position_key == f"incident:{incident.id}"  # nothing sealed under the shredded key
    gateway = db.scalars(select(OutboxMessage).where(OutboxMessage.channel == "emergency")).all()[-1]
    assert gateway.subject_id == f"incident:{incident.id}"  # the police still get where they are
    act_as(Role.PASSENGER, kind="subject", id="P_NEVER_SEEN")
    assert client.post("/api/v1/sos", json={}).status_code == 201


def test_case_notes_are_sealed_under_the_caller_and_die_with_them(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """A note with a lone surrogate used to break every read of the case; notes were plaintext forever."""
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    act_as(Role.SAFETY_AGENT, id="stf_AGENT")
    note = "乘客说司机绕路，手机号13800001234"
    assert client.post(f"/api/v1/incidents/{incident_id}/actions",
                       json={"action": "note", "note": note}).status_code == 200
    bad = client.post(f"/api/v1/incidents/{incident_id}/actions", content=b'{"action": "note", "note": "\\ud800"}',
                      headers={"content-type": "application/json"})
    assert bad.status_code == 400
    stored = [e.details for e in db.scalars(select(IncidentEvent).where(IncidentEvent.kind == "note"))]
    assert len(stored) == 1 and note not in json.dumps(stored, ensure_ascii=False) and "note_ref" in stored[0]
    timeline = client.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
    assert [e["details"]["text"] for e in timeline if e["kind"] == "note"] == [note]
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    assert client.post("/api/v1/subjects/P1/erase", json={"reason": "subject_request"}).status_code == 200
    act_as(Role.SAFETY_AGENT, id="stf_AGENT")
    timeline = client.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
    assert [e["details"]["text"] for e in timeline if e["kind"] == "note"] == ["[erased]"]


def test_a_press_with_values_of_the_wrong_type_is_refused(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    """Strict body: lax parsing would take `true` as longitude 1.0 and "yes" as a boolean."""
    act_as(Role.PASSENGER, kind="subject", id="P_STRICT")
    for body in ({"lon": True, "lat": 39.9}, {"silent": "yes"}, {"lat": "39.9", "lon": 116.4}):
        assert client.post("/api/v1/sos", json=body).status_code == 422, body
    assert client.post("/api/v1/sos", json={"lon": 116, "lat": 40}).status_code == 201  # whole numbers are numbers


def test_one_callers_idempotency_key_never_finds_another_callers_case(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                      act_as) -> None:
    """Caller "X" with key "evil:k1" and caller "X:evil" with key "k1" once spelled the same stored key: the
    second press got the first one's case (200, another person's incident id) and no case of its own."""
    act_as(Role.PASSENGER, kind="subject", id="PX")
    first = client.post("/api/v1/sos", json={}, headers={"Idempotency-Key": "evil:k1"})
    act_as(Role.PASSENGER, kind="subject", id="PX:evil")
    second = client.post("/api/v1/sos", json={}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["incident_id"] != second.json()["incident_id"]
    assert {i.caller_id for i in db.scalars(select(Incident))} == {"PX", "PX:evil"}
