"""Adjudication: a screening officer decides what the policy left to a person.

The queue holds applicants under review, disputes to decide and active workers a new finding flagged.
An officer takes a case, then clears it (the worker becomes or stays active) or sends the pre-adverse
notice: the reasons, and a dispute window (7 days by default) during which the applicant may dispute
with documents. The final decision comes after a dispute, or once the window has passed without one
(the scheduler then rejects on its own). Every step is on the timeline and in the audit log; an
officer's note is sealed like any text a person types.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service as audit
from tripguard.audit.actor import SYSTEM, Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.errors import Conflict, NotFound, PermissionDenied
from tripguard.core.i18n import N_
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.privacy import access, freetext
from tripguard.screening import service
from tripguard.screening.models import Applicant, Check, Dispute, DisputeDocument, Report
from tripguard.screening.service import Rules
from tripguard.security.permissions import Decision, Purpose
from tripguard.security.principal import Principal, refuse_own
from tripguard.vault.service import Vault

ACTIONS = ("clear", "pre_adverse", "reject", "notice_delivered")
MAX_DOCUMENTS = 5
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
DOCUMENT_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png"})


def waiting() -> Select[Applicant]:
    """What the review queue shows: cases needing an officer, noticed cases waiting out their window."""
    return select(Applicant).where(or_(Applicant.status.in_(("review", "disputed", "pre_adverse", "suspended")),
                                       and_(Applicant.status == "active", Applicant.outcome == "consider")))


def queue(session: Session, *, status: str | None = None, limit: int = 500) -> list[Applicant]:
    """The review queue's cases (those in `status`, when given), oldest first."""
    statement = waiting() if status is None else waiting().where(Applicant.status == status)
    return list(session.scalars(statement.order_by(Applicant.updated_at).limit(limit)))


def take(session: Session, *, officer: Principal, applicant_id: str) -> Applicant:
    applicant = service.get(session, applicant_id=applicant_id)
    refuse_own(officer.actor, Decision.SCREENING, applicant.id)
    applicant.assigned_to = officer.id
    service.add_event(session, applicant=applicant, kind="taken", actor=officer.actor)
    audit.record(session, actor=officer.actor, action="screening.take", target_type="screening_applicants",
                 target_id=applicant.id)
    return applicant


def decide(session: Session, *, vault: Vault, rules: Rules, officer: Principal, applicant_id: str, action: str,
           note: str | None) -> Applicant:
    """clear: the worker is (again) active. pre_adverse: the notice goes out. reject: the final adverse
    decision, after a dispute or once the window has passed."""
    applicant = service.get(session, applicant_id=applicant_id)
    refuse_own(officer.actor, Decision.SCREENING, applicant.id)
    status, now = applicant.status, utcnow()
    noted: dict[str, str | int | float | bool | None] = {}
    if note:
        noted.update(freetext.keep(session, vault=vault, subject_id=applicant.id, text=note, label="note"))
    if action == "clear":
        if status not in ("review", "disputed", "pre_adverse", "suspended", "active") or \
                (status == "active" and applicant.outcome != "consider"):
            raise Conflict(N_("There is nothing to clear in this state."))
        _close_disputes(session, applicant, "upheld", officer.actor)
        applicant.outcome, applicant.decided_at, applicant.decided_by = "clear", now, f"staff:{officer.id}"
        service.add_event(session, applicant=applicant, kind="officer.clear", actor=officer.actor, **noted)
        service.activate(session, vault=vault, applicant=applicant, actor=officer.actor, rules=rules)
    elif action == "pre_adverse":
        undelivered = status in service.NOTICED and applicant.notice_failed_at is not None
        if status not in ("review", "active") and not undelivered:
            raise Conflict(N_("A pre-adverse notice goes out only for a case under review."))
        service.add_event(session, applicant=applicant, kind="officer.pre_adverse", actor=officer.actor, **noted)
        # Sent again after it did not reach the applicant: a suspended worker stays suspended.
        service.send_notice(session, vault=vault, applicant=applicant, actor=officer.actor, rules=rules,
                            status="suspended" if status == "suspended" else "pre_adverse")
    elif action == "notice_delivered":
        if status not in service.NOTICED or applicant.notice_failed_at is None:
            raise Conflict(N_("Only a notice that did not reach the applicant is recorded as given another way."))
        if not note:
            raise Conflict(N_("Say how the notice was given (a letter, in person): the note is required."))
        service.add_event(session, applicant=applicant, kind="officer.notice_delivered", actor=officer.actor, **noted)
        applicant.notice_sent_at, applicant.notice_failed_at = now, None
        applicant.dispute_due_at = now + timedelta(days=rules.dispute_days)  # the window runs from now
    elif action == "reject":
        if status not in ("disputed", "pre_adverse", "suspended"):
            raise Conflict(N_("A final rejection follows a pre-adverse notice."))
        if status != "disputed" and applicant.notice_failed_at is not None:
            raise Conflict(N_("The notice did not reach the applicant: send it again or record how it was given."))
        if status != "disputed" and applicant.dispute_due_at is not None and applicant.dispute_due_at > now:
            raise Conflict(N_("The dispute window is still open: the applicant may yet dispute."))
        service.add_event(session, applicant=applicant, kind="officer.reject", actor=officer.actor, **noted)
        reject(session, vault=vault, applicant=applicant, actor=officer.actor, rules=rules)
    else:
        raise Conflict(N_("Unknown action."))
    audit.record(session, actor=officer.actor, action=f"screening.decide.{action}",
                 target_type="screening_applicants", target_id=applicant.id, details=dict(noted))
    return applicant


