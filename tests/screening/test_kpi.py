"""Screening's figures, from applicants seeded through the API: pass rate, coverage, days to a decision."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.screening.conftest import apply, callback, deliver_messages, run_agency
from tripguard.core.clock import utcnow
from tripguard.screening import adjudication, kpi
from tripguard.screening.models import Applicant, Event
from tripguard.screening.service import Rules
from tripguard.security.permissions import Role


def test_the_figures_of_a_known_period(client: TestClient, screening_app: FastAPI, db: Session,
                                       session_factory: sessionmaker[Session], act_as) -> None:  # type: ignore[no-untyped-def]
    for worker_id, scenario in (("k_clear", "001"), ("k_drug", "002"), ("k_judged", "006"), ("k_later", "001")):
        assert apply(client, act_as, worker_id, scenario).status_code == 201
    run_agency(screening_app, session_factory)
    act_as(Role.SCREENING_OFFICER, id="stf_K")
    assert client.post("/api/v1/applicants/k_judged/decision", json={"action": "clear"}).status_code == 200
    deliver_messages(screening_app, session_factory)  # k_drug's notice reached them
    adjudication.expire_notices(session_factory, vault=screening_app.state.vault, rules=Rules(webhook_url=None),
                                now=utcnow() + timedelta(days=8))  # k_drug: no dispute, rejected
    # a record pushed later flags k_later for review: still active, no longer a current clear screening
    assert callback(client, {"id": "k1", "type": "record.found", "worker": "k_later", "records": ["fraud"]}).json() \
        == {"received": "taken"}
    # k_clear applied two days before it was decided
    db.execute(update(Applicant).where(Applicant.id == "k_clear").values(consented_at=utcnow() - timedelta(days=2)))
    db.commit()

    now = utcnow()
    figures = kpi.figures(db, since=now - timedelta(days=1), until=now + timedelta(hours=1))
    assert (figures.decided, figures.passed) == (4, 3)
    assert figures.pass_rate == 0.75
    assert (figures.active, figures.covered) == (3, 2)
    assert figures.coverage == 2 / 3
    assert figures.days_to_decision_p90 is not None and 1.99 < figures.days_to_decision_p90 < 2.01
    assert figures.days_to_decision_p50 is not None and figures.days_to_decision_p50 < 0.01

    # A reinstatement later is not a second decision: only the first final one counts.
    db.execute(update(Event).where(Event.applicant_id == "k_drug").values(at=now - timedelta(days=30)))
    db.commit()
    assert kpi.figures(db, since=now - timedelta(days=1), until=now + timedelta(hours=1)).decided == 3
    empty = kpi.figures(db, since=now - timedelta(days=10), until=now - timedelta(days=5))
    assert empty.decided == 0 and empty.pass_rate is None
