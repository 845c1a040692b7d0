"""Jinja2 rendering with the request's language (Babel catalogs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from markupsafe import Markup

from tripguard.console import readable
from tripguard.console.confirmations import dialog_attributes
from tripguard.console.labels import detail_label, kind_label, trip_state
from tripguard.console.streams import cursor_now
from tripguard.core import i18n
from tripguard.core.deps import sessions_of, settings_of

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
# The kit's templates by their name ("base.html"), and the platform's pages (console/*_pages.py) by
# "<package>/<name>" from the folders beside them ("audit/log.html"); a business domain's pages by
# "<domain>/<name>", read from tripguard/<domain>/templates beside its console.py, and the web shell's
# (home and share pages) by "web/<name>". Names, not imports: the kit sits below the packages whose pages
# it renders.
PAGE_PACKAGES = ("delivery", "feedback", "safety", "reporting", "screening", "telematics", "web", "workforce")

env = Environment(
    loader=ChoiceLoader([
        FileSystemLoader(TEMPLATE_DIR),
        PrefixLoader({name: FileSystemLoader(PACKAGE_DIR / name / "templates") for name in PAGE_PACKAGES}),
    ]),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]


@pass_context
def local_time(context: Context, value: datetime | None, fmt: str = "%H:%M:%S") -> str:
    """A time as the operator reads it: in their time zone (pages label it with `zone_label`)."""
    if value is None:
        return "—"
    zone = context.get("zone") or UTC
    return value.astimezone(zone).strftime(fmt)


@pass_context
def local_stamp(context: Context, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time with its zone beside it, for a time shown alone (no page-wide "Times in …" near it)."""
    if value is None:
        return "—"
    return f"{local_time(context, value, fmt)} ({context.get('zone_label') or 'UTC'})"


@pass_context
def _who(context: Context, actor: object, actor_id: object = None) -> Markup:
    return readable.who(actor, actor_id, people=context["people"])


@pass_context
def _detail_value(context: Context, value: object, key: str | None = None) -> Markup:
    return readable.detail_value(value, context.get("people"), key, context.get("zone"))


env.filters["local"] = local_time
env.filters["local_stamp"] = local_stamp
env.filters["ref"] = readable.ref
env.filters["shown"] = readable.shown
env.filters["yes_no"] = readable.yes_no
env.globals["who"] = _who
env.globals["detail_value"] = _detail_value
env.globals["facts"] = readable.facts
env.globals["action_choices"] = readable.action_choices
for _name in ("role_name", "purpose_name", "category_name", "action_name", "rule_name", "scope_name"):
    env.globals[_name] = getattr(readable, _name)
env.globals["detail_label"] = detail_label
env.globals["asks"] = dialog_attributes  # a destructive button asks first: console/confirmations.py
env.globals["kind_label"] = kind_label
env.globals["trip_state"] = trip_state
env.globals["label_map"] = lambda keys: {key: i18n.gettext(key) for key in keys}
env.filters["from_json"] = json.loads


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone_label(zone: ZoneInfo) -> str:
    offset = datetime.now(zone).strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def request_locale(request: Request) -> str:
    return i18n.negotiate_locale(
        cookie=request.cookies.get(i18n.LANG_COOKIE),
        accept_language=request.headers.get("accept-language"),
        default=settings_of(request.app).locale,
    )


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    locale = request_locale(request)
    settings = settings_of(request.app)
    zone = _zone(settings.timezone)
    token = i18n.current_locale.set(locale)
    try:
        html = env.get_template(template).render(
            request=request, locale=locale, html_lang="zh-CN" if locale == "zh_CN" else "en",
            stream_cursor=cursor_now(),  # a live stream opened by this page catches up from here
            zone=zone, zone_label=zone_label(zone),
            basemap=settings.base_map,  # for any page with a map (basemap.html)
            people=readable.People(session=getattr(request.state, "db_session", None),
                                   factory=sessions_of(request.app)),
            **context,
        )
    finally:
        i18n.current_locale.reset(token)
    return HTMLResponse(html, status_code=status_code)
