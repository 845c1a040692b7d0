"""Subject requests: verify the person by a code sent to the contact on file, then answer in time.

Access is answered with the decrypted bundle once verified; erasure is carried out at once, with a
deletion record; a correction waits for the privacy officer, who applies or refuses it. Answers
are due in 15 days (PIPL practice; GB/T 35273), 30 at the most.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.service import Actor
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.privacy import access, service
from tripguard.privacy.models import CODE_TRIES_PER_REQUEST, DataSubject, SubjectRequest
from tripguard.security import credentials
from tripguard.security.codes import CodeCheck, check_code
from tripguard.security.permissions import Decision, Purpose
from tripguard.security.principal import refuse_own
from tripguard.vault.service import Vault

DUE = timedelta(days=15)
HARD_DUE = timedelta(days=30)
CODE_LIFETIME = timedelta(minutes=10)
RESEND_AFTER = timedelta(seconds=60)  # a new code at most once a minute
OPEN = ("awaiting_verification", "verified")  # not yet answered


def _code_hash(secret_key: str, request_id: str, code: str) -> str:
    return credentials.keyed_hash(secret_key, f"{request_id}:{code}", purpose="subject-request-code")


def _send_code(session: Session, vault: Vault, secret_key: str, request: SubjectRequest, subject: DataSubject,
               locale: str, send_to: str | None = None) -> str:
    """`send_to`: the phone the domain that knows the person matched them by (an emergency contact, who
    has no record of their own: the number they were named with), instead of the contact on file."""
    phone = send_to or access.open_field(vault, session, subject, "phone")
    email = None if send_to else access.open_field(vault, session, subject, "email")
    if not phone and not email:  # someone known through a domain: the phone their own records hold
        phone = service.reach(session, vault=vault, subject_id=subject.id, actor=Actor("subject", subject.id),
                              purpose=Purpose.SUBJECT_REQUEST, use="verification code")
    if not phone and not email:  # nothing to send a code to: the privacy officer confirms who asked
        request.code_hash = request.code_expires_at = None
        return "in_person"
    code = f"{secrets.randbelow(10**6):06d}"
    request.code_hash = _code_hash(secret_key, request.id, code)
    request.code_expires_at = utcnow() + CODE_LIFETIME  # the tries already made still count (never reset)
    channel, to = ("sms", phone) if phone else ("email", email)
    notify.enqueue_to_person(session, vault=vault, subject_id=subject.id, channel=channel,
                             to=str(to),
                             template="verification_code", locale=locale,
                             params={"code": code, "minutes": int(CODE_LIFETIME.total_seconds() // 60)},
                             idempotency_key=f"request-code:{request.id}:{request.code_expires_at.isoformat()}")
    return channel


def file_request(session: Session, *, vault: Vault, secret_key: str, subject_id: str, kind: str,
                 correction: dict[str, str] | None, locale: str, idempotency_key: str,
                 send_to: str | None = None) -> SubjectRequest:
    key = f"{subject_id}:{idempotency_key}"
    existing = session.scalar(select(SubjectRequest).where(SubjectRequest.idempotency_key == key))
    if existing is not None:
        return existing
    if kind == "correction" and not correction:
        raise InvalidInput("a correction request says what to correct")
    subject = _locked_subject(session, subject_id)  # parallel filings of one person wait here, one at a time
    if subject.erased_at is not None:
        raise Conflict("this person's data has already been erased")
    already = session.scalar(select(SubjectRequest).where(
        SubjectRequest.subject_id == subject_id, SubjectRequest.kind == kind, SubjectRequest.status.in_(OPEN))
        .order_by(SubjectRequest.received_at).limit(1))
    if already is not None:  # one open request per kind: the queue cannot be flooded, nothing is sent again
        return already
    now = utcnow()
    request = SubjectRequest(id=new_id("req"), idempotency_key=key, subject_id=subject_id, kind=kind,
                             status="awaiting_verification", received_at=now, due_at=now + DUE,
                             hard_due_at=now + HARD_DUE, code_attempts=0)
    session.add(request)
    session.flush()
    if correction:
        access.write_field(vault, session, request, "correction", json.dumps(correction, ensure_ascii=False))
    channel = _send_code(session, vault, secret_key, request, subject, locale, send_to)
    audit.record(session, actor=Actor("subject", subject_id), action="request.file", target_type="privacy_requests",
                 target_id=request.id, details={"kind": kind, "verify_by": channel})
    return request


def _locked_subject(session: Session, subject_id: str) -> DataSubject:
    subject = session.scalar(select(DataSubject).where(DataSubject.id == subject_id).with_for_update()
                             .execution_options(populate_existing=True))
    if subject is None:
        raise NotFound("no such data subject")
    return subject


def own_request(session: Session, *, subject_id: str, request_id: str) -> SubjectRequest:
    request = session.get(SubjectRequest, request_id)
    if request is None or request.subject_id != subject_id:
        raise NotFound("no such request")
    return request


class VerificationFailed(InvalidInput):
    type, title = "/problems/verification-failed", "Verification failed"


class VerifyInPerson(VerificationFailed):
    """Too many wrong codes on this request: no code will do any more, the privacy officer confirms who asked."""

    status, type, title = 409, "/problems/verify-in-person", "Verify in person"


IN_PERSON_ONLY = "too many wrong codes: this request can only be verified in person by the privacy officer"


def verify(session: Session, *, vault: Vault, secret_key: str, subject_id: str, request_id: str,
           code: str) -> SubjectRequest:
    """Check the code; then carry out an erasure at once, or make an access request answerable."""
    request = own_request(session, subject_id=subject_id, request_id=request_id)
    if request.status != "awaiting_verification":
        return request  # verifying again changes nothing

    if request.code_attempts >= CODE_TRIES_PER_REQUEST:
        raise VerifyInPerson(IN_PERSON_ONLY)
    spent = False

    def record_failure(outcome: CodeCheck) -> None:
        nonlocal spent
        tried = session.scalar(select(SubjectRequest.code_attempts).where(SubjectRequest.id == request.id))
        spent = (tried or 0) >= CODE_TRIES_PER_REQUEST
        if spent:  # the last try: the code is voided with it, and the request waits for the privacy officer
            request.code_hash = request.code_expires_at = None
        audit.record(session, actor=Actor("subject", subject_id), action="request.verify", outcome="failure",
                     target_type="privacy_requests", target_id=request.id,
                     details={"why": outcome.value, "in_person_only": spent})

    # the tries are counted over the request's life, in one atomic UPDATE committed even when this request fails
    outcome = check_code(session, model=SubjectRequest, row_id=request.id, attempts=SubjectRequest.code_attempts,
                         limit=CODE_TRIES_PER_REQUEST, stored_hash=request.code_hash,
                         expires_at=request.code_expires_at,
                         offered_hash=_code_hash(secret_key, request.id, code.strip()), on_failure=record_failure)
    if spent:
        raise VerifyInPerson(IN_PERSON_ONLY)
    if outcome is CodeCheck.MISMATCH:
        raise VerificationFailed("the code does not match")
    if outcome is not CodeCheck.OK:
        raise VerificationFailed("the code has expired or was tried too often; ask for a new one")
    _verified(session, vault, request, Actor("subject", subject_id), details={})
    return request


def _verified(session: Session, vault: Vault, request: SubjectRequest, actor: Actor, *,
              details: dict[str, str | int | float | bool | None]) -> None:
    """Identity confirmed: an erasure is carried out at once; an access request becomes answerable."""
    request.status, request.verified_at, request.code_hash = "verified", utcnow(), None
    audit.record(session, actor=actor, action="request.verify", target_type="privacy_requests",
                 target_id=request.id, details=details)
    if request.kind == "erasure":
        record = service.erase_subject(session, vault=vault, actor=actor, subject_id=request.subject_id,
                                       reason="subject_request", request_id=request.id)
        _complete(request, handled_by="automatic", note=f"deletion record {record.id}")


def get_request(session: Session, *, request_id: str) -> SubjectRequest:
    request = session.get(SubjectRequest, request_id)
    if request is None:
        raise NotFound("no such request")
    return request


def verify_in_person(session: Session, *, vault: Vault, actor: Actor, request_id: str, how: str) -> SubjectRequest:
    """The privacy officer confirmed who asked some other way (in person, with an ID document, or a call
    back to the number on record): `how` says which, and goes in the audit log."""
    request = get_request(session, request_id=request_id)
    refuse_own(actor, Decision.SUBJECT_REQUEST, request.subject_id)
    if request.status != "awaiting_verification":
        raise Conflict("this request is not waiting for verification")
    _verified(session, vault, request, actor, details={"how": how[:100]})
    return request


def resend_code(session: Session, *, vault: Vault, secret_key: str, subject_id: str, request_id: str,
                locale: str, send_to: str | None = None) -> SubjectRequest:
    request = own_request(session, subject_id=subject_id, request_id=request_id)
    if request.status != "awaiting_verification":
        raise Conflict("this request is verified already")
    if request.code_attempts >= CODE_TRIES_PER_REQUEST:  # a new code would only give more guesses
        raise VerifyInPerson(IN_PERSON_ONLY)
    if request.code_expires_at is not None and request.code_expires_at - CODE_LIFETIME > utcnow() - RESEND_AFTER:
        return request  # the code sent a moment ago still stands: the person's phone is not flooded with texts
    _send_code(session, vault, secret_key, request, service.get_subject(session, subject_id=subject_id), locale,
               send_to)
    return request


def awaiting(session: Session, *, subject_id: str, kind: str) -> SubjectRequest | None:
    """The person's newest request of this kind still waiting for its code (someone without an app account
    names it by what they asked for, not by its id)."""
    return session.scalar(select(SubjectRequest).where(
        SubjectRequest.subject_id == subject_id, SubjectRequest.kind == kind,
        SubjectRequest.status == "awaiting_verification").order_by(SubjectRequest.received_at.desc()).limit(1))


def export_for(session: Session, *, vault: Vault, subject_id: str, request_id: str) -> dict[str, Any]:
    request = own_request(session, subject_id=subject_id, request_id=request_id)
    if request.kind != "access" or request.status not in ("verified", "completed"):
        raise PermissionDenied("the export is available once an access request is verified")
    bundle = service.export_subject(session, vault=vault, actor=Actor("subject", subject_id), subject_id=subject_id,
                                    request_id=request.id)
    if request.status == "verified":
        _complete(request, handled_by="automatic", note="export delivered")
    return {"request_id": request.id, "generated_at": utcnow().isoformat(), **bundle}


def close_for_erasure(session: Session, *, subject_id: str, record_id: str | None) -> int:
    """On erasure: the person's requests still open are closed and their codes voided (nothing is left to
    export or correct); an erasure request is completed by it."""
    note = f"deletion record {record_id}" if record_id else "the person was erased"
    requests = list(session.scalars(select(SubjectRequest).where(SubjectRequest.subject_id == subject_id,
                                                                 SubjectRequest.status.in_(OPEN))))
    for request in requests:
        request.code_hash = request.code_expires_at = None
        _complete(request, handled_by="automatic", note=note,
                  status="completed" if request.kind == "erasure" else "rejected")
    return len(requests)


def _complete(request: SubjectRequest, *, handled_by: str, note: str, status: str = "completed") -> None:
    request.status, request.completed_at = status, utcnow()
    request.handled_by, request.outcome_note = handled_by, note[:500]


def queue(session: Session, *, status: str | None) -> list[SubjectRequest]:
    statement = select(SubjectRequest).order_by(SubjectRequest.due_at)
    if status:
        statement = statement.where(SubjectRequest.status == status)
    return list(session.scalars(statement.limit(500)))


def decide_correction(session: Session, *, vault: Vault, actor: Actor, request_id: str, apply: bool,
                      note: str) -> SubjectRequest:
    request = get_request(session, request_id=request_id)
    refuse_own(actor, Decision.SUBJECT_REQUEST, request.subject_id)
    if request.kind != "correction" or request.status != "verified":
        raise Conflict("only a verified correction request waits for a decision")
    if apply:
        changes = json.loads(access.open_field(vault, session, request, "correction") or "{}")
        subject = service.get_subject(session, subject_id=request.subject_id)
        service.upsert_subject(session, vault=vault, actor=actor, subject_id=subject.id, kind=subject.kind,
                               notice_version=subject.notice_version, values=changes)
    _complete(request, handled_by=f"{actor.type}:{actor.id}", note=note,
              status="completed" if apply else "rejected")
    audit.record(session, actor=actor, action="request.decide", target_type="privacy_requests", target_id=request.id,
                 details={"applied": apply})
    return request


def due_soon(session: Session, *, within: timedelta) -> int:
    """Requests not yet answered whose deadline falls within `within` (or has passed)."""
    return session.scalar(select(func.count()).select_from(SubjectRequest).where(
        SubjectRequest.status.in_(OPEN),
        SubjectRequest.due_at <= utcnow() + within)) or 0
