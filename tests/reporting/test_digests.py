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
    assert digests.run(session_factory, vault=app.state.vault, settings=app.state.settings, now=now) == 2
    assert digests.run(session_factory, vault=app.state.vault, settings=app.state.settings, now=now) == 0  # made once
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


def test_a_finished_periods_device_rates_come_from_its_daily_snapshots(
        client: TestClient, db: Session, app: FastAPI, session_factory: sessionmaker[Session], act_as) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from tripguard.core.clock import utcnow
    from tripguard.reporting import kpis, periods, snapshots

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for vehicle in ("V1", "V2"):
        client.put(f"/api/v1/telematics/vehicles/{vehicle}", json={"plate": "粤B1", "colour": "white", "model": "Qin"})
    week = periods.parse("2026W40", "Asia/Shanghai")  # a week long past
    snapshots.take(session_factory, timezone="Asia/Shanghai", now=week.start + timedelta(hours=12))  # no device yet
    client.put("/api/v1/telematics/devices/D1", json={"vehicle_id": "V1", "installed_at": utcnow().isoformat()})
    snapshots.take(session_factory, timezone="Asia/Shanghai", now=week.start + timedelta(days=1, hours=12))
    snapshots.take(session_factory, timezone="Asia/Shanghai", now=week.start + timedelta(days=1, hours=13))  # same day
    results = {r.kpi.key: r for r in kpis.compute(db, period=week, now=utcnow(), ack_seconds=60,
                                                  timezone="Asia/Shanghai",
                                                  keys=["devices.install_rate", "devices.operating_rate"])}
    install = results["devices.install_rate"].value
    assert (install.value, install.numerator, install.denominator) == (0.25, 1, 4)  # 2 days × 2 vehicles, 1 fitted
    assert install.detail == {"snapshot_days": 2}
    assert results["devices.operating_rate"].value.value == 0.0  # the device was never heard
    now = {r.kpi.key: r for r in kpis.compute(db,
                                              period=periods.parse(periods.current_quarter(utcnow(), "Asia/Shanghai"),
                                                                   "Asia/Shanghai"), now=utcnow(), ack_seconds=60,
                                              keys=["devices.install_rate"])}
    assert now["devices.install_rate"].value.value == 0.5  # the quarter under way: the registry as it stands
