"""Every irreversible or punitive console action in a real browser: its button opens the shell's dialog,
which asks the question and says what will happen (in the page's language); Cancel does nothing;
confirmed, it is done and audited. (The screening notice and rejection: tests/screening/
test_review_browser.py; closing a breach: test_privacy_console_browser.py.)"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import PASSWORD, TEST_ACTOR, sign_as_staff
from tests.conftest import fresh_database, make_settings
from tests.web.confirming import in_dialog
from tests.web.conftest import LiveServer, serve_in_thread
from tests.web.test_console_browser import new_page, sign_in_and_enrol
from tripguard.app import create_app
from tripguard.audit.models import AuditEntry
from tripguard.console.confirmations import Question
from tripguard.console.privacy_notices_pages import PUBLISH_NOTICE
from tripguard.console.privacy_pages import (
    APPLY_CORRECTION,
    BREACH_QUESTIONS,
    ERASE_ON_VERIFY,
    LIFT_HOLD,
    RETENTION_RUN,
)
from tripguard.console.security_pages import ACCOUNT_ACTIONS, REVOKE_KEY
from tripguard.core import i18n
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.privacy import access, breaches, retention
from tripguard.privacy import service as privacy
from tripguard.privacy.models import (
    BreachSubject,
    DataSubject,
    LegalHold,
    PrivacyNotice,
    RetentionRun,
    SubjectRequest,
)
from tripguard.security import service as security
from tripguard.security.models import ApiKey, StaffAccount, StaffSession
from tripguard.security.permissions import Permission, Role
from tripguard.security.principal import Principal
from tripguard.vault.keys import build_vault
from tripguard.workforce import discipline
from tripguard.workforce.console import APPEAL_QUESTIONS, PUBLISH_AGREEMENT, SANCTION_QUESTIONS
from tripguard.workforce.models import Agreement, Sanction

pytestmark = pytest.mark.browser

STAFF = {"dpo": Role.PRIVACY_OFFICER, "hr": Role.HR_OFFICER, "secadmin": Role.SECURITY_ADMIN,
         "sysadmin": Role.SYSTEM_ADMIN, "trainer": Role.TRAINER}


def _seed(session: Session, settings: Any) -> dict[str, str]:
    """One thing to act on for each confirmation; returns their ids."""
    vault = build_vault(settings)
    ids: dict[str, str] = {}
    accounts = {username: sign_as_staff(session, security.create_staff(
        session, actor=TEST_ACTOR, username=username, display_name=f"{username} 测试", password=PASSWORD,
        roles={role})) for username, role in STAFF.items()}
    for action in ("totp-reset", "sessions-revoke"):  # one person each: a reset ends the sessions too
        target = security.create_staff(session, actor=TEST_ACTOR, username=f"target.{action}", display_name="目标",
                                       password=PASSWORD, roles={Role.SAFETY_AGENT})
        target.totp_secret = b"sealed-secret"
        session.add(StaffSession(id=f"ses_{action}", staff_id=target.id, token_hash=action[0] * 64,
                                 created_at=utcnow(), last_seen_at=utcnow(), expires_at=utcnow() + timedelta(hours=8)))
        ids[action] = target.id
    ids["sysadmin"] = accounts["sysadmin"].id
    key, _ = security.create_api_key(session, settings=settings, actor=TEST_ACTOR, name="old-dispatch",
                                     scopes={Permission.SELF_READ})
    ids["key"] = key.id

    privacy.publish_notice(session, actor=TEST_ACTOR, version="n1", purposes=["emergency"],
                           categories=["user.name"], retention_zh="两年", retention_en="two years", text_zh="说明",
                           text_en="notice")
    for subject_id in ("psg_erase", "psg_fix", "psg_held", "psg_breach"):
        privacy.upsert_subject(session, vault=vault, actor=TEST_ACTOR, subject_id=subject_id, kind="passenger",
                               notice_version="n1", values={"name": "韩梅梅", "phone": "13800005555"})
    now = utcnow()
    for request_id, subject_id, kind, status in (("req_ERASE", "psg_erase", "erasure", "awaiting_verification"),
                                                 ("req_FIX", "psg_fix", "correction", "verified")):
        row = SubjectRequest(id=request_id, idempotency_key=request_id, subject_id=subject_id, kind=kind,
                             status=status, received_at=now, due_at=now + timedelta(days=15),
                             hard_due_at=now + timedelta(days=30), code_attempts=0,
                             verified_at=now if status == "verified" else None)
        session.add(row)
        session.flush()
        if kind == "correction":
            access.write_field(vault, session, row, "correction", '{"name": "韩梅"}')
    ids["hold"] = retention.place_hold(session, actor=TEST_ACTOR, subject_id="psg_held", case_ref="inc_7",
                                       reason="诉讼保全").id
    breach = breaches.open_breach(session, actor=TEST_ACTOR, title="导出外泄", serious=False,
                                  occurred_from=now - timedelta(days=1), occurred_to=now, categories=["user.name"],
                                  cause="导出", harm="骚扰", measures="停用", advice="警惕",
                                  contact="privacy@example.com")
    breaches.add_subjects(session, actor=TEST_ACTOR, breach_id=breach.id, subject_ids=["psg_breach"])
    ids["breach"] = breach.id

    for name in ("sanction", "upheld", "overturned"):
        violation = discipline.raise_violation(session, vault=vault, actor=TEST_ACTOR, offender_type="staff",
                                               offender_id=f"stf_{name.upper()}", kind="privacy",
                                               summary="查看了无关顾客资料", evidence={"audit": ["1"]})
        ids[f"violation.{name}"] = violation.id
        if name != "sanction":
            sanction = discipline.decide(session, actor=TEST_ACTOR, violation_id=violation.id, kind="suspension")
            discipline.appeal(session, vault=vault,
                              principal=Principal.for_roles("staff", f"stf_{name.upper()}", frozenset()),
                              sanction_id=sanction.id, text="我在处理工单")
            ids[f"sanction.{name}"] = sanction.id
    return ids


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("confirm-live")
    database_url = fresh_database(f"tg_confirm_live_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", tmp)
    settings = make_settings(database_url, tmp / "keys")
    engine = make_engine(database_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        ids = _seed(session, settings)
    engine.dispose()
    with serve_in_thread(create_app(settings)) as url:
        yield LiveServer(url=url, database_url=database_url, api_key=""), ids


@pytest.fixture(scope="module")
def database(server: tuple[LiveServer, dict[str, str]]) -> Iterator[Callable[[], Session]]:
    engine = make_engine(server[0].database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


_SIGNED_IN: dict[tuple[int, str], Any] = {}  # (server, username) -> its page: one sign-in (and enrolment) each


def _signed_in(browser: Any, server: LiveServer, username: str, locale: str) -> Any:
    key = (id(server), username)
    if key in _SIGNED_IN:
        return _SIGNED_IN[key]
    page = _SIGNED_IN[key] = new_page(browser, server, locale)
    if username == "trainer":  # no second factor for this role
        page.goto("/console/sign-in")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/console")
    else:
        sign_in_and_enrol(page, username)
    return page


def _words(question: Question, locale: str) -> dict[str, str]:
    token = i18n.current_locale.set(locale)
    try:
        return {"question": i18n.gettext(question.question), "consequence": i18n.gettext(question.consequence)}
    finally:
        i18n.current_locale.reset(token)


def _eventually(database: Callable[[], Session], check: Callable[[Session], bool]) -> None:
    """The confirmed form went through htmx: its effect is in the database within a few seconds."""
    deadline = time.monotonic() + 20
    while True:
        with database() as session:
            if check(session):
                return
        if time.monotonic() > deadline:
            raise AssertionError("the confirmed action did not happen")
        time.sleep(0.1)


def _audited(session: Session, action: str, target: str) -> bool:
    return session.scalar(select(AuditEntry.id).where(AuditEntry.action == action,
                                                      AuditEntry.target_id == target)) is not None


def _now(database: Callable[[], Session], check: Callable[[Session], bool]) -> None:
    with database() as session:
        assert check(session)


# ---- the privacy officer (zh) -------------------------------------------------------------------------------


def test_marking_an_erasure_request_verified_asks_before_erasing(browser: Any, server: Any, database: Any) -> None:
    live, _ = server
    page = _signed_in(browser, live, "dpo", "zh-CN")
    page.goto("/console/privacy/requests/req_ERASE")

    def erased(session: Session) -> bool:
        subject = session.get(DataSubject, "psg_erase")
        request = session.get(SubjectRequest, "req_ERASE")
        return (subject is not None and subject.erased_at is not None and request is not None
                and request.status == "completed" and _audited(session, "request.verify", "req_ERASE"))

    in_dialog(page, "[data-testid=verify]", **_words(ERASE_ON_VERIFY, "zh_CN"),
              prepare=lambda: page.fill("#how", "本人到场，已核对身份证"),
              unchanged=lambda: _now(database, lambda s: not erased(s) and s.get(
                  SubjectRequest, "req_ERASE").status == "awaiting_verification"),  # type: ignore[union-attr]
              changed=lambda: _eventually(database, erased))
    expect(page.locator("[data-testid=request-status]")).to_have_text("已完成")


def test_applying_a_correction_asks_first(browser: Any, server: Any, database: Any) -> None:
    live, _ = server
    page = _signed_in(browser, live, "dpo", "zh-CN")
    page.goto("/console/privacy/requests/req_FIX")

    def applied(session: Session) -> bool:
        return (session.get(SubjectRequest, "req_FIX").status == "completed"  # type: ignore[union-attr]
                and _audited(session, "request.decide", "req_FIX"))

    in_dialog(page, "button[value=yes]", **_words(APPLY_CORRECTION, "zh_CN"),
              prepare=lambda: page.fill("#note", "更正姓名"),
              unchanged=lambda: _now(database, lambda s: not applied(s)),
              changed=lambda: _eventually(database, applied))


def test_lifting_a_legal_hold_asks_first(browser: Any, server: Any, database: Any) -> None:
    live, ids = server
    page = _signed_in(browser, live, "dpo", "zh-CN")
    page.goto("/console/privacy/retention")

    def lifted(session: Session) -> bool:
        return (session.get(LegalHold, ids["hold"]).released_at is not None  # type: ignore[union-attr]
                and _audited(session, "hold.release", "psg_held"))

    in_dialog(page, f"tr[data-hold='{ids['hold']}'] button", **_words(LIFT_HOLD, "zh_CN"),
              unchanged=lambda: _now(database, lambda s: not lifted(s)),
              changed=lambda: _eventually(database, lifted))
    expect(page.locator(f"tr[data-hold='{ids['hold']}']")).to_have_count(0)


def test_a_real_retention_run_asks_first(browser: Any, server: Any, database: Any) -> None:
    live, _ = server
    page = _signed_in(browser, live, "dpo", "zh-CN")
    page.goto("/console/privacy/retention")

    def ran(session: Session) -> bool:
        run = session.scalar(select(RetentionRun).where(RetentionRun.dry_run.is_(False)))
        return run is not None and _audited(session, "retention.run", run.id)

    in_dialog(page, "button[value=real]", **_words(RETENTION_RUN, "zh_CN"),
              unchanged=lambda: _now(database, lambda s: not ran(s)),
              changed=lambda: _eventually(database, ran))


def test_notifying_the_people_a_breach_affected_asks_first(browser: Any, server: Any, database: Any) -> None:
    live, ids = server
    page = _signed_in(browser, live, "dpo", "zh-CN")
    page.goto(f"/console/privacy/breaches/{ids['breach']}")

    def notified(session: Session) -> bool:
        affected = session.scalars(select(BreachSubject).where(BreachSubject.breach_id == ids["breach"])).one()
        return affected.notified_at is not None and _audited(session, "breach.notify", ids["breach"])

    in_dialog(page, "button[value=notify]", **_words(BREACH_QUESTIONS["notify"], "zh_CN"),
              unchanged=lambda: _now(database, lambda s: not notified(s)),
              changed=lambda: _eventually(database, notified))


def test_publishing_a_notice_from_the_privacy_office(browser: Any, server: Any, database: Any) -> None:
    live, _ = server
    page = _signed_in(browser, live, "dpo", "zh-CN")
    page.click("nav.main >> text=隐私告知")
    expect(page.locator("tr[data-notice=n1]")).to_contain_text("紧急救助")
    page.fill("#n-version", "v 1/2")  # the browser checks the version's form itself (its pattern compiles)
    assert page.locator("#n-version").evaluate("field => field.validity.patternMismatch") is True

    def fill(version: str) -> None:
        page.fill("#n-version", version)
        page.select_option("#n-purposes", ["emergency", "support"])
        page.select_option("#n-categories", ["user.name", "user.contact.phone_number"])
        page.fill("#n-retention_zh", "行程结束后两年")
        page.fill("#n-retention_en", "two years after the trip")
        page.fill("#n-text_zh", "我们为紧急救助和客户服务收集您的姓名和电话。")
        page.fill("#n-text_en", "We collect your name and phone for help and support.")

    # A version already published never changes: the form says so by the field, with the input kept.
    fill("n1")
    page.click("[data-testid=publish-notice]")
    page.locator("#confirm-dialog button[value=confirm]").click()
    expect(page.locator("#n-version-error")).to_have_text("此版本已发布，永不更改：请为新内容使用新的版本号。")
    expect(page.locator("#n-version")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#n-text_en")).to_have_value("We collect your name and phone for help and support.")
    _now(database, lambda s: s.get(PrivacyNotice, "n1").text_zh == "说明")  # type: ignore[union-attr]

    def published(session: Session) -> bool:
        notice = session.get(PrivacyNotice, "2026-12")
        return (notice is not None and notice.purposes == ["emergency", "support"]
                and _audited(session, "notice.publish", "2026-12"))

    in_dialog(page, "[data-testid=publish-notice]", **_words(PUBLISH_NOTICE, "zh_CN"), prepare=lambda: fill("2026-12"),
              unchanged=lambda: _now(database, lambda s: not published(s)),
              changed=lambda: _eventually(database, published))
    expect(page.locator("tr[data-notice='2026-12']")).to_contain_text("客户服务")


# ---- HR (en): sanctions and appeals ---------------------------------------------------------------------------


def test_a_sanction_asks_by_its_kind(browser: Any, server: Any, database: Any) -> None:
    live, ids = server
    violation = ids["violation.sanction"]
    page = _signed_in(browser, live, "hr", "en-GB")
    page.goto(f"/console/discipline/{violation}")
    page.select_option("#kind", "dismissal")  # the dialog names the sanction chosen
    page.click("[data-testid=decide] button")
    dialog = page.locator("#confirm-dialog")
    expect(dialog.locator("#confirm-question")).to_have_text("Dismiss this person?")
    expect(dialog.locator("#confirm-consequence")).to_have_text(SANCTION_QUESTIONS["dismissal"].consequence)
    dialog.locator("button[value=cancel]").click()

    def suspended(session: Session) -> bool:
        sanction = session.scalar(select(Sanction).where(Sanction.violation_id == violation))
        return (sanction is not None and (sanction.kind, sanction.status) == ("suspension", "active")
                and sanction.ends_at is not None and _audited(session, "sanction.decide", violation))

    def choose() -> None:
        page.select_option("#kind", "suspension")
        page.fill("#days", "14")

    in_dialog(page, "[data-testid=decide] button", **_words(SANCTION_QUESTIONS["suspension"], "en"), prepare=choose,
              unchanged=lambda: _now(database, lambda s: s.scalar(
                  select(Sanction).where(Sanction.violation_id == violation)) is None),
              changed=lambda: _eventually(database, suspended))
    expect(page.locator("[data-testid=sanctions] tbody tr")).to_contain_text("suspension")


@pytest.mark.parametrize("outcome", ["upheld", "overturned"])
def test_an_appeal_decision_asks_first(browser: Any, server: Any, database: Any, outcome: str) -> None:
    live, ids = server
    violation, sanction_id = ids[f"violation.{outcome}"], ids[f"sanction.{outcome}"]
    page = _signed_in(browser, live, "hr", "en-GB")
    page.goto(f"/console/discipline/{violation}")

    def decided(session: Session) -> bool:
        sanction = session.get(Sanction, sanction_id)
        return (sanction is not None and sanction.appeal_status == outcome
                and _audited(session, "sanction.appeal_decide", violation))

    in_dialog(page, f"tr[data-sanction='{sanction_id}'] button[value={outcome}]",
              **_words(APPEAL_QUESTIONS[outcome], "en"),
              unchanged=lambda: _now(database, lambda s: s.get(Sanction, sanction_id).appeal_status == "pending"),  # type: ignore[union-attr]
              changed=lambda: _eventually(database, decided))


# ---- the security and system administrators (zh), the trainer (en) --------------------------------------------


@pytest.mark.parametrize("action", ["totp-reset", "sessions-revoke"])
def test_an_account_action_asks_first(browser: Any, server: Any, database: Any, action: str) -> None:
    live, ids = server
    page = _signed_in(browser, live, "secadmin", "zh-CN")
    page.goto("/console/staff")
    question = ACCOUNT_ACTIONS[action][0]
    assert question is not None

    target = ids[action]

    def done(session: Session) -> bool:
        if action == "totp-reset":
            return (session.get(StaffAccount, target).totp_secret is None  # type: ignore[union-attr]
                    and _audited(session, "staff.totp_reset", target))
        return (session.get(StaffSession, f"ses_{action}").revoked_at is not None  # type: ignore[union-attr]
                and _audited(session, "staff.sessions_revoke", target))

    in_dialog(page, f"td[data-staff='target.{action}'] form[action$='/{action}'] button",
              **_words(question, "zh_CN"),
              unchanged=lambda: _now(database, lambda s: not done(s)),
              changed=lambda: _eventually(database, done))


def test_revoking_an_api_key_asks_first(browser: Any, server: Any, database: Any) -> None:
    live, ids = server
    page = _signed_in(browser, live, "sysadmin", "zh-CN")
    page.goto("/console/api-keys")

    def revoked(session: Session) -> bool:
        return (session.get(ApiKey, ids["key"]).revoked_at is not None  # type: ignore[union-attr]
                and _audited(session, "apikey.revoke", ids["key"]))

    in_dialog(page, f"form[action='/console/api-keys/{ids['key']}/revoke'] button", **_words(REVOKE_KEY, "zh_CN"),
              unchanged=lambda: _now(database, lambda s: not revoked(s)),
              changed=lambda: _eventually(database, revoked))


def test_publishing_an_agreement_version_asks_first(browser: Any, server: Any, database: Any) -> None:
    live, _ = server
    page = _signed_in(browser, live, "trainer", "en-GB")
    page.goto("/console/training")
    page.click("[data-testid=publish-agreement] button")  # not filled in yet: the browser says so, nothing asks
    expect(page.locator("#confirm-dialog")).to_be_hidden()

    def fill() -> None:
        page.select_option("#audience", "worker")
        page.fill("#version", "2026-12")
        page.fill("#title_zh", "骑手保密协议（2026年12月）")
        page.fill("#title_en", "Couriers' agreement (Dec 2026)")
        page.fill("#body_zh", "新增：不得拍摄顾客门牌。")
        page.fill("#body_en", "New: no photos of the customer's door number.")

    def published(session: Session) -> bool:
        return session.scalar(select(Agreement).where(Agreement.version == "2026-12")) is not None and \
            session.scalar(select(AuditEntry.id).where(AuditEntry.action == "agreement.publish")) is not None

    in_dialog(page, "[data-testid=publish-agreement] button", **_words(PUBLISH_AGREEMENT, "en"), prepare=fill,
              unchanged=lambda: _now(database, lambda s: not published(s)),
              changed=lambda: _eventually(database, published))
    expect(page.locator("[data-testid=agreement-versions]")).to_contain_text("2026-12")
