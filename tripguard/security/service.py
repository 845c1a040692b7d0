"""Staff accounts, sign-in with a second factor, sessions and API keys. Flushes, never commits."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, or_, select, text, update
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.service import Actor
from tripguard.core.bookkeeping import free_row
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, FieldProblem, InvalidInput, NotAuthenticated, NotFound
from tripguard.core.fastread import as_json, as_utc
from tripguard.core.ids import new_id
from tripguard.core.settings import Settings
from tripguard.security import credentials
from tripguard.security.models import ApiKey, StaffAccount, StaffSession
from tripguard.security.permissions import (
    API_KEY_SCOPES,
    SEPARATED_ADMIN_ROLES,
    STAFF_ROLES,
    TOTP_REQUIRED_ROLES,
    Permission,
    Role,
    role_conflicts,
)
from tripguard.security.principal import Principal

API_KEY_PREFIX = "tg_"
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)
TICKET_TOTP = "totp"
TICKET_ENROL = "totp-enrol"


class SignInFailed(NotAuthenticated):
    type, title = "/problems/sign-in-failed", "Sign-in failed"


# ---- staff accounts -------------------------------------------------------------------------


def staff_roles(staff: StaffAccount) -> frozenset[Role]:
    return frozenset(Role(role) for role in staff.roles)


def needs_totp(staff: StaffAccount) -> bool:
    return bool(staff_roles(staff) & TOTP_REQUIRED_ROLES) or staff.totp_secret is not None


def get_staff(session: Session, *, staff_id: str) -> StaffAccount:
    staff = session.get(StaffAccount, staff_id)
    if staff is None:
        raise NotFound("no such staff account")
    return staff


def without_second_factor(session: Session) -> list[str]:
    """Active accounts whose roles need a second factor but that have not enrolled one (usernames)."""
    return [staff.username for staff in session.scalars(select(StaffAccount).where(StaffAccount.disabled_at.is_(None)))
            if staff_roles(staff) & TOTP_REQUIRED_ROLES and staff.totp_secret is None]


def administrator_separation(session: Session) -> tuple[dict[str, int], list[str]]:
    """How many active accounts hold each separated administrator role, and the accounts holding two."""
    held = {role.value: 0 for role in sorted(SEPARATED_ADMIN_ROLES)}
    conflicts = []
    for staff in session.scalars(select(StaffAccount).where(StaffAccount.disabled_at.is_(None))):
        admin = staff_roles(staff) & SEPARATED_ADMIN_ROLES
        for role in admin:
            held[role.value] += 1
        if len(admin) > 1:
            conflicts.append(staff.username)
    return held, conflicts


def list_staff(session: Session) -> list[StaffAccount]:
    return list(session.scalars(select(StaffAccount).order_by(StaffAccount.username)))


def _check_roles(roles: set[Role]) -> None:
    not_staff = roles - STAFF_ROLES
    if not_staff:
        named = ", ".join(sorted(r.value for r in not_staff))
        raise InvalidInput(errors=[FieldProblem(field="roles", message=f"not staff roles: {named}")])
    conflicts = role_conflicts(roles)
    if conflicts:
        raise InvalidInput(
            "system, security and audit administration must be held by different people",
            errors=[FieldProblem(field="roles",
                                 message=f"separated roles together: {', '.join(sorted(r.value for r in conflicts))}")],
        )


def create_staff(
    session: Session, *, actor: Actor, username: str, display_name: str, password: str,
    roles: set[Role] | None = None,
) -> StaffAccount:
    username = username.strip().lower()
    problem = credentials.password_problem(password)
    if problem:
        raise InvalidInput(errors=[FieldProblem(field="password", message=problem)])
    _check_roles(roles or set())
    if session.scalar(select(StaffAccount.id).where(StaffAccount.username == username)):
        raise Conflict(f"user name {username!r} is taken")
    now = utcnow()
    staff = StaffAccount(
        id=new_id("stf"), username=username, display_name=display_name,
        password_hash=credentials.hash_password(password), roles=sorted(roles or set()),
        totp_last_step=0, failed_sign_ins=0, created_at=now, password_changed_at=now,
    )
    session.add(staff)
    session.flush()
    audit.record(session, actor=actor, action="staff.create", target_type="staff", target_id=staff.id,
                 details={"roles": ",".join(staff.roles)})
    return staff


def set_roles(session: Session, *, actor: Actor, staff_id: str, roles: set[Role]) -> StaffAccount:
    if actor.type == "staff" and actor.id == staff_id:
        raise Conflict("nobody may change their own roles")
    _check_roles(roles)
    staff = get_staff(session, staff_id=staff_id)
    before = ",".join(staff.roles)
    staff.roles = sorted(roles)
    audit.record(session, actor=actor, action="staff.roles", target_type="staff", target_id=staff.id,
                 details={"before": before, "after": ",".join(staff.roles)})
    revoke_sessions(session, actor=actor, staff_id=staff_id, reason="roles changed")
    return staff


def find_staff(session: Session, *, staff_id: str) -> StaffAccount | None:
    return session.get(StaffAccount, staff_id)


def disable_staff(session: Session, *, actor: Actor, staff_id: str) -> StaffAccount:
    if actor.type == "staff" and actor.id == staff_id:
        raise Conflict("nobody may disable their own account")
    staff = get_staff(session, staff_id=staff_id)
    if staff.disabled_at is None:
        staff.disabled_at = utcnow()
        audit.record(session, actor=actor, action="staff.disable", target_type="staff", target_id=staff.id)
        revoke_sessions(session, actor=actor, staff_id=staff_id, reason="disabled")
    return staff


def unlock_staff(session: Session, *, actor: Actor, staff_id: str) -> StaffAccount:
    staff = get_staff(session, staff_id=staff_id)
    staff.failed_sign_ins = 0
    staff.locked_until = None
    audit.record(session, actor=actor, action="staff.unlock", target_type="staff", target_id=staff.id)
    return staff


def reset_totp(session: Session, *, actor: Actor, staff_id: str) -> StaffAccount:
    staff = get_staff(session, staff_id=staff_id)
    staff.totp_secret = None
    staff.totp_pending_secret = None
    audit.record(session, actor=actor, action="staff.totp_reset", target_type="staff", target_id=staff.id)
    revoke_sessions(session, actor=actor, staff_id=staff_id, reason="second factor reset")
    return staff


def is_locked(staff: StaffAccount, now: datetime) -> bool:
    return staff.locked_until is not None and staff.locked_until > now


# ---- sign-in --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInOutcome:
    status: str  # signed_in | totp_required | totp_enrolment_required
    staff: StaffAccount
    session_token: str | None = None
    ticket: str | None = None
    totp_uri: str | None = None


def _count_failure(session: Session, settings: Settings, staff: StaffAccount) -> bool:
    """One UPDATE that increments, and locks at the limit: parallel wrong guesses each count (a read-modify-
    write in Python would let them overwrite each other). Returns True when this failure locked the account."""
    until = utcnow() + timedelta(minutes=settings.sign_in_lockout_minutes)
    reached = StaffAccount.failed_sign_ins + 1 >= settings.sign_in_max_failures
    locked_until = session.execute(
        update(StaffAccount).where(StaffAccount.id == staff.id)
        .values(failed_sign_ins=case((reached, 0), else_=StaffAccount.failed_sign_ins + 1),
                locked_until=case((reached, until), else_=StaffAccount.locked_until))
        .returning(StaffAccount.locked_until).execution_options(synchronize_session=False)).scalar_one()
    session.expire(staff, ["failed_sign_ins", "locked_until"])
    return locked_until == until


def _fail(session: Session, settings: Settings, staff: StaffAccount | None, *, reason: str,
          username: str, count: bool = True) -> SignInFailed:
    if staff is not None and count and _count_failure(session, settings, staff):
        reason += "; account locked"
    if staff is not None:
        actor = Actor("staff", staff.id)
    else:
        # What was typed may be a mistyped password: keep only a keyed hash, enough to correlate.
        typed = credentials.keyed_hash(settings.secret_key.get_secret_value(), username, purpose="username")
        actor = Actor("anonymous", f"h:{typed[:24]}")
    audit.record(
        session, actor=actor, action="auth.sign_in", outcome="failure",
        target_type="staff", target_id=staff.id if staff else None, details={"reason": reason},
    )
    return SignInFailed("wrong user name, password or code, or the account is locked or disabled")


def _usable_staff(session: Session, settings: Settings, staff: StaffAccount | None, username: str) -> StaffAccount:
    if staff is None:
        raise _fail(session, settings, None, reason="unknown user", username=username)
    if staff.disabled_at is not None:
        raise _fail(session, settings, staff, reason="disabled", username=username)
    if is_locked(staff, utcnow()):
        raise _fail(session, settings, staff, reason="locked", username=username, count=False)
    return staff


def sign_in(session: Session, *, settings: Settings, username: str, password: str,
            totp_code: str | None) -> SignInOutcome:
    """Check the password; then the second factor, or hand out a ticket to give or enrol one.

    Failures raise SignInFailed after recording them: the caller must still commit, so that the
    failure count and the audit entry persist.
    """
    username = username.strip().lower()
    staff = session.scalar(select(StaffAccount).where(StaffAccount.username == username))
    password_ok = credentials.verify_password(
        staff.password_hash if staff else credentials.DUMMY_PASSWORD_HASH, password
    )
    staff = _usable_staff(session, settings, staff, username)
    if not password_ok:
        raise _fail(session, settings, staff, reason="wrong password", username=username)
    secret = settings.secret_key.get_secret_value()
    if not needs_totp(staff):
        return _complete(session, settings, staff)
    if staff.totp_secret is None:
        new_secret = credentials.new_totp_secret()
        staff.totp_pending_secret = credentials.seal(secret, new_secret, context=f"totp:{staff.id}")
        return SignInOutcome(
            status="totp_enrolment_required", staff=staff,
            ticket=credentials.issue_ticket(secret, staff_id=staff.id, purpose=TICKET_ENROL, minutes=10),
            totp_uri=credentials.totp_uri(new_secret, staff.username),
        )
    if totp_code:
        return _check_totp(session, settings, staff, totp_code)
    return SignInOutcome(
        status="totp_required", staff=staff,
        ticket=credentials.issue_ticket(secret, staff_id=staff.id, purpose=TICKET_TOTP),
    )


def complete_totp(session: Session, *, settings: Settings, ticket: str, code: str) -> SignInOutcome:
    secret = settings.secret_key.get_secret_value()
    staff_id = credentials.read_ticket(secret, ticket, purpose=TICKET_TOTP)
    enrolling = staff_id is None
    if enrolling:
        staff_id = credentials.read_ticket(secret, ticket, purpose=TICKET_ENROL)
    if staff_id is None:
        raise SignInFailed("the sign-in step has expired; start again")
    staff = _usable_staff(session, settings, session.get(StaffAccount, staff_id), staff_id)
    if not enrolling and staff.totp_secret is None:  # a ticket for an account with no second factor
        raise SignInFailed("the sign-in step has expired; start again")
    if enrolling:
        if staff.totp_pending_secret is None:
            raise SignInFailed("no enrolment is pending; start again")
        pending = credentials.unseal(secret, staff.totp_pending_secret, context=f"totp:{staff.id}")
        step = credentials.totp_matching_step(pending, code.strip(), last_step=staff.totp_last_step)
        if step is None:
            raise _fail(session, settings, staff, reason="wrong enrolment code", username=staff.username)
        staff.totp_secret, staff.totp_pending_secret = staff.totp_pending_secret, None
        staff.totp_last_step = step
        audit.record(session, actor=Actor("staff", staff.id), action="auth.totp_enrol",
                     target_type="staff", target_id=staff.id)
        return _complete(session, settings, staff)
    return _check_totp(session, settings, staff, code)


def _check_totp(session: Session, settings: Settings, staff: StaffAccount, code: str) -> SignInOutcome:
    assert staff.totp_secret is not None
    secret = credentials.unseal(settings.secret_key.get_secret_value(), staff.totp_secret,
                                context=f"totp:{staff.id}")
    step = credentials.totp_matching_step(secret, code.strip(), last_step=staff.totp_last_step)
    if step is None:
        raise _fail(session, settings, staff, reason="wrong or reused code", username=staff.username)
    staff.totp_last_step = step
    return _complete(session, settings, staff)


def _complete(session: Session, settings: Settings, staff: StaffAccount) -> SignInOutcome:
    staff.failed_sign_ins = 0
    staff.locked_until = None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    record = StaffSession(
        id=new_id("ses"), staff_id=staff.id,
        token_hash=credentials.keyed_hash(settings.secret_key.get_secret_value(), token, purpose="session"),
        created_at=now, last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
    )
    session.add(record)
    audit.record(session, actor=Actor("staff", staff.id), action="auth.sign_in", target_type="staff",
                 target_id=staff.id, details={"session": record.id})
    return SignInOutcome(status="signed_in", staff=staff, session_token=token)


# ---- sessions -------------------------------------------------------------------------------


SESSION_LOOKUP = ("SELECT s.id, s.staff_id, s.last_seen_at, s.expires_at, s.revoked_at, a.roles, a.display_name, "
                  "a.disabled_at FROM staff_sessions s JOIN staff_accounts a ON a.id = s.staff_id "
                  "WHERE s.token_hash = :token_hash")


def session_token_hash(settings: Settings, token: str) -> str:
    """The key of a session cookie's row (`SESSION_LOOKUP`)."""
    return credentials.keyed_hash(settings.secret_key.get_secret_value(), token, purpose="session")


