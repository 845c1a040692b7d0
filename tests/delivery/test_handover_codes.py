"""The pickup and hand-over codes, answer by answer: what the courier's app is told (the problem's type and
its sentence), what the audit log keeps of each failed try (which order, which outcome), how the order is
delivered (by code or by photo, with the number's grace), and the one instant the code expires, at which the
code still works and photo proof is not yet allowed."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import picture_b64
from tests.delivery.conftest import place_order
from tests.delivery.test_orders_api import _as, _code
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.delivery import service
from tripguard.delivery.models import Binding, Order
from tripguard.security import codes
from tripguard.security.permissions import Role

NOT_NOW = "The order cannot move to that state from where it is."
WRONG = "That code is not right."
LOCKED = "Five wrong codes: the code is locked. Use photo proof."
EXPIRED = "The code has expired. Use photo proof."
NOT_YET_PHOTO = "Photo proof is for when the code cannot be used: ask the customer for the code."


def _problem(response: Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["detail"] == detail, response.text


def _tries(db: Session, which: str) -> list[tuple[str | None, str | None, str, dict[str, Any]]]:
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action == f"order.{which}_code").order_by(AuditEntry.id))
    return [(e.target_type, e.target_id, e.outcome, json.loads(e.details)) for e in entries]


def _picked_up(client: TestClient, db: Session, act_as, order_id: str = "O1") -> None:  # type: ignore[no-untyped-def]
    """Placed, prepared by the kitchen and picked up by its courier R1, after a wrong pickup code and the moves
    that are not allowed yet."""
    place_order(client, db, act_as, order_id=order_id, courier_id="R1")
    _as(client, act_as, db, "merchant")
    pickup_code = client.get(f"/api/v1/orders/{order_id}").json()["pickup_code"]
    _as(client, act_as, db, "integration")
    assert client.post(f"/api/v1/orders/{order_id}/status", json={"status": "prepared"}).status_code == 200
    _as(client, act_as, db, "courier")
    _problem(client.post(f"/api/v1/orders/{order_id}/handover", json={"code": "1234"}), 409, NOT_NOW)
    _problem(client.post(f"/api/v1/orders/{order_id}/handover/photo", json={"photo": picture_b64(7)}), 409, NOT_NOW)
    wrong = "0000" if pickup_code != "0000" else "1111"
    _problem(client.post(f"/api/v1/orders/{order_id}/pickup", json={"code": wrong}), 422, WRONG)
    assert client.post(f"/api/v1/orders/{order_id}/pickup", json={"code": pickup_code}).status_code == 200
    _problem(client.post(f"/api/v1/orders/{order_id}/pickup", json={"code": pickup_code}), 409, NOT_NOW)
    _as(client, act_as, db, "merchant")
    assert client.get(f"/api/v1/orders/{order_id}").json()["picked_up_at"] is not None
    _as(client, act_as, db, "courier")


def _lines_ring_for_the_grace(db: Session, order_id: str) -> None:
    """The courier's lines to the customer and the kitchen still ring for the grace (30 minutes by default)."""
    db.expire_all()
    order = db.get(Order, order_id)
    assert order is not None and order.completed_at is not None
    lines = db.scalars(select(Binding).where(Binding.order_id == order_id, Binding.status == "active")).all()
    assert lines and all(line.expires_at == order.completed_at + timedelta(minutes=30) for line in lines)


def test_each_failed_try_is_told_why_and_audited_against_the_order(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app: FastAPI, session_factory: sessionmaker[Session]) -> None:
    _picked_up(client, db, act_as)
    _problem(client.post("/api/v1/orders/O1/handover/photo", json={"photo": picture_b64(7)}), 409, NOT_YET_PHOTO)
    code = _code(app, session_factory)
    other = f"{(int(code) + 1) % 10000:04d}"
    for _ in range(5):
        _problem(client.post("/api/v1/orders/O1/handover", json={"code": other}), 422, WRONG)
    _problem(client.post("/api/v1/orders/O1/handover", json={"code": code}), 423, LOCKED)
    assert _tries(db, "pickup") == [("delivery_orders", "O1", "denied", {"outcome": "mismatch"})]
    assert _tries(db, "handover") == [("delivery_orders", "O1", "denied", {"outcome": "mismatch"})] * 5 + [
        ("delivery_orders", "O1", "denied", {"outcome": "exhausted"})]
    assert client.post("/api/v1/orders/O1/handover/photo", json={"photo": picture_b64(7)}).status_code == 200
    delivered = db.scalar(select(AuditEntry).where(AuditEntry.action == "order.delivered"))
    assert delivered is not None and json.loads(delivered.details) == {"previous": "picked_up", "method": "photo"}
    _lines_ring_for_the_grace(db, "O1")


