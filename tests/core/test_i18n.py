"""Catalogs: both languages complete; the browser's language is followed."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from tripguard.core import i18n


def test_every_message_has_a_chinese_translation() -> None:
    path = i18n.CATALOG_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
    catalog = read_po(path.open("rb"), locale="zh_CN")
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []
    assert len(catalog) > 50


@pytest.mark.parametrize(("cookie", "header", "expected"), [
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
    (None, "en-US,en;q=0.9", "en"),
    (None, "zh-TW", "zh_CN"),
    (None, "fr-FR, en;q=0.5", "en"),
    (None, None, "zh_CN"),
    ("en", "zh-CN", "en"),
    ("xx", "en", "en"),
])
def test_negotiation(cookie: str | None, header: str | None, expected: str) -> None:
    assert i18n.negotiate_locale(cookie=cookie, accept_language=header, default="zh_CN") == expected


def test_translation_follows_the_locale() -> None:
    token = i18n.current_locale.set("zh_CN")
    try:
        assert i18n.gettext("Sign in") == "登录"
    finally:
        i18n.current_locale.reset(token)
    token = i18n.current_locale.set("en")
    try:
        assert i18n.gettext("Sign in") == "Sign in"
    finally:
        i18n.current_locale.reset(token)


def test_a_target_is_a_goal_and_what_an_audit_entry_acted_on_is_its_object() -> None:
    """"Target" heads the reports' column of goals (目标); the audit log's column of what was acted on is
    "Object" (对象): one English word had served both, and the reports said 对象."""
    token = i18n.current_locale.set("zh_CN")
    try:
        assert (i18n.gettext("Target"), i18n.gettext("Object")) == ("目标", "对象")
    finally:
        i18n.current_locale.reset(token)
    log = (i18n.CATALOG_DIR.parent / "console" / "templates" / "audit" / "log.html").read_text()
    assert '_("Object")' in log and '_("Target")' not in log
