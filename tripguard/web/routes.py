"""The staff console: sign-in with a second factor, navigation by role, audit explorer, staff, API keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tripguard.audit import repository as audit_repository
from tripguard.audit import service as audit_service
from tripguard.audit.verify import verify_log
from tripguard.core import i18n
from tripguard.core.db import DbSession
from tripguard.core.errors import DomainError
from tripguard.core.types import CleanStr, Identifier
from tripguard.security import credentials
from tripguard.security import service as security_service
from tripguard.security.api import rate_limit_sign_in, set_session_cookie, staff_read
from tripguard.security.auth import (
    SESSION_COOKIE,
    ApiKeyManager,
    AppSettings,
    AuditReader,
    ConsoleUser,
    Public,
    RoleManager,
    StaffManager,
    StaffReader,
)
from tripguard.security.permissions import API_KEY_SCOPES, STAFF_ROLES, Permission, Role
from tripguard.security.principal import Principal
from tripguard.security.schemas import TICKET, USERNAME_PATTERN
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
                  nav=nav_for(principal), current=current, **context)


def _error_text(exc: DomainError) -> str:
    if exc.errors:
        return "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
    return exc.detail or exc.title


# ---- sign-in ---------------------------------------------------------------------------------


@router.get("/sign-in", dependencies=[Public])
def sign_in_page(request: Request) -> HTMLResponse:
    return render(request, "sign_in.html", principal=None)


def _after_sign_in(request: Request, outcome: security_service.SignInOutcome) -> Response:
    if outcome.status == "signed_in":
        response = RedirectResponse("/console", status_code=303)
        set_session_cookie(response, request.app.state.settings, outcome.session_token or "")
        return response
    enrol = outcome.status == "totp_enrolment_required"
    context: dict[str, Any] = {"ticket": outcome.ticket, "enrol": enrol}
    if enrol and outcome.totp_uri:
        context["qr"] = segno.make(outcome.totp_uri, error="m").svg_data_uri(scale=5)
        context["secret"] = credentials.totp_secret_from_uri(outcome.totp_uri)
    return render(request, "totp.html", principal=None, **context)


@router.post("/sign-in", dependencies=[Public])
def sign_in(
    request: Request, session: DbSession, settings: AppSettings,
    username: Annotated[CleanStr, Form(max_length=64)], password: Annotated[str, Form(max_length=1024)],
) -> Response:
    rate_limit_sign_in(request)
    try:
        outcome = security_service.sign_in(session, settings, username=username, password=password,
                                           totp_code=None)
    except security_service.SignInFailed:
        session.commit()
        return render(request, "sign_in.html", status_code=401, principal=None, username=username,
                      error=i18n_text(request, "Wrong user name or password, or the account is locked."))
    return _after_sign_in(request, outcome)


@router.post("/totp", dependencies=[Public])
def totp(
    request: Request, session: DbSession, settings: AppSettings,
    ticket: Annotated[str, Form(max_length=2048, pattern=TICKET)],
    code: Annotated[str, Form(max_length=16)],
    enrol: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    rate_limit_sign_in(request)
    try:
        outcome = security_service.complete_totp(session, settings, ticket=ticket, code=code)
    except security_service.SignInFailed:
        session.commit()
        if enrol:  # the enrolment secret stays pending: show the same QR code again
            return render(request, "sign_in.html", status_code=401, principal=None,
                          error=i18n_text(request, "That code did not match. Sign in again."))
        return render(request, "totp.html", status_code=401, principal=None, ticket=ticket, enrol=False,
                      error=i18n_text(request, "That code did not match. Try the next one."))
    return _after_sign_in(request, outcome)


def i18n_text(request: Request, message: str) -> str:
    token = i18n.current_locale.set(request_locale(request))
    try:
        return i18n.gettext(message)
    finally:
        i18n.current_locale.reset(token)


@router.post("/sign-out")
def sign_out(principal: ConsoleUser, session: DbSession) -> Response:
    if principal.session_id:
        security_service.end_session(session, actor=principal.actor, session_id=principal.session_id)
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{locale}", dependencies=[Public])
def choose_language(locale: str, next: Annotated[str, Query(max_length=200)] = "/console") -> Response:
    target = next if next.startswith("/console") and "//" not in next else "/console"
    response = RedirectResponse(target, status_code=303)
    if locale in i18n.LOCALES:
        response.set_cookie(i18n.LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax", path="/")
    return response


# ---- home ------------------------------------------------------------------------------------


@router.get("")
def home(request: Request, principal: ConsoleUser) -> HTMLResponse:
    return page(request, "home.html", principal, "/console", roles=sorted(principal.roles))


# ---- audit explorer --------------------------------------------------------------------------


def _audit_filter(request: Request) -> audit_repository.AuditFilter:
    params = request.query_params

    def text(name: str, limit: int) -> str | None:
        value = (params.get(name) or "").strip()[:limit]
        return value if value and value.isprintable() else None

    before = params.get("before_id", "")
    outcome = text("outcome", 16)
    return audit_repository.AuditFilter(
        actor_id=text("actor_id", 64), action=text("action", 64), target_type=text("target_type", 32),
        target_id=text("target_id", 64), outcome=outcome if outcome in audit_service.OUTCOMES else None,
        before_id=int(before) if before.isdigit() and len(before) < 19 else None, limit=50,
    )


def _rows_context(request: Request, session: DbSession) -> dict[str, Any]:
    filters = _audit_filter(request)
    entries = audit_repository.search_entries(session, filters)
    next_before = entries[-1].id if len(entries) == filters.limit else None
    query = {k: v for k, v in request.query_params.items() if k != "before_id" and v}
    if next_before is not None:
        query["before_id"] = str(next_before)
    return {"entries": entries, "filters": filters, "next_before_id": next_before,
            "next_query": urlencode(query)}


@router.get("/audit")
def audit_page(request: Request, principal: AuditReader, session: DbSession) -> HTMLResponse:
    return page(request, "audit.html", principal, "/console/audit",
                tree_size=audit_service.tree_size(session), head=audit_service.latest_head(session),
                **_rows_context(request, session))


@router.get("/audit/rows")
def audit_rows(request: Request, _: AuditReader, session: DbSession) -> HTMLResponse:
    return render(request, "audit_rows.html", **_rows_context(request, session))


@router.get("/audit/verify")
def audit_verify(request: Request, _: AuditReader, session: DbSession) -> HTMLResponse:
    report = verify_log(session, request.app.state.audit_key.public_key())
    return render(request, "audit_verify.html", report=report)


# ---- staff -----------------------------------------------------------------------------------


def _staff_page(request: Request, principal: Principal, session: DbSession, status_code: int = 200,
                **context: object) -> HTMLResponse:
    return page(request, "staff.html", principal, "/console/staff", status_code=status_code,
                staff_list=[staff_read(s) for s in security_service.list_staff(session)],
                can_manage=principal.can(Permission.STAFF_MANAGE),
                can_roles=principal.can(Permission.STAFF_ROLES),
                all_roles=sorted(STAFF_ROLES), **context)


@router.get("/staff")
def staff_page(request: Request, principal: StaffReader, session: DbSession) -> HTMLResponse:
    return _staff_page(request, principal, session)


@router.post("/staff")
def staff_create(
    request: Request, principal: StaffManager, session: DbSession,
    username: Annotated[str, Form(max_length=64, pattern=USERNAME_PATTERN)],
    display_name: Annotated[CleanStr, Form(max_length=128)],
    password: Annotated[str, Form(max_length=1024)],
) -> HTMLResponse:
    try:
        staff = security_service.create_staff(session, actor=principal.actor, username=username,
                                              display_name=display_name, password=password)
    except DomainError as exc:
        session.rollback()
        return _staff_page(request, principal, session, status_code=exc.status, error=_error_text(exc))
    return _staff_page(request, principal, session,
                       notice=i18n_text(request, "Account created.") + f" {staff.username}")


@router.post("/staff/{staff_id}/roles")
def staff_roles(
    request: Request, staff_id: Identifier, principal: RoleManager, session: DbSession,
    roles: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    try:
        chosen = {Role(value) for value in roles or []}
        security_service.set_roles(session, actor=principal.actor, staff_id=staff_id, roles=chosen)
    except ValueError:
        return _staff_page(request, principal, session, status_code=422, error="unknown role")
    except DomainError as exc:
        session.rollback()
        return _staff_page(request, principal, session, status_code=exc.status, error=_error_text(exc))
    return _staff_page(request, principal, session, notice=i18n_text(request, "Roles saved."))


# ---- API keys --------------------------------------------------------------------------------


def _keys_page(request: Request, principal: Principal, session: DbSession, status_code: int = 200,
               **context: object) -> HTMLResponse:
    return page(request, "api_keys.html", principal, "/console/api-keys", status_code=status_code,
                keys=security_service.list_api_keys(session), scopes=sorted(API_KEY_SCOPES), **context)


@router.get("/api-keys")
def api_keys_page(request: Request, principal: ApiKeyManager, session: DbSession) -> HTMLResponse:
    return _keys_page(request, principal, session)


@router.post("/api-keys")
def api_key_create(
    request: Request, principal: ApiKeyManager, session: DbSession, settings: AppSettings,
    name: Annotated[CleanStr, Form(min_length=1, max_length=128)],
    scopes: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    try:
        chosen = {Permission(value) for value in scopes or []}
        _, secret = security_service.create_api_key(session, settings, actor=principal.actor, name=name,
                                                    scopes=chosen)
    except ValueError:
        return _keys_page(request, principal, session, status_code=422, error="unknown scope")
    except DomainError as exc:
        session.rollback()
        return _keys_page(request, principal, session, status_code=exc.status, error=_error_text(exc))
    return _keys_page(request, principal, session, created=secret)


@router.post("/api-keys/{key_id}/revoke")
def api_key_revoke(request: Request, key_id: Identifier, principal: ApiKeyManager, session: DbSession) -> Response:
    security_service.revoke_api_key(session, actor=principal.actor, key_id=key_id)
    return RedirectResponse("/console/api-keys", status_code=303)


def render_console_error(request: Request, exc: DomainError) -> Response:
    """Console pages answer errors with a page (or the sign-in page), not problem+json."""
    if exc.status == 401:
        return RedirectResponse("/console/sign-in", status_code=303)
    return render(request, "error.html", status_code=exc.status, principal=None,
                  title=i18n_text(request, exc.title), detail=exc.detail or "")
