"""The console's shell: navigation by role, page rendering inside the layout, the language switch, the
confirmation and error pages. Each domain's pages live in its own `console.py`; the home page is the
web shell's (`web.home`), since its figures come from every domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tripguard.console.confirmations import Question
from tripguard.console.labels import detail_label
from tripguard.console.rendering import render, request_locale
from tripguard.core import i18n
from tripguard.core.db import unit_of_work
from tripguard.core.deps import sessions_of, settings_of
from tripguard.core.errors import DomainError
from tripguard.core.i18n import N_
from tripguard.security import service as security_service
from tripguard.security.auth import SESSION_COOKIE, Public
from tripguard.security.permissions import Permission
from tripguard.security.principal import Principal

STATIC_DIR = Path(__file__).resolve().parent / "static"
router = APIRouter(prefix="/console", include_in_schema=False)
root_router = APIRouter(include_in_schema=False)

# (label, href, permission): the navigation, shown to each role only where it may go.
NAVIGATION: list[tuple[str, str, Permission]] = [
    ("Home", "/console", Permission.CONSOLE_USE),
    ("Live map", "/console/live", Permission.LIVE_MAP_READ),
    ("SOS queue", "/console/incidents", Permission.INCIDENT_HANDLE),
    ("Trips", "/console/trips", Permission.ALERTS_READ),
    ("Check-ins", "/console/check-ins", Permission.ALERTS_READ),
    ("Devices", "/console/devices", Permission.ALERTS_READ),
    ("Orders", "/console/orders", Permission.ORDER_READ),
    ("Complaints", "/console/complaints", Permission.COMPLAINT_READ),
    ("Answer templates", "/console/complaints/templates", Permission.COMPLAINT_TEMPLATES),
    ("Reports", "/console/reports", Permission.REPORT_READ),
    ("Supervision", "/console/supervision", Permission.SUPERVISION_READ),
    ("Discipline", "/console/discipline", Permission.DISCIPLINE_DECIDE),
    ("Training", "/console/training", Permission.TRAINING_MANAGE),
    ("Screening queue", "/console/screening/queue", Permission.SCREENING_ADJUDICATE),
    ("Applicants", "/console/screening", Permission.SCREENING_ADJUDICATE),
    ("Audit log", "/console/audit", Permission.AUDIT_READ),
    ("Staff", "/console/staff", Permission.STAFF_READ),
    ("API keys", "/console/api-keys", Permission.APIKEY_MANAGE),
    ("Data catalogue", "/console/privacy/catalogue", Permission.CATALOGUE_READ),
    ("Requests", "/console/privacy/requests", Permission.REQUEST_HANDLE),
    ("Notices", "/console/privacy/notices", Permission.NOTICE_PUBLISH),
    ("Retention", "/console/privacy/retention", Permission.RETENTION_MANAGE),
    ("Breaches", "/console/privacy/breaches", Permission.BREACH_MANAGE),
    ("Agreement", "/console/agreement", Permission.AGREEMENT_SIGN),
]
# Pages that exist in development only (the demo's helpers).
DEVELOPMENT_NAVIGATION: list[tuple[str, str, Permission]] = [
    ("Messages sent", "/console/messages", Permission.MESSAGES_RECORDED),
]


def nav_for(principal: Principal, *, development: bool = False) -> list[dict[str, str]]:
    entries = NAVIGATION + (DEVELOPMENT_NAVIGATION if development else [])
    return [{"label": label, "href": href} for label, href, perm in entries if principal.can(perm)]


def page(request: Request, template: str, principal: Principal, current: str, *, status_code: int = 200,
         **context: object) -> HTMLResponse:
    development = settings_of(request.app).env == "development"
    return render(request, template, status_code=status_code, principal=principal,
                  nav=nav_for(principal, development=development), current=current,
                  watch_cases=principal.can(Permission.INCIDENT_HANDLE), **context)


def error_text(request: Request, exc: DomainError) -> str:
    """A problem as one line in the page's language (a form's error above it)."""
    _, message, fields = problem_text(request, exc)
    return "; ".join([message, *(f"{field}: {problem}" for field, problem in fields)])


CONFIRMED = "yes"
Confirmation = Annotated[str, Form(max_length=3)]  # "yes" once the person confirmed a destructive action


def confirmation_page(request: Request, principal: Principal, current: str, *, action: str,
                      fields: Mapping[str, str | Sequence[str]], question: str, consequence: str,
                      button: str) -> HTMLResponse:
    """Asked before a destructive action runs (the page's dialog asks first; without it, this page):
    the same form again, confirmed. The question and the rest are English msgids, shown translated.
    A field given as a list goes back as that many values (a multiple select)."""
    hidden = [(name, value) for name, given in fields.items()
              for value in ([given] if isinstance(given, str) else given)]
    return page(request, "confirm.html", principal, current, action=action, fields=hidden, question=question,
                consequence=consequence, button=button, back=current)


def ask_first(request: Request, principal: Principal, current: str, *, question: Question, action: str,
              fields: Mapping[str, str | Sequence[str]], confirm: str) -> HTMLResponse | None:
    """The one gate of every irreversible or punitive console action: until the person confirmed
    (`confirm=yes`, which the shell's dialog adds), the confirmation page and nothing done; None once
    confirmed. `fields` are the form's own, sent again with the confirmation."""
    if confirm == CONFIRMED:
        return None
    return confirmation_page(request, principal, current, action=action, fields=fields, question=question.question,
                             consequence=question.consequence, button=question.button)


def i18n_text(request: Request, message: str) -> str:
    token = i18n.current_locale.set(request_locale(request))
    try:
        return i18n.gettext(message)
    finally:
        i18n.current_locale.reset(token)


@root_router.get("/", dependencies=[Public])
def root() -> Response:
    return RedirectResponse("/console", status_code=303)


@router.get("/lang/{locale}", dependencies=[Public])
def choose_language(locale: str, next: Annotated[str, Query(max_length=200)] = "/console") -> Response:
    target = next if safe_next(next) else "/console"
    response = RedirectResponse(target, status_code=303)
    if locale in i18n.LOCALES:
        response.set_cookie(i18n.LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax", path="/")
    return response


# What a problem means, in words for the person in front of the page (its detail is English for the
# API's clients; a zh page shows the detail only where the catalog translates it).
PROBLEM_TEXT = {
    "/problems/not-found": N_("The page or record you asked for does not exist, or is no longer kept."),
    "/problems/permission-denied": N_("Your roles do not allow this. Ask an administrator if your work needs it."),
    "/problems/invalid-input": N_("Some of what was entered is not valid."),
    "/problems/conflict": N_(
        "This is not possible in its current state, or it changed meanwhile. Reload and try again."),
    "/problems/too-many-requests": N_("Too many attempts. Wait a minute and try again."),
    "/problems/method-not-allowed": N_("This page cannot be used that way."),
    "/problems/agreement-unsigned": N_("Sign the confidentiality agreement in force before opening personal data: "
                                       "Agreement, in the menu."),
    "/problems/access-suspended": N_("Your access to personal data is suspended by a disciplinary decision."),
}


def problem_text(request: Request, exc: DomainError) -> tuple[str, str, list[tuple[str, str]]]:
    """(title, message, [(field, problem)]) in the page's language: English shows the problem's own
    detail; Chinese shows its translation, or the kind of problem explained."""
    locale = request_locale(request)
    token = i18n.current_locale.set(locale)
    try:
        title = i18n.gettext(exc.title)
        general = i18n.gettext(PROBLEM_TEXT.get(exc.type, exc.title))
        detail = exc.detail if exc.detail and exc.detail != exc.title else None
        message = general
        if detail and locale == "en" and not exc.errors:
            message = detail
        elif detail and locale != "en" and i18n.gettext(detail) != detail:
            message = i18n.gettext(detail)  # the detail is English for the API's clients: shown if translated
        fields = [(detail_label(e.field.rpartition(".")[2] or e.field),
                   e.message if locale == "en" else i18n.gettext("not valid")) for e in exc.errors or []]
    finally:
        i18n.current_locale.reset(token)
    return title, message, fields


def _signed_in(request: Request) -> Principal | None:
    """The principal of the request, if it got that far; else read from the session cookie."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or not request.url.path.startswith("/console"):
        return None
    with unit_of_work(sessions_of(request.app)) as session:  # an error page: outside the request's transaction
        return security_service.principal_from_session(session, settings=settings_of(request.app), token=cookie)


def sign_in_url(request: Request) -> str:
    """The sign-in page, coming back here afterwards (a page that was asked for with GET)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET" or not safe_next(target) or target.startswith("/console/sign-in"):
        return "/console/sign-in"
    return f"/console/sign-in?{urlencode({'next': target})}"


def safe_next(target: str | None) -> bool:
    """Only a console page of this site: no scheme, host, `//` or backslash tricks."""
    if not target:
        return False
    return (target.startswith("/console") and "//" not in target and "\\" not in target and target.isprintable()
            and len(target) <= 500)


def render_console_error(request: Request, exc: DomainError) -> Response:
    """Console pages answer errors with a page inside the shell (navigation and sign-out for whoever is
    signed in), in their language; not signed in, the sign-in page, which returns here. A share link's
    error page stands alone: no console around it."""
    if exc.status == 401 and request.url.path.startswith("/console"):
        return RedirectResponse(sign_in_url(request), status_code=303)
    title, message, fields = problem_text(request, exc)
    context: dict[str, object] = {"title": title, "message": message, "fields": fields, "status": exc.status,
                                  "sign_first": exc.type == "/problems/agreement-unsigned"}
    if request.url.path.startswith("/s/"):
        return render(request, "share_error.html", status_code=exc.status, **context)
    principal = _signed_in(request)
    if principal is None:
        return render(request, "error.html", status_code=exc.status, principal=None, **context)
    return page(request, "error.html", principal, "", status_code=exc.status, **context)
