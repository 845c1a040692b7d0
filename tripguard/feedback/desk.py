"""The feedback desk: complaints triaged, taken by a support agent, answered by a deadline (a safety
complaint within a day, a privacy one within PIPL's 15 days, any other within 7), the person told by
the notifier; or turned into a case for the safety centre or a breach for the privacy officer. The
complaint's text and the answer are the person's: sealed, read only for the support purpose, audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, NotFound
from tripguard.core.i18n import N_
from tripguard.delivery import service as orders
from tripguard.feedback import answer_templates
from tripguard.feedback.models import Complaint
from tripguard.notify import service as notify
from tripguard.privacy import access
from tripguard.privacy import breaches as privacy_breaches
from tripguard.privacy.service import reach
from tripguard.safety.service import open_for_complaint
from tripguard.security.permissions import Purpose
from tripguard.security.service import get_staff
from tripguard.telematics import service as telematics
from tripguard.vault.service import Vault
from tripguard.workforce import discipline

OPEN = ("received", "assigned")


def get(session: Session, *, complaint_id: str) -> Complaint:
    complaint = session.get(Complaint, complaint_id)
    if complaint is None:
        raise NotFound("no such complaint")
    return complaint


def assign(session: Session, *, actor: Actor, complaint_id: str, assignee: str) -> Complaint:
    complaint = get(session, complaint_id=complaint_id)
    if complaint.status not in OPEN:
        raise Conflict(N_("This complaint has been answered already."))
    get_staff(session, staff_id=assignee)  # a staff account that exists (404 otherwise)
    complaint.assigned_to, complaint.status = assignee, "assigned"
    audit.record(session, actor=actor, action="complaint.assign", target_type="complaint", target_id=complaint.id,
                 details={"to": assignee})
    return complaint


def answer(session: Session, *, vault: Vault, actor: Actor, complaint_id: str, text: str, locale: str,
           template_id: str | None = None) -> Complaint:
    """The answer, sealed under the person's key; they are told by SMS and read it in their app.
    `template_id`: the answer template it was started from (named in the audit entry)."""
    complaint = get(session, complaint_id=complaint_id)
    if template_id is not None:
        answer_templates.get(session, template_id=template_id)
    if complaint.status not in OPEN:
        raise Conflict(N_("This complaint has been answered already."))
    access.write_field(vault, session, complaint, "answer", text)
    complaint.status, complaint.answered_at = "answered", utcnow()
    complaint.answered_by = f"{actor.type}:{actor.id}"
    complaint.assigned_to = complaint.assigned_to or actor.id
    phone = reach(session, vault=vault, subject_id=complaint.subject_id, actor=actor, purpose=Purpose.SUPPORT,
                  use="complaint answered")
    if phone:
        notify.enqueue_to_person(session, vault=vault, subject_id=complaint.subject_id,
                                 channel="sms", to=phone,
                                 template="complaint_answered", locale=locale, params={"complaint": complaint.id},
                                 idempotency_key=f"complaint:{complaint.id}:answered")
    audit.record(session, actor=actor, action="complaint.answer", target_type="complaint", target_id=complaint.id,
                 details={"told": bool(phone), "late": complaint.due_at is not None
                          and complaint.answered_at > complaint.due_at,
                          **({"template": template_id} if template_id else {})})
    return complaint


def is_assigned(session: Session, *, staff_id: str, trip_id: str | None = None,
                order_id: str | None = None) -> bool:
    """Does this support agent hold a complaint about the trip or the order (supervision asks)?"""
    about = Complaint.trip_id == trip_id if trip_id is not None else Complaint.order_id == order_id
    return session.scalar(select(Complaint.id).where(Complaint.assigned_to == staff_id, about).limit(1)) is not None


@dataclass(frozen=True)
class ViolationSpec:
    offender_type: str
    offender_id: str
    kind: str
    summary: str


def worked_on(session: Session, *, complaint: Complaint, worker_id: str) -> bool:
    """Whether the worker carried what the complaint names (the order's courier, the trip's driver), asked of
    the delivery and telematics domains: a complaint is evidence against them only then."""
    if complaint.order_id is not None:
        customer_and_courier = orders.parties(session,
                                              order_ids=[complaint.order_id]).get(complaint.order_id)
        if customer_and_courier is None or customer_and_courier[1] != worker_id:
            return False
    if complaint.trip_id is not None:
        try:
            if telematics.get_trip(session, trip_id=complaint.trip_id).driver_id != worker_id:
                return False
        except NotFound:
            return False
    return True


def escalate(session: Session, *, actor: Actor, complaint_id: str, to: str, ack_seconds: int,
             vault: Vault | None = None, violation: ViolationSpec | None = None) -> Complaint:
    """Turn the complaint into a case for the safety centre, a breach for the privacy officer to
    investigate (its details to be completed there), or a violation by a worker or a staff member for HR
    to decide on, with the complaint as its evidence. It stays open at the desk until answered."""
    complaint = get(session, complaint_id=complaint_id)
    if complaint.became is not None:
        raise Conflict(N_("This complaint has already been turned into a case, a breach or a violation."))
    if to == "incident":
        incident = open_for_complaint(session, complaint_id=complaint.id, subject_id=complaint.subject_id,
                                      trip_id=complaint.trip_id, order_id=complaint.order_id,
                                      ack_seconds=ack_seconds)
        complaint.became, complaint.became_id = "incident", incident.id
    elif to == "breach":
        now = utcnow()
        breach = privacy_breaches.open_breach(
            session, actor=actor, title=f"Complaint {complaint.id}", serious=False,
            occurred_from=complaint.created_at - timedelta(days=30), occurred_to=now, categories=[],
            cause="reported in a complaint: to investigate", harm="to assess", measures="to decide",
            advice="to decide", contact="the privacy officer")
        complaint.became, complaint.became_id = "breach", breach.id
    elif to == "violation" and violation is not None and vault is not None:
        if violation.offender_type == "worker" and not worked_on(session, complaint=complaint,
                                                                  worker_id=violation.offender_id):
            raise Conflict(N_("This complaint is about an order or a trip that this worker did not carry."))
        raised = discipline.raise_violation(session, vault=vault, actor=actor,
                                            offender_type=violation.offender_type,
                                            offender_id=violation.offender_id, kind=violation.kind,
                                            summary=violation.summary, evidence={"complaints": [complaint.id]})
        complaint.became, complaint.became_id = "violation", raised.id
    else:
        raise Conflict(N_("Unknown action."))
    audit.record(session, actor=actor, action=f"complaint.to_{to}", target_type="complaint", target_id=complaint.id,
                 details={to: complaint.became_id})
    return complaint
