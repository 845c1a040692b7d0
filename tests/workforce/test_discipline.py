"""Violations and discipline: a supervision finding becomes a violation whose suspension shuts the staff
member out of personal data at once, and an appeal overturned lets them back; a complaint becomes a
violation by a worker whose suspension closes the dispatch gate; the agreement gate for staff."""

from __future__ import annotations

from datetime import time

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.screening.conftest import apply, blockers, run_agency, webhooks
from tests.workforce.conftest import as_worker, put_course
from tests.workforce.test_supervision import _people
from tripguard.audit import service as audit
from tripguard.delivery.models import MerchantStaff
from tripguard.security.permissions import Role
from tripguard.workforce.models import Finding
from tripguard.workforce.supervision import Thresholds, run_rules


def test_a_finding_becomes_a_violation_whose_suspension_shuts_the_reader_out_at_once(
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    _people(client, db, act_as, 200)
    act_as(Role.PRIVACY_OFFICER, id="stf_CURIOUS")
    for n in range(200):
        assert client.get(f"/api/v1/subjects/cus_{n}?purpose=subject_request").status_code == 200
    audit.sequence_all(db)
    db.commit()
    run_rules(session_factory, limits=Thresholds(working_from=time(0), working_until=time(23, 59, 59, 999999)))
    finding = db.scalars(select(Finding)).one()

    act_as(Role.SUPERVISOR)
    raised = client.post("/api/v1/violations", headers={"Idempotency-Key": "v1"}, json={
        "offender_type": "staff", "offender_id": "stf_CURIOUS", "kind": "privacy",
        "summary": "一小时内查看了200位顾客的资料，无工单", "evidence": {"findings": [finding.id]}})
    assert raised.status_code == 201, raised.text
    violation = raised.json()
    assert client.post("/api/v1/violations", headers={"Idempotency-Key": "v1"}, json={
        "offender_type": "staff", "offender_id": "stf_CURIOUS", "kind": "privacy", "summary": "again",
        "evidence": {"findings": [finding.id]}}).json()["id"] == violation["id"]  # a retry
    assert client.get("/api/v1/supervision/findings?status=reviewed").json()[0]["violation_id"] == violation["id"]
    assert client.post(f"/api/v1/violations/{violation['id']}/sanctions",
                       json={"kind": "suspension", "days": 30}).status_code == 403  # HR decides, not supervisors
    # a violation names evidence, and a finding about someone else is not evidence against this person
    assert client.post("/api/v1/violations", json={"offender_type": "staff", "offender_id": "stf_X", "kind": "privacy",
                                                   "summary": "s", "evidence": {}}).status_code == 422
    assert client.post("/api/v1/violations", json={"offender_type": "staff", "offender_id": "stf_X", "kind": "privacy",
                                                   "summary": "s", "evidence": {"findings": [finding.id]}}
                       ).status_code == 409

    act_as(Role.HR_OFFICER)
    detail = client.get(f"/api/v1/violations/{violation['id']}").json()
    assert detail["summary"] == "一小时内查看了200位顾客的资料，无工单"  # read for discipline, audited
    sanction = client.post(f"/api/v1/violations/{violation['id']}/sanctions", json={"kind": "suspension"})
    assert sanction.status_code == 201, sanction.text

    act_as(Role.PRIVACY_OFFICER, id="stf_CURIOUS")
    refused = client.get("/api/v1/subjects/cus_1?purpose=subject_request")
    assert refused.status_code == 403 and refused.json()["type"] == "/problems/access-suspended"
    appeal = client.post(f"/api/v1/me/sanctions/{sanction.json()['id']}/appeal", json={"text": "我在处理批量更正请求"})
    assert appeal.json()["appeal_status"] == "pending"
    assert client.get("/api/v1/subjects/cus_1?purpose=subject_request").status_code == 403  # in force meanwhile

    act_as(Role.HR_OFFICER)
    decided = client.post(f"/api/v1/sanctions/{sanction.json()['id']}/appeal-decision", json={"outcome": "overturned"})
    assert decided.json()["status"] == "overturned"
    act_as(Role.PRIVACY_OFFICER, id="stf_CURIOUS")
    assert client.get("/api/v1/subjects/cus_1?purpose=subject_request").status_code == 200


def test_staff_open_no_personal_data_before_signing_the_agreement_in_force(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    _people(client, db, act_as, 1)
    act_as(Role.PRIVACY_OFFICER, id="stf_NEW", signed=False)
    refused = client.get("/api/v1/subjects/cus_0?purpose=subject_request")
    assert refused.status_code == 403 and refused.json()["type"] == "/problems/agreement-unsigned"
    text = client.get("/api/v1/me/agreement", headers={"Accept-Language": "en"}).json()
    assert text["audience"] == "staff" and text["version"] == "tripguard-1" and text["signed_at"] is None
    assert client.post("/api/v1/me/agreement/signature", json={"sha256": text["sha256"]},
                       headers={"User-Agent": "console"}).status_code == 201
    assert client.get("/api/v1/subjects/cus_0?purpose=subject_request").status_code == 200

    act_as(Role.TRAINER)
    body = {"title_zh": "员工保密承诺书（第二版）", "title_en": "Staff commitment, v2", "body_zh": "第二版",
            "body_en": "v2"}
    assert client.put("/api/v1/agreements/staff/v2", json=body).status_code == 201
    assert client.put("/api/v1/agreements/staff/v2", json=body).status_code == 200  # a retry
    assert client.put("/api/v1/agreements/staff/v2", json=body | {"body_en": "changed"}).status_code == 409
    act_as(Role.PRIVACY_OFFICER, id="stf_NEW", signed=False)
    assert client.get("/api/v1/subjects/cus_0?purpose=subject_request").status_code == 403  # sign v2 first
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert client.get("/api/v1/me/agreement").status_code == 403  # machines sign nothing


def test_a_courier_opens_no_order_before_signing(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    from tests.delivery.conftest import place_order

    place_order(client, db, act_as, "O5", "C5", courier_id="cou_5")  # given only to a courier who signed (#27)
    act_as(Role.TRAINER)  # a new version of the workers' agreement: cou_5 has not signed it
    assert client.put("/api/v1/agreements/worker/2026-12", json={
        "title_zh": "骑手保密协议（2026年12月）", "title_en": "Couriers' confidentiality agreement (Dec 2026)",
        "body_zh": "新增：不得拍摄顾客门牌。",
        "body_en": "New: no photos of the customer's door number."}).status_code == 201
    act_as(Role.COURIER, kind="subject", id="cou_5", signed=False)
    refused = client.get("/api/v1/orders/O5")
    assert refused.status_code == 403 and refused.json()["type"] == "/problems/agreement-unsigned"
    text = client.get("/api/v1/me/agreement").json()
    assert text["audience"] == "worker"
    assert client.post("/api/v1/me/agreement/signature", json={"sha256": text["sha256"]}).status_code == 201
    assert client.get("/api/v1/orders/O5").json()["fields"]["address"]["shown"] == "plain"


def test_a_complaint_becomes_a_violation_whose_suspension_closes_the_dispatch_gate(
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session], act_as,  # type: ignore[no-untyped-def]
        gate) -> None:
    put_course(client, act_as)
    assert apply(client, act_as, "cou_bad", "001", role="courier").status_code == 201
    run_agency(screening_app, session_factory)
    as_worker(act_as, "cou_bad", signed=True)
    assert client.post("/api/v1/me/training/privacy-basics/attempts", json={"answers": [1, 0]}).json()["passed"]
    assert gate("cou_bad")["eligible"] is True

    from tests.delivery.conftest import place_order

    place_order(client, db, act_as, "ord_9", "cus_9", courier_id="cou_bad")  # a complaint names an order of theirs
    act_as(Role.CUSTOMER, kind="subject", id="cus_9")
    complaint = client.post("/api/v1/complaints", json={"category": "privacy", "order_id": "ord_9",
                                                        "text": "骑手送餐后打电话骚扰我"})
    assert complaint.status_code == 201, complaint.text
    act_as(Role.SUPPORT_AGENT)
    assert client.post(f"/api/v1/complaints/{complaint.json()['id']}/escalate",
                       json={"to": "violation"}).status_code == 422  # whom and what
    escalated = client.post(f"/api/v1/complaints/{complaint.json()['id']}/escalate", json={
        "to": "violation", "offender_type": "worker", "offender_id": "cou_bad", "kind": "privacy",
        "summary": "送达后用私人电话联系顾客"})
    assert escalated.status_code == 200, escalated.text
    assert escalated.json()["became"] == "violation"
    violation_id = escalated.json()["became_id"]

    act_as(Role.HR_OFFICER)
    suspension = client.post(f"/api/v1/violations/{violation_id}/sanctions", json={"kind": "suspension", "days": 7})
    assert suspension.status_code == 201
    assert blockers(gate("cou_bad")) == ["discipline.suspension"]
    assert "worker.sanctioned" in webhooks(db, "cou_bad")
    retraining = client.post(f"/api/v1/violations/{violation_id}/sanctions",
                             json={"kind": "retraining", "course_id": "privacy-basics"})
    assert retraining.status_code == 201
    assert client.post(f"/api/v1/violations/{violation_id}/sanctions", json={"kind": "fine"}).status_code == 422
    assert blockers(gate("cou_bad")) == ["training.retraining", "discipline.suspension"]
    client.post(f"/api/v1/sanctions/{suspension.json()['id']}/lift")
    assert blockers(gate("cou_bad")) == ["training.retraining"]
    as_worker(act_as, "cou_bad")
    plan = client.get("/api/v1/me/training").json()
    assert plan[0]["reason"] == "retraining"
    assert client.post("/api/v1/me/training/privacy-basics/attempts", json={"answers": [1, 0]}).json()["passed"]
    assert gate("cou_bad")["eligible"] is True
    act_as(Role.DRIVER, kind="subject", id="drv_other")
    assert client.post(f"/api/v1/me/sanctions/{suspension.json()['id']}/appeal",
                       json={"text": "not mine"}).status_code == 404


def test_every_way_to_personal_data_asks_for_the_signature(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """Not only the field reads: a trip's positions, the live map, the privacy label refuse an unsigned
    reader before opening anything."""
    from tests.delivery.conftest import place_order
    from tests.delivery.test_orders_api import kitchen
    from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation()))
    place_order(client, db, act_as, "O6", "C6")
    kitchen_id = kitchen(client, db, act_as)

    def refused(response) -> bool:  # type: ignore[no-untyped-def]
        return response.status_code == 403 and ("/problems/agreement-unsigned" in response.text  # the API
                                                 or 'data-testid="to-agreement"' in response.text)  # a page

    act_as(Role.SAFETY_AGENT, id="stf_UNSIGNED", signed=False)
    assert refused(client.get("/api/v1/telematics/trips/T1/trajectory",
                              params={"purpose": "emergency", "reason": "alert on the trip"}))
    assert refused(client.get("/console/live/snapshot"))
    act_as(Role.MERCHANT, id="stf_KITCHEN_UNSIGNED", signed=False)
    db.execute(update(MerchantStaff).where(MerchantStaff.staff_id == kitchen_id)
               .values(staff_id="stf_KITCHEN_UNSIGNED"))
    db.commit()
    assert refused(client.get("/api/v1/orders/O6/label"))
    act_as(Role.SAFETY_AGENT, id="stf_SIGNED")
    assert client.get("/api/v1/telematics/trips/T1/trajectory",
                      params={"purpose": "emergency", "reason": "alert on the trip"}).status_code == 200


def test_a_worker_reads_their_own_data_without_signing(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    """The agreement binds what a worker learns of others, not their own emergency contacts."""
    act_as(Role.DRIVER, kind="subject", id="drv_own", signed=False)
    assert client.post("/api/v1/me/contacts", json={"name": "王芳", "phone": "13800005678"}).status_code == 201
    listed = client.get("/api/v1/me/contacts")
    assert listed.status_code == 200 and len(listed.json()) == 1


def test_dismissing_a_staff_member_disables_the_account_and_ends_its_sessions(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    from tests.builders import PASSWORD, sign_in_with_enrolment, staff
    from tripguard.security.models import StaffAccount, StaffSession

    offender = staff(db, "leaky.li", Role.SUPPORT_AGENT)
    sign_in_with_enrolment(client, "leaky.li")
    client.cookies.clear()
    act_as(Role.SUPERVISOR)
    violation = client.post("/api/v1/violations", json={
        "offender_type": "staff", "offender_id": offender.id, "kind": "privacy", "summary": "出售顾客电话",
        "evidence": {"audit": ["1"]}}).json()
    act_as(Role.HR_OFFICER)
    assert client.post(f"/api/v1/violations/{violation['id']}/sanctions", json={"kind": "dismissal"}).status_code == 201
    db.expire_all()
    assert db.get(StaffAccount, offender.id).disabled_at is not None  # type: ignore[union-attr]
    assert all(s.revoked_at is not None for s in db.scalars(select(StaffSession).where(
        StaffSession.staff_id == offender.id)))
    client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert client.post("/api/v1/auth/sign-in", json={"username": "leaky.li", "password": PASSWORD}).status_code == 401