def test_an_expired_code_is_refused_as_expired_and_photo_proof_is_allowed(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app: FastAPI, session_factory: sessionmaker[Session],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service.secrets, "randbelow", lambda below: below - 1)  # the top of the range
    _picked_up(client, db, act_as)
    code = _code(app, session_factory)
    assert code == "9999"  # four digits, the largest of them
    db.execute(update(Order).where(Order.id == "O1").values(handover_expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    _problem(client.post("/api/v1/orders/O1/handover", json={"code": code}), 423, EXPIRED)
    assert _tries(db, "handover") == [("delivery_orders", "O1", "denied", {"outcome": "expired"})]
    assert client.post("/api/v1/orders/O1/handover/photo", json={"photo": picture_b64(7)}).status_code == 200


def test_at_the_instant_the_code_expires_the_code_still_works_and_photo_is_not_yet_allowed(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app: FastAPI, session_factory: sessionmaker[Session],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _picked_up(client, db, act_as)
    code = _code(app, session_factory)
    db.expire_all()
    order = db.get(Order, "O1")
    assert order is not None and order.handover_expires_at is not None
    instant: datetime = order.handover_expires_at
    for module in (service, codes):  # the photo's check and the code's read the same clock
        monkeypatch.setattr(module, "utcnow", lambda: instant)
    _problem(client.post("/api/v1/orders/O1/handover/photo", json={"photo": picture_b64(7)}), 409, NOT_YET_PHOTO)
    assert client.post("/api/v1/orders/O1/handover", json={"code": code}).status_code == 200
    delivered = db.scalar(select(AuditEntry).where(AuditEntry.action == "order.delivered"))
    assert delivered is not None and json.loads(delivered.details) == {"previous": "picked_up", "method": "code"}
    _lines_ring_for_the_grace(db, "O1")
    assert db.get(Order, "O1").handover_method == "code"  # type: ignore[union-attr]


def test_a_try_counts_against_its_own_order_only(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app: FastAPI, session_factory: sessionmaker[Session]) -> None:
    _picked_up(client, db, act_as, "O1")
    first = _code(app, session_factory)
    _picked_up(client, db, act_as, "O2")
    second = _code(app, session_factory)
    for _ in range(5):
        _problem(client.post("/api/v1/orders/O1/handover", json={"code": f"{(int(first) + 1) % 10000:04d}"}), 422,
                 WRONG)
    _problem(client.post("/api/v1/orders/O1/handover", json={"code": first}), 423, LOCKED)
    db.expire_all()
    assert [db.get(Order, o).handover_attempts for o in ("O1", "O2")] == [5, 0]  # type: ignore[union-attr]
    assert client.post("/api/v1/orders/O2/handover", json={"code": second}).status_code == 200


def test_no_stored_code_is_an_expired_one_and_counts_no_try(db: Session, client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, courier_id="R1")
    outcome = codes.check_code(db, model=Order, row_id="O1", attempts=Order.handover_attempts, limit=5,
                               stored_hash=None, expires_at=utcnow() + timedelta(hours=1), offered_hash="0" * 64)
    assert outcome is codes.CodeCheck.EXPIRED
    db.expire_all()
    assert db.get(Order, "O1").handover_attempts == 0  # type: ignore[union-attr]


def test_another_couriers_order_is_answered_as_one_that_does_not_exist(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as) -> None:
    place_order(client, db, act_as, courier_id="R1")
    act_as(Role.COURIER, kind="subject", id="R2")
    for path in ("pickup", "handover"):
        theirs = client.post(f"/api/v1/orders/O1/{path}", json={"code": "1234"})
        none = client.post(f"/api/v1/orders/O404/{path}", json={"code": "1234"})
        assert theirs.status_code == none.status_code == 404
        assert _without_instance(theirs) == _without_instance(none)  # not even its sentence tells them apart
        assert theirs.json()["detail"] == "no such order"


def _without_instance(response: Response) -> dict[str, Any]:
    return {k: v for k, v in response.json().items() if k != "instance"}
