"""Invitation links: the operator's backend asks for a link, sends it to the prospective driver or
courier, and they apply themselves on a public page: the screening notice in their language, their
name, ID number and phone, and their consent. A link works once, for 72 hours; only a keyed hash of
its token is stored, so the database alone cannot open it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.errors import DomainError, NotFound
from tripguard.core.i18n import N_
from tripguard.core.ids import new_id
from tripguard.privacy.service import get_notice
from tripguard.screening import consents, service
from tripguard.screening.models import Applicant, Invitation
from tripguard.security import credentials
from tripguard.vault.service import Vault

LIFETIME = timedelta(hours=72)


class InvitationGone(DomainError):
    status, type, title = 410, "/problems/invitation-gone", "This link no longer works"


@dataclass(frozen=True)
class Issued:
    invitation: Invitation
    token: str


def _hash(secret_key: str, token: str) -> str:
    return credentials.keyed_hash(secret_key, token, purpose="screening-invitation")


def invite(session: Session, *, secret_key: str, actor: Actor, worker_id: str, role: str, city: str | None,
           locale: str, notice_version: str) -> Issued:
    if role not in service.ROLES:
        raise ValueError("role")
    consents.check_notice(get_notice(session, version=notice_version),
                          consents.needed(service.CHECKS[role], selfie=False))
    token = secrets.token_urlsafe(24)
    now = utcnow()
    invitation = Invitation(id=new_id("inv"), token_hash=_hash(secret_key, token), worker_id=worker_id, role=role,
                            city=city, locale=locale, notice_version=notice_version,
                            created_by=f"{actor.type}:{actor.id}", created_at=now, expires_at=now + LIFETIME)
    session.add(invitation)
    audit.record(session, actor=actor, action="screening.invite", target_type="screening_applicants",
                 target_id=worker_id, details={"invitation": invitation.id, "role": role})
    return Issued(invitation, token)


def open_invitation(session: Session, *, secret_key: str, token: str, now: datetime | None = None) -> Invitation:
    """The invitation a link names, if it still works."""
    if not 16 <= len(token) <= 64 or not token.isascii():
        raise NotFound(N_("There is no such link."))
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == _hash(secret_key, token)))
    if invitation is None:
        raise NotFound(N_("There is no such link."))
    if invitation.used_at is not None or invitation.expires_at <= (now or utcnow()):
        raise InvitationGone(N_("This link has been used or has expired: ask for a new one."))
    return invitation


def void_for_person(session: Session, *, worker_id: str, at: datetime) -> int:
    """On erasure: links not yet used stop working (whoever opens one is told it expired)."""
    voided = session.execute(update(Invitation).where(Invitation.worker_id == worker_id, Invitation.used_at.is_(None),
                                                      Invitation.expires_at > at)
                             .values(expires_at=at).execution_options(synchronize_session="fetch"))
    return int(voided.rowcount)  # type: ignore[attr-defined]


def needed_kinds(role: str) -> list[str]:
    """The sensitive kinds of data the person consents to one by one on the page (no selfie is sent there)."""
    return sorted(kind.value for kind in consents.needed(service.CHECKS[role], selfie=False))


def accept(session: Session, *, vault: Vault, secret_key: str, token: str, name: str, id_number: str,
           phone: str | None, agency: str, policy_dir: Path | None = None,
           sensitive: tuple[str, ...] = ()) -> Applicant:
    """The person applies through the link, consents to the notice they were shown, and separately to each
    kind of sensitive data the screening processes (`sensitive`)."""
    invitation = open_invitation(session, secret_key=secret_key, token=token)
    applicant, _ = service.apply(
        session, vault=vault, actor=Actor("subject", invitation.worker_id), applicant_id=invitation.worker_id,
        application=service.Application(role=invitation.role, name=name, id_number=id_number.strip().upper(),
                                        notice_version=invitation.notice_version, phone=phone, city=invitation.city,
                                        locale=invitation.locale, consents=sensitive), agency=agency,
        policy_dir=policy_dir)
    invitation.used_at = utcnow()
    return applicant


class ConsentMissing(DomainError):
    status, type, title = 422, "/problems/invalid-input", "Invalid input"
