"""Every route of the OpenAPI spec × every role: allowed exactly when the permission table says so."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tripguard.core.routes import api_routes
from tripguard.security.auth import declared_permission
from tripguard.security.permissions import (
    ROLE_PERMISSIONS,
    SEPARATED_ADMIN_ROLES,
    STAFF_ROLES,
    SUBJECT_ROLES,
    Permission,
    Role,
    role_conflicts,
)

KIND_OF_ROLE = {**{r: "staff" for r in STAFF_ROLES}, **{r: "subject" for r in SUBJECT_ROLES},
                Role.INTEGRATION: "api_key"}


def operations(app: FastAPI) -> list[tuple[str, str, str | None]]:
    spec = app.openapi()
    return [(method.upper(), path, op.get("x-permission"))
            for path, ops in spec["paths"].items() for method, op in ops.items()]


def api_key_only(app: FastAPI) -> set[tuple[str, str]]:
    """Routes that take the operator's API key and nothing else (the dispatch gate): no principal can be
    stood in for them; tests/screening asks them with real keys, and refuses every other credential."""
    return {(method, info.path) for info in api_routes(app) for method in info.methods
            if any(getattr(dep.call, "api_key_only", False) for dep in info.route.dependant.dependencies)}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_declares_a_permission(app: FastAPI) -> None:
    routes = list(api_routes(app))
    assert any(info.path.startswith("/console") for info in routes)  # console routes count too
    missing = [info.path for info in routes if declared_permission(info.route.dependant) is None]
    assert missing == []
    assert all(permission is not None for _, _, permission in operations(app))


def test_every_role_is_in_the_table() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)


def test_administrator_roles_are_separated() -> None:
    assert role_conflicts({Role.SYSTEM_ADMIN, Role.AUDIT_ADMIN}) == {Role.SYSTEM_ADMIN, Role.AUDIT_ADMIN}
    assert role_conflicts({Role.SYSTEM_ADMIN, Role.SAFETY_AGENT}) == set()
    # No one of the three holds what another exists for.
    admin_only = {Permission.STAFF_MANAGE, Permission.STAFF_ROLES, Permission.AUDIT_READ}
    for role in SEPARATED_ADMIN_ROLES:
        assert len(ROLE_PERMISSIONS[role] & admin_only) == 1


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_route_role_matrix(app: FastAPI, client: TestClient, act_as, role: Role) -> None:  # type: ignore[no-untyped-def]
    act_as(role, kind=KIND_OF_ROLE[role])
    checked = 0
    # /metrics needs no principal but the monitoring network or its token (tests/core/test_http.py).
    skipped = api_key_only(app) | {("GET", "/metrics")}
    assert ("GET", "/api/v1/workers/{worker_id}/eligibility") in skipped
    for method, path, permission in operations(app):
        if (method, path) in skipped:
            continue
        response = client.request(method, concrete(path))
        allowed = permission == "public" or Permission(permission) in ROLE_PERMISSIONS[role]
        label = f"{role.value} {method} {path} needs {permission}: got {response.status_code}"
        if allowed:
            assert response.status_code not in (401, 403), label
        else:
            assert response.status_code == 403, label
            assert response.headers["content-type"].startswith("application/problem+json")
        checked += 1
    assert checked > 20


def test_anonymous_gets_401_on_every_non_public_route(app: FastAPI, client: TestClient) -> None:
    for method, path, permission in operations(app):
        response = client.request(method, concrete(path))
        if permission == "public":
            assert response.status_code != 401, path
        else:
            assert response.status_code == 401, f"{method} {path}: {response.status_code}"
            assert response.json()["type"] == "/problems/not-authenticated"