def reject(session: Session, *, vault: Vault, applicant: Applicant, actor: Actor, rules: Rules) -> None:
    _close_disputes(session, applicant, "dismissed", actor)
    applicant.dispute_due_at = None
    service.move(session, applicant=applicant, status="rejected", actor=actor, rules=rules)
    _unenroll(session, applicant)
    service.tell(session, vault=vault, applicant=applicant, template="screening_final",
                 params={"reasons": service.reasons_of(session, vault=vault, applicant=applicant)},
                 key=f"final:{utcnow().isoformat()}")


def _unenroll(session: Session, applicant: Applicant) -> None:
    now = utcnow()
    agency = session.scalar(select(Report.agency).where(Report.applicant_id == applicant.id)
                            .order_by(Report.created_at.desc()).limit(1))
    for report in session.scalars(select(Report).where(Report.applicant_id == applicant.id,
                                                       Report.status == "queued")):
        report.status = "cancelled"
    session.add(Report(id=new_id("rep"), applicant_id=applicant.id, kind="unenroll", agency=agency or "simulated",
                       status="queued", attempts=0, next_attempt_at=now, created_at=now))


def offboard(session: Session, *, actor: Actor, applicant_id: str, rules: Rules) -> Applicant:
    """A worker who leaves: un-enrolled from monitoring, out of dispatch, their pending checks cancelled."""
    applicant = service.get(session, applicant_id=applicant_id)
    if applicant.status == "offboarded":
        return applicant
    applicant.offboarded_at = utcnow()
    _close_disputes(session, applicant, "dismissed", actor)
    service.move(session, applicant=applicant, status="offboarded", actor=actor, rules=rules)
    _unenroll(session, applicant)
    for check in session.scalars(select(Check).where(Check.applicant_id == applicant.id, Check.status == "pending")):
        check.status = "cancelled"
    return applicant


@dataclass(frozen=True)
class Document:
    content_type: str
    data: bytes


def dispute(session: Session, *, vault: Vault, rules: Rules, applicant_id: str, text: str,
            documents: list[Document], idempotency_key: str | None) -> tuple[Dispute, bool]:
    """The applicant disputes the notice within its window, with documents. A retry is the same dispute."""
    key = f"{applicant_id}:{idempotency_key}" if idempotency_key else None
    if key is not None:
        existing = session.scalar(select(Dispute).where(Dispute.idempotency_key == key))
        if existing is not None:
            return existing, False
    applicant = service.get(session, applicant_id=applicant_id)
    now = utcnow()
    if applicant.status not in service.NOTICED:
        raise Conflict(N_("There is no notice to dispute."))
    if applicant.dispute_due_at is not None and applicant.dispute_due_at <= now:
        raise Conflict(N_("The dispute window has closed."))
    record = Dispute(id=new_id("dsp"), applicant_id=applicant.id, idempotency_key=key, status="open", filed_at=now)
    session.add(record)
    session.flush()
    access.write_field(vault, session, record, "text", text)
    for document in documents:
        row = DisputeDocument(id=new_id("doc"), dispute_id=record.id, applicant_id=applicant.id,
                              content_type=document.content_type, size=len(document.data))
        # Sealed as base64 text, like every personal field: an access request exports it as it stands.
        access.write_field(vault, session, row, "content", base64.b64encode(document.data).decode())
        session.add(row)
    service.move(session, applicant=applicant, status="disputed", actor=Actor("subject", applicant.id), rules=rules,
                 dispute=record.id, documents=len(documents))
    return record, True