@dataclass(frozen=True)
class SessionCheck:
    principal: Principal | None
    stale: bool  # its last seen is due to be written (once a minute at most)


def principal_from_session_row(row: tuple[Any, ...] | None, settings: Settings) -> SessionCheck:
    """The staff principal of a looked-up session row, if the session is live and its account enabled.
    Reads only: the last-seen write is the caller's, outside the request's transaction (`touch_session`)."""
    if row is None:
        return SessionCheck(None, False)
    session_id, staff_id, last_seen_at, expires_at, revoked_at, roles, display_name, disabled_at = row
    last_seen, expires = as_utc(last_seen_at), as_utc(expires_at)
    assert last_seen is not None and expires is not None
    now = utcnow()
    if revoked_at is not None or disabled_at is not None:
        return SessionCheck(None, False)
    if now >= expires or now >= last_seen + timedelta(minutes=settings.session_idle_minutes):
        return SessionCheck(None, False)
    principal = Principal.for_roles("staff", staff_id, frozenset(Role(role) for role in as_json(roles)),
                                    name=display_name, session_id=session_id)
    return SessionCheck(principal, now - last_seen >= SESSION_TOUCH_INTERVAL)


def principal_from_session(session: Session, *, settings: Settings, token: str) -> Principal | None:
    """`principal_from_session_row` through an ORM session (pages that resolve the principal themselves)."""
    row = session.execute(text(SESSION_LOOKUP), {"token_hash": session_token_hash(settings, token)}).first()
    return principal_from_session_row(tuple(row) if row is not None else None, settings).principal


