"""Supervision over the audit log: a staff member who reads 200 customers' data in an hour, seeded
through the API, produces a finding with the audit evidence; reads after hours and bulk exports are
flagged; the rules read each entry once."""

from __future__ import annotations

from datetime import time

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR, staff
from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry
from tripguard.audit.service import Actor
from tripguard.privacy import service as privacy
from tripguard.security.permissions import Role
from tripguard.workforce.models import Finding
from tripguard.workforce.supervision import Thresholds, run_rules


def _people(client: TestClient, db: Session, act_as, count: int) -> None:  # type: ignore[no-untyped-def]
    privacy.publish_notice(db, actor=TEST_ACTOR, version="n1", purposes=["support"], categories=["user.name"],
                           retention_zh="两年", retention_en="two years", text_zh="说明", text_en="notice")
    db.commit()
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for n in range(count):
        assert client.put(f"/api/v1/subjects/cus_{n}", json={"kind": "customer", "notice_version": "n1",
                                                             "name": "顾客", "phone": f"138{n:08d}"}).status_code == 200


def test_reading_200_customers_in_an_hour_is_a_finding_with_its_evidence(
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    _people(client, db, act_as, 200)
    act_as(Role.PRIVACY_OFFICER, id="stf_CURIOUS")
    for n in range(200):
        assert client.get(f"/api/v1/subjects/cus_{n}?purpose=subject_request").status_code == 200
    act_as(Role.PRIVACY_OFFICER, id="stf_CAREFUL")
    for n in range(20):  # a handful: nothing to flag
        client.get(f"/api/v1/subjects/cus_{n}?purpose=subject_request")
    audit.sequence_all(db)
    db.commit()
    limits = Thresholds(working_from=time(0), working_until=time(23, 59, 59, 999999))  # all day is working hours
    assert run_rules(session_factory, limits=limits) > 0
    found = db.scalars(select(Finding)).all()
    assert [(f.rule, f.actor_id, f.count) for f in found] == [("many_people", "stf_CURIOUS", 100)]
    evidence = db.scalars(select(AuditEntry).where(AuditEntry.id.in_(found[0].evidence))).all()
    assert len(evidence) == 100 and {e.actor_id for e in evidence} == {"stf_CURIOUS"}
    assert {e.action for e in evidence} == {"personal.read"}
    assert run_rules(session_factory, limits=limits) == 0  # incremental: nothing read twice, nothing repeated
    assert len(db.scalars(select(Finding)).all()) == 1
    act_as(Role.SUPERVISOR)
    listed = client.get("/api/v1/supervision/findings").json()
    assert [(f["rule"], f["actor_id"]) for f in listed] == [("many_people", "stf_CURIOUS")]
    act_as(Role.SAFETY_AGENT)
    assert client.get("/api/v1/supervision/findings").status_code == 403


def test_after_hours_reads_and_bulk_exports_are_flagged(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                        session_factory: sessionmaker[Session]) -> None:
    _people(client, db, act_as, 3)
    act_as(Role.PRIVACY_OFFICER, id="stf_NIGHT")
    for n in range(3):
        client.get(f"/api/v1/subjects/cus_{n}?purpose=subject_request")
    audit.record(db, actor=Actor("staff", "stf_EXPORTER"), action="console.export", target_type="list",
                 target_id="audit", details={"rows": 1500})
    audit.record(db, actor=Actor("staff", "stf_SMALL"), action="console.export", target_type="list",
                 target_id="audit", details={"rows": 12})
    db.commit()
    audit.sequence_all(db)
    db.commit()
    never_working = Thresholds(working_from=time(0), working_until=time(0))  # every hour is after hours
    run_rules(session_factory, limits=never_working)
    found = {(f.rule, f.actor_id): f for f in db.scalars(select(Finding))}
    assert set(found) == {("after_hours", "stf_NIGHT"), ("bulk_export", "stf_EXPORTER")}
    assert found[("after_hours", "stf_NIGHT")].count == 3  # one finding for the night, three reads in it
    assert found[("bulk_export", "stf_EXPORTER")].count == 1500


def test_reading_an_order_without_a_complaint_about_it_is_a_finding(
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    from tests.delivery.conftest import place_order

    place_order(client, db, act_as, "O7", "C7")
    act_as(Role.CUSTOMER, kind="subject", id="C7")
    complaint = client.post("/api/v1/complaints", json={"category": "service", "order_id": "O7", "text": "晚到"}).json()
    assigned = staff(db, "support.a", Role.SUPPORT_AGENT)
    act_as(Role.SUPPORT_AGENT, id=assigned.id)
    assert client.post(f"/api/v1/complaints/{complaint['id']}/assign", json={}).status_code == 200
    assert client.get("/api/v1/orders/O7").status_code == 200  # holds the complaint: a reason
    act_as(Role.SUPPORT_AGENT, id="stf_BROWSING")
    for _ in range(3):
        assert client.get("/api/v1/orders/O7").status_code == 200  # no case, no complaint
    from tests.delivery.test_orders_api import kitchen

    act_as(Role.MERCHANT, id=kitchen(client, db, act_as))
    assert client.get("/api/v1/orders/O7/label").status_code == 200  # the kitchen's own order: not a finding
    audit.sequence_all(db)
    db.commit()
    run_rules(session_factory, limits=Thresholds(working_from=time(0), working_until=time(23, 59, 59, 999999)))
    found = db.scalars(select(Finding).where(Finding.rule == "unassigned")).all()
    assert [(f.actor_id, f.record, f.count, len(f.evidence)) for f in found] == [("stf_BROWSING", "O7", 3, 3)]


def _unassigned(db: Session, session_factory: sessionmaker[Session]) -> list[tuple[str, str | None, int]]:
    audit.sequence_all(db)
    db.commit()
    run_rules(session_factory, limits=Thresholds(working_from=time(0), working_until=time(23, 59, 59, 999999)))
    return sorted((f.actor_id, f.record, f.count)
                  for f in db.scalars(select(Finding).where(Finding.rule == "unassigned")))


def test_an_agent_opening_a_waiting_case_from_the_queue_is_no_finding(
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    """Triage: any safety agent on duty opens a case nobody has acknowledged yet (its page reads the trip)."""
    from tests.safety.test_sos_api import on_a_trip

    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    first, second = staff(db, "agent.one", Role.SAFETY_AGENT), staff(db, "agent.two", Role.SAFETY_AGENT)
    for agent in (first, second):  # both look before either acknowledges
        act_as(Role.SAFETY_AGENT, id=agent.id)
        assert client.get(f"/console/incidents/{incident_id}").status_code == 200
    gone = staff(db, "agent.left", Role.SAFETY_AGENT)
    gone.disabled_at = gone.created_at  # not on duty: an account switched off, its session still used
    db.commit()
    act_as(Role.SAFETY_AGENT, id=gone.id)
    assert client.get(f"/console/incidents/{incident_id}").status_code == 200
    act_as(Role.SAFETY_AGENT, id=first.id)
    assert client.post(f"/api/v1/incidents/{incident_id}/actions", json={"action": "acknowledge"}).status_code == 200
    assert client.get(f"/console/incidents/{incident_id}").status_code == 200  # now their case
    handover = {"action": "assign", "assignee": second.id}  # handed over: what they read while theirs stays fine
    assert client.post(f"/api/v1/incidents/{incident_id}/actions", json=handover).status_code == 200
    reads = db.scalars(select(AuditEntry).where(AuditEntry.action == "trip.trajectory_read")).all()
    assert len(reads) == 4
    assert _unassigned(db, session_factory) == [(gone.id, "T1", 1)]


def test_reading_the_trip_of_a_case_someone_else_handles_is_still_a_finding(
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    from tests.safety.test_sos_api import on_a_trip

    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    incident_id = client.post("/api/v1/sos", json={}).json()["incident_id"]
    handler, curious = staff(db, "agent.one", Role.SAFETY_AGENT), staff(db, "agent.two", Role.SAFETY_AGENT)
    act_as(Role.SAFETY_AGENT, id=handler.id)
    assert client.post(f"/api/v1/incidents/{incident_id}/actions", json={"action": "acknowledge"}).status_code == 200
    act_as(Role.SAFETY_AGENT, id=curious.id)  # the case is taken: no business of theirs any more
    assert client.get(f"/console/incidents/{incident_id}").status_code == 200
    assert _unassigned(db, session_factory) == [(curious.id, "T1", 1)]


def test_an_unknown_finding_or_course_is_not_found(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR)
    assert client.get("/console/supervision/fnd_nope").status_code == 404
    assert client.post("/console/supervision/fnd_nope", data={"action": "justified"}).status_code == 404
    act_as(Role.TRAINER)
    assert client.get("/console/training/courses/no-such-course").status_code == 404
