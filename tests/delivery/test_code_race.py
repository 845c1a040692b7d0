"""Twenty wrong hand-over codes sent at once, on real connections (PostgreSQL in its pass): exactly five
are counted and every answer is 422 or 423, never a 500; the right code is then refused (locked)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx2 as httpx

from tests.builders import TEST_ACTOR, cleared_worker, subject_token
from tests.conftest import fresh_database, make_settings
from tests.web.conftest import serve_in_thread
from tripguard.app import create_app
from tripguard.audit.actor import SYSTEM, Actor
from tripguard.core.db import unit_of_work
from tripguard.delivery import numbers, service
from tripguard.delivery.models import Order
from tripguard.privacy import service as privacy


def test_parallel_wrong_codes_each_count_and_lock_at_five(tmp_path: Path) -> None:
    url = fresh_database("tg_code_race", tmp_path)
    # A race of the attempt counter, not of admission: all twenty guesses run at once.
    settings = make_settings(url, tmp_path / "keys", admission_principal_requests=32)
    site = create_app(settings)
    factory, vault, secret = site.state.sessionmaker, site.state.vault, settings.secret_key.get_secret_value()
    with unit_of_work(factory) as session:
        privacy.publish_notice(session, actor=TEST_ACTOR, version="ord-1", purposes=["delivery"],
                               categories=["user.name"], retention_zh="72小时", retention_en="72 hours",
                               text_zh="告知", text_en="notice")
        service.take_order(session, vault=vault, actor=SYSTEM, intake=service.Intake(
            order_id="O9", customer_id="C9", merchant_id="M1", city="beijing", notice_version="ord-1", name="李四",
            phone="13800009999", address="上海市徐汇区漕溪北路1号", items=[{"name": "面", "quantity": 1}]))
    cleared_worker(factory, "R9")
    with unit_of_work(factory) as session:
        service.assign(session, vault=vault, actor=SYSTEM, order_id="O9", courier_id="R9", courier_phone="13700000000",
                       on_exhausted=numbers.alert_exhausted)
    with unit_of_work(factory) as session:
        pickup = session.get(Order, "O9").pickup_code  # type: ignore[union-attr]
    with unit_of_work(factory) as session:
        service.pick_up(session, vault=vault, secret_key=secret, courier=Actor("subject", "R9"), order_id="O9",
                        code=pickup)
    answers: list[int] = []
    with serve_in_thread(site) as base:
        barrier = threading.Barrier(20)
        token = subject_token("R9", "courier")

        def guess(n: int) -> None:
            barrier.wait()
            response = httpx.post(f"{base}/api/v1/orders/O9/handover", json={"code": f"{n:04d}"}, timeout=30,
                                  headers={"authorization": f"Bearer {token}"})
            answers.append(response.status_code)

        # None of 0-19 is right unless the code happens to be one of them: then its answer may be 200.
        threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with unit_of_work(factory) as session:
        order = session.get(Order, "O9")
        assert order is not None
        lucky = order.status == "delivered"
        assert order.handover_attempts == 5
    assert set(answers) <= {200, 409, 422, 423}, answers
    if not lucky:
        assert answers.count(422) == 5 and answers.count(423) == 15, sorted(answers)
    site.state.engine.dispose()
