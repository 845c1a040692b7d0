"""Destructive console actions run only once confirmed: without `confirm=yes` the server answers with
a confirmation page (inside the shell) and nothing happens."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tripguard.privacy.models import RetentionRun
from tripguard.security import service
from tripguard.security.models import ApiKey
from tripguard.security.permissions import Permission, Role


def test_revoking_an_api_key_asks_first(client: TestClient, db: Session, act_as, settings) -> None:  # type: ignore[no-untyped-def]
    key, _ = service.create_api_key(db, settings, actor=TEST_ACTOR, name="dispatch", scopes={Permission.SELF_READ})
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
    runs = db.scalars(select(RetentionRun).order_by(RetentionRun.started_at)).all()  # PostgreSQL returns rows in no set order
    assert [r.dry_run for r in runs[before:]] == [True, False]
