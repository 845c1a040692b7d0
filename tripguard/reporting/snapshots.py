"""Daily snapshots of figures whose source keeps no history: the device registry stores each device's
last heartbeat only, so a past quarter's install and operating rates come from these (one row a day,
taken by the scheduler; the day's last snapshot wins)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.reporting.models import DeviceDay
from tripguard.telematics.fleet import registry


def take(factory: sessionmaker[Session], *, timezone: str, now: datetime | None = None) -> DeviceDay:
    now = now or utcnow()
    day = now.astimezone(ZoneInfo(timezone)).date()
    with unit_of_work(factory) as session:
        figures = registry.device_kpi(session, since=now - timedelta(days=1))
        row = session.get(DeviceDay, day)
        if row is None:
            row = DeviceDay(day=day)
            session.add(row)
        row.vehicles, row.with_device = figures.vehicles, figures.vehicles_with_device
        row.installed, row.heard, row.taken_at = figures.devices_installed, figures.devices_heard, now
        return row


@dataclass(frozen=True)
class DeviceHistory:
    days: int
    vehicles: int  # vehicle-days
    with_device: int
    installed: int  # device-days
    heard: int


def device_history(session: Session, *, since: datetime, until: datetime, timezone: str) -> DeviceHistory | None:
    """The period's snapshots summed over its days; None when none was taken in it."""
    zone = ZoneInfo(timezone)
    first, last = since.astimezone(zone).date(), (until - timedelta(microseconds=1)).astimezone(zone).date()
    days, vehicles, with_device, installed, heard = session.execute(select(
        func.count(), func.coalesce(func.sum(DeviceDay.vehicles), 0), func.coalesce(func.sum(DeviceDay.with_device), 0),
        func.coalesce(func.sum(DeviceDay.installed), 0), func.coalesce(func.sum(DeviceDay.heard), 0))
        .where(DeviceDay.day >= first, DeviceDay.day <= last)).one()
    return DeviceHistory(days, vehicles, with_device, installed, heard) if days else None
