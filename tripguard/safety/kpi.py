"""The plan's safety-feature use rate (R 二.2 任務三, 評估標準三: target ≥ 80 %).

A trip counts as using a safety feature when, during it, it was shared (by hand or automatically),
its passenger had a verified emergency contact, an SOS was pressed, or a check-in was answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

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


def safety_use(session: Session, *, since: datetime) -> SafetyUse:
    in_period = Trip.started_at >= since
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
