"""The screening officer's review queue and the dispute flow in a real browser, in Chinese and in
English: a case from the queue, the pre-adverse notice (asked first), the applicant's dispute with a
document through the API, and the final decision."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import expect

from tests.builders import PASSWORD, TEST_ACTOR, sign_as_staff, subject_token
from tests.conftest import fresh_database, make_settings
from tests.screening.conftest import SENSITIVE, id_number
from tests.web.conftest import LiveServer, serve_in_thread, settled
from tests.web.test_console_browser import new_page, sign_in_and_enrol
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.privacy import service as privacy
from tripguard.screening import agency, service
from tripguard.screening.console import QUESTIONS
from tripguard.screening.service import rules_from as screening_rules
from tripguard.security import service as security
from tripguard.security.permissions import Role
from tripguard.vault.keys import build_vault

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def screening_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server holding two applicants the policy left to a person (a record to judge)."""
    tmp = tmp_path_factory.mktemp("screening-live")
    database_url = fresh_database(f"tg_scr_live_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", tmp)
    settings = make_settings(database_url, tmp / "keys")
    engine = make_engine(database_url)
    factory = make_sessionmaker(engine)
    vault = build_vault(settings)
    with unit_of_work(factory) as session:
        for username in ("officer_zh", "officer_en"):
            sign_as_staff(session, security.create_staff(session, actor=TEST_ACTOR, username=username,
                                                         display_name="审查员", password=PASSWORD,
                                                         roles={Role.SCREENING_OFFICER}))
        privacy.publish_notice(session, actor=TEST_ACTOR, version="scr-1", purposes=["screening"],
                               categories=["user.name", *SENSITIVE], retention_zh="三年", retention_en="3 years",
                               text_zh="告知", text_en="notice")
        for worker_id, locale in (("drv_zh", "zh_CN"), ("drv_en", "en")):
            service.apply(session, vault=vault, actor=TEST_ACTOR, applicant_id=worker_id,
                          application=service.Application(
                role="driver", name="王建国", id_number=id_number("006"), notice_version="scr-1",
                phone="13800002222", locale=locale, consents=tuple(SENSITIVE[:2])), agency="simulated")
    from tripguard.screening.providers import SimulatedScreeningAgency

    agency.dispatch_reports(factory, vault=vault, agency=SimulatedScreeningAgency(), rules=screening_rules(settings))
    engine.dispose()
    with serve_in_thread(create_app(settings)) as url:
        yield LiveServer(url=url, database_url=database_url, api_key="")


def _dispute(server: LiveServer, worker_id: str, text: str) -> None:
    paper = base64.b64encode(b"%PDF-1.4 the court's record").decode()
    response = httpx.post(f"{server.url}/api/v1/me/screening/disputes", timeout=10,
                          headers={"Authorization": f"Bearer {subject_token(worker_id, 'driver')}"},
                          json={"text": text, "documents": [{"content_type": "application/pdf", "data": paper}]})
    assert response.status_code == 201, response.text


def _open_from_queue(page: Any, worker_id: str, queue_label: str) -> None:
    page.click(f"nav.main >> text={queue_label}")
    page.locator(f"tr[data-applicant='{worker_id}'] a").click()
    page.wait_for_url(f"**/console/screening/{worker_id}")


def _confirm(page: Any, button: str, question: str) -> None:
    page.click(button)
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    assert dialog.locator("h2").inner_text() == question
    dialog.locator("button[value=confirm]").click()
    page.wait_for_load_state()


def test_the_review_queue_and_a_dispute_in_chinese(browser: Any, screening_server: LiveServer) -> None:
    page = new_page(browser, screening_server, "zh-CN")
    sign_in_and_enrol(page, "officer_zh")
    assert "审查队列" in page.locator("nav.main").inner_text()
    page.click("nav.main >> text=审查队列")
    row = page.locator("tr[data-applicant='drv_zh']")
    assert "待人工审核" in row.inner_text()
    _open_from_queue(page, "drv_zh", "审查队列")
    assert page.locator("[data-testid=applicant-name]").inner_text() == "王建国"  # for the screening purpose
    assert page.locator("[data-reason='record.other']").inner_text() == "其他记录：请判断是否影响从业"
    assert "诈骗" in page.locator("tr[data-check='criminal_record']").inner_text()  # the record named
    page.click("[data-testid=take]")
    settled(page)
    page.fill("#note", "请申请人说明该记录")
    # The notice is asked first; Cancel changes nothing.
    page.click("[data-testid=decide-pre-adverse]")
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    dialog.locator("button[value=cancel]").click()
    dialog.wait_for(state="hidden")
    expect(page.locator("[data-testid=applicant-status]")).to_have_text("待人工审核")
    _confirm(page, "[data-testid=decide-pre-adverse]", "发送预通知？")
    expect(page.locator("[data-testid=applicant-status]")).to_have_text("已发预通知")
    assert page.locator("[data-testid=decide-reject]").count() == 0  # the window is open

    _dispute(screening_server, "drv_zh", "该记录系他人冒用我的身份，附公安机关证明")
    page.reload()
    expect(page.locator("[data-testid=applicant-status]")).to_have_text("已申诉")
    assert "冒用" in page.locator("[data-testid=dispute-text]").inner_text()
    assert page.locator("[data-testid=document]").count() == 1
    page.click("[data-testid=decide-clear]")
    settled(page)
    expect(page.locator("[data-testid=applicant-status]")).to_have_text("可接单")
    assert "申诉成立" in page.locator("[data-dispute]").inner_text()
    assert "审查员判定通过" in page.locator("[data-testid=timeline]").inner_text()


def test_the_review_queue_and_a_dispute_in_english(browser: Any, screening_server: LiveServer) -> None:
    page = new_page(browser, screening_server, "en-GB")
    sign_in_and_enrol(page, "officer_en")
    _open_from_queue(page, "drv_en", "Screening queue")
    assert page.locator("[data-reason='record.other']").inner_text() == \
        "Another record: judge whether it bears on the work"
    _confirm(page, "[data-testid=decide-pre-adverse]", "Send the pre-adverse notice?")
    expect(page.locator("[data-testid=applicant-status]")).to_have_text("pre-adverse notice sent")
    _dispute(screening_server, "drv_en", "The record is not mine.")
    page.click("nav.main >> text=Screening queue")
    assert "disputed" in page.locator("tr[data-applicant='drv_en']").inner_text()
    page.locator("tr[data-applicant='drv_en'] a").click()
    page.wait_for_url("**/console/screening/drv_en")
    assert page.locator("[data-testid=dispute-text]").inner_text() == "The record is not mine."
    # Rejecting asks first and says what follows; Cancel changes nothing.
    page.click("[data-testid=decide-reject]")
    dialog = page.locator("#confirm-dialog")
    expect(dialog.locator("#confirm-consequence")).to_have_text(QUESTIONS["reject"].consequence)
    dialog.locator("button[value=cancel]").click()
    dialog.wait_for(state="hidden")
    expect(page.locator("[data-testid=applicant-status]")).to_have_text("disputed")
    _confirm(page, "[data-testid=decide-reject]", "Reject this applicant for good?")
    expect(page.locator("[data-testid=applicant-status]")).to_have_text("Rejected")
    assert "dismissed" in page.locator("[data-dispute]").inner_text()
    page.click("nav.main >> text=Applicants")
    assert "Rejected" in page.locator("tr[data-applicant='drv_en']").inner_text()
    assert page.locator("[data-figure=pass_rate]").is_visible()