def _close_disputes(session: Session, applicant: Applicant, outcome: str, actor: Actor) -> None:
    for record in session.scalars(select(Dispute).where(Dispute.applicant_id == applicant.id,
                                                        Dispute.status == "open")):
        record.status, record.decided_at, record.decided_by = outcome, utcnow(), f"{actor.type}:{actor.id}"


def disputes_of(session: Session, *, applicant_id: str) -> list[Dispute]:
    return list(session.scalars(select(Dispute).where(Dispute.applicant_id == applicant_id)
                                .order_by(Dispute.filed_at.desc())))


def documents_of(session: Session, *, dispute_ids: list[str]) -> list[DisputeDocument]:
    if not dispute_ids:
        return []
    return list(session.scalars(select(DisputeDocument).where(DisputeDocument.dispute_id.in_(dispute_ids))))


def document(session: Session, *, applicant_id: str, document_id: str) -> DisputeDocument:
    """One of the applicant's dispute documents; another applicant's, or none, is 404."""
    row = session.get(DisputeDocument, document_id)
    if row is None or row.applicant_id != applicant_id:
        raise NotFound("no such document")
    return row


def watch_notices(factory: sessionmaker[Session], *, rules: Rules, batch: int = 500) -> int:
    """Notices whose SMS failed for good (the outbox gave up): the clock stops and an officer takes over."""
    with unit_of_work(factory) as session:
        running = session.scalars(select(Applicant).where(Applicant.status.in_(service.NOTICED),
                                                          Applicant.dispute_due_at.is_not(None),
                                                          Applicant.notice_key.is_not(None))
                                  .order_by(Applicant.notice_sent_at).limit(batch)).all()
        sent = notify.deliveries(session,
                                 idempotency_keys=[a.notice_key for a in running if a.notice_key])
        failed = [a for a in running if a.notice_key in sent and sent[a.notice_key].status == "dead"]
        for applicant in failed:
            service.notice_undelivered(session, applicant=applicant, rules=rules, why="send_failed")
        return len(failed)


def expire_notices(factory: sessionmaker[Session], *, vault: Vault, rules: Rules, now: datetime | None = None,
                   batch: int = 100) -> int:
    """Notices whose window passed without a dispute become final rejections: only notices that were
    delivered. One never delivered (its SMS failed, or is still not sent) goes to an officer instead."""
    with unit_of_work(factory) as session:
        expired = session.scalars(select(Applicant).where(Applicant.status.in_(service.NOTICED),
                                                          Applicant.dispute_due_at <= (now or utcnow()))
                                  .limit(batch)).all()
        sent = notify.deliveries(session,
                                 idempotency_keys=[a.notice_key for a in expired if a.notice_key])
        for applicant in expired:
            delivery = sent.get(applicant.notice_key or "")
            if applicant.notice_key is not None and (delivery is None or delivery.status != "sent"):
                service.notice_undelivered(session, applicant=applicant, rules=rules,
                                           why="send_failed" if delivery and delivery.status == "dead" else "not_sent")
                continue
            service.add_event(session, applicant=applicant, kind="window_closed", actor=SYSTEM)
            reject(session, vault=vault, applicant=applicant, actor=SYSTEM, rules=rules)
        return len(expired)


def open_document(session: Session, *, vault: Vault, principal: Principal, row: DisputeDocument) -> bytes:
    """A dispute's document, for a role that may read it for the screening purpose; audited either way."""
    access.check_clearance(session, principal=principal)
    spec = access.fields_of(DisputeDocument)["content"]
    allowed = access.may_read_plain(principal, spec, Purpose.SCREENING) and row.content is not None
    audit.record(session, actor=principal.actor, action="personal.read", target_type=DisputeDocument.__tablename__,
                 target_id=row.id, purpose=Purpose.SCREENING.value, outcome="success" if allowed else "denied",
                 details={"fields": "content", "plaintext": "content" if allowed else ""})
    if not allowed or row.content is None:
        raise PermissionDenied("your roles do not hold the screening purpose")
    return base64.b64decode(access.open_field(vault, session, row, "content") or "")
