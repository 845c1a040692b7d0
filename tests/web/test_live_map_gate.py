"""The live map (every active trip's position) is for the emergency purpose only, and every opening is audited."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit.models import AuditEntry
from tripguard.security.permissions import Role


def test_an_integration_key_cannot_watch_the_city(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert client.get("/console/live/snapshot").status_code == 403
    assert client.get("/console/live/stream").status_code == 403
    act_as(Role.SUPERVISOR)
    assert client.get("/console/live/snapshot").status_code == 403


def test_an_agent_opening_the_live_view_is_audited(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SAFETY_AGENT, id="stf_AGENT")
    assert client.get("/console/live/snapshot").status_code == 200
    opened = db.scalars(select(AuditEntry).where(AuditEntry.action == "live_map.open")).all()
    assert [(e.actor_id, e.purpose, e.target_id) for e in opened] == [("stf_AGENT", "emergency", "snapshot")]
