"""The console's readable vocabularies are complete (every key the code can produce is named) and
translated both ways; the helpers read values as a person does."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po
from markupsafe import Markup

from tripguard.console import readable
from tripguard.core import i18n
from tripguard.privacy.access import ERASED, UNREADABLE
from tripguard.privacy.catalogue import Category
from tripguard.security.permissions import API_KEY_SCOPES, Purpose, Role
from tripguard.telematics.detection.contract import SEVERITY

pytestmark = pytest.mark.no_database
SOURCE = Path(readable.__file__).resolve().parents[1]
ACTION = re.compile(r'\baction=(f?)"([a-z_]+\.[a-z_.{}]+)"')  # an audit action: a dotted key
# The actions written from a template, and every value the template takes.
EXPANSIONS = {
    "backup.{action}": ["backup.create", "backup.restore"],
    "complaint.to_{to}": ["complaint.to_incident", "complaint.to_breach"],
    "incident.{action}": ["incident.acknowledge", "incident.start", "incident.resolve", "incident.close"],
    "order.{status}": ["order.prepared", "order.picked_up", "order.delivered", "order.cancelled", "order.exception"],
    "order.{which}_code": ["order.pickup_code", "order.handover_code"],
    "screening.decide.{action}": ["screening.decide.clear", "screening.decide.pre_adverse", "screening.decide.reject",
                                  "screening.decide.notice_delivered"],
    "screening.{status}": ["screening.screening", "screening.review", "screening.pre_adverse", "screening.disputed",
                           "screening.active", "screening.suspended", "screening.rejected", "screening.offboarded"],
}


def recorded_actions() -> set[str]:
    """Every audit action the code records (`audit.record(…, action=…)`), templates expanded."""
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for formatted, action in ACTION.findall(path.read_text(encoding="utf-8")):
            if formatted:
                assert action in EXPANSIONS, f"{path}: an action made from a template: list its values here ({action})"
                found.update(EXPANSIONS[action])
            else:
                found.add(action)
    return found


def test_every_action_the_code_records_is_named() -> None:
    actions = recorded_actions()
    assert len(actions) > 80
    assert sorted(actions - set(readable.ACTIONS)) == []


def test_every_role_purpose_category_scope_and_rule_is_named() -> None:
    from tripguard.core.settings import Settings
    from tripguard.privacy.retention import rules

    assert {r.value for r in Role} <= set(readable.ROLES)
    assert {p.value for p in Purpose} <= set(readable.PURPOSES)
    assert {c.value for c in Category} <= set(readable.CATEGORIES)
    assert {p.value for p in API_KEY_SCOPES} <= set(readable.SCOPES)
    assert set(SEVERITY) <= set(readable.RULES)
    retention = {rule.name for rule in rules(Settings(env="test"))} | {"key_backup_keys"}  # type: ignore[call-arg]
    assert retention <= set(readable.RULES)


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_every_key_reads_as_words_in_both_languages(locale: str) -> None:
    path = Path(i18n.CATALOG_DIR) / locale / "LC_MESSAGES" / "messages.po"
    catalog = read_po(path.open("rb"), locale=locale)
    untranslated = sorted(msgid for vocabulary in (*readable.VOCABULARIES, readable.FIELDS)
                          for msgid in vocabulary.values()
                          if locale == "zh_CN" or re.fullmatch(r"[a-z0-9_.]+", msgid)  # English reads keys as words
                          if not ((message := catalog.get(msgid)) and message.string))
    assert untranslated == []


def test_values_read_as_a_person_reads_them() -> None:
    token = i18n.current_locale.set("zh_CN")
    try:
        assert readable.role_name("support_agent") == "客服专员"
        assert readable.category_name("user.contact.phone_number") == "手机号码"
        assert readable.action_name("auth.sign_in") == "登录"
        assert readable.rule_name("ride_subjects") == "出行相关人员"
        assert readable.role_name("not_a_role") == "not_a_role"  # unknown: shown, so the crawl reports it
        assert (readable.yes_no(True), readable.yes_no(False), readable.yes_no(None)) == ("是", "否", "—")
        assert "[erased]" not in readable.shown(ERASED) and "已随本人信息删除" in readable.shown(ERASED)
        assert "[unreadable]" not in readable.shown(UNREADABLE)
        assert readable.shown("<b>王</b>") == "&lt;b&gt;王&lt;/b&gt;"
        assert readable.ref("inc_1") == Markup('<code class="ref" translate="no">inc_1</code>')
        rows = dict(readable.facts({"name_match": True, "liveness": None, "credit_score": 480,
                                    "records": ["fraud", "drug_use"], "points_by_cycle": [0, 12, 3], "x_new": 1}))
        assert rows["姓名与身份证号一致"] == "是" and "未检查" in rows["活体检测通过"]
        assert rows["信用分"] == "480" and rows["记录"] == "诈骗、吸毒记录" \
            and rows["近几个记分周期的扣分"] == "0 / 12 / 3"
        assert '<code class="ref" translate="no">x_new</code>' in rows  # a key TripGuard cannot name: a ref
        assert readable.detail_value("True") == "是" and readable.detail_value(None) == "—"
        assert readable.detail_value("safety_agent,investigator") == "安全专员、调查员"
        assert readable.detail_value("name,phone", key="plaintext") == "姓名、电话"
        assert readable.detail_value("R_ZH", key="offender") == readable.ref("R_ZH")
        assert "would" not in readable.detail_value("{'would_erase': 2, 'held': 0, 'keep_days': 730.0}")
        shanghai = ZoneInfo("Asia/Shanghai")
        assert readable.detail_value("2026-03-01T08:01:00Z", zone=shanghai) == "2026-03-01 16:01:00"  # not UTC
        assert readable.detail_value("{" * 400 + "}" * 400) == "{" * 400 + "}" * 400  # never a 500
    finally:
        i18n.current_locale.reset(token)


def test_staff_and_keys_are_named_and_others_shown_by_id() -> None:
    people = readable.People()
    people._staff, people._keys = {"stf_A": "李娜"}, {"key_A": "调度系统"}
    token = i18n.current_locale.set("zh_CN")
    try:
        assert "李娜" in readable.who("staff:stf_A", people=people)
        assert "李娜" in readable.who("stf_A", people=people)  # an assignee: a bare staff id
        assert "李娜" in readable.who("staff", "stf_A", people=people)  # the audit log's kind and id
        assert "调度系统" in readable.who("api_key:key_A", people=people)
        assert readable.who("subject:P1", people=people) == readable.ref("P1")
        assert readable.who("worker", "R_ZH", people=people) == readable.ref("R_ZH")
        assert readable.who("system:retention", people=people) == "系统"
        assert "stf_A" not in readable.who("stf_A", people=people)
    finally:
        i18n.current_locale.reset(token)
