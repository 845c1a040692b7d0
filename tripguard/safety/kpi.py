"""The plan's safety-feature use rate (R 二.2 任務三, 評估標準三: target ≥ 80 %).

A trip counts as using a safety feature when, during it, it was shared (by hand or automatically),
its passenger had a verified emergency contact, an SOS was pressed, or a check-in was answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from tripguard.core.stats import quantile
from tripguard.safety.models import EmergencyContact, Incident, TripShare
from tripguard.telematics.models import CheckIn, Trip


@dataclass(frozen=True)
class SafetyUse:
    since: datetime
    trips: int
    shared: int
    with_contacts: int
    sos: int
    checked_in: int
    used: int

    @property
    def use_rate(self) -> float | None:
        return self.used / self.trips if self.trips else None


def safety_use(session: Session, *, since: datetime, until: datetime | None = None) -> SafetyUse:
    in_period = and_(Trip.started_at >= since, Trip.started_at < until) if until is not None else Trip.started_at >= since
    shared = exists().where(TripShare.trip_id == Trip.id)
    contacts = exists().where(and_(EmergencyContact.subject_id == Trip.passenger_id,
                                   EmergencyContact.verified_at.is_not(None),
                                   EmergencyContact.verified_at <= Trip.started_at))
    sos = exists().where(and_(Incident.trip_id == Trip.id, Incident.source == "sos"))
    answered = exists().where(and_(CheckIn.trip_id == Trip.id, CheckIn.status.in_(("ok", "help"))))

    def count(*conditions: object) -> int:
        return session.scalar(select(func.count()).select_from(Trip).where(in_period, *conditions)) or 0  # type: ignore[arg-type]

    return SafetyUse(since=since, trips=count(), shared=count(shared), with_contacts=count(contacts),
                     sos=count(sos), checked_in=count(answered), used=count(or_(shared, contacts, sos, answered)))


@dataclass(frozen=True)
class SosFigures:
    presses: int
    acknowledged: int
    ack_p50_s: float | None
    ack_p90_s: float | None
    genuine: int


def sos_figures(session: Session, *, since: datetime, until: datetime) -> SosFigures:
    """SOS presses in the period and how long the safety centre took to acknowledge them."""
    rows = session.execute(select(Incident.created_at, Incident.acknowledged_at, Incident.outcome).where(
        Incident.source == "sos", Incident.created_at >= since, Incident.created_at < until)).all()
    waits = [(ack - created).total_seconds() for created, ack, _ in rows if ack is not None]
    return SosFigures(presses=len(rows), acknowledged=len(waits), ack_p50_s=quantile(waits, 0.5),
                      ack_p90_s=quantile(waits, 0.9), genuine=sum(1 for *_, outcome in rows if outcome == "genuine"))


def sos_records(session: Session, *, since: datetime, until: datetime, limit: int = 200) -> list[dict[str, object]]:
    """The presses behind the figure, slowest acknowledgement first (ids and times only)."""
    rows = session.execute(select(Incident.id, Incident.created_at, Incident.acknowledged_at, Incident.status).where(
        Incident.source == "sos", Incident.created_at >= since, Incident.created_at < until)
        .order_by(Incident.created_at).limit(5000)).all()
    waits = [((ack - created).total_seconds() if ack else None, i, created, status) for i, created, ack, status in rows]
    waits.sort(key=lambda w: -(w[0] if w[0] is not None else float("inf")))  # never acknowledged first
    return [{"id": i, "at": created.isoformat(), "ack_s": wait, "status": status}
            for wait, i, created, status in waits[:limit]]
