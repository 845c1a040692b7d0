"""HTTP routes: sign-in and sessions, staff accounts, API keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.core.errors import TooManyRequests
from tripguard.core.settings import Settings
from tripguard.core.types import Identifier
from tripguard.security import service
from tripguard.security.auth import (
    SESSION_COOKIE,
    Anyone,
    ApiKeyManager,
    Public,
    RoleManager,
    SessionRevoker,
    StaffManager,
    StaffReader,
)
from tripguard.security.deps import SignInLimiter
from tripguard.security.models import ApiKey, StaffAccount
from tripguard.security.permissions import Permission, Role
from tripguard.security.rate_limit import SlidingWindowLimiter, client_address
from tripguard.security.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    RolesUpdate,
    SignInRequest,
    SignInResult,
    StaffCreate,
    StaffRead,
    TotpRequest,
    WhoAmI,
)

router = APIRouter(prefix="/api/v1", tags=["security"])


def staff_read(staff: StaffAccount) -> StaffRead:
    return StaffRead(
        id=staff.id, username=staff.username, display_name=staff.display_name,
        roles=sorted(service.staff_roles(staff)), totp_enrolled=staff.totp_secret is not None,
        locked=service.is_locked(staff, utcnow()), disabled=staff.disabled_at is not None,
        created_at=staff.created_at,
    )


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=settings.uses_tls,
        max_age=settings.session_absolute_hours * 3600, path="/",
    )


def rate_limit_sign_in(request: Request, settings: Settings, limiter: SlidingWindowLimiter) -> None:
    client = client_address(request, settings.trusted_proxies)
    wait = limiter.hit(client)
    if wait is not None:
        raise TooManyRequests("too many sign-in attempts from this address", retry_after=wait)


def _result(outcome: service.SignInOutcome, response: Response, settings: Settings) -> SignInResult:
    if outcome.session_token:
        set_session_cookie(response, settings, outcome.session_token)
    return SignInResult(
        status=outcome.status,  # type: ignore[arg-type]
        ticket=outcome.ticket, totp_uri=outcome.totp_uri,
        staff=staff_read(outcome.staff) if outcome.status == "signed_in" else None,
    )


@router.post("/auth/sign-in", dependencies=[Public])
def sign_in(body: SignInRequest, request: Request, response: Response, session: DbSession,
            settings: AppSettings, limiter: SignInLimiter) -> SignInResult:
    """Password first; privileged roles then give (or enrol) a TOTP code with the ticket returned."""
    rate_limit_sign_in(request, settings, limiter)
    try:
        outcome = service.sign_in(session, settings=settings, username=body.username, password=body.password,
                                  totp_code=body.totp_code)
    except service.SignInFailed:
        session.commit()  # keep the failure count and its audit entry
        raise
    return _result(outcome, response, settings)


@router.post("/auth/totp", dependencies=[Public])
def sign_in_totp(body: TotpRequest, request: Request, response: Response, session: DbSession,
                 settings: AppSettings, limiter: SignInLimiter) -> SignInResult:
    """Second step: the ticket from sign-in and a TOTP code (enrols the authenticator if pending)."""
    rate_limit_sign_in(request, settings, limiter)
    try:
        outcome = service.complete_totp(session, settings=settings, ticket=body.ticket, code=body.code)
    except service.SignInFailed:
        session.commit()  # the failure count (lock-out) and its audit entry outlive the error's rollback
        raise
    return _result(outcome, response, settings)


@router.post("/auth/sign-out", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(principal: Anyone, response: Response, session: DbSession) -> None:
    if principal.session_id:
        service.end_session(session, actor=principal.actor, session_id=principal.session_id)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/auth/whoami")
def whoami(principal: Anyone) -> WhoAmI:
    return WhoAmI(kind=principal.kind, id=principal.id, name=principal.name,
                  roles=sorted(principal.roles), permissions=sorted(principal.permissions))


@router.get("/staff")
def list_staff(_: StaffReader, session: DbSession) -> list[StaffRead]:
    return [staff_read(staff) for staff in service.list_staff(session)]


@router.post("/staff", status_code=status.HTTP_201_CREATED)
def create_staff(body: StaffCreate, principal: StaffManager, session: DbSession) -> StaffRead:
    """Create an account without roles; a security administrator grants them."""
    staff = service.create_staff(session, actor=principal.actor, username=body.username,
                                 display_name=body.display_name, password=body.password)
    return staff_read(staff)


@router.put("/staff/{staff_id}/roles")
def set_roles(staff_id: Identifier, body: RolesUpdate, principal: RoleManager, session: DbSession) -> StaffRead:
    staff = service.set_roles(session, actor=principal.actor, staff_id=staff_id,
                              roles={Role(r.value) for r in body.roles})
    return staff_read(staff)


@router.post("/staff/{staff_id}/disable")
def disable_staff(staff_id: Identifier, principal: StaffManager, session: DbSession) -> StaffRead:
    return staff_read(service.disable_staff(session, actor=principal.actor, staff_id=staff_id))


@router.post("/staff/{staff_id}/unlock")
def unlock_staff(staff_id: Identifier, principal: RoleManager, session: DbSession) -> StaffRead:
    return staff_read(service.unlock_staff(session, actor=principal.actor, staff_id=staff_id))


@router.post("/staff/{staff_id}/totp-reset")
def reset_totp(staff_id: Identifier, principal: RoleManager, session: DbSession) -> StaffRead:
    return staff_read(service.reset_totp(session, actor=principal.actor, staff_id=staff_id))


@router.post("/staff/{staff_id}/sessions/revoke")
def revoke_sessions(staff_id: Identifier, principal: SessionRevoker, session: DbSession) -> dict[str, int]:
    service.get_staff(session, staff_id=staff_id)
    count = service.revoke_sessions(session, actor=principal.actor, staff_id=staff_id, reason="revoked")
    return {"revoked": count}


def api_key_read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead.model_validate(key)


@router.get("/api-keys")
def list_api_keys(_: ApiKeyManager, session: DbSession) -> list[ApiKeyRead]:
    return [api_key_read(key) for key in service.list_api_keys(session)]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
def create_api_key(body: ApiKeyCreate, principal: ApiKeyManager, session: DbSession,
                   settings: AppSettings) -> ApiKeyCreated:
    """The full key is in this response only; TripGuard keeps a keyed hash of it."""
    key, secret = service.create_api_key(session, settings=settings, actor=principal.actor, name=body.name,
                                         scopes={Permission(s.value) for s in body.scopes})
    return ApiKeyCreated(**api_key_read(key).model_dump(), secret=secret)


@router.post("/api-keys/{key_id}/revoke")
def revoke_api_key(key_id: Identifier, principal: ApiKeyManager, session: DbSession) -> ApiKeyRead:
    return api_key_read(service.revoke_api_key(session, actor=principal.actor, key_id=key_id))
