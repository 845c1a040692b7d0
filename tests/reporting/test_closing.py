"""Closing a quarter freezes its figures: later reports (API, console, quarterly report and its trend)
show the frozen values even when the records behind them change; a restatement names the version it
replaces and a reason, and is audited; a quarter under way cannot be closed."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import fresh_database
from tests.reporting.test_kpi_history import ZONE, last_quarter, seed
from tripguard.audit.actor import Actor
from tripguard.audit.models import AuditEntry
from tripguard.cli import app as cli
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.errors import Conflict
from tripguard.core.settings import Settings
from tripguard.feedback.models import Complaint
from tripguard.reporting import closing, periods, quarterly
from tripguard.reporting.models import PeriodFigures
from tripguard.security.permissions import Role
from tripguard.vault.keys import key_source


def figure(answer: dict[str, object], key: str) -> object:
    return {k["key"]: k for k in answer["kpis"]}[key]  # type: ignore[index, union-attr]


def test_a_closed_quarter_keeps_its_figures_until_restated(client: TestClient, db: Session, app: FastAPI,
                                                           act_as) -> None:  # type: ignore[no-untyped-def]
    period = last_quarter()
    seed(db, period)
    act_as(Role.SUPERVISOR)
    closed = client.post(f"/api/v1/reports/periods/{period.label}/close")
    assert closed.status_code == 201, closed.text
    assert [v["version"] for v in closed.json()["versions"]] == [1]
    assert figure(closed.json(), "complaints.answered_in_time")["value"] == 1 / 3  # type: ignore[index]
    again = client.post(f"/api/v1/reports/periods/{period.label}/close")  # a retry changes nothing
    assert again.status_code == 200 and [v["version"] for v in again.json()["versions"]] == [1]

    # the records change afterwards (a late answer is back-dated into time): the closed quarter does not
    for complaint in db.scalars(select(Complaint)):
        complaint.answered_at = complaint.created_at + timedelta(minutes=5)
    db.commit()
    report = client.get("/api/v1/reports/kpis", params={"period": period.label}).json()
    assert report["closed_version"] == 1
    assert figure(report, "complaints.answered_in_time")["value"] == 1 / 3  # type: ignore[index]
    assert figure(report, "complaints.answered_in_time")["frozen_version"] == 1  # type: ignore[index]
    settings = app.state.settings
    built = quarterly.build(db, settings=settings, keys=key_source(settings), quarter=period.label, now=utcnow())
    assert built.version == 1 and dict(built.trends["complaints.answered_in_time"])[period.label] == 1 / 3
    later = periods.parse(periods.current_quarter(utcnow(), ZONE), ZONE)
    trend = quarterly.build(db, settings=settings, keys=key_source(settings), quarter=later.label, now=utcnow())
    assert dict(trend.trends["complaints.answered_in_time"])[period.label] == 1 / 3  # the trend draws the frozen one
    assert trend.closed == {period.label: 1}
    page = client.get("/console/reports", params={"period": period.label}, headers={"accept-language": "en"})
    assert 'data-testid="closed"' in page.text and "version 1" in page.text

    # a restatement: explicit, with the version it replaces and a reason; audited
    for no_reason in (" ", "     ", "\u3000" * 5, "x", "....."):  # a reason holds 5 letters or digits (review #27)
        refused = client.post(f"/api/v1/reports/periods/{period.label}/restatements",
                              json={"version": 1, "reason": no_reason})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "reason", refused.text
    assert client.post(f"/api/v1/reports/periods/{period.label}/restatements",
                       json={"version": 2, "reason": "wrong version"}).status_code == 409
    body = {"version": 1, "reason": "complaint answers were recorded a day late by the support tool"}
    restated = client.post(f"/api/v1/reports/periods/{period.label}/restatements", json=body)
    assert restated.status_code == 201, restated.text
    assert [(v["version"], v["reason"]) for v in restated.json()["versions"]] == [(1, None), (2, body["reason"])]
    assert figure(restated.json(), "complaints.answered_in_time")["value"] == 1.0  # type: ignore[index]
    retry = client.post(f"/api/v1/reports/periods/{period.label}/restatements", json=body)
    assert retry.status_code == 201 and len(retry.json()["versions"]) == 2  # the same restatement, retried
    assert client.post(f"/api/v1/reports/periods/{period.label}/restatements",
                       json={"version": 1, "reason": "another"}).status_code == 409  # version 1 is history
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action.in_(("report.close", "report.restate")))
                         .order_by(AuditEntry.id)).all()
    assert [(e.action, e.target_id) for e in entries] == [("report.close", period.label),
                                                          ("report.restate", period.label)]
    details = json.loads(entries[1].details)
    assert details["reason"] == body["reason"] and details["replaces"] == 1
    assert "complaints.answered_in_time: 0.333" in details["changed"]
    assert figure(client.get("/api/v1/reports/kpis", params={"period": period.label}).json(),
                  "complaints.answered_in_time")["value"] == 1.0  # type: ignore[index]
    history = client.get(f"/api/v1/reports/periods/{period.label}").json()
    assert history["closed"] is True and len(history["versions"]) == 2


def test_what_cannot_be_closed_or_restated(client: TestClient, app: FastAPI, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR)
    current = periods.current_quarter(utcnow(), ZONE)
    assert client.post(f"/api/v1/reports/periods/{current}/close").status_code == 409  # still running
    assert client.post("/api/v1/reports/periods/2026-11/close").status_code == 422  # only quarters
    assert client.post("/api/v1/reports/periods/0001Q1/close").status_code == 422
    assert client.post(f"/api/v1/reports/periods/{last_quarter().label}/restatements",
                       json={"version": 1, "reason": "not closed"}).status_code == 404
    assert client.get(f"/api/v1/reports/periods/{last_quarter().label}").json() == {
        "period": last_quarter().label, "closed": False, "versions": [], "kpis": []}
    act_as(Role.TRAINER)
    assert client.post(f"/api/v1/reports/periods/{last_quarter().label}/close").status_code == 403


def test_parallel_closings_freeze_once(tmp_path: Path) -> None:
    """Eight closings and eight restatements of one version at once, on real connections (PostgreSQL in its
    pass): one closing and one restatement are made; the rest get the closing, or a conflict."""
    engine = make_engine(fresh_database("tg_close_race", tmp_path))
    factory = make_sessionmaker(engine)
    label = last_quarter().label
    barrier = threading.Barrier(8)

    def close(n: int) -> bool:
        barrier.wait()
        with unit_of_work(factory) as session:
            return closing.close(session, label=label, actor=Actor("staff", f"s{n}"), now=utcnow(), timezone=ZONE,
                                 ack_seconds=60)[1]

    def restate(n: int) -> str:
        barrier.wait()
        try:
            with unit_of_work(factory) as session:
                closing.restate(session, label=label, version=1, reason=f"reason {n}", actor=Actor("staff", f"s{n}"),
                                now=utcnow(), timezone=ZONE, ack_seconds=60)
        except Conflict:
            return "conflict"
        return "made"

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(close, range(8)))
        restated = list(pool.map(restate, range(8)))
    assert made.count(True) == 1
    assert restated.count("made") == 1 and restated.count("conflict") == 7, restated
    with unit_of_work(factory) as session:
        assert [v.version for v in closing.versions(session, label=label)] == [1, 2]
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action.in_(("report.close", "report.restate")))) == 2
    engine.dispose()


def test_from_the_command_line(cli_site: Settings, tmp_path: Path) -> None:
    label = last_quarter().label
    answer = CliRunner().invoke(cli, ["report", "close", "--quarter", label])
    assert answer.exit_code == 0 and "closed, version 1" in answer.output, answer.output
    assert "already closed" in CliRunner().invoke(cli, ["report", "close", "--quarter", label]).output
    answer = CliRunner().invoke(cli, ["report", "restate", "--quarter", label, "--version", "1", "--reason",
                                      "late records from the agency"])
    assert answer.exit_code == 0 and "version 2" in answer.output, answer.output
    assert CliRunner().invoke(cli, ["report", "restate", "--quarter", label, "--version", "1", "--reason",
                                    "again"]).exit_code == 2
    current = periods.current_quarter(utcnow(), ZONE)
    assert CliRunner().invoke(cli, ["report", "close", "--quarter", current]).exit_code == 2


def test_the_frozen_rows_are_numbers_only(db: Session, app: FastAPI) -> None:
    seed(db, last_quarter())
    closing.close(db, label=last_quarter().label, actor=Actor("staff", "s"), now=utcnow(), timezone=ZONE,
                  ack_seconds=60)
    row = db.scalars(select(PeriodFigures)).one()
    assert {k for r in row.figures for k in r} == {"key", "value", "numerator", "denominator", "detail", "at_least",
                                                  "at_most", "status"}
