"""The SOS press's idempotency key on its own: a retry found by its key, not by the double tap's minute."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tripguard.safety.models import Incident
from tripguard.security.permissions import Role


def test_a_retry_after_the_double_tap_minute_finds_the_first_case_by_its_key(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PASSENGER, kind="subject", id="P1")
    first = client.post("/api/v1/sos", json={}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201, first.text
    incident = db.get(Incident, first.json()["incident_id"])
    assert incident is not None
    incident.created_at -= timedelta(minutes=10)  # long past the double tap's minute: only the key links them
    db.commit()
    retry = client.post("/api/v1/sos", json={}, headers={"Idempotency-Key": "k1"})
    assert retry.status_code == 200, retry.text
    assert retry.json()["new"] is False and retry.json()["incident_id"] == incident.id
    fresh = client.post("/api/v1/sos", json={}, headers={"Idempotency-Key": "k2"})  # a new press, a new case
    assert fresh.status_code == 201 and fresh.json()["incident_id"] != incident.id
    assert db.scalar(select(func.count()).select_from(Incident)) == 2
