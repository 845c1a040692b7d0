"""The routes are built once per process and shared by every app made in it (`tripguard.app.api_routes`):
FastAPI builds an included router's routes lazily, on an app's first request for them, which cost ~0.2 s of
CPU per app (tests make one per test) and, in a server, held the event loop (an SOS too) on the first request
of each kind. Each app still answers with its own dependency overrides."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import routing
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tripguard.app import api_routes, create_app
from tripguard.core.settings import Settings
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal


def test_no_request_builds_a_route(settings: Settings, session_factory: sessionmaker[Session],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    api_routes.cache_clear()  # as in a process that starts now
    built: list[str] = []
    build = routing._EffectiveRouteContext.from_api_route.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, **kwargs: Any) -> Any:
        built.append(kwargs["original_route"].path)
        return build(cls, **kwargs)

    monkeypatch.setattr(routing._EffectiveRouteContext, "from_api_route", classmethod(counted))
    first = create_app(settings, session_factory=session_factory)
    assert len(built) > 200  # every route, at start-up
    built.clear()
    for app in (first, create_app(settings, session_factory=session_factory)):
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/api/v1/me/agreement").status_code == 401
            assert client.post("/api/v1/sos", json={}).status_code == 401
            assert client.get("/console/reports", follow_redirects=False).status_code == 303  # to sign in
    assert built == []


def test_each_app_answers_with_its_own_overrides(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    overridden, plain = (create_app(settings, session_factory=session_factory) for _ in range(2))
    agent = Principal.for_roles("staff", "stf_SHARED", frozenset({Role.SAFETY_AGENT}), name="Test")
    overridden.dependency_overrides[resolve_principal] = lambda: agent
    with TestClient(overridden) as signed_in, TestClient(plain) as nobody:
        for _ in range(2):
            assert nobody.get("/api/v1/incidents").status_code == 401
            assert signed_in.get("/api/v1/incidents").status_code != 401
    assert nobody.get("/api/v1/incidents").status_code == 401
