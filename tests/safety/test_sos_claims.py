"""An SOS is never refused: a trip or order the server cannot link to the caller is their claim, marked
unverified and linked to nobody's data; the caller's position is the case's (under the case's own key, read
through the gate, audited, shredded by the case's retention rule), whether the caller was erased before the
press or after it; the case's handler reads the case's trip even when its caller was erased."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tests.safety.test_sos_api import on_a_trip
from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.notify.models import OutboxMessage
from tripguard.privacy.retention import held_subjects, place_hold
from tripguard.safety.models import Incident, TripShare
from tripguard.security.permissions import Role
from tripguard.vault.models import DataKey


def _erase(client: TestClient, act_as, subject_id: str) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    assert client.post(f"/api/v1/subjects/{subject_id}/erase", json={"reason": "subject_request"}).status_code == 200


def test_a_press_naming_a_trip_not_yet_ingested_opens_a_case_marked_unverified(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PASSENGER, kind="subject", id="P1")
    first = client.post("/api/v1/sos", json={"trip_id": "T_NOT_YET"}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201, first.text
    retry = client.post("/api/v1/sos", json={"trip_id": "T_NOT_YET"}, headers={"Idempotency-Key": "k1"})
    double_tap = client.post("/api/v1/sos", json={"trip_id": "T_NOT_YET"})
    assert retry.status_code == double_tap.status_code == 200
    assert first.json()["incident_id"] == retry.json()["incident_id"] == double_tap.json()["incident_id"]
    incident = db.get(Incident, first.json()["incident_id"])
    assert incident is not None and (incident.trip_id, incident.claimed_trip_id) == (None, "T_NOT_YET")
    act_as(Role.SAFETY_AGENT)
    listed = client.get("/api/v1/incidents").json()
    assert [(i["claimed_trip_id"], i["trip_id"], i["claim_unverified"]) for i in listed] == [("T_NOT_YET", None, True)]
    detail = client.get(f"/api/v1/incidents/{incident.id}").json()
    assert detail["incident"]["claim_unverified"] is True
    queue = client.get("/console/incidents", headers={"accept-language": "zh-CN"}).text
    assert "T_NOT_YET" in queue and 'data-testid="unverified">未核实<' in queue
    page = client.get(f"/console/incidents/{incident.id}", headers={"accept-language": "en"}).text
    assert 'data-testid="claimed-trip">T_NOT_YET<' in page and "unverified" in page
    assert "Not raised on a trip." not in page
    found = client.get("/console/incidents", params={"q": "T_NOT_YET"}).text  # the queue's search finds the claim
    assert f'data-incident="{incident.id}"' in found


def test_a_press_naming_someone_elses_trip_opens_a_case_without_their_data(
        client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    from tripguard.notify.service import dispatch_due

    on_a_trip(client, act_as, db)  # T1: passenger P1, driver D1, vehicle V1
    act_as(Role.PASSENGER, kind="subject", id="P9")
    pressed = client.post("/api/v1/sos", json={"trip_id": "T1"})
    assert pressed.status_code == 201, pressed.text
    incident = db.get(Incident, pressed.json()["incident_id"])
    assert incident is not None
    assert (incident.trip_id, incident.vehicle_id, incident.driver_id, incident.claimed_trip_id) == (
        None, None, None, "T1")
    assert db.scalar(select(func.count()).select_from(TripShare)) == 0  # no live link to T1 for anyone
    dispatch_due(lambda: db, vault=app.state.vault, notifier=app.state.notifier)  # type: ignore[arg-type]
    payload = json.loads(app.state.notifier.channels["emergency"].sent[-1].body)
    assert (payload["trip_id"], payload["vehicle"], payload["driver"],
            payload["share_link"]) == (None, None, None, None)
    act_as(Role.SAFETY_AGENT)
    page = client.get(f"/console/incidents/{incident.id}", headers={"accept-language": "en"}).text
    assert 'data-testid="claimed-trip">T1<' in page
    assert "粤B12345" not in page and 'data-testid="driver-name"' not in page and "data-recent=" not in page
    assert not db.scalars(select(AuditEntry).where(AuditEntry.action == "trip.trajectory_read")).all()
    asked = client.get("/api/v1/telematics/trips/T1/trajectory",
                       params={"purpose": "emergency", "reason": "核实求助位置", "incident_id": incident.id})
    assert asked.status_code == 404  # the claim is no case about T1


def test_a_caller_naming_another_trip_still_gets_their_own_trip_under_way(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    events = trip_with_deviation()[:2]
    for event in events:
        event["trip_id"] = "T2"
    events[0]["passenger_id"], events[0]["driver_id"], events[0]["vehicle_id"] = "P9", "D9", "V9"
    post(client, ndjson(events))
    act_as(Role.PASSENGER, kind="subject", id="P9")
    incident = db.get(Incident, client.post("/api/v1/sos", json={"trip_id": "T1"}).json()["incident_id"])
    assert incident is not None \
        and (incident.trip_id, incident.driver_id, incident.claimed_trip_id) == ("T2", "D9", "T1")
    assert client.post("/api/v1/sos", json={"trip_id": "T1"}).status_code == 200  # a double tap: the same case


def test_a_press_naming_an_order_not_linked_to_the_caller_opens_a_case(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    from tests.delivery.conftest import place_order

    place_order(client, db, act_as, "O44", "C2")
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    for order in ("O44", "O_UNKNOWN"):
        pressed = client.post("/api/v1/sos", json={"order_id": order})
        assert pressed.status_code == 201, pressed.text
        incident = db.get(Incident, pressed.json()["incident_id"])
        assert incident is not None and (incident.order_id, incident.claimed_order_id) == (None, order)
    act_as(Role.SAFETY_AGENT)
    listed = client.get("/api/v1/incidents").json()
    assert sorted(i["claimed_order_id"] for i in listed) == ["O44", "O_UNKNOWN"]
    assert all(i["claim_unverified"] for i in listed)
    page = client.get(f"/console/incidents/{listed[0]['id']}").text
    assert 'data-testid="claimed-order">' in page and 'data-testid="order"' not in page


def test_an_erased_callers_case_keeps_the_position_and_the_agent_reads_it_audited(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    _erase(client, act_as, "P1")
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={"lon": -8.61, "lat": 41.15}).json()["incident_id"]
    incident = db.get(Incident, incident_id)
    assert incident is not None and incident.position is not None and b"41.15" not in incident.position
    assert incident.position_key == f"incident:{incident_id}"  # the case's own key, not the shredded one
    act_as(Role.SAFETY_AGENT, id="stf_AGENT")
    detail = client.get(f"/api/v1/incidents/{incident_id}").json()
    assert detail["position"] == "-8.610000,41.150000"
    page = client.get(f"/console/incidents/{incident_id}").text
    assert 'data-testid="position">-8.610000,41.150000<' in page
    reads = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read",
                                                AuditEntry.target_type == "safety_incidents")).all()
    assert [(e.actor_id, e.target_id, e.purpose, json.loads(e.details)["plaintext"]) for e in reads] == [
        ("stf_AGENT", incident_id, "emergency", "position")] * 2


def test_the_handler_reads_the_trip_of_an_erased_callers_case(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    _erase(client, act_as, "P1")
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    url = "/api/v1/telematics/trips/T1/trajectory"
    asked = {"purpose": "emergency", "reason": "核实求助位置", "incident_id": incident_id}
    act_as(Role.SAFETY_AGENT, id="stf_HANDLER")
    page = client.get(f"/console/incidents/{incident_id}", headers={"accept-language": "en"}).text
    assert 'data-recent="[[' in page  # the last minutes of the track
    assert "was erased" not in page
    assert client.get(url, params=asked).status_code == 200  # waiting in the queue: any agent triages it
    reads = db.scalars(select(AuditEntry).where(AuditEntry.action == "trip.trajectory_read")).all()
    assert [(e.actor_id, e.purpose, json.loads(e.details)["case"]) for e in reads] == [
        ("stf_HANDLER", "emergency", incident_id)] * 2
    assert client.post(f"/api/v1/incidents/{incident_id}/actions", json={"action": "acknowledge"}).status_code == 200
    assert client.get(url, params=asked).status_code == 200  # their case now
    act_as(Role.SAFETY_AGENT, id="stf_OTHER")  # not the handler of an acknowledged case: the erasure holds
    assert client.get(url, params=asked).status_code == 403
    assert client.get(url, params={"purpose": "emergency", "reason": "核实求助位置"}).status_code == 403
    assert "was erased" in client.get(f"/console/incidents/{incident_id}", headers={"accept-language": "en"}).text


def test_a_case_keeps_the_position_for_the_trip_data_period_after_it_ended(
        client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    from tripguard.safety.retention import expired_cases

    on_a_trip(client, act_as, db)
    _erase(client, act_as, "P1")
    act_as(Role.PASSENGER, kind="subject", id="P1")
    erased_case = client.post("/api/v1/sos", json={"lon": -8.61, "lat": 41.15}).json()["incident_id"]
    act_as(Role.PASSENGER, kind="subject", id="P2")
    held_case = client.post("/api/v1/sos", json={"lon": 116.4, "lat": 39.9}).json()["incident_id"]
    act_as(Role.SAFETY_AGENT)
    for case in (erased_case, held_case):
        for action in ({"action": "resolve", "outcome": "genuine"}, {"action": "close"}):
            assert client.post(f"/api/v1/incidents/{case}/actions", json=action).status_code == 200
    place_hold(db, actor=TEST_ACTOR, subject_id="P2", case_ref="court-1", reason="lawsuit")
    db.commit()
    keep = timedelta(days=730)
    rule = expired_cases(keep, held_subjects)
    assert rule(db, app.state.vault, utcnow() + keep - timedelta(days=1), False) == (0, 0)  # within the period
    later = utcnow() + keep + timedelta(days=1)
    assert rule(db, app.state.vault, later, True) == (1, 1)  # a dry run counts
    assert rule(db, app.state.vault, later, False) == (1, 1)
    assert rule(db, app.state.vault, later, False) == (0, 1)  # erased once: not found again
    gone, kept = db.get(Incident, erased_case), db.get(Incident, held_case)
    assert gone is not None and gone.position is None and kept is not None and kept.position is not None
    key = db.get(DataKey, f"incident:{erased_case}")
    assert key is not None and key.wrapped_key is None  # shredded: the police payload and notes stop opening
    gateway = db.scalars(select(OutboxMessage).where(OutboxMessage.subject_id == f"incident:{erased_case}")).one()
    assert gateway.sealed_content is not None  # still stored, never to open again


def test_erasing_a_caller_with_an_open_case_leaves_the_position_to_the_case_until_the_rule_removes_it(
        client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    """Finding 6c of #26: the position was sealed under the caller's key, so erasing them (on request, or by a
    retention rule) dropped it from a case still open. It is the case's evidence, kept by law with the case."""
    from tripguard.safety.retention import expired_cases

    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={"lon": -8.61, "lat": 41.15}).json()["incident_id"]
    _erase(client, act_as, "P1")
    act_as(Role.SAFETY_AGENT, id="stf_AGENT")
    assert client.get(f"/api/v1/incidents/{incident_id}").json()["position"] == "-8.610000,41.150000"
    assert db.get(Incident, incident_id).position_key == f"incident:{incident_id}"  # type: ignore[union-attr]
    reads = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read",
                                                AuditEntry.target_type == "safety_incidents")).all()
    assert [(e.actor_id, e.target_id, e.purpose, json.loads(e.details)["plaintext"]) for e in reads] == [
        ("stf_AGENT", incident_id, "emergency", "position")]
    for action in ({"action": "resolve", "outcome": "genuine"}, {"action": "close"}):
        assert client.post(f"/api/v1/incidents/{incident_id}/actions", json=action).status_code == 200
    db.commit()
    keep = timedelta(days=730)
    rule = expired_cases(keep, held_subjects)
    assert rule(db, app.state.vault, utcnow() + keep - timedelta(days=1), False) == (0, 0)  # the ride-data period
    assert client.get(f"/api/v1/incidents/{incident_id}").json()["position"] == "-8.610000,41.150000"
    assert rule(db, app.state.vault, utcnow() + keep + timedelta(days=1), False) == (1, 0)
    db.expire_all()
    assert client.get(f"/api/v1/incidents/{incident_id}").json()["position"] is None
    key = db.get(DataKey, f"incident:{incident_id}")
    assert key is not None and key.wrapped_key is None


