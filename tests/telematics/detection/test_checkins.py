"""Check-ins: an alert asks the people on the trip "are you OK?"; help and silence reach the agents."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests import builders
from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tripguard.core.clock import utcnow
from tripguard.notify.models import OutboxMessage
from tripguard.security.permissions import Role
from tripguard.telematics.detection import checkins
from tripguard.telematics.models import CheckIn


def deviate(client: TestClient, act_as) -> CheckIn:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    events = trip_with_deviation()
    events[0]["driver_id"], events[0]["passenger_id"] = "D1", "P1"
    assert post(client, ndjson(events)).status_code == 200  # the monitor stores the alert just after


def test_a_deviation_sends_the_passenger_a_push_check_in(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    deviate(client, act_as)
    check_in = db.scalars(select(CheckIn)).one()
    assert (check_in.subject_id, check_in.role, check_in.status) == ("P1", "passenger", "pending")
    push = db.scalars(select(OutboxMessage).where(OutboxMessage.channel == "push")).one()
    assert (push.subject_id, push.template) == ("P1", "check_in")


def test_the_passenger_answers_and_help_reaches_the_agents(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    deviate(client, act_as)
    check_in = db.scalars(select(CheckIn)).one()
    app_client = client
    act_as(Role.PASSENGER, kind="subject", id="P2")
    url = f"/api/v1/telematics/check-ins/{check_in.id}/answer"
    assert app_client.post(url, json={"answer": "ok"}).status_code == 404  # someone else's
    act_as(Role.PASSENGER, kind="subject", id="P1")
    assert app_client.post(url, json={"answer": "ok"}).json()["status"] == "ok"
    assert app_client.post(url, json={"answer": "ok"}).status_code == 200  # the same again
    assert app_client.post(url, json={"answer": "help"}).json()["status"] == "help"
    assert app_client.post(url, json={"answer": "ok"}).status_code == 409
    assert app_client.post(url, json={"answer": "maybe"}).status_code == 422
    act_as(Role.SAFETY_AGENT)
    assert [c["status"] for c in client.get("/api/v1/telematics/check-ins").json()] == ["help"]


def test_unanswered_check_ins_expire_for_the_agents(client: TestClient, db: Session, act_as,
                                                    session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    deviate(client, act_as)
    assert checkins.expire_due(session_factory, webhook_url=None) == []
    expired = checkins.expire_due(session_factory, webhook_url=None, now=utcnow() + timedelta(minutes=4))
    assert [(e["subject_id"], e["status"]) for e in expired] == [("P1", "unanswered")]


def test_speeding_asks_nobody(db: Session) -> None:
    assert "speeding" not in checkins.ASK and "gps_lost" not in checkins.ASK
    assert builders.PASSWORD  # the builders module stays importable from here
