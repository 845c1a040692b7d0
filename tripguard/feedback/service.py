"""Complaints and feedback: a person complains about a trip or an order, or rates it low.

A complaint or a rating of one or two stars about a trip keeps that trip's in-car recordings 16 days
instead of 7 (DESIGN.md §5, as DiDi does), so the evidence is still there when it is looked into.
The text is the person's own words: sealed under their key like any personal field. Handling is
the feedback desk's (`desk.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.delivery import service as orders
from tripguard.feedback.models import Complaint
from tripguard.privacy import access
from tripguard.privacy.service import register
from tripguard.safety import service as safety
from tripguard.security.principal import Principal
from tripguard.telematics import service as telematics
from tripguard.vault.service import Vault


@dataclass(frozen=True)
class ComplaintRequest:
    category: str
    trip_id: str | None = None
    order_id: str | None = None
    rating: int | None = None
    text: str | None = None
    idempotency_key: str | None = None


# The feedback desk answers by: a safety complaint within a day, a privacy one within PIPL's 15 days.
ANSWER_WITHIN = {"safety": timedelta(days=1), "privacy": timedelta(days=15)}
DEFAULT_ANSWER_WITHIN = timedelta(days=7)
APP_ROLES = frozenset({"passenger", "customer", "driver", "courier"})  # the kinds of person who file


def due_for(category: str, received: datetime) -> datetime:
    return received + ANSWER_WITHIN.get(category, DEFAULT_ANSWER_WITHIN)


def file(session: Session, *, vault: Vault, filer: Principal, request: ComplaintRequest,
         recording_hold_days: int) -> tuple[Complaint, bool]:
    """The complaint, and whether it is new (a retry with the same Idempotency-Key finds the first)."""
    key = f"{filer.id}:{request.idempotency_key}" if request.idempotency_key else None
    if key is not None and (known := session.scalar(select(Complaint).where(Complaint.idempotency_key == key))):
        return known, False
    _own_subjects(session, filer, request)
    complaint = Complaint(id=new_id("cmp"), subject_id=filer.id,
                          subject_role=min((r.value for r in filer.roles), default="unknown"),
                          trip_id=request.trip_id, order_id=request.order_id, category=request.category,
                          rating=request.rating, status="received", idempotency_key=key, created_at=utcnow())
    complaint.due_at = due_for(request.category, complaint.created_at)
    register(session, subject_id=filer.id, source="complaint",  # a data subject from their first complaint
             kind=complaint.subject_role if complaint.subject_role in APP_ROLES else None)
    if request.text:
        access.write_field(vault, session, complaint, "text", request.text)
    session.add(complaint)
    audit.record(session, actor=filer.actor, action="complaint.file", target_type="complaint",
                 target_id=complaint.id, details={"category": request.category})
    if request.trip_id is not None:
        safety.hold_recordings_for_complaint(session, trip_id=request.trip_id, days=recording_hold_days)
    return complaint, True


def _own_subjects(session: Session, filer: Principal, request: ComplaintRequest) -> None:
    """A complaint or a rating names a trip or an order the person took part in: each domain answers for its
    own (404 for anyone else's, or one that does not exist), so no one files against other people's."""
    if request.trip_id is not None:
        telematics.own_trip(session, subject_id=filer.id, trip_id=request.trip_id)
    if request.order_id is not None:
        orders.own_order(session, principal=filer, order_id=request.order_id)


def complained_about(session: Session, trip_id: str) -> bool:
    """Someone complained about this trip (its recordings are kept longer: `safety.recordings.LONGER_HOLDS`)."""
    return session.scalar(select(Complaint.id).where(Complaint.trip_id == trip_id).limit(1)) is not None


def of_person(session: Session, *, subject_id: str) -> list[Complaint]:
    return list(session.scalars(select(Complaint).where(Complaint.subject_id == subject_id)
                                .order_by(Complaint.created_at.desc()).limit(200)))


def recent(session: Session, *, category: str | None, limit: int = 200) -> list[Complaint]:
    statement = select(Complaint).order_by(Complaint.created_at.desc()).limit(limit)
    if category:
        statement = statement.where(Complaint.category == category)
    return list(session.scalars(statement))


def expired(keep: timedelta,
            held: Callable[[], Select[str]]) -> Callable[[Session, Vault, datetime, bool], tuple[int, int]]:
    """Retention rule: complaints older than `keep`, unless their author is under a legal hold."""
    def run(session: Session, vault: Vault, now: datetime, dry_run: bool) -> tuple[int, int]:
        due = Complaint.created_at < now - keep
        on_hold = Complaint.subject_id.in_(held())
        held_count = session.scalar(select(func.count()).select_from(Complaint).where(due, on_hold)) or 0
        if dry_run:
            return session.scalar(select(func.count()).select_from(Complaint).where(due, ~on_hold)) or 0, held_count
        erasable = list(session.scalars(select(Complaint.id).where(due, ~on_hold).limit(200)))
        if erasable:
            session.execute(delete(Complaint).where(Complaint.id.in_(erasable)))
        return len(erasable), held_count
    return run


def about_trips(session: Session, *, start: datetime, end: datetime) -> list[Complaint]:
    """Complaints about a trip filed in [start, end), oldest first (the regulator's complaint records)."""
    return list(session.scalars(select(Complaint).where(Complaint.trip_id.is_not(None), Complaint.created_at >= start,
                                                        Complaint.created_at < end)
                                .order_by(Complaint.created_at, Complaint.id)))
