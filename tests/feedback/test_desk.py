"""The feedback desk end to end: a customer's complaint is taken, answered by its deadline, and the
customer told by SMS and shown the answer; or it becomes a safety case or a breach to investigate."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import staff
from tests.delivery.conftest import place_order
from tripguard.audit.models import AuditEntry
from tripguard.feedback.models import Complaint
from tripguard.notify.channels import RecordingChannel
from tripguard.notify.service import Notifier, dispatch_due
from tripguard.privacy.models import Breach
from tripguard.safety.models import Incident
from tripguard.security.permissions import Role


def test_a_customers_complaint_is_answered_and_they_are_told(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                             app: FastAPI,
                                                             session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as, courier_id="R1")  # the customer is known only through the order
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    filed = client.post("/api/v1/complaints", json={"order_id": "O1", "category": "service",
                                                    "text": "餐洒了一半，骑手态度也不好"}).json()
    assert filed["status"] == "received" and filed["due_at"] is not None
    agent = staff(db, "support.li", Role.SUPPORT_AGENT)
    db.commit()
    act_as(Role.SUPPORT_AGENT, id=agent.id)
    assert client.get("/console/complaints?state=open").text.count(f'data-complaint="{filed["id"]}"') == 1
    page = client.get(f"/console/complaints/{filed['id']}")
    assert "餐洒了一半" in page.text  # support reads the text for the support purpose
    read = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read",
                                               AuditEntry.target_id == filed["id"])).all()[-1]
    assert read.purpose == "support" and read.outcome == "success"
    assert client.post(f"/api/v1/complaints/{filed['id']}/assign", json={}).json()["status"] == "assigned"
    assert client.post(f"/api/v1/complaints/{filed['id']}/assign",
                       json={"assignee": "stf_NOBODY"}).status_code == 404
    answered = client.post(f"/api/v1/complaints/{filed['id']}/answer",
                           json={"text": "非常抱歉，已为您退款并对骑手进行提醒。"})
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    assert client.post(f"/api/v1/complaints/{filed['id']}/answer", json={"text": "again"}).status_code == 409
    stored = db.get(Complaint, filed["id"])
    assert stored is not None and stored.answer is not None and "退款".encode() not in stored.answer
    sms = RecordingChannel(name="sms")
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms}))
    assert [m.to for m in sms.sent] == ["13800001234"] and filed["id"] in sms.sent[0].body  # the customer told
    used = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.use", AuditEntry.target_id == "O1")).one()
    assert (used.purpose, used.actor_id) == ("support", agent.id)  # the order's phone, opened for the purpose
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    mine = client.get("/api/v1/me/complaints").json()
    assert mine[0]["answer"] == "非常抱歉，已为您退款并对骑手进行提醒。"
    act_as(Role.SUPERVISOR)  # supervisors see the list, masked text, no desk
    assert client.post(f"/api/v1/complaints/{filed['id']}/assign", json={}).status_code == 403


def test_a_complaint_becomes_a_case_or_a_breach(client: TestClient, db: Session, act_as, app: FastAPI) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, courier_id="R1")
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    unsafe = client.post("/api/v1/complaints", json={"category": "safety", "text": "骑手跟踪我到楼下"}).json()
    leaked = client.post("/api/v1/complaints", json={"order_id": "O1", "category": "privacy",
                                                     "text": "有陌生人打电话说出了我的订单信息"}).json()
    agent = staff(db, "support.wu", Role.SUPPORT_AGENT)
    db.commit()
    act_as(Role.SUPPORT_AGENT, id=agent.id)
    case = client.post(f"/console/complaints/{unsafe['id']}/desk", data={"action": "incident"}, follow_redirects=False)
    assert case.status_code == 303
    complaint = db.get(Complaint, unsafe["id"])
    assert complaint is not None and complaint.became == "incident"
    incident = db.get(Incident, complaint.became_id)
    assert incident is not None and incident.source == "complaint" and incident.caller_id == "C1"
    assert client.post(f"/console/complaints/{unsafe['id']}/desk", data={"action": "breach"}).status_code == 409
    assert client.post(f"/api/v1/complaints/{leaked['id']}/escalate", json={"to": "breach"}).json()["status"] \
        == "received"
    breach = db.scalars(select(Breach)).one()
    assert breach.status == "open" and leaked["id"] in breach.title
    assert (db.get(Complaint, unsafe["id"]).due_at - db.get(Complaint, unsafe["id"]).created_at).days == 1  # type: ignore[union-attr]
    assert (db.get(Complaint, leaked["id"]).due_at - db.get(Complaint, leaked["id"]).created_at).days == 15  # type: ignore[union-attr]


def test_a_complaint_is_a_violation_only_of_the_worker_who_carried_the_order(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                          act_as) -> None:
    place_order(client, db, act_as, courier_id="R1")
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    filed = client.post("/api/v1/complaints", json={"order_id": "O1", "category": "conduct", "text": "骑手态度很差"})
    act_as(Role.SUPPORT_AGENT)
    escalate = f"/api/v1/complaints/{filed.json()['id']}/escalate"
    body = {"to": "violation", "offender_type": "worker", "kind": "conduct", "summary": "对顾客态度恶劣"}
    someone_else = client.post(escalate, json=body | {"offender_id": "R2"})
    assert someone_else.status_code == 409, someone_else.text
    became = client.post(escalate, json=body | {"offender_id": "R1"})
    assert became.status_code == 200 and became.json()["became"] == "violation", became.text
