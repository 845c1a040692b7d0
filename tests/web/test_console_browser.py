"""The console in a real browser: sign-in with TOTP enrolment, navigation by role, audit explorer, languages."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest

from tests.builders import PASSWORD
from tests.web.conftest import STEP_TIMEOUT_MS, LiveServer, watch_errors

pytestmark = pytest.mark.browser


def new_page(browser: Any, live_server: LiveServer, locale: str) -> Any:
    context = browser.new_context(locale=locale, base_url=live_server.url)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    return watch_errors(context.new_page())


def sign_in_and_enrol(page: Any, username: str) -> str:
    page.goto("/console")
    page.wait_for_url("**/console/sign-in*")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    secret = page.text_content("[data-testid=totp-secret]").strip()
    assert page.locator(".qr img").get_attribute("src").startswith("data:image/svg+xml")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")
    page.wait_for_url("**/console")
    return secret


def test_auditor_signs_in_in_chinese_and_explores_the_log(browser: Any, live_server: LiveServer) -> None:
    page = new_page(browser, live_server, "zh-CN")
    page.goto("/console/sign-in")
    assert page.locator("h1").inner_text() == "登录"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    sign_in_and_enrol(page, "auditor")
    assert "欢迎" in page.locator("h1").inner_text()
    nav = page.locator("nav.main").inner_text()
    assert "审计日志" in nav and "员工账号" not in nav and "API 密钥" not in nav

    page.click("nav.main >> text=审计日志")
    page.wait_for_url("**/console/audit")
    rows = page.locator("#rows tr[data-id]")
    assert rows.count() >= 2
    assert "绑定身份验证器" in page.locator("#rows").inner_text()  # the action named, not its key
    assert "auth.totp_enrol" not in page.locator("#rows").inner_text()

    # Filtering swaps the rows in place (HTMX), without a page load: actions chosen by their name.
    with page.expect_response(lambda r: "/console/audit/rows" in r.url):
        page.select_option("#f-action", "auth.totp_enrol")
    page.wait_for_function("() => [...document.querySelectorAll('#rows tr[data-id]')]"
                           ".every(r => r.dataset.action === 'auth.totp_enrol')")
    assert page.locator('#rows tr[data-action="auth.sign_in"]').count() == 0

    page.click("text=校验整个日志")
    result = page.locator("[data-testid=verify-result]")
    result.wait_for()
    assert "校验通过" in result.inner_text()

    page.click("header >> text=English")
    page.wait_for_url("**/console/audit")
    assert page.locator("h1").inner_text() == "Audit log"


def test_system_admin_manages_keys_and_staff_in_english(browser: Any, live_server: LiveServer) -> None:
    page = new_page(browser, live_server, "en-US")
    sign_in_and_enrol(page, "sysadmin")
    nav = page.locator("nav.main").inner_text()
    assert "Staff" in nav and "API keys" in nav and "Audit log" not in nav

    page.click("nav.main >> text=API keys")
    page.fill("#k-name", "dispatch backend")
    page.click("main form[action='/console/api-keys'] button")
    key = page.locator("[data-testid=new-key]").inner_text()
    assert key.startswith("tg_")
    page.goto("/console/api-keys")
    assert page.locator("[data-testid=new-key]").count() == 0  # shown once only
    assert "dispatch backend" in page.locator("table").inner_text()

    page.click("nav.main >> text=Staff")
    page.fill("#n-username", "liu.yang")
    page.fill("#n-display_name", "刘洋")
    page.fill("#n-password", "a long initial password")
    page.click("main form[action='/console/staff'] button")
    assert "Account created." in page.locator("main [role=status]").inner_text()
    assert "liu.yang" in page.locator("table").inner_text()


def test_trainer_sees_only_what_the_role_may_open(browser: Any, live_server: LiveServer) -> None:
    page = new_page(browser, live_server, "en-US")
    page.goto("/console/sign-in")
    page.fill("#username", "trainer")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")  # no second factor for this role
    page.wait_for_url("**/console")
    assert page.locator("nav.main a").all_inner_texts() == ["Home", "Training", "Agreement"]
    response = page.goto("/console/audit")
    assert response.status == 403
    assert "Permission denied" in page.locator("h1").inner_text()


def test_wrong_password_stays_on_sign_in(browser: Any, live_server: LiveServer) -> None:
    page = new_page(browser, live_server, "zh-CN")
    page.goto("/console/sign-in")
    page.fill("#username", "trainer")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert "用户名或密码错误" in page.locator("[role=alert]").inner_text()