def touch_session(session: Session, session_id: str) -> bool:
    """Write a session's last seen, unless another process just did or another transaction holds its row: a
    bookkeeping write (`core.bookkeeping`), never waiting on a lock. Whether it wrote."""
    now = utcnow()
    free = free_row(select(StaffSession.id).where(StaffSession.id == session_id,
                                                  StaffSession.last_seen_at < now - SESSION_TOUCH_INTERVAL))
    return _wrote(session.execute(update(StaffSession).where(StaffSession.id == free.scalar_subquery())
                                  .values(last_seen_at=now).execution_options(synchronize_session=False)))


def _wrote(result: Any) -> bool:
    return bool(result.rowcount)


def end_session(session: Session, *, actor: Actor, session_id: str) -> None:
    record = session.get(StaffSession, session_id)
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
        audit.record(session, actor=actor, action="auth.sign_out", target_type="session", target_id=session_id)


def revoke_sessions(session: Session, *, actor: Actor, staff_id: str, reason: str) -> int:
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    count = result.rowcount or 0  # type: ignore[attr-defined]
    audit.record(session, actor=actor, action="staff.sessions_revoke", target_type="staff",
                 target_id=staff_id, details={"count": count, "reason": reason})
    return count


# ---- API keys -------------------------------------------------------------------------------


