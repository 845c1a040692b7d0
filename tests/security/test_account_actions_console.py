"""The security administrator's account actions in the console: unlock, reset a second factor, end
sessions. The last two ask first; each needs its permission; each is audited."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import staff
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.security.models import StaffAccount, StaffSession
from tripguard.security.permissions import Role


def test_unlock_reset_and_sign_out_everywhere(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    person = staff(db, "locked.out", Role.SAFETY_AGENT)
    person.locked_until, person.totp_secret = utcnow() + timedelta(minutes=10), b"sealed-secret"
    db.add(StaffSession(id="ses_ONE", staff_id=person.id, token_hash="h" * 64, created_at=utcnow(),
                        last_seen_at=utcnow(), expires_at=utcnow() + timedelta(hours=8)))
    db.flush()
    act_as(Role.SECURITY_ADMIN)
    page = client.get("/console/staff", headers={"accept-language": "en"}).text
    assert f'/console/staff/{person.id}/account/unlock' in page and "Reset second factor" in page

    unlocked = client.post(f"/console/staff/{person.id}/account/unlock", headers={"accept-language": "en"})
    assert unlocked.status_code == 200 and "Account unlocked." in unlocked.text
    asked = client.post(f"/console/staff/{person.id}/account/totp-reset")
    assert 'data-testid="confirm"' in asked.text
    db.expire_all()
    assert db.get(StaffAccount, person.id).totp_secret is not None  # type: ignore[union-attr]  # not yet
    client.post(f"/console/staff/{person.id}/account/totp-reset", data={"confirm": "yes"})
    db.expire_all()
    account = db.get(StaffAccount, person.id)
    assert account is not None and account.locked_until is None and account.totp_secret is None
    assert db.get(StaffSession, "ses_ONE").revoked_at is not None  # type: ignore[union-attr]
    actions = set(db.scalars(select(AuditEntry.action).where(AuditEntry.target_id == person.id)))
    assert {"staff.unlock", "staff.totp_reset"} <= actions
    revoked = client.post(f"/console/staff/{person.id}/account/sessions-revoke", data={"confirm": "yes"})
    assert revoked.status_code == 200


def test_each_action_needs_its_permission(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    person = staff(db, "someone", Role.SAFETY_AGENT)
    act_as(Role.SYSTEM_ADMIN)  # manages accounts, but separated from the security administrator's powers
    for action in ("unlock", "totp-reset", "sessions-revoke"):
        assert client.post(f"/console/staff/{person.id}/account/{action}", data={"confirm": "yes"}).status_code == 403
    assert "account/unlock" not in client.get("/console/staff").text
    act_as(Role.SECURITY_ADMIN)
    assert client.post("/console/staff/stf_NOBODY/account/unlock").status_code == 404
