"""The workforce in a real browser: a courier signs the agreement and takes a course from the training
page (Chinese), failing once, then passing, rating it and downloading the certificate; the supervision
team reviews a finding and raises a violation, which HR turns into a suspension (English)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.builders import PASSWORD, TEST_ACTOR, sign_as_staff, subject_token
from tests.conftest import fresh_database, make_settings
from tests.web.conftest import LiveServer, browser, no_script_errors, serve_in_thread  # noqa: F401
from tests.web.test_console_browser import new_page, sign_in_and_enrol
from tests.workforce.conftest import course
from tripguard.app import create_app
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.security import service as security
from tripguard.security.permissions import Role
from tripguard.workforce import training
from tripguard.workforce.models import Attempt, Finding, Sanction

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def workforce_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("workforce-live")
    database_url = fresh_database(f"tg_workforce_live_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", tmp)
    settings = make_settings(database_url, tmp / "keys")
    engine = make_engine(database_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        sign_as_staff(session, security.create_staff(session, actor=TEST_ACTOR, username="supervisor.li",
                                                     display_name="李", password=PASSWORD, roles={Role.SUPERVISOR}))
        security.create_staff(session, actor=TEST_ACTOR, username="hr.zhou", display_name="周", password=PASSWORD,
                              roles={Role.HR_OFFICER})  # has not signed the agreement yet
        training.put_course(session, actor=TEST_ACTOR, course_id="privacy-basics", content=course())
        now = utcnow()
        session.add(Finding(id="fnd_seen", rule="many_people", actor_type="staff", actor_id="stf_CURIOUS",
                            window_start=now - timedelta(hours=1), window_end=now, count=180, evidence=[1, 2, 3],
                            status="open", created_at=now))
    engine.dispose()
    with serve_in_thread(create_app(settings)) as url:
        yield LiveServer(url=url, database_url=database_url, api_key="")


def test_a_courier_signs_and_takes_a_course_on_the_training_page(browser: Any, workforce_server: LiveServer,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    page = new_page(browser, workforce_server, "zh-CN")
    page.goto("/training")
    expect(page.locator("[data-testid=status]")).to_have_text("请从您的应用中打开此页面。")
    page.goto(f"/training#token={subject_token('cou_web', 'courier')}")
    expect(page.locator("[data-testid=agreement-title]")).to_contain_text("保密协议")
    assert "token" not in page.url  # the token leaves the address bar
    page.click("[data-testid=sign]")
    expect(page.locator("[data-testid=agreement-state]")).to_contain_text("已于")
    course_item = page.locator("li[data-course=privacy-basics]")
    expect(course_item).to_contain_text("首次接单或出车前")
    course_item.locator("button").click()
    expect(page.locator("[data-testid=course-title]")).to_have_text("顾客信息保密")
    expect(page.locator("[data-testid=modules]")).to_contain_text("顾客的电话和地址只用于本单送达。")
    page.click("[data-testid=quiz] button[type=submit]")
    expect(page.locator("[data-testid=result]")).to_have_text("请回答每一道题。")
    page.check("fieldset[data-question='0'] input[value='0']")  # wrong
    page.check("fieldset[data-question='1'] input[value='0']")
    page.click("[data-testid=quiz] button[type=submit]")
    expect(page.locator("[data-testid=result]")).to_contain_text("50 %")
    page.check("fieldset[data-question='0'] input[value='1']")
    page.click("[data-testid=quiz] button[type=submit]")
    expect(page.locator("[data-testid=result]")).to_contain_text("通过")
    with page.expect_download() as download:
        page.click("[data-testid=certificate]")
    saved = tmp_path / "certificate.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    page.click("[data-testid=rating] button[data-stars='5']")
    expect(page.locator("[data-testid=rating]")).to_have_text("感谢您的评价。")
    page.click("[data-testid=back]")
    expect(page.locator("li[data-course=privacy-basics]")).to_contain_text("已完成")
    with unit_of_work(make_sessionmaker(make_engine(workforce_server.database_url))) as session:
        attempts = session.query(Attempt).filter(Attempt.worker_id == "cou_web").order_by(Attempt.at).all()
        assert [(a.score, a.passed, a.rating) for a in attempts] == [(50, False, None), (100, True, 5)]


def test_supervision_reviews_a_finding_and_hr_suspends_the_reader(browser: Any, workforce_server: LiveServer) -> None:  # noqa: F811
    page = new_page(browser, workforce_server, "en")
    sign_in_and_enrol(page, "supervisor.li")
    page.click("nav.main >> text=Supervision")
    row = page.locator("tr[data-finding=fnd_seen]")
    expect(row).to_contain_text("stf_CURIOUS")
    row.locator("a").click()
    expect(page.locator("[data-testid=evidence] tbody tr")).to_have_count(3)  # the audit entries named
    page.fill("#summary", "Read 180 customers in an hour with no ticket")
    page.click("[data-testid=raise-violation] button")
    expect(page.locator("[data-testid=finding-status]")).to_contain_text("reviewed")
    violation_id = page.text_content("[data-testid=violation-id]")

    hr = new_page(browser, workforce_server, "en")
    sign_in_and_enrol(hr, "hr.zhou")
    hr.click("nav.main >> text=Discipline")
    hr.locator(f"tr[data-violation={violation_id}] a").click()
    expect(hr.locator("[data-testid=error]")).to_contain_text("Sign the confidentiality agreement")  # not yet
    hr.click("[data-testid=to-agreement]")
    expect(hr.locator("[data-testid=agreement-text]")).to_contain_text("Staff confidentiality commitment")
    hr.click("[data-testid=sign]")
    expect(hr.locator("[data-testid=signed]")).not_to_contain_text("Not yet")
    hr.click("nav.main >> text=Discipline")
    hr.locator(f"tr[data-violation={violation_id}] a").click()
    expect(hr.locator("[data-testid=violation-summary]")).to_have_text("Read 180 customers in an hour with no ticket")
    hr.select_option("#kind", "suspension")
    hr.fill("#days", "14")
    hr.click("[data-testid=decide] button")
    expect(hr.locator("#confirm-question")).to_have_text("Suspend this person?")  # punitive: asked first
    hr.locator("#confirm-dialog button[value=confirm]").click()
    expect(hr.locator("[data-testid=sanctions] tbody tr")).to_contain_text("suspension")
    with unit_of_work(make_sessionmaker(make_engine(workforce_server.database_url))) as session:
        sanction = session.query(Sanction).one()
        assert (sanction.offender_id, sanction.kind, sanction.status) == ("stf_CURIOUS", "suspension", "active")
        assert sanction.ends_at is not None and sanction.ends_at - sanction.starts_at == timedelta(days=14)


