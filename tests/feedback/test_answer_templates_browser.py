"""Answer templates in a real browser: a supervisor writes one (English page), and a support agent (Chinese
page) fills a complaint's answer from it, makes it particular, and sends it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.builders import PASSWORD, TEST_ACTOR, sign_as_staff
from tests.conftest import fresh_database, make_settings
from tests.web.conftest import LiveServer, browser, no_script_errors, serve_in_thread  # noqa: F401
from tests.web.test_console_browser import new_page, sign_in_and_enrol
from tripguard.app import create_app
from tripguard.audit.models import AuditEntry
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.delivery import service as orders
from tripguard.feedback import service as feedback
from tripguard.feedback.models import AnswerTemplate
from tripguard.privacy import service as privacy
from tripguard.security import service as security
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.vault.keys import build_vault

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def templates_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("templates-live")
    database_url = fresh_database(f"tg_templates_live_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", tmp)
    settings = make_settings(database_url, tmp / "keys")
    engine = make_engine(database_url)
    vault = build_vault(settings)
    with unit_of_work(make_sessionmaker(engine)) as session:
        for username, role in (("support", Role.SUPPORT_AGENT), ("lead", Role.SUPERVISOR)):
            sign_as_staff(session, security.create_staff(session, actor=TEST_ACTOR, username=username,
                                                         display_name="客服", password=PASSWORD, roles={role}))
        privacy.publish_notice(session, actor=TEST_ACTOR, version="n1", purposes=["support"],
                               categories=["user.name"], retention_zh="两年", retention_en="two years",
                               text_zh="说明", text_en="notice")
        privacy.upsert_subject(session, vault=vault, actor=TEST_ACTOR, subject_id="cus_1", kind="customer",
                               notice_version="n1", values={"name": "赵六", "phone": "13800006666"})
        orders.take_order(session, vault=vault, actor=TEST_ACTOR, intake=orders.Intake(
            order_id="ord_9", customer_id="cus_1", merchant_id="M1", city="beijing", notice_version="n1",
            name="赵六", phone="13800006666", address="北京市朝阳区建国路88号", items=[{"name": "面", "quantity": 1}]))
        feedback.file(session, vault=vault, filer=Principal.for_roles("subject", "cus_1", frozenset({Role.CUSTOMER})),
                      request=feedback.ComplaintRequest(category="service", order_id="ord_9", text="送餐迟到一小时"),
                      recording_hold_days=16)
    engine.dispose()
    with serve_in_thread(create_app(settings)) as url:
        yield LiveServer(url=url, database_url=database_url, api_key="")


def test_a_template_is_written_and_fills_an_answer(browser: Any, templates_server: LiveServer) -> None:  # noqa: F811
    lead = new_page(browser, templates_server, "en-GB")
    sign_in_and_enrol(lead, "lead")
    lead.click("nav.main >> text=Answer templates")
    lead.fill("#t-title_zh", "送餐迟到致歉")
    lead.fill("#t-title_en", "Late delivery: apology")
    lead.fill("#t-body_zh", "您好，很抱歉送餐迟到，已为您补偿优惠券。")
    lead.fill("#t-body_en", "Hello, we are sorry your order was late; a coupon is on its way.")
    lead.click("[data-testid=template-form] button")
    row = lead.locator("[data-testid=answer-templates] tr[data-template]")
    expect(row).to_contain_text("Late delivery: apology")
    expect(row).to_contain_text("offered")

    page = new_page(browser, templates_server, "zh-CN")
    sign_in_and_enrol(page, "support")
    page.click("nav.main >> text=投诉")
    page.locator("tr[data-complaint] a").click()
    expect(page.locator("#answer-template")).to_contain_text("送餐迟到致歉")
    page.select_option("#answer-language", "zh_CN")
    page.click("[data-testid=use-template] button")
    expect(page.locator("#answer-text")).to_have_value("您好，很抱歉送餐迟到，已为您补偿优惠券。")
    page.fill("#answer-text", "您好，很抱歉订单 ord_9 送餐迟到一小时，已为您补偿优惠券。")
    page.click("[data-testid=answer] button")
    expect(page.locator("[data-testid=complaint-status]")).to_have_text("已回复")
    expect(page.locator("[data-testid=complaint-answer]")).to_have_text(
        "您好，很抱歉订单 ord_9 送餐迟到一小时，已为您补偿优惠券。")
    engine = make_engine(templates_server.database_url)
    with make_sessionmaker(engine)() as session:
        template = session.scalars(select(AnswerTemplate)).one()
        answered = session.scalars(select(AuditEntry).where(AuditEntry.action == "complaint.answer")).one()
        assert json.loads(answered.details)["template"] == template.id
    engine.dispose()
