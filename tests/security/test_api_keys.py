"""Integration API keys: shown once, stored as a keyed hash, scoped, revocable, audited."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit.models import AuditEntry
from tripguard.security.models import ApiKey
from tripguard.security.permissions import Role


def create_key(client: TestClient) -> dict[str, object]:
    response = client.post("/api/v1/api-keys", json={"name": "dispatch backend", "scopes": ["self.read"]})
    assert response.status_code == 201, response.text
    return response.json()


def test_key_is_shown_once_and_stored_hashed(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SYSTEM_ADMIN)
    created = create_key(client)
    secret = str(created["secret"])
    assert secret.startswith("tg_")
    listed = client.get("/api/v1/api-keys").json()
    assert all("secret" not in key for key in listed)
    stored = db.get(ApiKey, created["id"])
    assert stored is not None and secret not in stored.secret_hash and len(stored.secret_hash) == 64


def test_key_authenticates_until_revoked(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SYSTEM_ADMIN)
    created = create_key(client)
    app.dependency_overrides.clear()  # from here on, real authentication
    headers = {"Authorization": f"Bearer {created['secret']}"}
    who = client.get("/api/v1/auth/whoami", headers=headers)
    assert who.status_code == 200 and who.json()["kind"] == "api_key" and who.json()["roles"] == ["integration"]
    # An integration key cannot reach staff routes.
    assert client.get("/api/v1/staff", headers=headers).status_code == 403
    act_as(Role.SYSTEM_ADMIN)
    assert client.post(f"/api/v1/api-keys/{created['id']}/revoke").json()["revoked_at"] is not None
    app.dependency_overrides.clear()
    assert client.get("/api/v1/auth/whoami", headers=headers).status_code == 401
    forged = str(created["secret"])[:-4] + "AAAA"
    assert client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    actions = [e.action for e in db.scalars(select(AuditEntry))]
    assert "apikey.create" in actions and "apikey.revoke" in actions


def test_staff_only_scopes_cannot_be_granted(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SYSTEM_ADMIN)
    response = client.post("/api/v1/api-keys", json={"name": "too much", "scopes": ["audit.read"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("scopes")