def create_api_key(session: Session, *, settings: Settings, actor: Actor, name: str,
                   scopes: set[Permission]) -> tuple[ApiKey, str]:
    unknown = scopes - API_KEY_SCOPES
    if unknown:
        named = ", ".join(sorted(p.value for p in unknown))
        raise InvalidInput(errors=[FieldProblem(field="scopes", message=f"not grantable to an API key: {named}")])
    prefix = secrets.token_hex(6)
    secret_part = secrets.token_urlsafe(32)
    full_key = f"{API_KEY_PREFIX}{prefix}_{secret_part}"
    key = ApiKey(
        id=new_id("key"), name=name, prefix=prefix, scopes=sorted(scopes), created_by=actor.id,
        secret_hash=credentials.keyed_hash(settings.secret_key.get_secret_value(), full_key, purpose="api-key"),
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    audit.record(session, actor=actor, action="apikey.create", target_type="api_key", target_id=key.id,
                 details={"scopes": ",".join(key.scopes)})
    return key, full_key


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))


def revoke_api_key(session: Session, *, actor: Actor, key_id: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("no such API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(session, actor=actor, action="apikey.revoke", target_type="api_key", target_id=key.id)
    return key


API_KEY_LOOKUP = ("SELECT id, name, secret_hash, scopes, revoked_at, last_used_at FROM api_keys "
                  "WHERE prefix = :prefix")


def api_key_prefix(full_key: str) -> str:
    """The public part of an API key that names its row (`API_KEY_LOOKUP`)."""
    return full_key.removeprefix(API_KEY_PREFIX).partition("_")[0][:16]


@dataclass(frozen=True)
class KeyCheck:
    principal: Principal | None
    stale: bool  # its last use is due to be written (once a minute at most)


def principal_from_api_key(row: tuple[Any, ...] | None, settings: Settings, full_key: str) -> KeyCheck:
    """The key's principal from its looked-up row, if the key is genuine and not revoked."""
    if row is None:
        return KeyCheck(None, False)
    key_id, name, secret_hash, scopes, revoked_at, last_used_at = row
    if revoked_at is not None:
        return KeyCheck(None, False)
    expected = credentials.keyed_hash(settings.secret_key.get_secret_value(), full_key, purpose="api-key")
    if not secrets.compare_digest(expected, secret_hash):
        return KeyCheck(None, False)
    last_used = as_utc(last_used_at)
    stale = last_used is None or utcnow() - last_used >= SESSION_TOUCH_INTERVAL
    granted = frozenset(Permission(scope) for scope in as_json(scopes)) & API_KEY_SCOPES
    return KeyCheck(Principal(kind="api_key", id=key_id, roles=frozenset({Role.INTEGRATION}), permissions=granted,
                              name=name), stale)


def touch_api_key(session: Session, key_id: str) -> bool:
    """Write a key's last use: a bookkeeping write, as `touch_session`."""
    now = utcnow()
    free = free_row(select(ApiKey.id).where(
        ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - SESSION_TOUCH_INTERVAL)))
    return _wrote(session.execute(update(ApiKey).where(ApiKey.id == free.scalar_subquery()).values(last_used_at=now)
                                  .execution_options(synchronize_session=False)))
