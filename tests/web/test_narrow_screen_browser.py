"""The console on a phone (390 px wide): the navigation folds behind a button, no page scrolls
sideways, and the skip link leads past the header by keyboard."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import STEP_TIMEOUT_MS, LiveServer, watch_errors
from tests.web.test_console_browser import sign_in_and_enrol

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


def narrow_page(browser: Any, live_server: LiveServer, locale: str) -> Any:
    context = browser.new_context(locale=locale, base_url=live_server.url, viewport=PHONE)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    return watch_errors(context.new_page())


def sideways(page: Any) -> int:
    """How far the page scrolls sideways (0: not at all)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


@pytest.mark.parametrize(("username", "locale"), [("agent", "zh-CN"), ("dpo", "en"), ("sysadmin", "zh-CN"),
                                                  ("auditor", "en")])
def test_every_page_of_a_role_fits_a_phone(browser: Any, live_server: LiveServer, username: str, locale: str) -> None:
    page = narrow_page(browser, live_server, locale)
    sign_in_and_enrol(page, username)
    nav = page.locator("#main-nav")
    assert not nav.is_visible()  # folded
    toggle = page.locator(".nav-toggle")
    toggle.click()
    assert nav.is_visible() and toggle.get_attribute("aria-expanded") == "true"
    links = [a.get_attribute("href") for a in nav.locator("a").all()]
    assert len(links) >= 2
    for href in [*links, "/console/no-such-page"]:
        page.goto(href)
        page.wait_for_load_state("load")
        assert sideways(page) <= 0, f"{href} scrolls sideways by {sideways(page)} px"
    page.context.close()


def test_the_skip_link_is_the_first_stop_and_leads_to_the_content(browser: Any, live_server: LiveServer) -> None:
    page = narrow_page(browser, live_server, "en")
    page.goto("/console/sign-in")
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    assert skip.evaluate("el => el === document.activeElement") and skip.is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#content"
    page.context.close()
