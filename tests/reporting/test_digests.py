"""Digests: a finished week and month are summarised once, kept, and e-mailed to the staff who subscribed;
a second scheduler run makes nothing again."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.notify.models import OutboxMessage
from tripguard.reporting import digests
from tripguard.reporting.models import Digest
from tripguard.security.permissions import Role


def test_finished_periods_are_summarised_once_and_sent_to_subscribers(
        client: TestClient, db: Session, app: FastAPI, session_factory: sessionmaker[Session], act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR, id="stf_SUB")
    assert client.put("/api/v1/me/digests/weekly", json={"email": "lead@example.com", "locale": "zh_CN"}).status_code \
        == 200
    assert client.put("/api/v1/me/digests/monthly", json={"email": "not-an-address"}).status_code == 422
    assert client.put("/api/v1/me/digests/daily", json={"email": "lead@example.com"}).status_code == 422
    act_as(Role.SUPERVISOR, id="stf_OTHER")
    client.put("/api/v1/me/digests/monthly", json={"email": "other@example.com", "locale": "en"})
    client.put("/api/v1/me/digests/weekly", json={"email": "other@example.com", "locale": "en"})
    assert client.delete("/api/v1/me/digests/weekly").status_code == 204

    now = datetime(2026, 12, 2, 1, tzinfo=UTC)  # a Wednesday in December (Asia/Shanghai)
    assert digests.last_finished("weekly", now, "Asia/Shanghai") == "2026W48"
    assert digests.last_finished("monthly", now, "Asia/Shanghai") == "2026-11"
    assert digests.run(session_factory, app.state.vault, app.state.settings, now=now) == 2
    assert digests.run(session_factory, app.state.vault, app.state.settings, now=now) == 0  # made once
    made = {d.kind: d for d in db.scalars(select(Digest))}
    assert (made["weekly"].period, made["weekly"].recipients) == ("2026W48", 1)
    assert (made["monthly"].period, made["monthly"].recipients) == ("2026-11", 1)
    assert {f["key"] for f in made["weekly"].figures} >= {"screening.pass_rate", "safety.use_rate"}
    mails = db.scalars(select(OutboxMessage).where(OutboxMessage.template == "digest")).all()
    assert sorted((m.subject_id, m.locale) for m in mails) == [("stf_OTHER", "en"), ("stf_SUB", "zh_CN")]
    assert all(m.channel == "email" for m in mails)

    act_as(Role.SUPERVISOR, id="stf_SUB")
    listed = client.get("/api/v1/reports/digests").json()
    assert {d["period"] for d in listed} == {"2026W48", "2026-11"}
    assert 'data-digest="2026W48"' in client.get("/console/reports").text
    act_as(Role.SAFETY_AGENT)
    assert client.put("/api/v1/me/digests/weekly", json={"email": "a@example.com"}).status_code == 403
