"""The security self-assessment: each control passes on the evidence it names and fails without it,
and `tripguard security check` exits 1 while a control fails."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import TEST_ACTOR, sign_in_with_enrolment, staff
from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry
from tripguard.cli import app as cli
from tripguard.core.clock import utcnow
from tripguard.core.settings import Settings
from tripguard.reporting.security_check import assess
from tripguard.security.models import StaffAccount
from tripguard.security.permissions import Role
from tripguard.vault.keys import key_source


def results(db: Session, settings: Settings) -> dict[str, bool]:
    return {c.key: e.passed for c, e in assess(db, settings=settings, keys=key_source(settings), now=utcnow()).results}


def test_each_control_follows_its_evidence(client: TestClient, db: Session, app: FastAPI) -> None:
    settings = app.state.settings
    before = results(db, settings)
    assert before["crypto.storage"] and before["keys.rotation"]
    assert not any(before[k] for k in ("admin.separated", "backup.recent", "backup.restore_drill", "deps.scan",
                                       "crypto.transit", "secrets.defaults"))

    for username, role in (("sys.a", Role.SYSTEM_ADMIN), ("sec.a", Role.SECURITY_ADMIN), ("aud.a", Role.AUDIT_ADMIN)):
        staff(db, username, role)
    assert not results(db, settings)["admin.two_factor"]  # three privileged accounts, none enrolled yet
    assert results(db, settings)["admin.separated"]
    for username in ("sys.a", "sec.a", "aud.a"):
        sign_in_with_enrolment(client, username)
    assert results(db, settings)["admin.two_factor"]
    db.execute(update(StaffAccount).where(StaffAccount.username == "sys.a")
               .values(roles=["system_admin", "audit_admin"]))  # what the service refuses, made by hand
    db.commit()
    assert not results(db, settings)["admin.separated"]

    audit.record(db, actor=TEST_ACTOR, action="backup.create", target_type="backup", target_id="b1")
    audit.record(db, actor=TEST_ACTOR, action="backup.restore", target_type="backup", target_id="b1")
    db.commit()
    now = results(db, settings)
    assert now["backup.recent"] and now["backup.restore_drill"]
    db.execute(update(AuditEntry).where(AuditEntry.action == "backup.create")
               .values(ts=utcnow() - timedelta(days=3)))
    db.commit()
    assert not results(db, settings)["backup.recent"]

    def scan(**details: int) -> bool:
        audit.record(db, actor=TEST_ACTOR, action="security.scan", target_type="dependencies", target_id="pip-audit",
                     details=details)
        db.commit()
        return results(db, settings)["deps.scan"]

    assert not scan(audited=0, vulnerable=0, skipped=104)  # offline: nothing was audited, so nothing is known safe
    assert not scan(audited=100, vulnerable=1, skipped=0)
    assert scan(audited=104, vulnerable=0, skipped=0)

    production = settings.model_copy(update={"base_url": "https://tripguard.example.com", "env": "production"})
    assert results(db, production)["crypto.transit"]
    assert results(db, production)["secrets.defaults"] is (
        settings.secret_key.get_secret_value() != "tripguard-development-secret-do-not-use-in-production")


def test_the_command_exits_1_while_a_control_fails(cli_site: Settings) -> None:
    answer = CliRunner().invoke(cli, ["security", "check"], env={"COLUMNS": "200"})
    assert answer.exit_code == 1, answer.output
    assert "admin.separated" in answer.output and "FAIL" in answer.output and "% of controls met" in answer.output
