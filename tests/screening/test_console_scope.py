"""A dispute paper opens under its own applicant only; the review queue holds only waiting applicants, oldest
first."""

from __future__ import annotations

import base64

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.screening.conftest import apply, run_agency
from tripguard.screening.models import Applicant, DisputeDocument
from tripguard.security.permissions import Role


def test_a_dispute_paper_is_opened_under_its_own_applicant_only(client: TestClient, screening_app: FastAPI,  # type: ignore[no-untyped-def]
                                                               db: Session, session_factory: sessionmaker[Session],
                                                               act_as) -> None:
    assert apply(client, act_as, "drv_r1", "006").status_code == 201
    assert apply(client, act_as, "drv_r2", "006").status_code == 201
    assert apply(client, act_as, "drv_r3", "001").status_code == 201  # cleared: active, never queued
    run_agency(screening_app, session_factory)
    act_as(Role.SCREENING_OFFICER, id="stf_OFF")
    assert client.post("/console/screening/drv_r1/take", follow_redirects=False).status_code == 303
    decided = client.post("/console/screening/drv_r1/decision",
                          data={"action": "pre_adverse", "note": "需说明", "confirm": "yes"}, follow_redirects=False)
    assert decided.status_code == 303
    act_as(Role.DRIVER, kind="subject", id="drv_r1")
    paper = base64.b64encode(b"%PDF-1.4 r1").decode()
    assert client.post("/api/v1/me/screening/disputes", json={
        "text": "记录有误", "documents": [{"content_type": "application/pdf", "data": paper}]}).status_code == 201
    act_as(Role.COURIER, kind="subject", id="drv_r1")  # applied as a driver: not theirs under this role
    assert client.get("/api/v1/me/screening").status_code == 403
    document = db.scalars(select(DisputeDocument)).one()
    act_as(Role.SCREENING_OFFICER, id="stf_OFF")
    assert client.get(f"/console/screening/drv_r2/documents/{document.id}").status_code == 404
    assert client.get(f"/console/screening/drv_r1/documents/{document.id}").status_code == 200
    queued = [a["id"] for a in client.get("/api/v1/screening/queue").json()]
    db.expire_all()
    expected = [a.id for a in db.scalars(select(Applicant).order_by(Applicant.updated_at))
                if a.status in ("review", "disputed", "pre_adverse", "suspended")
                or (a.status == "active" and a.outcome == "consider")]
    assert queued == expected and "drv_r1" in queued and "drv_r3" not in queued  # oldest first, waiting only
    assert [a["id"] for a in client.get("/api/v1/screening/queue?status=disputed").json()] == ["drv_r1"]
