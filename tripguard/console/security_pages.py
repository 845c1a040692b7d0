"""Security's console pages: sign-in with a second factor, sign-out, staff accounts and roles, API keys
(here, in the console kit's package, since the kit sits above the platform)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tripguard.console.confirmations import Question, ask
from tripguard.console.rendering import render
from tripguard.console.shell import (
    CONFIRMED,
    Confirmation,
    ask_first,
    error_text,
    i18n_text,
    page,
    safe_next,
)
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.core.errors import DomainError
from tripguard.core.i18n import N_
from tripguard.core.settings import Settings
from tripguard.core.types import CleanStr, Identifier
from tripguard.security import credentials
from tripguard.security import service as security_service
from tripguard.security.api import rate_limit_sign_in, set_session_cookie, staff_read
from tripguard.security.auth import (
    SESSION_COOKIE,
    ApiKeyManager,
    ConsoleUser,
    Public,
    RoleManager,
    SessionRevoker,
    StaffManager,
    StaffReader,
)
from tripguard.security.deps import SignInLimiter
from tripguard.security.permissions import API_KEY_SCOPES, STAFF_ROLES, Permission, Role
from tripguard.security.principal import Principal
from tripguard.security.schemas import TICKET, USERNAME_PATTERN

router = APIRouter(prefix="/console", include_in_schema=False)
REVOKE_KEY = ask("security.api_key_revoke", N_("Revoke this API key?"),
                 N_("Every system using it is refused from now on. A revoked key cannot be restored; "
                    "create a new one instead."), N_("Revoke"))


# ---- sign-in ---------------------------------------------------------------------------------


Next = Annotated[str | None, Form(max_length=500)]  # the page to return to after signing in


@router.get("/sign-in", dependencies=[Public])
def sign_in_page(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
    return render(request, "security/sign_in.html", principal=None, next=next if safe_next(next) else None)


def _after_sign_in(request: Request, settings: Settings, outcome: security_service.SignInOutcome,
                   next: str | None) -> Response:
    next = next if safe_next(next) else None
    if outcome.status == "signed_in":
        response = RedirectResponse(next or "/console", status_code=303)
        set_session_cookie(response, settings, outcome.session_token or "")
        return response
    enrol = outcome.status == "totp_enrolment_required"
    context: dict[str, Any] = {"ticket": outcome.ticket, "enrol": enrol, "next": next}
    if enrol and outcome.totp_uri:
        context["qr"] = segno.make(outcome.totp_uri, error="m").svg_data_uri(scale=5)
        context["secret"] = credentials.totp_secret_from_uri(outcome.totp_uri)
    return render(request, "security/totp.html", principal=None, **context)


@router.post("/sign-in", dependencies=[Public])
def sign_in(request: Request, session: DbSession, settings: AppSettings, limiter: SignInLimiter,
            username: Annotated[CleanStr, Form(max_length=64)],
            password: Annotated[str, Form(max_length=1024)], next: Next = None) -> Response:
    rate_limit_sign_in(request, settings, limiter)
    try:
        outcome = security_service.sign_in(session, settings=settings, username=username, password=password,
                                           totp_code=None)
    except security_service.SignInFailed:
        session.commit()  # the failure count (lock-out) is durable before anything else can fail
        return render(request, "security/sign_in.html", status_code=401, principal=None, username=username,
                      next=next if safe_next(next) else None,
                      error=i18n_text(request, "Wrong user name or password, or the account is locked."))
    return _after_sign_in(request, settings, outcome, next)


@router.post("/totp", dependencies=[Public])
def totp(
    request: Request, session: DbSession, settings: AppSettings, limiter: SignInLimiter,
    ticket: Annotated[str, Form(max_length=2048, pattern=TICKET)],
    code: Annotated[str, Form(max_length=16)],
    enrol: Annotated[str, Form(max_length=1)] = "",
    next: Next = None,
) -> Response:
    rate_limit_sign_in(request, settings, limiter)
    try:
        outcome = security_service.complete_totp(session, settings=settings, ticket=ticket, code=code)
    except security_service.SignInFailed:
        session.commit()  # the failure count (lock-out) is durable before anything else can fail
        next = next if safe_next(next) else None
        if enrol:  # the enrolment secret stays pending: show the same QR code again
            return render(request, "security/sign_in.html", status_code=401, principal=None, next=next,
                          error=i18n_text(request, "That code did not match. Sign in again."))
        return render(request, "security/totp.html", status_code=401, principal=None, ticket=ticket, enrol=False,
                      next=next, error=i18n_text(request, "That code did not match. Try the next one."))
    return _after_sign_in(request, settings, outcome, next)


@router.post("/sign-out")
def sign_out(principal: ConsoleUser, session: DbSession) -> Response:
    if principal.session_id:
        security_service.end_session(session, actor=principal.actor, session_id=principal.session_id)
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---- staff -----------------------------------------------------------------------------------


def _staff_page(request: Request, principal: Principal, session: DbSession, status_code: int = 200,
                **context: object) -> HTMLResponse:
    return page(request, "security/staff.html", principal, "/console/staff", status_code=status_code,
                staff_list=[staff_read(s) for s in security_service.list_staff(session)],
                can_manage=principal.can(Permission.STAFF_MANAGE),
                can_roles=principal.can(Permission.STAFF_ROLES),
                can_revoke=principal.can(Permission.SESSION_REVOKE),
                all_roles=sorted(STAFF_ROLES), **{"values": {}, "problems": {}, **context})


# The security administrator's account actions: (what it asks first, or None; what it says once done).
ACCOUNT_ACTIONS: dict[str, tuple[Question | None, str]] = {
    "unlock": (None, N_("Account unlocked.")),
    "totp-reset": (ask("security.totp_reset", N_("Reset this person's second factor?"),
                       N_("Their authenticator app stops working for TripGuard; they enrol a new one at their next "
                          "sign-in, and their open sessions end."), N_("Reset second factor")),
                   N_("Second factor reset: they enrol again at their next sign-in.")),
    "sessions-revoke": (ask("security.sessions_revoke", N_("Sign this person out everywhere?"),
                            N_("Every open session of theirs ends now; they must sign in again."),
                            N_("Sign out everywhere")),
                        N_("Their sessions were ended.")),
}


@router.post("/staff/{staff_id}/account/unlock")
def staff_unlock(request: Request, staff_id: Identifier, principal: RoleManager, session: DbSession) -> HTMLResponse:
    return _account_action(request, principal, session, staff_id, "unlock", CONFIRMED)


@router.post("/staff/{staff_id}/account/totp-reset")
def staff_totp_reset(request: Request, staff_id: Identifier, principal: RoleManager, session: DbSession,
                     confirm: Confirmation = "") -> HTMLResponse:
    return _account_action(request, principal, session, staff_id, "totp-reset", confirm)


@router.post("/staff/{staff_id}/account/sessions-revoke")
def staff_sessions_revoke(request: Request, staff_id: Identifier, principal: SessionRevoker, session: DbSession,
                          confirm: Confirmation = "") -> HTMLResponse:
    return _account_action(request, principal, session, staff_id, "sessions-revoke", confirm)


def _account_action(request: Request, principal: Principal, session: DbSession, staff_id: str, action: str,
                    confirm: str) -> HTMLResponse:
    """Unlock an account, reset its second factor, or end its sessions (the security administrator)."""
    question, done = ACCOUNT_ACTIONS[action]
    if question and (asked := ask_first(request, principal, "/console/staff", question=question,
                                        action=f"/console/staff/{staff_id}/account/{action}", fields={},
                                        confirm=confirm)):
        return asked
    try:
        if action == "unlock":
            security_service.unlock_staff(session, actor=principal.actor, staff_id=staff_id)
        elif action == "totp-reset":
            security_service.reset_totp(session, actor=principal.actor, staff_id=staff_id)
        else:
            security_service.get_staff(session, staff_id=staff_id)
            security_service.revoke_sessions(session, actor=principal.actor, staff_id=staff_id, reason="revoked")
    except DomainError as exc:
        session.rollback()
        return _staff_page(request, principal, session, status_code=exc.status, error=error_text(request, exc))
    return _staff_page(request, principal, session, notice=i18n_text(request, done))


@router.get("/staff")
def staff_page(request: Request, principal: StaffReader, session: DbSession) -> HTMLResponse:
    return _staff_page(request, principal, session)


def _new_staff_problems(request: Request, username: str, display_name: str) -> dict[str, str]:
    """What is wrong with the new-account form, by field, in the page's language."""
    problems = {}
    if not (3 <= len(username) <= 64 and re.fullmatch(USERNAME_PATTERN, username)):
        problems["username"] = i18n_text(request, N_("3 to 64 lower-case letters, digits, dots, dashes or underscores, "
                                                     "starting with a letter or digit."))
    if not (display_name.strip() and len(display_name) <= 128 and display_name.isprintable()):
        problems["display_name"] = i18n_text(request, N_("A name of 1 to 128 characters."))
    return problems


