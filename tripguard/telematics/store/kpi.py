"""Trip-monitoring figures for reports: trips in a period and the alerts they raised, by kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tripguard.telematics.models import Device, Trip, TripAlert, Vehicle


@dataclass(frozen=True)
class AlertRates:
    trips: int
    alerts: dict[str, int]  # kind -> count

    def per_thousand(self, kind: str | None = None) -> float | None:
        count = sum(self.alerts.values()) if kind is None else self.alerts.get(kind, 0)
        return count * 1000 / self.trips if self.trips else None


def alert_rates(session: Session, *, since: datetime, until: datetime) -> AlertRates:
    """Trips started in the period, and alerts raised (by event time) in it, by kind: two range scans
    on indexed timestamps."""
    trips = session.scalar(select(func.count()).select_from(Trip).where(Trip.started_at >= since,
                                                                        Trip.started_at < until)) or 0
    alerts = {key: count for key, count in session.execute(select(TripAlert.kind, func.count()).where(
        TripAlert.ts >= since, TripAlert.ts < until).group_by(TripAlert.kind))}
    return AlertRates(trips=trips, alerts=alerts)


@dataclass(frozen=True)
class Installs:
    vehicles: int  # registered before the moment
    with_device: int  # of them, with a device installed in them before it


def installs_as_of(session: Session, *, at: datetime) -> Installs:
    """The install rate as the registry dates it, for a finished period without daily snapshots: vehicles
    registered before `at`, and those with a device whose installation in them dates from before `at`.
    (A device moved to another vehicle since keeps only its new installation: the snapshots are exact.)"""
    vehicles = session.scalar(select(func.count()).select_from(Vehicle).where(Vehicle.created_at < at)) or 0
    with_device = session.scalar(select(func.count(func.distinct(Vehicle.id))).join(
        Device, Device.vehicle_id == Vehicle.id).where(Vehicle.created_at < at, Device.installed_at.is_not(None),
                                                       Device.installed_at < at)) or 0
    return Installs(vehicles=vehicles, with_device=with_device)