def test_a_case_raised_before_positions_were_the_cases_keeps_it_when_its_caller_is_erased(
        client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    """A position still sealed under the caller's key (a case raised before) moves to the case's key before
    the caller's key is shredded."""
    from tripguard.privacy import access

    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={"lon": -8.61, "lat": 41.15}).json()["incident_id"]
    incident = db.get(Incident, incident_id)
    assert incident is not None
    incident.position_key = "P1"  # as such a case was stored
    access.write_field(app.state.vault, db, incident, "position", "-8.610000,41.150000")
    db.commit()
    _erase(client, act_as, "P1")
    act_as(Role.SAFETY_AGENT)
    assert client.get(f"/api/v1/incidents/{incident_id}").json()["position"] == "-8.610000,41.150000"
    db.expire_all()
    assert db.get(Incident, incident_id).position_key == f"incident:{incident_id}"  # type: ignore[union-attr]


def test_an_incident_without_a_position_names_no_key(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PASSENGER, kind="subject", id="P_NOWHERE")
    incident = db.get(Incident, client.post("/api/v1/sos", json={}).json()["incident_id"])
    assert incident is not None and incident.position is None and incident.position_key is None


def test_a_claimed_trip_received_later_is_picked_up_by_the_case_when_it_is_the_callers(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PASSENGER, kind="subject", id="P1")
    mine = client.post("/api/v1/sos", json={"trip_id": "T1"}).json()["incident_id"]
    act_as(Role.PASSENGER, kind="subject", id="P9")
    not_mine = client.post("/api/v1/sos", json={"trip_id": "T1"}).json()["incident_id"]
    on_a_trip(client, act_as, db)  # T1 arrives: passenger P1, driver D1, vehicle V1
    db.expire_all()
    picked, claim = db.get(Incident, mine), db.get(Incident, not_mine)
    assert picked is not None and (picked.trip_id, picked.vehicle_id, picked.driver_id, picked.claimed_trip_id) == (
        "T1", "V1", "D1", None)
    assert claim is not None and (claim.trip_id, claim.driver_id, claim.claimed_trip_id) == (None, None, "T1")
    act_as(Role.SAFETY_AGENT)
    timeline = client.get(f"/api/v1/incidents/{mine}").json()["timeline"]
    assert [e["kind"] for e in timeline][-1] == "claim_verified"
    assert client.get(f"/api/v1/incidents/{mine}").json()["incident"]["claim_unverified"] is False
