"""A pre-adverse notice that could not be delivered (no phone, or its SMS failed for good) starts no
dispute window: the clock stops, the case waits for a screening officer, and nobody is rejected on a
notice they never got."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.screening.conftest import apply, deliver_messages, run_agency, webhooks
from tripguard.core.clock import utcnow
from tripguard.screening import adjudication
from tripguard.screening.models import Applicant, Event
from tripguard.screening.service import Rules, rules_from
from tripguard.security.permissions import Role

LATER = timedelta(days=8)


def _applicant(db: Session, worker_id: str) -> Applicant:
    db.expire_all()
    applicant = db.get(Applicant, worker_id)
    assert applicant is not None
    return applicant


def _expire(app: FastAPI, factory: sessionmaker[Session], *, after: timedelta = LATER) -> None:
    adjudication.expire_notices(factory, vault=app.state.vault, rules=rules_from(app.state.settings),
                                now=utcnow() + after)


def test_an_applicant_with_no_phone_is_not_put_on_the_clock(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session],
        act_as) -> None:
    assert apply(client, act_as, "drv_nophone", "002", phone=None).status_code == 201  # a drug record
    run_agency(screening_app, session_factory)
    applicant = _applicant(db, "drv_nophone")
    assert applicant.status == "pre_adverse" and applicant.dispute_due_at is None
    assert applicant.notice_failed_at is not None and applicant.notice_sent_at is None
    assert "worker.notice_undelivered" in webhooks(db, "drv_nophone")
    _expire(screening_app, session_factory)
    assert _applicant(db, "drv_nophone").status == "pre_adverse"  # no window ran out: nobody told them

    act_as(Role.SCREENING_OFFICER, id="stf_N")
    queued = {a["id"]: a for a in client.get("/api/v1/screening/queue").json()}
    assert queued["drv_nophone"]["notice_failed_at"] is not None and queued["drv_nophone"]["dispute_due_at"] is None
    assert client.post("/api/v1/applicants/drv_nophone/decision", json={"action": "reject"}).status_code == 409
    assert client.post("/api/v1/applicants/drv_nophone/decision",
                       json={"action": "notice_delivered"}).status_code == 409  # say how
    given = client.post("/api/v1/applicants/drv_nophone/decision",
                        json={"action": "notice_delivered", "note": "挂号信寄达，回执编号 X1"})
    assert given.status_code == 200 and given.json()["dispute_due_at"] is not None  # the window runs from now
    assert given.json()["notice_failed_at"] is None
    assert client.post("/api/v1/applicants/drv_nophone/decision", json={"action": "reject"}).status_code == 409
    _expire(screening_app, session_factory)
    assert _applicant(db, "drv_nophone").status == "rejected"


def test_a_notice_whose_sms_failed_stops_the_clock_until_it_is_sent_again(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session],
        act_as) -> None:
    assert apply(client, act_as, "drv_badsms", "002").status_code == 201
    run_agency(screening_app, session_factory)
    assert _applicant(db, "drv_badsms").dispute_due_at is not None  # the notice is on its way
    deliver_messages(screening_app, session_factory, failing=True)
    assert adjudication.watch_notices(session_factory, rules=rules_from(screening_app.state.settings)) == 1
    applicant = _applicant(db, "drv_badsms")
    assert applicant.status == "pre_adverse" and applicant.dispute_due_at is None
    assert applicant.notice_failed_at is not None
    assert [e.details.get("why") for e in db.query(Event).filter(Event.applicant_id == "drv_badsms",
                                                                 Event.kind == "notice.undelivered")] == ["send_failed"]
    assert adjudication.watch_notices(session_factory, rules=Rules(webhook_url=None)) == 0  # once
    _expire(screening_app, session_factory)
    assert _applicant(db, "drv_badsms").status == "pre_adverse"

    act_as(Role.SCREENING_OFFICER, id="stf_N")
    again = client.post("/api/v1/applicants/drv_badsms/decision", json={"action": "pre_adverse"})
    assert again.status_code == 200 and again.json()["dispute_due_at"] is not None
    deliver_messages(screening_app, session_factory)  # this time it reaches them
    assert adjudication.watch_notices(session_factory, rules=Rules(webhook_url=None)) == 0
    _expire(screening_app, session_factory)
    assert _applicant(db, "drv_badsms").status == "rejected"


def test_a_window_that_closes_on_a_notice_never_sent_rejects_nobody(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session],
        act_as) -> None:
    assert apply(client, act_as, "drv_stuck", "002").status_code == 201
    run_agency(screening_app, session_factory)  # the SMS is queued, and the outbox never sends it
    _expire(screening_app, session_factory)
    applicant = _applicant(db, "drv_stuck")
    assert applicant.status == "pre_adverse" and applicant.notice_failed_at is not None
    assert applicant.dispute_due_at is None
