"""Order intake in groups (`delivery.intake`), each order on a fresh database (PostgreSQL in its pass): a burst of
concurrent orders all stored, each audited under its own request and sealed under its own customer's key, in
fewer transactions than orders; a bad order in a burst fails alone; retries of the same order racing in two
intakes (two processes) are one order; a group the database fails stores nothing and answers each request."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR
from tests.conftest import BACKEND, fresh_database, make_settings
from tripguard.app import create_app
from tripguard.audit.actor import SYSTEM
from tripguard.audit.models import AuditEntry
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.errors import Conflict, DatabaseUnavailable, DomainError, InvalidInput
from tripguard.core.logging import request_id_var
from tripguard.delivery import intake as intake_module
from tripguard.delivery import service
from tripguard.delivery.intake import OrderIntake
from tripguard.delivery.models import Order
from tripguard.privacy import access
from tripguard.privacy import service as privacy
from tripguard.vault.models import DataKey
from tripguard.vault.service import SubjectErased, Vault


def _site(tmp_path: Path, name: str) -> tuple[sessionmaker[Session], Vault]:
    url = fresh_database(name, tmp_path)
    site = create_app(make_settings(url, tmp_path / "keys"))
    engine = make_engine(url, pool_size=8, max_overflow=0) if BACKEND == "postgres" else site.state.engine
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as session:
        privacy.publish_notice(session, actor=TEST_ACTOR, version="ord-1", purposes=["delivery"],
                               categories=["user.name"], retention_zh="72小时", retention_en="72 hours",
                               text_zh="告知", text_en="notice")
    return factory, site.state.vault


def _intake(n: int, **changes: Any) -> service.Intake:
    fields: dict[str, Any] = {
        "order_id": f"O{n}", "customer_id": f"C{n}", "merchant_id": "M1", "city": "beijing",
        "notice_version": "ord-1", "name": "王小明", "phone": f"138{n:08d}", "address": f"北京市朝阳区建国路{n}号",
        "items": [{"name": "米饭", "quantity": 1}], "notes": "别按门铃"} | changes
    return service.Intake(**fields)


async def _submit(intake: OrderIntake, order: service.Intake, request_id: str) -> service.Taken | Exception:
    request_id_var.set(request_id)  # each request's own (this task's copy of the context)
    try:
        return await intake.submit(SYSTEM, order)
    except DomainError as exc:
        return exc


def _burst(intake: OrderIntake, orders: list[service.Intake]) -> list[service.Taken | Exception]:
    async def burst() -> list[service.Taken | Exception]:
        outcomes = await asyncio.gather(*(_submit(intake, o, f"req-{i}") for i, o in enumerate(orders)))
        await intake.close()
        return list(outcomes)
    return asyncio.run(burst())


def test_a_burst_of_orders_is_stored_in_groups_each_audited_under_its_own_request_and_key(tmp_path: Path) -> None:
    factory, vault = _site(tmp_path, "tg_order_burst")
    intake = OrderIntake(factory, vault, max_group=16)
    outcomes = _burst(intake, [_intake(n) for n in range(60)])
    assert all(isinstance(o, tuple) and o[1] for o in outcomes), outcomes
    assert 4 <= intake.groups < 60  # in groups, none larger than max_group
    with unit_of_work(factory) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 60
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "order.take")).all()
        assert sorted((e.target_id, e.request_id) for e in entries) == sorted((f"O{n}", f"req-{n}") for n in range(60))
        keys = {k.subject_id: k.wrapped_key for k in session.scalars(select(DataKey))}
        assert {f"C{n}" for n in range(60)} <= set(keys) and len({keys[f"C{n}"] for n in range(60)}) == 60
        for n in (0, 37):  # each sealed under its own customer's key: it opens, and no other's key opens it
            order = session.get(Order, f"O{n}")
            assert order is not None and access.open_field(vault, session, order, "customer_phone") == f"138{n:08d}"
        vault.shred(session, subject_id="C5", reason="test")
    with unit_of_work(factory) as session:  # erasing one customer erases only them
        five, six = session.get(Order, "O5"), session.get(Order, "O6")
        assert five is not None and six is not None
        with pytest.raises(SubjectErased):
            access.open_field(vault, session, five, "address")
        assert access.open_field(vault, session, six, "address") == "北京市朝阳区建国路6号"


def test_a_bad_order_in_a_burst_fails_alone(tmp_path: Path) -> None:
    factory, vault = _site(tmp_path, "tg_order_bad")
    with unit_of_work(factory) as session:
        service.take_order(session, vault=vault, actor=SYSTEM, intake=_intake(900))
        vault.shred(session, subject_id="C900", reason="test")
    orders = [_intake(n) for n in range(20)]
    orders[3] = _intake(3, notice_version="never")  # no such notice
    orders[7] = _intake(1, customer_id="C77")  # the id of another customer's order (in the same burst)
    orders[11] = _intake(911, customer_id="C900")  # an erased customer
    outcomes = _burst(OrderIntake(factory, vault), orders)
    assert isinstance(outcomes[3], InvalidInput) and isinstance(outcomes[7], Conflict)
    assert isinstance(outcomes[11], SubjectErased)
    assert all(isinstance(outcomes[n], tuple) for n in range(20) if n not in (3, 7, 11)), outcomes
    with unit_of_work(factory) as session:
        stored = set(session.scalars(select(Order.id)))
        assert stored == {"O900"} | {f"O{n}" for n in range(20) if n not in (3, 7, 11)}
        one = session.get(Order, "O1")
        assert one is not None and one.customer_id == "C1"


def test_retries_racing_in_two_intakes_are_one_order(tmp_path: Path) -> None:
    """Two intakes (two processes' worth: each its own group writer) given the same orders at once: each order
    stored once, every answer that same order, exactly one of them new."""
    factory, vault = _site(tmp_path, "tg_order_retries")
    first, second = OrderIntake(factory, vault), OrderIntake(factory, vault)

    async def race() -> list[service.Taken | Exception]:
        jobs = [_submit(intake, _intake(n), f"r{n}") for n in range(30) for intake in (first, second, first)]
        outcomes = await asyncio.gather(*jobs)
        await first.close()
        await second.close()
        return list(outcomes)

    outcomes = asyncio.run(race())
    assert all(isinstance(o, tuple) for o in outcomes), outcomes
    for n in range(30):
        mine = [o for o in outcomes if isinstance(o, tuple) and o[0].id == f"O{n}"]
        assert len(mine) == 3 and [new for _, new in mine].count(True) == 1
        assert len({order.pickup_code for order, _ in mine}) == 1
    with unit_of_work(factory) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 30
        takes = session.scalars(select(AuditEntry.target_id).where(AuditEntry.action == "order.take")).all()
        assert sorted(takes) == sorted(f"O{n}" for n in range(30))  # audited once each


def test_a_group_the_database_fails_stores_nothing_and_answers_each_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    factory, vault = _site(tmp_path, "tg_order_fails")
    real = service.take_orders

    def half_then_fail(session: Session, **kwargs: Any) -> list[service.Taken | Exception]:
        real(session, **kwargs)  # everything added and flushed, then the database goes away
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(intake_module, "take_orders", half_then_fail)
    outcomes = _burst(OrderIntake(factory, vault), [_intake(n) for n in range(10)])
    assert all(isinstance(o, DatabaseUnavailable) for o in outcomes), outcomes
    with unit_of_work(factory) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "order.take")) == 0


def test_a_group_not_stored_within_the_deadline_is_answered_503(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    factory, vault = _site(tmp_path, "tg_order_deadline")
    real = service.take_orders

    def slow(session: Session, **kwargs: Any) -> list[service.Taken | Exception]:
        time.sleep(1.0)
        return real(session, **kwargs)

    monkeypatch.setattr(intake_module, "take_orders", slow)
    started = time.monotonic()
    outcomes = _burst(OrderIntake(factory, vault, deadline=0.2), [_intake(n) for n in range(3)])
    assert all(isinstance(o, DatabaseUnavailable) and "may have been stored" in str(o) for o in outcomes), outcomes
    assert time.monotonic() - started < 3


def test_the_order_api_answers_through_the_intake(tmp_path: Path) -> None:
    """`POST /api/v1/orders` in parallel: 201 once per id, 200 for its retries, the receipt the same."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from tripguard.security.auth import resolve_principal
    from tripguard.security.permissions import Role
    from tripguard.security.principal import Principal

    url = fresh_database("tg_order_api", tmp_path)
    site = create_app(make_settings(url, tmp_path / "keys"))
    with unit_of_work(site.state.sessionmaker) as session:
        privacy.publish_notice(session, actor=TEST_ACTOR, version="ord-1", purposes=["delivery"],
                               categories=["user.name"], retention_zh="72小时", retention_en="72 hours",
                               text_zh="告知", text_en="notice")
    principal = Principal.for_roles("api_key", "key_TEST", frozenset({Role.INTEGRATION}), name="Test")
    site.dependency_overrides[resolve_principal] = lambda: principal
    body = {"id": "A1", "customer_id": "C1", "merchant_id": "M1", "city": "beijing", "notice_version": "ord-1",
            "customer": {"name": "王小明", "phone": "13800001234"}, "address": "北京市朝阳区建国路88号",
            "items": [{"name": "米饭", "quantity": 1}]}
    with TestClient(site) as client, ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: client.post("/api/v1/orders", json=body), range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
