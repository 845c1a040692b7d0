"""Workers once screened: the identity check at shift start, yearly re-screening. The dispatch gate
itself ("may this worker work?") is `screening.gate`, re-exported here.

A face that does not match opens a case for the safety centre: safety sits above screening and registers
how at start-up (`register_mismatch_case`, from `tripguard.wiring`); screening never imports it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service as audit
from tripguard.audit.actor import SYSTEM, Actor
from tripguard.core import pictures
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.errors import Conflict
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.privacy import access
from tripguard.screening import service
from tripguard.screening.gate import (  # noqa: F401 (the dispatch gate, re-exported)
    BLOCKERS,
    RESCREEN_GRACE,
    VEHICLE_BLOCKERS,
    Eligibility,
    eligibility,
    refusal,
)
from tripguard.screening.models import Applicant, IdentityCheck, Report
from tripguard.screening.providers import FaceMatcher
from tripguard.vault.service import Vault


class _Case(Protocol):
    @property
    def id(self) -> str: ...


class OpensMismatchCase(Protocol):
    def __call__(self, session: Session, *, worker_id: str, check_id: str, score: float,
                 ack_seconds: int) -> _Case: ...


@dataclass
class _Safety:
    open_case: OpensMismatchCase | None = None


_safety = _Safety()


def register_mismatch_case(open_case: OpensMismatchCase) -> None:
    """What a mismatch opens: the safety centre's case (`safety.service.open_for_identity_mismatch`)."""
    _safety.open_case = open_case


def _open_mismatch_case(session: Session, *, worker_id: str, check_id: str, score: float, ack_seconds: int) -> str:
    if _safety.open_case is None:  # refuse rather than block a worker with no case for the centre to work
        raise RuntimeError("no case for an identity mismatch is registered (tripguard.wiring.wire)")
    return _safety.open_case(session, worker_id=worker_id, check_id=check_id, score=score,
                             ack_seconds=ack_seconds).id


def check_identity(session: Session, *, vault: Vault, matcher: FaceMatcher, rules: service.Rules, actor: Actor,
                   worker_id: str, selfie: bytes, idempotency_key: str | None, ack_seconds: int) -> IdentityCheck:
    """Match a shift-start selfie to the screened identity. A mismatch blocks dispatch and opens a case for
    the safety centre; a later match lifts the block (the case stays for the centre to close). Only a
    picture is matched: anything else is refused before a case can be opened."""
    pictures.check(selfie, field="selfie")
    key = f"{worker_id}:{idempotency_key}" if idempotency_key else None
    if key is not None:
        existing = session.scalar(select(IdentityCheck).where(IdentityCheck.idempotency_key == key))
        if existing is not None:
            return existing
    applicant = service.get(session, applicant_id=worker_id)
    reference = access.open_field(vault, session, applicant, "selfie")
    if reference is None:
        raise Conflict("no photo was taken at screening to match against")
    result = matcher.match(reference=base64.b64decode(reference), selfie=selfie)
    now = utcnow()
    check = IdentityCheck(id=new_id("idc"), applicant_id=worker_id, idempotency_key=key, provider=matcher.name,
                          score=result.score, matched=result.matched, at=now)
    session.add(check)
    if result.matched:
        if applicant.identity_blocked_at is not None:
            applicant.identity_blocked_at = None
            service.add_event(session, applicant=applicant, kind="identity.unblocked", actor=actor, check=check.id)
    else:
        applicant.identity_blocked_at = now
        incident_id = _open_mismatch_case(session, worker_id=worker_id, check_id=check.id, score=result.score,
                                          ack_seconds=ack_seconds)
        check.incident_id = incident_id
        service.add_event(session, applicant=applicant, kind="identity.mismatch", actor=actor, check=check.id,
                          incident=incident_id)
        if rules.webhook_url:
            notify.enqueue_webhook(session, url=rules.webhook_url, event="worker.identity_mismatch",
                                   payload={"worker_id": worker_id, "check_id": check.id, "incident_id": incident_id},
                                   idempotency_key=f"identity:{check.id}")
    audit.record(session, actor=actor, action="screening.face_match", target_type="screening_applicants",
                 target_id=worker_id, outcome="success" if result.matched else "denied",
                 details={"check": check.id, "score": f"{result.score:.2f}", "provider": matcher.name})
    return check


def schedule_rescreens(factory: sessionmaker[Session], *, agency: str, batch: int = 100) -> int:
    """Active workers whose yearly screening is due get a re-screening report (one a day at most, while
    the last is under way or failed; the gate blocks them once the grace has passed)."""
    now = utcnow()
    recent = select(Report.id).where(Report.applicant_id == Applicant.id, Report.kind == "rescreen",
                                     or_(Report.status.in_(("queued", "requested")),
                                         Report.created_at > now - timedelta(days=1)))
    with unit_of_work(factory) as session:
        due = session.scalars(select(Applicant).where(Applicant.status == "active", Applicant.rescreen_due_at <= now,
                                                      ~recent.exists()).limit(batch)).all()
        for applicant in due:
            service.request_rescreen(session, applicant=applicant, agency=agency)
            service.add_event(session, applicant=applicant, kind="rescreen.scheduled", actor=SYSTEM)
        return len(due)
