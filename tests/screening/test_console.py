"""The screening officer's console pages: the queue, the file (opened for the screening purpose and
audited), the decision with its confirmation, the dispute documents, the figures."""

from __future__ import annotations

import base64

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.screening.conftest import apply, run_agency
from tripguard.audit.models import AuditEntry
from tripguard.screening.models import Applicant, DisputeDocument
from tripguard.security.permissions import Role


def _reads(db: Session, target_type: str) -> list[AuditEntry]:
    db.expire_all()
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read",
                                                    AuditEntry.target_type == target_type)))


def test_an_officer_works_a_case_from_the_queue(client: TestClient, screening_app: FastAPI, db: Session,
                                                 session_factory: sessionmaker[Session], act_as) -> None:  # type: ignore[no-untyped-def]
    assert apply(client, act_as, "drv_c1", "006").status_code == 201
    assert apply(client, act_as, "drv_c2", "001").status_code == 201
    run_agency(screening_app, session_factory)
    officer = act_as(Role.SCREENING_OFFICER, id="stf_OFF")
    queue = client.get("/console/screening/queue")
    assert queue.status_code == 200
    assert 'data-applicant="drv_c1"' in queue.text and 'data-applicant="drv_c2"' not in queue.text  # active: not queued
    everyone = client.get("/console/screening?status=active")
    assert 'data-applicant="drv_c2"' in everyone.text and 'data-figure="pass_rate"' in everyone.text
    csv = client.get("/console/screening/queue?format=csv")
    assert csv.status_code == 200 and "drv_c1" in csv.text and "李师傅" not in csv.text

    file = client.get("/console/screening/drv_c1")
    assert file.status_code == 200
    assert "李师傅" in file.text  # the name, plain for the screening purpose
    assert 'data-reason="record.other"' in file.text and "诈骗" in file.text  # what the check found, named
    assert "*******1111" in file.text and "13800001111" not in file.text  # masked: screening does not need it
    reads = _reads(db, "screening_applicants")
    assert reads and reads[-1].purpose == "screening" and reads[-1].actor_id == officer.id

    assert client.post("/console/screening/drv_c1/take", follow_redirects=False).status_code == 303
    asked = client.post("/console/screening/drv_c1/decision", data={"action": "pre_adverse", "note": "需说明"})
    assert asked.status_code == 200 and 'name="confirm"' in asked.text  # asked first, nothing done
    db.expire_all()
    assert db.get(Applicant, "drv_c1").status == "review"  # type: ignore[union-attr]
    done = client.post("/console/screening/drv_c1/decision",
                       data={"action": "pre_adverse", "note": "需说明", "confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303
    db.expire_all()
    applicant = db.get(Applicant, "drv_c1")
    assert applicant is not None and applicant.status == "pre_adverse" and applicant.assigned_to == officer.id
    early = client.post("/console/screening/drv_c1/decision", data={"action": "reject", "confirm": "yes"})
    assert early.status_code == 409 and "申诉期仍未结束" in early.text  # said on the page, in its language

    act_as(Role.DRIVER, kind="subject", id="drv_c1")
    paper = base64.b64encode(b"%PDF-1.4 dismissal").decode()
    assert client.post("/api/v1/me/screening/disputes", json={
        "text": "记录有误", "documents": [{"content_type": "application/pdf", "data": paper}]}).status_code == 201
    act_as(Role.SCREENING_OFFICER, id=officer.id)
    file = client.get("/console/screening/drv_c1")
    assert "记录有误" in file.text and 'data-testid="document"' in file.text
    document = db.scalars(select(DisputeDocument)).one()
    opened = client.get(f"/console/screening/drv_c1/documents/{document.id}")
    assert opened.status_code == 200 and opened.content == b"%PDF-1.4 dismissal"
    assert _reads(db, "screening_dispute_documents")[-1].outcome == "success"
    assert client.post("/console/screening/drv_c1/decision", data={"action": "clear"},
                       follow_redirects=False).status_code == 303
    db.expire_all()
    assert db.get(Applicant, "drv_c1").status == "active"  # type: ignore[union-attr]


def test_only_screening_officers_open_the_pages(client: TestClient, screening_app: FastAPI, db: Session,
                                                session_factory: sessionmaker[Session], act_as) -> None:  # type: ignore[no-untyped-def]
    assert apply(client, act_as, "drv_c3", "006").status_code == 201
    run_agency(screening_app, session_factory)
    for role in (Role.SAFETY_AGENT, Role.PRIVACY_OFFICER, Role.SUPERVISOR):
        act_as(role)
        for path in ("/console/screening", "/console/screening/queue", "/console/screening/drv_c3"):
            assert client.get(path).status_code == 403, (role, path)
    act_as(Role.SCREENING_OFFICER)
    assert client.get("/console/screening/nobody").status_code == 404
    assert client.get("/console/screening/drv_c3/documents/doc_nope").status_code == 404
