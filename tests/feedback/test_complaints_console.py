"""The complaints pages: the list (no text in it, or in its CSV), and one complaint whose text opens
through the access gate (audited; masked for a role without the support purpose)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.safety.test_sos_api import on_a_trip
from tripguard.audit.models import AuditEntry
from tripguard.security.permissions import Role


def test_supervisor_lists_complaints_and_opens_one(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    filed = client.post("/api/v1/complaints", json={"trip_id": "T1", "category": "conduct",
                                                    "text": "司机一路打电话 13800001234"},
                        headers={"Idempotency-Key": "c-console-1"}).json()
    act_as(Role.SUPERVISOR)
    listing = client.get("/console/complaints?category=conduct")
    assert listing.status_code == 200 and f'data-complaint="{filed["id"]}"' in listing.text
    assert "打电话" not in listing.text
    assert f'data-complaint="{filed["id"]}"' not in client.get("/console/complaints?category=safety").text
    exported = client.get("/console/complaints?format=csv").text
    assert filed["id"] in exported and "打电话" not in exported
    one = client.get(f"/console/complaints/{filed['id']}", headers={"accept-language": "en"})
    assert one.status_code == 200 and "13800001234" not in one.text  # masked: a supervisor holds no support purpose
    assert "Shown masked" in one.text
    read = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read",
                                               AuditEntry.target_type == "feedback_complaints")).one()
    assert read.purpose == "support" and read.outcome == "denied" and json.loads(read.details)["fields"] == "text"


def test_complaints_are_for_their_readers(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.TRAINER)
    assert client.get("/console/complaints").status_code == 403
    act_as(Role.SUPERVISOR)
    assert client.get("/console/complaints/cmp_NONE").status_code == 404
