"""Destructive console actions run only once confirmed: without `confirm=yes` the server answers with
a confirmation page (inside the shell) and nothing happens."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR, staff
from tests.privacy.test_breach_form import GOOD
from tests.privacy.test_requests import person  # noqa: F401  (the fixture)
from tests.web.confirming import asks_first, confirmed
from tripguard.audit.models import AuditEntry
from tripguard.console.confirmations import QUESTIONS
from tripguard.console.privacy_pages import BREACH_QUESTIONS
from tripguard.console.security_pages import ACCOUNT_ACTIONS
from tripguard.core.clock import utcnow
from tripguard.privacy.models import Breach, BreachSubject, RetentionRun
from tripguard.security import service
from tripguard.security.models import ApiKey, StaffSession
from tripguard.security.permissions import Permission, Role


def test_revoking_an_api_key_asks_first(client: TestClient, db: Session, act_as, settings) -> None:  # type: ignore[no-untyped-def]
    key, _ = service.create_api_key(db, settings=settings, actor=TEST_ACTOR, name="dispatch",
                                    scopes={Permission.SELF_READ})
    db.flush()
    act_as(Role.SYSTEM_ADMIN)
    asked = client.post(f"/console/api-keys/{key.id}/revoke", headers={"accept-language": "zh-CN"})
    assert asked.status_code == 200 and 'data-testid="confirm"' in asked.text and "吊销此 API 密钥吗？" in asked.text
    assert 'name="confirm" value="yes"' in asked.text and 'class="danger"' in asked.text
    db.expire_all()
    assert db.get(ApiKey, key.id).revoked_at is None  # type: ignore[union-attr]
    done = client.post(f"/console/api-keys/{key.id}/revoke", data={"confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303
    db.expire_all()
    assert db.get(ApiKey, key.id).revoked_at is not None  # type: ignore[union-attr]
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "apikey.revoke",
                                              AuditEntry.target_id == key.id)) is not None


def test_a_real_retention_run_asks_first_and_a_dry_run_does_not(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    before = len(db.scalars(select(RetentionRun)).all())
    asked = client.post("/console/privacy/retention/run", data={"mode": "real"})
    assert asked.status_code == 200 and 'data-testid="confirm"' in asked.text
    assert 'name="mode" value="real"' in asked.text
    assert len(db.scalars(select(RetentionRun)).all()) == before
    dry = client.post("/console/privacy/retention/run", data={"mode": "dry"}, follow_redirects=False)
    assert dry.status_code == 303
    real = client.post("/console/privacy/retention/run", data={"mode": "real", "confirm": "yes"},
                       follow_redirects=False)
    assert real.status_code == 303
    # PostgreSQL returns rows in no set order
    runs = db.scalars(select(RetentionRun).order_by(RetentionRun.started_at)).all()
    assert [r.dry_run for r in runs[before:]] == [True, False]
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "retention.run",
                                              AuditEntry.target_id == runs[-1].id)) is not None


def test_a_breach_is_notified_and_closed_only_once_confirmed(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                              person: str) -> None:  # noqa: F811
    act_as(Role.PRIVACY_OFFICER)
    opened = client.post("/console/privacy/breaches", data=GOOD, follow_redirects=False)
    breach_id = opened.headers["location"].rsplit("/", 1)[1]
    url = f"/console/privacy/breaches/{breach_id}/action"
    assert client.post(url, data={"action": "add", "subject_ids": person}, follow_redirects=False).status_code == 303
    for action, audited in (("notify", "breach.notify"), ("close", "breach.close")):
        question = BREACH_QUESTIONS[action]
        asks_first(client, url, {"action": action}, question=question.question, consequence=question.consequence)
        db.expire_all()
        assert db.scalar(select(AuditEntry).where(AuditEntry.action == audited)) is None
        assert confirmed(client, url, {"action": action}).status_code == 303
        db.expire_all()
        assert db.scalar(select(AuditEntry).where(AuditEntry.action == audited,
                                                  AuditEntry.target_id == breach_id)) is not None
    db.expire_all()
    assert db.get(Breach, breach_id).status == "closed"  # type: ignore[union-attr]
    assert db.scalars(select(BreachSubject)).one().notified_at is not None


def test_signing_someone_out_everywhere_asks_first(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    agent = staff(db, "signed.in", Role.SAFETY_AGENT)
    db.add(StaffSession(id="ses_LIVE", staff_id=agent.id, token_hash="s" * 64, created_at=utcnow(),
                        last_seen_at=utcnow(), expires_at=utcnow() + timedelta(hours=8)))
    db.commit()
    act_as(Role.SECURITY_ADMIN)
    url = f"/console/staff/{agent.id}/account/sessions-revoke"
    question = ACCOUNT_ACTIONS["sessions-revoke"][0]
    assert question is not None
    asks_first(client, url, question=question.question, consequence=question.consequence)
    db.expire_all()
    assert db.get(StaffSession, "ses_LIVE").revoked_at is None  # type: ignore[union-attr]
    confirmed(client, url)
    db.expire_all()
    assert db.get(StaffSession, "ses_LIVE").revoked_at is not None  # type: ignore[union-attr]
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "staff.sessions_revoke",
                                              AuditEntry.target_id == agent.id)) is not None


TEMPLATES = Path(__file__).resolve().parents[2] / "tripguard"
ASKED = re.compile(r"""asks\("([a-z_.]+)"( ~ k)?\)""")


def test_every_question_is_registered_and_asked_on_a_page(app) -> None:  # type: ignore[no-untyped-def]
    """The dialog and the server's page say the same words: each key a template asks by is registered
    (the app imported every console), and each registered question is asked by some button."""
    used: set[str] = set()
    for template in TEMPLATES.glob("*/templates/**/*.html"):
        for key, per_kind in ASKED.findall(template.read_text()):
            used |= {k for k in QUESTIONS if k.startswith(key)} if per_kind else {key}
            assert per_kind or key in QUESTIONS, (template, key)
    assert used == set(QUESTIONS)
    assert all(q.question.endswith("?") and q.consequence and q.button for q in QUESTIONS.values())

