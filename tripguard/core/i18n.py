"""Babel catalogs (zh_CN, en), loaded from the .po files at start-up, and language negotiation."""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("zh_CN", "en")
CATALOG_DIR = Path(__file__).resolve().parent.parent / "translations"
LANG_COOKIE = "tg_lang"

current_locale: ContextVar[str] = ContextVar("current_locale", default="zh_CN")


@lru_cache
def translations_for(locale: str) -> Translations:
    po_path = CATALOG_DIR / locale / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def N_(message: str) -> str:
    """Marks a message for extraction (`make catalogs`); it is translated where it is shown."""
    return message


def gettext(message: str) -> str:
    return translations_for(current_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations_for(current_locale.get()).ngettext(singular, plural, n)


def negotiate_locale(*, cookie: str | None, accept_language: str | None, default: str) -> str:
    """An explicit choice (cookie) wins, then the browser's Accept-Language, then the default."""
    if cookie in LOCALES:
        return cookie
    if accept_language:
        weighted: list[tuple[float, str]] = []
        for part in accept_language.split(","):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    quality = 0.0
            if tag and quality > 0:
                weighted.append((quality, tag.strip().lower()))
        for _, tag in sorted(weighted, key=lambda item: -item[0]):  # stable: header order breaks ties
            # Any Chinese variant (zh, zh-TW, zh-Hans) reads the Simplified catalog.
            if tag == "zh" or tag.startswith(("zh-", "zh_")):
                return "zh_CN"
            if tag == "en" or tag.startswith(("en-", "en_")):
                return "en"
    return default
