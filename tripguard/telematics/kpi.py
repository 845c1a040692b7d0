"""Trip-monitoring figures for reports: trips in a period and the alerts they raised, by kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tripguard.telematics.models import Trip, TripAlert


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
