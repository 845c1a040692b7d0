"""The console's shell: navigation by role, page rendering inside the layout, the home page, the
language switch and the error page. Each domain's pages live in its own `console.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tripguard.core import i18n
from tripguard.core.errors import DomainError
from tripguard.security.auth import ConsoleUser, Public
from tripguard.security.permissions import Permission
from tripguard.security.principal import Principal
from tripguard.web.rendering import render, request_locale

STATIC_DIR = Path(__file__).resolve().parent / "static"
router = APIRouter(prefix="/console", include_in_schema=False)

# (label, href, permission): the navigation, shown to each role only where it may go.
NAVIGATION: list[tuple[str, str, Permission]] = [
    ("Home", "/console", Permission.CONSOLE_USE),
    ("Live map", "/console/live", Permission.LIVE_MAP_READ),
    ("SOS queue", "/console/incidents", Permission.INCIDENT_HANDLE),
    ("Trips", "/console/trips", Permission.ALERTS_READ),
    ("Audit log", "/console/audit", Permission.AUDIT_READ),
    ("Staff", "/console/staff", Permission.STAFF_READ),
    ("API keys", "/console/api-keys", Permission.APIKEY_MANAGE),
    ("Data catalogue", "/console/privacy/catalogue", Permission.CATALOGUE_READ),
    ("Requests", "/console/privacy/requests", Permission.REQUEST_HANDLE),
    ("Retention", "/console/privacy/retention", Permission.RETENTION_MANAGE),
    ("Breaches", "/console/privacy/breaches", Permission.BREACH_MANAGE),
]


def nav_for(principal: Principal) -> list[dict[str, str]]:
    return [{"label": label, "href": href} for label, href, perm in NAVIGATION if principal.can(perm)]


def page(request: Request, template: str, principal: Principal, current: str, *, status_code: int = 200,
         **context: object) -> HTMLResponse:
    return render(request, template, status_code=status_code, principal=principal,
                  nav=nav_for(principal), current=current,
                  watch_cases=principal.can(Permission.INCIDENT_HANDLE), **context)


def error_text(exc: DomainError) -> str:
    if exc.errors:
        return "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
    return exc.detail or exc.title


def i18n_text(request: Request, message: str) -> str:
    token = i18n.current_locale.set(request_locale(request))
    try:
        return i18n.gettext(message)
    finally:
        i18n.current_locale.reset(token)


@router.get("")
def home(request: Request, principal: ConsoleUser) -> HTMLResponse:
    return page(request, "home.html", principal, "/console", roles=sorted(principal.roles))


@router.get("/lang/{locale}", dependencies=[Public])
def choose_language(locale: str, next: Annotated[str, Query(max_length=200)] = "/console") -> Response:
    target = next if next.startswith("/console") and "//" not in next else "/console"
    response = RedirectResponse(target, status_code=303)
    if locale in i18n.LOCALES:
        response.set_cookie(i18n.LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax", path="/")
    return response


def render_console_error(request: Request, exc: DomainError) -> Response:
    """Console pages answer errors with a page (or the sign-in page), not problem+json."""
    if exc.status == 401:
        return RedirectResponse("/console/sign-in", status_code=303)
    return render(request, "error.html", status_code=exc.status, principal=None,
                  title=i18n_text(request, exc.title), detail=exc.detail or "")