@router.post("/staff")
def staff_create(
    request: Request, principal: StaffManager, session: DbSession,
    username: Annotated[str, Form(max_length=1024)] = "",
    display_name: Annotated[str, Form(max_length=1024)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> HTMLResponse:
    """A new account; a mistake comes back with the input kept (never the password) and the field marked."""
    values = {"username": username, "display_name": display_name}
    problems = _new_staff_problems(request, username, display_name)
    if problems:
        return _staff_page(request, principal, session, status_code=422, values=values, problems=problems,
                           error=i18n_text(request, N_("Some of what was entered is not valid.")))
    try:
        staff = security_service.create_staff(session, actor=principal.actor, username=username,
                                              display_name=display_name.strip(), password=password)
    except DomainError as exc:
        session.rollback()
        field = (exc.errors[0].field.rpartition(".")[2] if exc.errors else
                 "password" if "password" in (exc.detail or "") else "username")
        return _staff_page(request, principal, session, status_code=exc.status, error=error_text(request, exc),
                           values=values, problems={field: error_text(request, exc)})
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
        return _staff_page(request, principal, session, status_code=422,
                           error=i18n_text(request, "There is no such role."))
    except DomainError as exc:
        session.rollback()
        return _staff_page(request, principal, session, status_code=exc.status, error=error_text(request, exc))
    return _staff_page(request, principal, session, notice=i18n_text(request, "Roles saved."))


# ---- API keys --------------------------------------------------------------------------------


def _keys_page(request: Request, principal: Principal, session: DbSession, status_code: int = 200,
               **context: object) -> HTMLResponse:
    return page(request, "security/api_keys.html", principal, "/console/api-keys", status_code=status_code,
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
        _, secret = security_service.create_api_key(session, settings=settings, actor=principal.actor, name=name,
                                                    scopes=chosen)
    except ValueError:
        return _keys_page(request, principal, session, status_code=422,
                          error=i18n_text(request, "There is no such scope."))
    except DomainError as exc:
        session.rollback()
        return _keys_page(request, principal, session, status_code=exc.status, error=error_text(request, exc))
    return _keys_page(request, principal, session, created=secret)


@router.post("/api-keys/{key_id}/revoke")
def api_key_revoke(request: Request, key_id: Identifier, principal: ApiKeyManager, session: DbSession,
                   confirm: Confirmation = "") -> Response:
    if asked := ask_first(request, principal, "/console/api-keys", question=REVOKE_KEY,
                          action=f"/console/api-keys/{key_id}/revoke", fields={}, confirm=confirm):
        return asked
    security_service.revoke_api_key(session, actor=principal.actor, key_id=key_id)
    return RedirectResponse("/console/api-keys", status_code=303)


