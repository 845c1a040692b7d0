"""A new customer's first orders arriving at once, on real connections (PostgreSQL in its pass): every order
is taken, and the customer is one data subject, never a failed order over who registered them first."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import func, select

from tests.builders import TEST_ACTOR
from tests.conftest import fresh_database, make_settings
from tripguard.app import create_app
from tripguard.audit.actor import SYSTEM
from tripguard.core.db import unit_of_work
from tripguard.delivery import service
from tripguard.delivery.models import Order
from tripguard.privacy import service as privacy
from tripguard.privacy.models import DataSubject

PARALLEL = 8


def test_parallel_first_orders_register_their_customer_once(tmp_path: Path) -> None:
    url = fresh_database("tg_subject_race", tmp_path)
    site = create_app(make_settings(url, tmp_path / "keys"))
    factory, vault = site.state.sessionmaker, site.state.vault
    with unit_of_work(factory) as session:
        privacy.publish_notice(session, actor=TEST_ACTOR, version="ord-1", purposes=["delivery"],
                               categories=["user.name"], retention_zh="72小时", retention_en="72 hours",
                               text_zh="告知", text_en="notice")
    barrier = threading.Barrier(PARALLEL)
    failures: list[str] = []

    def order(n: int) -> None:
        try:
            barrier.wait(timeout=60)  # (not inside the transaction: SQLite gives one writer the lock at its start)
            with unit_of_work(factory) as session:
                service.take_order(session, vault=vault, actor=SYSTEM, intake=service.Intake(
                    order_id=f"O-race-{n}", customer_id="C-race", merchant_id="M1", city="beijing",
                    notice_version="ord-1", name="李四", phone="13800009999", address="上海市徐汇区漕溪北路1号",
                    items=[{"name": "面", "quantity": 1}]))
        except Exception as exc:  # noqa: BLE001  any failure is what this test exists to catch
            failures.append(repr(exc))

    threads = [threading.Thread(target=order, args=(n,)) for n in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with unit_of_work(factory) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == PARALLEL
        subjects = session.scalars(select(DataSubject)).all()
        assert [(s.id, s.kind, s.notice_version) for s in subjects] == [("C-race", "customer", "ord-1")]
