"""Resolve the principal of a request and check the permission each route declares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tripguard.audit.deps import Gate
from tripguard.core.admission import Credential
from tripguard.core.bookkeeping import write_bookkeeping
from tripguard.core.db import DbSession
from tripguard.core.deps import (
    AppSettings,
    fast_reader_of,
    last_seen_due_of,
    sessions_of,
    settings_of,
)
from tripguard.core.errors import NotAuthenticated, PermissionDenied
from tripguard.core.settings import Settings
from tripguard.security import service
from tripguard.security.permissions import Permission, permissions_for
from tripguard.security.principal import Principal
from tripguard.security.subject_tokens import verify_subject_token

SESSION_COOKIE = "tg_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def request_credential(request: Request) -> Credential | None:
    """What the request authenticates with, unchecked (admission counts requests per credential before any
    is resolved)."""
    token = _bearer(request)
    if token is not None:
        return Credential(token, api_key=token.startswith(service.API_KEY_PREFIX))
    cookie = request.cookies.get(SESSION_COOKIE)
    return Credential(cookie, api_key=False) if cookie else None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _check_same_origin(request: Request) -> None:
    # Cookie-authenticated writes must come from our own pages (SameSite=Strict is the first wall).
    if request.method not in UNSAFE_METHODS:
        return
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise PermissionDenied("cross-site request refused")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin != expected:
            raise PermissionDenied("cross-origin request refused")


async def resolve_principal(request: Request, settings: AppSettings) -> Principal | None:
    token = _bearer(request)
    if token is not None:
        if token.startswith(service.API_KEY_PREFIX):
            return await _api_key_principal(request, token)
        claims = verify_subject_token(token, settings)
        return Principal(kind="subject", id=claims.subject_id, roles=frozenset({claims.role}),
                         permissions=permissions_for({claims.role}), name=claims.subject_id)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = await _session_principal(request, settings, cookie)
        if principal is not None:
            request.state.principal = principal  # a console error page shows the shell for them
            _check_same_origin(request)
            return principal
    return None


async def _session_principal(request: Request, settings: Settings, cookie: str) -> Principal | None:
    # Read on the event loop, outside the request's transaction; the last-seen write is bookkeeping in a
    # transaction of its own (core.bookkeeping): parallel requests of one session never queue on its row.
    # Every authenticated request passes here: the process's objects are read from the app directly
    # (core.deps' accessors) rather than as dependencies of their own, each one solved per request.
    row = await fast_reader_of(request.app).first(service.SESSION_LOOKUP,
                                                  token_hash=service.session_token_hash(settings, cookie))
    checked = service.principal_from_session_row(row, settings)
    if checked.principal is not None and checked.stale:
        session_id = checked.principal.session_id
        assert session_id is not None
        await _bookkeeping(request, f"session:{session_id}", service.touch_session, session_id)
    return checked.principal


async def _bookkeeping(request: Request, key: str, write: Callable[[Session, str], bool], row_id: str) -> None:
    """Write `row_id`'s bookkeeping if this process has not within the interval (in a thread, never waiting
    on a lock)."""
    due = last_seen_due_of(request.app)
    if not due.claim(key):
        return
    done = await run_in_threadpool(write_bookkeeping, sessions_of(request.app),
                                   write=lambda session: write(session, row_id))
    if not done:
        due.retry_soon(key)


async def current_principal(principal: Annotated[Principal | None, Depends(resolve_principal)]) -> Principal:
    if principal is None:
        raise NotAuthenticated("sign in, or send an API key or subject token")
    return principal


def requires(permission: Permission) -> DependsParam:
    """The dependency a route declares: it names the permission, and the permission test reads it."""

    if permission is Permission.PUBLIC:

        async def public() -> None:
            return None

        checker: Callable[..., Any] = public
    else:

        async def checker(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
            if not principal.can(permission):
                raise PermissionDenied(f"needs permission {permission.value}")
            return principal

    checker.required_permission = permission  # type: ignore[attr-defined]
    return DependsParam(checker)


RecordedKind = Callable[[Session, str], str | None]
_recorded_kind: list[RecordedKind] = []
# The kind of person the operator recorded under an id (passenger, driver, …), or None if unknown: privacy
# keeps the records and registers how to ask (`tripguard.wiring`); security, below it, never imports it.


def register_recorded_kind(lookup: RecordedKind) -> None:
    _recorded_kind[:] = [lookup]


def recorded_kind(session: Session, *, subject_id: str) -> str | None:
    if not _recorded_kind:  # refuse rather than let any subject token past the check
        raise RuntimeError("no lookup of recorded people is registered (tripguard.wiring.wire)")
    return _recorded_kind[0](session, subject_id)


def requires_own_record(permission: Permission) -> DependsParam:
    """`requires`, and for a subject token: its role must be the kind of person the operator recorded under
    that id (a courier token carrying a passenger's id reads nothing of theirs). Not on SOS: help first."""

    async def checker(principal: Annotated[Principal, Depends(current_principal)], session: DbSession) -> Principal:
        if not principal.can(permission):
            raise PermissionDenied(f"needs permission {permission.value}")
        if principal.kind == "subject":
            kind = await run_in_threadpool(recorded_kind, session, subject_id=principal.id)
            if kind is not None and kind not in {role.value for role in principal.roles}:
                raise PermissionDenied("this token's role is not the kind of person recorded under its id")
        return principal

    checker.required_permission = permission  # type: ignore[attr-defined]
    return DependsParam(checker)


async def _api_key_principal(request: Request, token: str) -> Principal:
    settings = settings_of(request.app)
    # Read on the event loop (core.fastread): an API key is on every call of the operator's backend.
    row = await fast_reader_of(request.app).first(service.API_KEY_LOOKUP, prefix=service.api_key_prefix(token))
    checked = service.principal_from_api_key(row, settings, token)
    if checked.principal is None:
        raise NotAuthenticated("unknown or revoked API key")
    if checked.stale:
        await _bookkeeping(request, f"api_key:{checked.principal.id}", service.touch_api_key, checked.principal.id)
    return checked.principal


def requires_api_key(permission: Permission) -> DependsParam:
    """`requires` for the hottest machine-only routes (the dispatch gate): one flat dependency that takes
    an API key and nothing else, so no other dependency is solved per request."""

    async def checker(request: Request) -> Principal:
        token = _bearer(request)
        if token is None or not token.startswith(service.API_KEY_PREFIX):
            raise NotAuthenticated("send the operator's API key")
        principal = await _api_key_principal(request, token)
        if not principal.can(permission):
            raise PermissionDenied(f"needs permission {permission.value}")
        return principal

    checker.required_permission = permission  # type: ignore[attr-defined]
    checker.api_key_only = True  # type: ignore[attr-defined]
    return DependsParam(checker)


def declared_permission(dependant: Any) -> Permission | None:
    """The permission a route declared through ``requires`` (searching its dependency tree)."""
    for dep in dependant.dependencies:
        found: Permission | None = getattr(dep.call, "required_permission", None)
        if found is not None:
            return found
        nested = declared_permission(dep)
        if nested is not None:
            return nested
    return None


# Typed aliases the routers use.
Public = requires(Permission.PUBLIC)
Anyone = Annotated[Principal, requires(Permission.SELF_READ)]
StaffReader = Annotated[Principal, requires(Permission.STAFF_READ)]
StaffManager = Annotated[Principal, requires(Permission.STAFF_MANAGE)]
RoleManager = Annotated[Principal, requires(Permission.STAFF_ROLES)]
SessionRevoker = Annotated[Principal, requires(Permission.SESSION_REVOKE)]
ApiKeyManager = Annotated[Principal, requires(Permission.APIKEY_MANAGE)]
ConsoleUser = Annotated[Principal, requires(Permission.CONSOLE_USE)]
SubjectWriter = Annotated[Principal, requires(Permission.SUBJECT_WRITE)]
PersonalReader = Annotated[Principal, requires(Permission.PERSONAL_READ)]
SubjectEraser = Annotated[Principal, requires(Permission.SUBJECT_ERASE)]
CatalogueReader = Annotated[Principal, requires(Permission.CATALOGUE_READ)]
NoticePublisher = Annotated[Principal, requires(Permission.NOTICE_PUBLISH)]
DataSubjectSelf = Annotated[Principal, requires_own_record(Permission.SELF_PRIVACY)]
RequestHandler = Annotated[Principal, requires(Permission.REQUEST_HANDLE)]
RetentionManager = Annotated[Principal, requires(Permission.RETENTION_MANAGE)]
BreachManager = Annotated[Principal, requires(Permission.BREACH_MANAGE)]
TelematicsIngest = Annotated[Principal, requires(Permission.TELEMATICS_INGEST)]
AlertsReader = Annotated[Principal, requires(Permission.ALERTS_READ)]
TrajectoryReader = Annotated[Principal, requires(Permission.TRAJECTORY_READ)]
LiveMapReader = Annotated[Principal, requires(Permission.LIVE_MAP_READ)]
CheckInReplier = Annotated[Principal, requires_own_record(Permission.CHECKIN_REPLY)]
SosCaller = Annotated[Principal, requires(Permission.SOS_RAISE)]
ContactsOwner = Annotated[Principal, requires_own_record(Permission.CONTACTS_SELF)]
IncidentHandler = Annotated[Principal, requires(Permission.INCIDENT_HANDLE)]
TripSharer = Annotated[Principal, requires_own_record(Permission.TRIP_SHARE)]
RecordingOpener = Annotated[Principal, requires(Permission.RECORDING_OPEN)]
ComplaintFiler = Annotated[Principal, requires_own_record(Permission.COMPLAINT_FILE)]
ComplaintReader = Annotated[Principal, requires(Permission.COMPLAINT_READ)]
ScreeningSubmitter = Annotated[Principal, requires(Permission.SCREENING_SUBMIT)]
EligibilityReader = Annotated[Principal, requires_api_key(Permission.ELIGIBILITY_READ)]
ScreeningOfficer = Annotated[Principal, requires(Permission.SCREENING_ADJUDICATE)]
ApplicantSelf = Annotated[Principal, requires(Permission.SCREENING_SELF)]
OrderSubmitter = Annotated[Principal, requires(Permission.ORDER_SUBMIT)]
OrderReader = Annotated[Principal, requires(Permission.ORDER_READ)]
OrderHandler = Annotated[Principal, requires(Permission.ORDER_HANDLE)]
OrderRevealer = Annotated[Principal, requires(Permission.ORDER_REVEAL)]
LabelPrinter = Annotated[Principal, requires(Permission.LABEL_PRINT)]
TelephonyRouter = Annotated[Principal, requires(Permission.TELEPHONY_ROUTE)]
ComplaintHandler = Annotated[Principal, requires(Permission.COMPLAINT_HANDLE)]
AnswerTemplateManager = Annotated[Principal, requires(Permission.COMPLAINT_TEMPLATES)]
SupervisionReader = Annotated[Principal, requires(Permission.SUPERVISION_READ)]
TrainingManager = Annotated[Principal, requires(Permission.TRAINING_MANAGE)]
RegulatorSubmitter = Annotated[Principal, requires(Permission.REGULATOR_SUBMIT)]
RegulatorReader = Annotated[Principal, requires(Permission.REGULATOR_READ)]
RegulatorOperator = Annotated[Principal, requires(Permission.REGULATOR_OPERATE)]
TrainingSelf = Annotated[Principal, requires_own_record(Permission.TRAINING_SELF)]
AgreementPublisher = Annotated[Principal, requires(Permission.AGREEMENT_PUBLISH)]
AgreementSigner = Annotated[Principal, requires(Permission.AGREEMENT_SIGN)]
ViolationRaiser = Annotated[Principal, requires(Permission.VIOLATION_RAISE)]
DisciplineDecider = Annotated[Principal, requires(Permission.DISCIPLINE_DECIDE)]
SanctionAppellant = Annotated[Principal, requires(Permission.SANCTION_APPEAL)]
RecordedMessagesReader = Annotated[Principal, requires(Permission.MESSAGES_RECORDED)]
ReportReader = Annotated[Principal, requires(Permission.REPORT_READ)]
ReportCloser = Annotated[Principal, requires(Permission.REPORT_CLOSE)]
# The audit log's routes and pages stand behind these (audit sits below security: the app factory hands
# them over, `audit.deps.Gate`).
AUDIT_GATE = Gate(read=requires(Permission.AUDIT_READ), sign=requires(Permission.AUDIT_SIGN))
