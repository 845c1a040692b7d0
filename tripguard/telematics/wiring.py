"""What telematics gives the platform at start-up (`tripguard.wiring`): the monitor's threshold names (the
settings check them), the retention rules that erase its own data, a person's trips in their export and in
their deletion record (kept by law), and whose trips a breach's audited reads showed."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tripguard.audit.actor import Actor
from tripguard.core.settings import Settings, register_monitor_thresholds
from tripguard.privacy import breaches, retention, service
from tripguard.privacy.models import DataSubject
from tripguard.telematics.detection import onscreen
from tripguard.telematics.detection.contract import MonitorConfig
from tripguard.telematics.models import Trip
from tripguard.telematics.store import trips
from tripguard.telematics.store.retention import expired_trips, old_ingest_keys
from tripguard.vault.service import Vault


def _trips(settings: Settings) -> retention.Rule:
    keep = timedelta(days=settings.retention_trip_data_days)
    return retention.Rule("trips", "trips, their positions, alerts and check-ins past the trip-data period "
                          "(key shredded)", keep, expired_trips(keep, retention.held_subjects))


def _ingest_keys(settings: Settings) -> retention.Rule:
    keep = timedelta(days=1)
    return retention.Rule("ingest_keys", "idempotency keys of trip-event batches (a retry comes within minutes)",
                          keep, old_ingest_keys(keep))


def _of_person(subject_id: str) -> Any:
    return or_(Trip.passenger_id == subject_id, Trip.driver_id == subject_id)


def _trips_part(session: Session, vault: Vault, actor: Actor, subject: DataSubject) -> tuple[dict[str, Any], set[str]]:
    """The person's trips, listed in their export: the positions are evidence, opened on a purpose."""
    rows = session.scalars(select(Trip).where(_of_person(subject.id)).order_by(Trip.started_at))
    return {"trips": [{"id": t.id, "role": "driver" if t.driver_id == subject.id else "passenger",
                       "started_at": t.started_at.isoformat() if t.started_at else None,
                       "ended_at": t.ended_at.isoformat() if t.ended_at else None} for t in rows]}, set()


def _kept_by_law(session: Session, subject_id: str, trip_data_days: int) -> list[dict[str, object]]:
    rows = list(session.execute(select(Trip.id, Trip.ended_at, Trip.updated_at).where(_of_person(subject_id))))
    if not rows:
        return []
    until = max((ended or updated) for _, ended, updated in rows) + timedelta(days=trip_data_days)
    return [{"what": "trips", "ids": [trip_id for trip_id, _, _ in rows][:100], "kept_until": until.isoformat(),
             "basis": "trip and business data are kept at least 2 years (网约车暂行办法, 监管信息交互平台)",
             "open_only_for": sorted(p.value for p in trips.BLOCKED_DATA_PURPOSES)}]


def _people_of_trip(session: Session, trip_id: str) -> list[str | None]:
    trip = session.get(Trip, trip_id)
    return [trip.passenger_id, trip.driver_id] if trip is not None else []


def _on_the_map(session: Session, shown: list[dict[str, object]]) -> set[str]:
    """The passengers and drivers of the trips the live map showed (`telematics.onscreen`)."""
    return trips.people_on(session, trip_ids={trip_id for details in shown for trip_id in onscreen.trips_of(details)})


def register() -> None:
    register_monitor_thresholds(frozenset(field.name for field in dataclasses.fields(MonitorConfig)))
    retention.register_rule("trips", order=40, rule=_trips)
    retention.register_rule("ingest_keys", order=70, rule=_ingest_keys)
    service.register_export("trips", order=10, part=_trips_part)
    service.register_kept_by_law("trips", _kept_by_law)
    breaches.register_people_of("trip", _people_of_trip)
    breaches.register_on_screen(_on_the_map)
