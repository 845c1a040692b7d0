"""The feedback desk in a real browser, in Chinese: a support agent finds the complaint due, takes it,
answers it, and sees it answered."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.builders import PASSWORD, TEST_ACTOR, sign_as_staff
from tests.conftest import fresh_database, make_settings
from tests.web.conftest import LiveServer, browser, no_script_errors, serve_in_thread  # noqa: F401
from tests.web.test_console_browser import new_page, sign_in_and_enrol
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.delivery import service as orders
from tripguard.feedback import service as feedback
from tripguard.privacy import service as privacy
from tripguard.security import service as security
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.vault.keys import build_vault

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def desk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("desk-live")
    database_url = fresh_database(f"tg_desk_live_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", tmp)
    settings = make_settings(database_url, tmp / "keys")
    engine = make_engine(database_url)
    vault = build_vault(settings)
    with unit_of_work(make_sessionmaker(engine)) as session:
        sign_as_staff(session, security.create_staff(session, actor=TEST_ACTOR, username="support", display_name="客服",
                                                     password=PASSWORD, roles={Role.SUPPORT_AGENT}))
        privacy.publish_notice(session, actor=TEST_ACTOR, version="n1", purposes=["support"],
                               categories=["user.name"], retention_zh="两年", retention_en="two years",
                               text_zh="说明", text_en="notice")
        privacy.upsert_subject(session, vault=vault, actor=TEST_ACTOR, subject_id="cus_1", kind="customer",
                               notice_version="n1", values={"name": "赵六", "phone": "13800006666"})
        orders.take_order(session, vault=vault, actor=TEST_ACTOR, intake=orders.Intake(  # the order complained about
            order_id="ord_9", customer_id="cus_1", merchant_id="M1", city="beijing", notice_version="n1",
            name="赵六", phone="13800006666", address="北京市朝阳区建国路88号", items=[{"name": "面", "quantity": 1}]))
        customer = Principal.for_roles("subject", "cus_1", frozenset({Role.CUSTOMER}))
        feedback.file(session, vault=vault, filer=customer, request=feedback.ComplaintRequest(
            category="service", order_id="ord_9", text="送餐迟到一小时"), recording_hold_days=16)
    engine.dispose()
    with serve_in_thread(create_app(settings)) as url:
        yield LiveServer(url=url, database_url=database_url, api_key="")


def test_the_desk_answers_a_complaint_in_chinese(browser: Any, desk_server: LiveServer) -> None:  # noqa: F811
    page = new_page(browser, desk_server, "zh-CN")
    sign_in_and_enrol(page, "support")
    page.click("nav.main >> text=投诉")
    row = page.locator("tr[data-complaint]")
    expect(row).to_have_count(1)
    assert "已收到" in row.inner_text() or "收到" in row.inner_text()
    row.locator("a").click()
    expect(page.locator("[data-testid=complaint-text]")).to_have_text("送餐迟到一小时")
    page.click("[data-testid=take]")
    expect(page.locator("[data-testid=complaint-status]")).to_have_text("已分派")
    page.fill("#answer-text", "非常抱歉，已为您补偿优惠券。")
    page.click("[data-testid=answer] button")
    expect(page.locator("[data-testid=complaint-status]")).to_have_text("已回复")
    expect(page.locator("[data-testid=complaint-answer]")).to_have_text("非常抱歉，已为您补偿优惠券。")
    assert page.locator("[data-testid=answer]").count() == 0  # answered: the desk's forms are gone
