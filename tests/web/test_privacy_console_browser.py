"""The privacy officer's console in a real browser: catalogue, request queue, retention, a breach."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import LiveServer, settled
from tests.web.test_console_browser import new_page, sign_in_and_enrol

pytestmark = pytest.mark.browser


def test_privacy_officer_works_through_the_pages(browser: Any, live_server: LiveServer) -> None:
    page = new_page(browser, live_server, "zh-CN")
    sign_in_and_enrol(page, "dpo")
    nav = page.locator("nav.main").inner_text()
    for label in ("数据目录", "个人信息请求", "保存期限", "泄露事件"):
        assert label in nav
    assert "审计日志" not in nav

    page.click("nav.main >> text=数据目录")
    assert page.locator("tr[data-field='privacy_subjects.phone'] [data-testid=mask]").inner_text() == "*******1234"

    page.click("nav.main >> text=个人信息请求")
    row = page.locator("tr[data-request='req_LIVE']")
    assert "已核验" in row.inner_text()
    row.locator("a").click()  # the request's own page: what was asked, the deadline, the decision
    page.wait_for_url("**/console/privacy/requests/req_LIVE")
    assert "韩梅" in page.locator("[data-testid=correction]").inner_text()  # opened for the subject-request purpose
    page.fill("#note", "更正姓名")
    page.click("button[value=yes]")  # it overwrites the record: asked first (test_confirmations_browser.py)
    page.locator("#confirm-dialog button[value=confirm]").click()
    expect(page.locator("[data-testid=request-status]")).to_have_text("已完成")
    assert "决定个人信息请求" in page.locator("[data-testid=history]").inner_text()  # the action named
    page.click("nav.main >> text=个人信息请求")
    page.select_option("#list-state", "all")
    page.click("main form[role=search] button[type=submit]")
    settled(page)
    assert "已完成" in page.locator("tr[data-request='req_LIVE']").inner_text()

    page.click("nav.main >> text=保存期限")
    page.click("button[value=dry]")
    settled(page)
    assert page.locator("tr[data-run]").count() == 1 and "是" in page.locator("tr[data-run]").inner_text()

    page.click("nav.main >> text=泄露事件")
    page.fill("#b-title", "测试泄露事件")
    page.fill("#b-occurred_from", "2026-11-02T08:00")
    page.fill("#b-occurred_to", "2026-11-01T08:00")  # ends before it starts
    page.select_option("#b-categories", ["user.name", "user.contact.phone_number"])
    for field, value in (("#b-cause", "账号被盗用"), ("#b-harm", "骚扰电话"), ("#b-measures", "已冻结账号"),
                         ("#b-advice", "警惕陌生来电"), ("#b-contact", "privacy@example.com")):
        page.fill(field, value)
    page.check("input[name=serious]")
    page.click("main form[action='/console/privacy/breaches'] button")
    settled(page)
    # The form comes back with what was typed, and the field marked.
    assert page.locator("#b-occurred_to").get_attribute("aria-invalid") == "true"
    assert page.locator("#b-occurred_to-error").inner_text() == "泄露结束时间不能早于开始时间。"
    assert page.locator("#b-title").input_value() == "测试泄露事件"
    assert page.locator("#b-cause").input_value() == "账号被盗用" and page.locator("input[name=serious]").is_checked()
    page.fill("#b-occurred_from", "2026-11-01T08:00")
    page.fill("#b-occurred_to", "2026-11-02T08:00")
    page.click("main form[action='/console/privacy/breaches'] button")
    page.wait_for_url("**/console/privacy/breaches/brh_*")
    assert page.locator("[data-testid=breach-status]").inner_text() == "处理中"
    page.click("button[value=investigate]")
    settled(page)
    assert "0 次" in page.locator("[data-testid=findings]").inner_text()
    page.fill("#ref", "CAC-2026-0002")
    page.click("button[value=report]")
    settled(page)
    # Closing is destructive: it asks first, in a dialog that looks different, and Cancel changes nothing.
    close = page.locator("button[value=close]")
    assert "danger" in (close.get_attribute("class") or "")
    close.click()
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    assert dialog.locator("h2").inner_text() == "关闭此泄露事件吗？"
    dialog.locator("button[value=cancel]").click()
    dialog.wait_for(state="hidden")
    page.reload()
    assert page.locator("[data-testid=breach-status]").inner_text() == "处理中"
    page.click("button[value=close]")
    dialog.locator("button[value=confirm]").click()
    settled(page)
    page.locator("[data-testid=report]").wait_for()
    assert page.locator("[data-testid=breach-status]").inner_text() == "已结案"
    assert page.locator("[data-testid=report-on-time]").inner_text() == "是"
