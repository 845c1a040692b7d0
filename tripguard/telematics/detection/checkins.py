"""Check-ins: after an alert, ask the people on the trip "are you OK?" (Uber RideCheck, Lyft Smart Trip Check-in).

The question goes out by push through the outbox. An answer of "help", or no answer by the
deadline, puts the trip in front of the safety agents (live feed and the operator's webhook).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.errors import Conflict, NotFound
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.telematics.models import CheckIn, Trip, TripAlert
from tripguard.vault.service import Vault

# Which alerts ask whom. Speeding and silence are for the safety team, not a question to the rider.
ASK: dict[str, tuple[str, ...]] = {
    "possible_crash": ("passenger", "driver"),
    "long_stop": ("passenger", "driver"),
    "route_deviation": ("passenger",),
    "early_end": ("passenger",),
}
ANSWERS = ("ok", "help")


def open_for_alert(session: Session, *, vault: Vault, alert: TripAlert, minutes: int,
                   webhook_url: str | None) -> list[CheckIn]:
    roles = ASK.get(alert.kind, ())
    trip = session.get(Trip, alert.trip_id) if roles else None
    if trip is None:
        return []
    now = utcnow()
    opened = []
    for role in roles:
        subject_id = trip.passenger_id if role == "passenger" else trip.driver_id
        if subject_id is None:
            continue
        exists = session.scalar(select(CheckIn.id).where(CheckIn.alert_id == alert.id,
                                                         CheckIn.subject_id == subject_id))
        if exists:
            continue
        check_in = CheckIn(id=new_id("chk"), alert_id=alert.id, trip_id=trip.id, subject_id=subject_id, role=role,
                           status="pending", sent_at=now, answer_by=now + timedelta(minutes=minutes))
        session.add(check_in)
        notify.enqueue_to_person(session, vault=vault, subject_id=subject_id, channel="push",
                                 to=subject_id,
                                 template="check_in", locale="zh_CN",
                                 params={"kind": alert.kind, "minutes": minutes},
                                 idempotency_key=f"check_in:{check_in.id}")
        if webhook_url:
            notify.enqueue_webhook(session, url=webhook_url, event="check_in", payload=as_payload(check_in),
                                   idempotency_key=f"check_in:{check_in.id}:sent")
        opened.append(check_in)
    session.flush()
    return opened


def as_payload(check_in: CheckIn) -> dict[str, object]:
    return {"check_in_id": check_in.id, "trip_id": check_in.trip_id, "alert_id": check_in.alert_id,
            "subject_id": check_in.subject_id, "role": check_in.role, "status": check_in.status,
            "answer_by": check_in.answer_by.isoformat()}


def answer(session: Session, *, actor: Actor, subject_id: str, check_in_id: str, reply: str,
           webhook_url: str | None) -> CheckIn:
    """The person's own answer. The same answer again changes nothing; "help" may follow "ok", not the reverse."""
    check_in = session.get(CheckIn, check_in_id)
    if check_in is None or check_in.subject_id != subject_id:
        raise NotFound("no such check-in")
    if check_in.status == reply:
        return check_in
    if check_in.status == "help":
        raise Conflict("help was asked for; a safety agent will close this check-in")
    check_in.status, check_in.answered_at = reply, utcnow()
    audit.record(session, actor=actor, action="check_in.answer", target_type="check_in", target_id=check_in.id,
                 details={"answer": reply, "trip": check_in.trip_id})
    if webhook_url:
        notify.enqueue_webhook(session, url=webhook_url, event="check_in", payload=as_payload(check_in),
                               idempotency_key=f"check_in:{check_in.id}:{reply}")
    session.flush()
    return check_in


def expire_due(factory: sessionmaker[Session], *, webhook_url: str | None, now: datetime | None = None,
               ) -> list[dict[str, object]]:
    """Mark check-ins nobody answered in time; returns them for the safety agents' live feed."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        due = list(session.scalars(select(CheckIn).where(CheckIn.status == "pending", CheckIn.answer_by <= now)
                                   .order_by(CheckIn.answer_by).limit(1000)))
        for check_in in due:
            check_in.status = "unanswered"
            if webhook_url:
                notify.enqueue_webhook(session, url=webhook_url, event="check_in", payload=as_payload(check_in),
                                       idempotency_key=f"check_in:{check_in.id}:unanswered")
        return [as_payload(c) for c in due]


def for_trip(session: Session, *, trip_id: str) -> list[CheckIn]:
    return list(session.scalars(select(CheckIn).where(CheckIn.trip_id == trip_id).order_by(CheckIn.sent_at)))


def needing_attention(session: Session, *, limit: int = 100) -> list[CheckIn]:
    return list(session.scalars(select(CheckIn).where(CheckIn.status.in_(("help", "unanswered")))
                                .order_by(CheckIn.sent_at.desc()).limit(limit)))
