"""The database connection is lost during an SOS: the caller gets an error to retry, and the retry makes
exactly one incident."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from tests.conftest import BACKEND
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.safety import intake
from tripguard.safety.models import Incident
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal


@pytest.mark.skipif(BACKEND != "postgres", reason="a connection cut by the server is PostgreSQL's case")
def test_a_press_whose_connection_is_cut_is_retried_into_one_incident(cli_site: Settings,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    admin = make_engine(cli_site.database_url)
    real_raise_many = intake.raise_many
    cuts = []

    def cut_once(session, desk, presses):  # type: ignore[no-untyped-def]
        if not cuts:  # the first press: its connection dies under it, after the incident was written
            raised = list(real_raise_many(session, desk=desk, presses=presses))
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            cuts.append(pid)
            return raised
        return real_raise_many(session, desk=desk, presses=presses)

    monkeypatch.setattr(intake, "raise_many", cut_once)
    app = create_app(cli_site.model_copy(update={"outbox_interval_seconds": 0, "incident_interval_seconds": 0}))
    app.dependency_overrides[resolve_principal] = lambda: Principal.for_roles(
        "subject", "P9", frozenset({Role.PASSENGER}), name="Test")
    try:
        with TestClient(app) as client:
            headers = {"Idempotency-Key": "press-cut-1"}
            first = client.post("/api/v1/sos", json={}, headers=headers)
            assert first.status_code == 503 and first.headers["retry-after"] == "1", first.text
            assert first.json()["type"] == "/problems/database-unavailable"
            retry = client.post("/api/v1/sos", json={}, headers=headers)
            again = client.post("/api/v1/sos", json={}, headers=headers)
        assert retry.status_code == 201 and again.status_code == 200, (retry.text, again.text)
        assert retry.json()["incident_id"] == again.json()["incident_id"]
        with unit_of_work(make_sessionmaker(admin)) as session:
            assert session.scalar(select(func.count()).select_from(Incident)) == 1
    finally:
        admin.dispose()
