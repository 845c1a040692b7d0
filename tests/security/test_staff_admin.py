"""Staff administration: separated administrators, role grants, disabling, the CLI."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests import builders
from tripguard.audit.models import AuditEntry
from tripguard.security.models import StaffSession
from tripguard.security.permissions import Role


def test_system_admin_creates_security_admin_grants(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SYSTEM_ADMIN)
    created = client.post("/api/v1/staff", json={"username": "chen.jing", "display_name": "陈静",
                                                  "password": "another long passphrase"})
    assert created.status_code == 201 and created.json()["roles"] == []
    # The system administrator cannot grant roles.
    assert client.put(f"/api/v1/staff/{created.json()['id']}/roles",
                      json={"roles": ["investigator"]}).status_code == 403
    act_as(Role.SECURITY_ADMIN, id="stf_SECURITY")
    granted = client.put(f"/api/v1/staff/{created.json()['id']}/roles", json={"roles": ["investigator"]})
    assert granted.status_code == 200 and granted.json()["roles"] == ["investigator"]
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "staff.roles")).one()
    assert entry.actor_id == "stf_SECURITY" and "investigator" in entry.details


def test_separated_admin_roles_cannot_be_combined(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    target = builders.staff(db, "sun.li")
    act_as(Role.SECURITY_ADMIN)
    response = client.put(f"/api/v1/staff/{target.id}/roles", json={"roles": ["system_admin", "audit_admin"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "roles"


def test_nobody_changes_their_own_roles(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    me = builders.staff(db, "zhou.min", Role.SECURITY_ADMIN)
    act_as(Role.SECURITY_ADMIN, id=me.id)
    assert client.put(f"/api/v1/staff/{me.id}/roles",
                      json={"roles": ["security_admin", "investigator"]}).status_code == 409


def test_disabling_revokes_sessions(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    target = builders.staff(db, "wu.qiang", Role.TRAINER)
    client.post("/api/v1/auth/sign-in", json={"username": "wu.qiang", "password": builders.PASSWORD})
    client.cookies.clear()
    act_as(Role.SYSTEM_ADMIN)
    assert client.post(f"/api/v1/staff/{target.id}/disable").json()["disabled"] is True
    sessions = db.scalars(select(StaffSession).where(StaffSession.staff_id == target.id)).all()
    assert sessions and all(s.revoked_at is not None for s in sessions)


def test_unknown_staff_is_404_problem(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SECURITY_ADMIN)
    response = client.post("/api/v1/staff/stf_NOPE/unlock")
    assert response.status_code == 404 and response.json()["type"] == "/problems/not-found"


def test_weak_password_is_refused_with_the_field(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SYSTEM_ADMIN)
    response = client.post("/api/v1/staff",
                           json={"username": "he.yan", "display_name": "何燕", "password": "aaaaaaaaaaaaaa"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "password"


def test_cli_staff_create_reads_password_from_stdin(cli_site) -> None:  # type: ignore[no-untyped-def]
    from tripguard.cli import app as cli

    runner = CliRunner()
    result = runner.invoke(cli, ["staff", "create", "ma.lin", "--name", "马林", "--role", "safety_agent",
                                 "--password-stdin"], input="a sufficiently long secret\n")
    assert result.exit_code == 0, result.output
    assert "ma.lin" in result.output and "a sufficiently long secret" not in result.output
    again = runner.invoke(cli, ["staff", "create", "ma.lin", "--name", "x", "--password-stdin"],
                          input="a sufficiently long secret\n")
    assert again.exit_code == 2 and "taken" in again.output
