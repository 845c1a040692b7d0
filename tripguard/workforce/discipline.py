"""Violations and discipline. A violation by a worker or a staff member is recorded with its evidence
(audit entries, incidents, complaints, supervision findings); HR decides a sanction; the person may
appeal. A suspension or a dismissal in force reaches the dispatch gate (`eligibility`) and the staff
access gate (`clearance`) at once: both read the sanctions on every ask."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.privacy import access
from tripguard.security import service as security
from tripguard.security.permissions import Decision
from tripguard.security.principal import Principal, refuse_own
from tripguard.vault.service import Vault
from tripguard.workforce import clearance, training
from tripguard.workforce.models import Finding, Sanction, Violation

EVIDENCE = ("audit", "incidents", "complaints", "findings")


def raise_violation(session: Session, *, vault: Vault, actor: Actor, offender_type: str, offender_id: str, kind: str,
                    summary: str, evidence: dict[str, list[str]], idempotency_key: str | None = None) -> Violation:
    """Record a violation. Findings named as evidence are marked reviewed, as leading to it."""
    key = f"{actor.id}:{idempotency_key}" if idempotency_key else None
    if key is not None:
        existing = session.scalar(select(Violation).where(Violation.idempotency_key == key))
        if existing is not None:
            return existing
    if not any(evidence.get(name) for name in EVIDENCE):
        raise InvalidInput("a violation names its evidence", errors=[FieldProblem(
            field="evidence", message="at least one audit entry, incident, complaint or finding")])
    findings = []
    for finding_id in evidence.get("findings", []):
        finding = session.get(Finding, finding_id)
        if finding is None:
            raise NotFound(f"no supervision finding {finding_id}")
        if offender_type == "staff" and finding.actor_id != offender_id:
            raise Conflict(f"finding {finding_id} is about someone else")
        findings.append(finding)
    now = utcnow()
    violation = Violation(id=new_id("vio"), offender_type=offender_type, offender_id=offender_id, kind=kind,
                          evidence={name: list(evidence.get(name, [])) for name in EVIDENCE}, status="open",
                          created_by=f"{actor.type}:{actor.id}", created_at=now, idempotency_key=key)
    try:
        with session.begin_nested():
            session.add(violation)
            access.write_field(vault, session, violation, "summary", summary)
    except IntegrityError as exc:
        raise Conflict("this violation is being recorded; retry") from exc
    for finding in findings:
        finding.status, finding.outcome, finding.violation_id = "reviewed", "violation", violation.id
        finding.reviewed_by, finding.reviewed_at = f"{actor.type}:{actor.id}", now
    audit.record(session, actor=actor, action="violation.raise", target_type="workforce_violations",
                 target_id=violation.id, details={"offender": offender_id, "kind": kind})
    return violation


def get(session: Session, *, violation_id: str) -> Violation:
    violation = session.get(Violation, violation_id)
    if violation is None:
        raise NotFound("no such violation")
    return violation


def violations(session: Session, *, status: str | None = None, limit: int = 200) -> list[Violation]:
    statement = select(Violation).order_by(Violation.created_at.desc()).limit(limit)
    if status:
        statement = statement.where(Violation.status == status)
    return list(session.scalars(statement))


def sanctions_of(session: Session, *, violation_id: str | None = None,
                 offender_id: str | None = None) -> list[Sanction]:
    statement = select(Sanction).order_by(Sanction.decided_at)
    if violation_id is not None:
        statement = statement.where(Sanction.violation_id == violation_id)
    if offender_id is not None:
        statement = statement.where(Sanction.offender_id == offender_id)
    return list(session.scalars(statement))


def decide(session: Session, *, actor: Actor, violation_id: str, kind: str, amount_fen: int | None = None,
           days: int | None = None, course_id: str | None = None, webhook_url: str | None = None) -> Sanction:
    """A sanction on a violation. A suspension lasts `days` (none: until lifted); retraining sends a
    worker back to `course_id`; dismissing a staff member also disables their account and ends their
    sessions (re-enabling it, after an appeal, is the system administrator's). A worker's suspension or
    dismissal is sent to the operator's backend (`worker.sanctioned`); the gates see it at once either
    way."""
    violation = get(session, violation_id=violation_id)
    refuse_own(actor, Decision.SANCTION, violation.offender_id)
    if kind == "fine" and not amount_fen:
        raise InvalidInput("a fine names its amount", errors=[FieldProblem(field="amount_fen", message="required")])
    if kind == "retraining":
        if violation.offender_type != "worker" or not course_id:
            raise InvalidInput("retraining sends a worker to a course",
                               errors=[FieldProblem(field="course_id", message="a course, for a worker")])
        training.assign_retraining(session, worker_id=violation.offender_id, course_id=course_id,
                                   violation_id=violation.id)
    now = utcnow()
    sanction = Sanction(id=new_id("san"), violation_id=violation.id, offender_id=violation.offender_id, kind=kind,
                        amount_fen=amount_fen if kind == "fine" else None, starts_at=now,
                        ends_at=now + timedelta(days=days) if kind == "suspension" and days else None,
                        status="active", decided_by=f"{actor.type}:{actor.id}", decided_at=now)
    session.add(sanction)
    violation.status = "decided"
    clearance.forget(session)
    if kind == "dismissal" and violation.offender_type == "staff" \
            and security.find_staff(session, staff_id=violation.offender_id):
        security.disable_staff(session, actor=actor, staff_id=violation.offender_id)  # and signs them out
    audit.record(session, actor=actor, action="sanction.decide", target_type="workforce_violations",
                 target_id=violation.id, details={"sanction": sanction.id, "kind": kind,
                                                  "offender": violation.offender_id})
    if webhook_url and violation.offender_type == "worker" and kind in clearance.IN_FORCE_KINDS:
        session.flush()
        notify.enqueue_webhook(session, url=webhook_url, event="worker.sanctioned",
                               payload={"worker_id": violation.offender_id, "sanction_id": sanction.id, "kind": kind,
                                        "ends_at": sanction.ends_at.isoformat() if sanction.ends_at else None},
                               idempotency_key=f"sanction:{sanction.id}")
    return sanction


def _sanction(session: Session, sanction_id: str) -> Sanction:
    """The sanction, its row locked until the transaction ends (PostgreSQL): an appeal, its decision and a
    lift each see the others' outcome, so a sanction has one appeal and one decision on it."""
    sanction = session.get(Sanction, sanction_id, with_for_update=True, populate_existing=True)
    if sanction is None:
        raise NotFound("no such sanction")
    return sanction


def lift(session: Session, *, actor: Actor, sanction_id: str) -> Sanction:
    sanction = _sanction(session, sanction_id)
    refuse_own(actor, Decision.SANCTION, sanction.offender_id)
    if sanction.status == "active":
        sanction.status = "lifted"
        clearance.forget(session)
        audit.record(session, actor=actor, action="sanction.lift", target_type="workforce_violations",
                     target_id=sanction.violation_id, details={"sanction": sanction.id})
    return sanction


def appeal(session: Session, *, vault: Vault, principal: Principal, sanction_id: str, text: str) -> Sanction:
    """The person sanctioned appeals, once; the sanction stays in force until the appeal is decided."""
    sanction = _sanction(session, sanction_id)
    if sanction.offender_id != principal.id:
        raise NotFound("no such sanction")
    if sanction.appeal_status is not None:
        if sanction.appeal_status == "pending":
            return sanction
        raise Conflict("this sanction's appeal was decided")
    access.write_field(vault, session, sanction, "appeal", text)
    sanction.appeal_status, sanction.appeal_filed_at = "pending", utcnow()
    audit.record(session, actor=principal.actor, action="sanction.appeal", target_type="workforce_violations",
                 target_id=sanction.violation_id, details={"sanction": sanction.id})
    return sanction


def decide_appeal(session: Session, *, actor: Actor, sanction_id: str, outcome: str) -> Sanction:
    """`upheld` keeps the sanction; `overturned` ends it at once."""
    sanction = _sanction(session, sanction_id)
    refuse_own(actor, Decision.APPEAL, sanction.offender_id)
    if sanction.appeal_status != "pending":
        raise Conflict("no appeal is waiting on this sanction")
    sanction.appeal_status, sanction.appeal_decided_by = outcome, f"{actor.type}:{actor.id}"
    if outcome == "overturned":
        sanction.status = "overturned"
        clearance.forget(session)
    audit.record(session, actor=actor, action="sanction.appeal_decide", target_type="workforce_violations",
                 target_id=sanction.violation_id, details={"sanction": sanction.id, "outcome": outcome})
    return sanction


def sanction_counts(session: Session, *, since: datetime, until: datetime) -> dict[str, int]:
    """Sanctions decided in the period, by kind (those overturned on appeal not counted)."""
    return {key: count for key, count in session.execute(select(Sanction.kind, func.count()).where(
        Sanction.decided_at >= since, Sanction.decided_at < until, Sanction.status != "overturned")
        .group_by(Sanction.kind))}


def sanctions_decided(session: Session, *, start: datetime, end: datetime,
                      offender_type: str = "worker") -> list[tuple[Sanction, Violation]]:
    """Sanctions decided in [start, end) on `offender_type`s, with their violation, oldest first."""
    rows = session.execute(select(Sanction, Violation).join(Violation, Violation.id == Sanction.violation_id)
                           .where(Violation.offender_type == offender_type,
                                  Sanction.decided_at >= start, Sanction.decided_at < end)
                           .order_by(Sanction.decided_at, Sanction.id))
    return [(s, v) for s, v in rows]
