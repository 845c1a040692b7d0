"""The operator's pass-through (idempotent by key, bad input a 4xx problem, never a 500) and the compliance
officer's routes: state, reconciliation, back-fill, planned outages."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.regulator.fakes import T0, ticking_exporter
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.regulator import contract, operations, service
from tripguard.regulator.models import Upload as Row
from tripguard.security.permissions import Role

# An operatePay-like message: field 1 "3301TESTCO" (string), field 2 "ORDER-1", field 20 varint 3500.
PAY = b"\x0a\x0a3301TESTCO\x12\x07ORDER-1\xa0\x01\xac\x1b"


def pay(key: str = "pay:ORDER-1:1", body: bytes = PAY, kind: str = "operatePay") -> dict[str, str]:
    return {"kind": kind, "key": key, "occurred_at": "2026-03-02T08:00:00+08:00",
            "body": base64.b64encode(body).decode()}


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry holds one test exporter in place of TripGuard's own (which need a configured company)."""
    monkeypatch.setattr(contract, "EXPORTERS", {"positionVehicle": ticking_exporter("positionVehicle",
                                                                                    timedelta(minutes=1))})


def test_pass_through_is_queued_unchanged_once_per_key(client: TestClient, act_as, db: Session, vault) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_BACKEND")
    first = client.post("/api/v1/regulator/uploads", json=pay())
    assert first.status_code == 201, first.text
    assert first.json() == {"kind": "operatePay", "key": "pay:ORDER-1:1", "sequence": 1, "state": "queued",
                            "queued": True}
    again = client.post("/api/v1/regulator/uploads", json=pay())
    assert again.status_code == 200 and again.json()["sequence"] == 1 and again.json()["queued"] is False
    second = client.post("/api/v1/regulator/uploads", json=pay(key="pay:ORDER-2:1"))
    assert second.json()["sequence"] == 2
    row = db.scalars(select(Row).where(Row.key == "pay:ORDER-1:1")).one()
    assert row.origin == "operator" and b"3301TESTCO" not in row.body
    assert service.open_body(db, vault=vault, kind="operatePay", key=row.key, blob=row.body) == PAY


@pytest.mark.parametrize(("payload", "status", "field"), [
    (pay(body=PAY + b"\x08\x01"), 409, "key"),  # the same key with another body
    (pay(kind="positionVehicle"), 409, "kind"),  # TripGuard exports it itself
    (pay(kind="operatePayment"), 422, "kind"),
    (pay(body=b"\x0a\x20short"), 422, "body"),  # a length past the end: not protobuf
    ({**pay(), "body": "not base64!"}, 422, "body"),
    ({**pay(), "occurred_at": "2026-03-02T08:00:00"}, 422, "occurred_at"),
    ({**pay(), "key": "with space"}, 422, "key"),
    ({**pay(), "extra": 1}, 422, "extra"),
])
def test_bad_pass_through_is_a_problem_naming_the_field(client: TestClient, act_as, exported: None,  # type: ignore[no-untyped-def]
                                                        payload: dict[str, object], status: int, field: str) -> None:
    act_as(Role.INTEGRATION, kind="api_key", id="key_BACKEND")
    assert client.post("/api/v1/regulator/uploads", json=pay()).status_code == 201
    answer = client.post("/api/v1/regulator/uploads", json=payload)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert any(field in str(problem.get("field", "")) for problem in answer.json()["errors"])


def test_well_formed_reads_protobuf_wire_format() -> None:
    assert operations.well_formed(PAY)
    assert not operations.well_formed(b"\x00\x01")  # field number 0
    assert not operations.well_formed(b"\x0b")  # wire type 3 (groups): not in proto3 messages
    assert not operations.well_formed(b"\x08\xff")  # truncated varint


def test_pass_through_needs_the_permission(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR)
    assert client.post("/api/v1/regulator/uploads", json=pay()).status_code == 403


def test_officer_reads_state_and_reconciliation_backfills_and_plans(client: TestClient, act_as, exported: None,  # type: ignore[no-untyped-def]
                                                                   db: Session) -> None:
    officer = act_as(Role.SUPERVISOR)
    done = client.post("/api/v1/regulator/backfill", json={"kind": "positionVehicle", "start": T0.isoformat(),
                                                           "end": (T0 + timedelta(minutes=30)).isoformat()})
    assert done.status_code == 200 and done.json() == {"queued": {"positionVehicle": 30}}
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "regulator.backfill")).one()
    assert entry.actor_id == officer.id
    [state] = [s for s in client.get("/api/v1/regulator/status").json() if s["kind"] == "positionVehicle"]
    assert state["backlog"] == 30
    days = client.get("/api/v1/regulator/reconciliation", params={"first": "2026-03-02", "last": "2026-03-02"})
    assert days.json() == [{"day": "2026-03-02", "kind": "positionVehicle", "produced": 30, "sent": 0,
                            "acknowledged": 0, "due": 30, "balanced": True}]
    assert client.get("/api/v1/regulator/reconciliation",
                      params={"first": "2026-03-02", "last": "2026-01-02"}).status_code == 422
    too_long = client.post("/api/v1/regulator/backfill", json={"start": T0.isoformat(),
                                                               "end": (T0 + timedelta(days=8)).isoformat()})
    assert too_long.status_code == 422 and "tripguard regulator backfill" in too_long.json()["detail"]
    soon = utcnow() + timedelta(hours=10)
    refused = client.post("/api/v1/regulator/outages", json={
        "starts_at": soon.isoformat(), "ends_at": (soon + timedelta(hours=2)).isoformat(),
        "reason": "database upgrade"})
    assert refused.status_code == 422 and "72 hours" in refused.json()["detail"]
    later = utcnow() + timedelta(days=4)
    planned = client.post("/api/v1/regulator/outages", json={
        "starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=2)).isoformat(),
        "reason": "database upgrade"})
    assert planned.status_code == 201
    assert [o["id"] for o in client.get("/api/v1/regulator/outages").json()] == [planned.json()["id"]]
