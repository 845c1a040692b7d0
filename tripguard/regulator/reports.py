"""What the compliance officer reads: the feed's state per type, and the reconciliation per day and type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.regulator import contract
from tripguard.regulator.models import ACKNOWLEDGED, FAILED, Feed, Lane
from tripguard.regulator.models import Upload as QueuedUpload


@dataclass(frozen=True)
class TypeState:
    kind: str
    backlog: int  # queued, not yet acknowledged
    failing: int  # of which the last try failed
    oldest_due: datetime | None  # when the oldest unacknowledged upload happened
    lag_seconds: float  # how far behind the platform is for this type (0: nothing due)
    watermark: datetime | None  # the exporter has run up to here (None: a pass-through type)
    last_acknowledged_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


def feed_state(session: Session, *, now: datetime | None = None) -> list[TypeState]:
    """Every type the feed knows (exporters, queued or passed through), by name."""
    now = now or utcnow()
    due = {kind: (backlog, failing, oldest) for kind, backlog, failing, oldest in session.execute(
        select(QueuedUpload.kind, func.count(), func.sum(case((QueuedUpload.state == FAILED, 1), else_=0)),
               func.min(QueuedUpload.occurred_at))
        .where(QueuedUpload.state != ACKNOWLEDGED).group_by(QueuedUpload.kind))}
    feeds = {f.kind: f for f in session.scalars(select(Feed))}
    lanes = {lane.kind: lane for lane in session.scalars(select(Lane))}
    states = []
    for kind in sorted(set(due) | set(feeds) | set(contract.EXPORTERS)):
        backlog, failing, oldest = due.get(kind, (0, 0, None))
        oldest = _utc(oldest)
        lane, feed = lanes.get(kind), feeds.get(kind)
        states.append(TypeState(
            kind=kind, backlog=int(backlog), failing=int(failing or 0), oldest_due=oldest,
            lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
            watermark=feed.watermark if feed else None,
            last_acknowledged_at=lane.last_acknowledged_at if lane else None,
            last_error=lane.last_error if lane else None, last_error_at=lane.last_error_at if lane else None))
    return states


def _utc(value: datetime | None) -> datetime | None:
    """An aggregate's datetime comes back without the column's type on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class DayCount:
    day: date  # in the operator's time zone
    kind: str
    produced: int  # queued for this day (by when it happened)
    sent: int  # sent at least once
    acknowledged: int
    due: int  # not acknowledged yet

    @property
    def balanced(self) -> bool:
        return self.produced == self.acknowledged + self.due


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), zone)
    return start.astimezone(UTC), datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)


MAX_DAYS = 92


def reconcile(session: Session, *, first: date, last: date, zone: ZoneInfo) -> list[DayCount]:
    """Per day (in `zone`) from `first` to `last` and per type: produced, sent, acknowledged, still due."""
    if last < first:
        raise ValueError("the last day is before the first")
    if (last - first).days >= MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days at once")
    rows: list[DayCount] = []
    day = first
    while day <= last:
        start, end = day_bounds(day, zone)
        for kind, produced, sent, acknowledged in session.execute(
                select(QueuedUpload.kind, func.count(), func.count(QueuedUpload.sent_at),
                       func.sum(case((QueuedUpload.state == ACKNOWLEDGED, 1), else_=0)))
                .where(QueuedUpload.occurred_at >= start, QueuedUpload.occurred_at < end)
                .group_by(QueuedUpload.kind).order_by(QueuedUpload.kind)):
            acknowledged = int(acknowledged or 0)
            due = int(session.scalar(select(func.count()).where(
                QueuedUpload.kind == kind, QueuedUpload.occurred_at >= start, QueuedUpload.occurred_at < end,
                QueuedUpload.state != ACKNOWLEDGED)) or 0)
            rows.append(DayCount(day, kind, int(produced), int(sent), acknowledged, due))
        day += timedelta(days=1)
    return rows
