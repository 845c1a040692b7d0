"""Parallel assignments of one order, each on its own connection (PostgreSQL in its pass): one live number
binding per order and party, whoever wins; after simultaneous reassignments only the courier the order ends
with can call the customer, and every replaced courier's line is refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from tests.builders import TEST_ACTOR, all_at_once, cleared_worker
from tests.conftest import BACKEND, fresh_database, make_settings
from tripguard.app import create_app
from tripguard.audit.actor import SYSTEM
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.delivery import numbers, service
from tripguard.delivery.models import Binding, Order
from tripguard.privacy import service as privacy

CUSTOMER_PHONE = "13800009999"


def test_parallel_assignments_bind_one_number_and_kill_the_replaced_couriers_lines(tmp_path: Path) -> None:
    url = fresh_database("tg_binding_race", tmp_path)
    site = create_app(make_settings(url, tmp_path / "keys"))
    vault = site.state.vault
    engine = make_engine(url, pool_size=16, max_overflow=0) if BACKEND == "postgres" else site.state.engine
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as session:
        privacy.publish_notice(session, actor=TEST_ACTOR, version="ord-1", purposes=["delivery"],
                               categories=["user.name"], retention_zh="72小时", retention_en="72 hours",
                               text_zh="告知", text_en="notice")
        numbers.add_numbers(session, city="beijing", numbers=[f"170000000{n:02d}" for n in range(40)])
        service.take_order(session, vault=vault, actor=SYSTEM, intake=service.Intake(
            order_id="O9", customer_id="C9", merchant_id="M1", city="beijing", notice_version="ord-1", name="李四",
            phone=CUSTOMER_PHONE, address="上海市徐汇区漕溪北路1号", items=[{"name": "面", "quantity": 1}]))
    for courier in ["R1", *(f"R{round_}{k}" for round_ in range(3) for k in range(2, 4))]:
        cleared_worker(factory, courier)  # couriers the dispatch gate allows

    def assign(courier: str, phone: str) -> Callable[[], None]:
        def job() -> None:
            with unit_of_work(factory) as session:
                service.assign(session, vault=vault, actor=SYSTEM, order_id="O9", courier_id=courier,
                               courier_phone=phone, on_exhausted=numbers.alert_exhausted)
        return job

    def live() -> list[Binding]:
        with unit_of_work(factory) as session:
            return list(session.scalars(select(Binding).where(Binding.order_id == "O9", Binding.status == "active",
                                                              Binding.expires_at.is_(None))))

    # Twelve assignments of one courier at once: one number, not twelve.
    assert all_at_once([assign("R1", "13700000001") for _ in range(12)]) == []
    with unit_of_work(factory) as session:
        assert len(session.scalars(select(Binding).where(Binding.order_id == "O9")).all()) == 1
    # Two reassignments at once (and again): one live line, the courier the order ends with.
    for round_ in range(3):
        couriers = {f"R{round_}{k}": f"1370000{round_}{k:03d}" for k in range(2, 4)}
        assert all_at_once([assign(c, p) for c, p in couriers.items()]) == []
        lines = live()
        with unit_of_work(factory) as session:
            holder = session.get(Order, "O9").courier_id  # type: ignore[union-attr]
            assert [b.courier_id for b in lines] == [holder], (holder, [b.courier_id for b in lines])
            everyone = session.scalars(select(Binding).where(Binding.order_id == "O9")).all()
            for binding in everyone:
                caller = {"R1": "13700000001", **couriers}.get(binding.courier_id)
                if caller is None:
                    continue
                answer = numbers.route(session, vault=vault, actor=SYSTEM, number=binding.number, caller=caller)
                assert (answer.action == "bridge") == (binding.courier_id == holder), (binding.courier_id, answer)
    engine.dispose()
    site.state.engine.dispose()


def test_an_order_cancelled_while_it_is_reassigned_keeps_no_live_line(tmp_path: Path) -> None:
    """The cancellation arrives while the reassignment's transaction is still open: its write of the order
    waits for the reassignment's, and only then does it read the bindings to end, the new courier's too (a
    regression test of that order of reads: a cancellation that read the bindings first would miss it)."""
    url = fresh_database("tg_cancel_race", tmp_path)
    site = create_app(make_settings(url, tmp_path / "keys"))
    vault = site.state.vault
    factory = site.state.sessionmaker
    with unit_of_work(factory) as session:
        privacy.publish_notice(session, actor=TEST_ACTOR, version="ord-1", purposes=["delivery"],
                               categories=["user.name"], retention_zh="72小时", retention_en="72 hours",
                               text_zh="告知", text_en="notice")
        numbers.add_numbers(session, city="beijing", numbers=["17000000001", "17000000002"])
        service.take_order(session, vault=vault, actor=SYSTEM, intake=service.Intake(
            order_id="O9", customer_id="C9", merchant_id="M1", city="beijing", notice_version="ord-1", name="李四",
            phone=CUSTOMER_PHONE, address="上海市徐汇区漕溪北路1号", items=[{"name": "面", "quantity": 1}]))
    cleared_worker(factory, "R1")
    cleared_worker(factory, "R2")
    with unit_of_work(factory) as session:
        service.assign(session, vault=vault, actor=SYSTEM, order_id="O9", courier_id="R1", courier_phone="13700000001",
                       on_exhausted=numbers.alert_exhausted)
    failures: list[BaseException] = []

    def cancel() -> None:
        try:
            with unit_of_work(factory) as session:
                service.mark(session, actor=SYSTEM, order_id="O9", status="cancelled", grace=timedelta(0))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    with unit_of_work(factory) as session:
        service.assign(session, vault=vault, actor=SYSTEM, order_id="O9", courier_id="R2", courier_phone="13700000002",
                       on_exhausted=numbers.alert_exhausted)
        canceller = threading.Thread(target=cancel)
        canceller.start()
        time.sleep(0.5)  # the cancellation has read the order (or waits to) before the reassignment commits
    canceller.join()
    assert failures == []
    with unit_of_work(factory) as session:
        assert session.get(Order, "O9").status == "cancelled"  # type: ignore[union-attr]
        live = session.scalars(select(Binding).where(Binding.order_id == "O9", Binding.expires_at.is_(None))).all()
        assert live == [], [(b.courier_id, b.created_at) for b in live]
    site.state.engine.dispose()
