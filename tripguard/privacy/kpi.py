"""Privacy figures for reports: subject requests answered on time, deletions on schedule, breaches and
their timelines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from tripguard.core.stats import quantile
from tripguard.privacy.models import (
    Breach,
    BreachSubject,
    DeletionRecord,
    RetentionRun,
    SubjectRequest,
)


@dataclass(frozen=True)
class RequestFigures:
    due: int  # requests whose deadline fell in the period
    on_time: int  # of them, completed by the deadline

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.due if self.due else None


def request_figures(session: Session, *, since: datetime, until: datetime) -> RequestFigures:
    in_period = and_(SubjectRequest.due_at >= since, SubjectRequest.due_at < until)
    due = session.scalar(select(func.count()).select_from(SubjectRequest).where(in_period)) or 0
    on_time = session.scalar(select(func.count()).select_from(SubjectRequest).where(
        in_period, SubjectRequest.completed_at.is_not(None), SubjectRequest.completed_at <= SubjectRequest.due_at)) or 0
    return RequestFigures(due=due, on_time=on_time)


def late_requests(session: Session, *, since: datetime, until: datetime, limit: int = 200) -> list[dict[str, object]]:
    rows = session.execute(select(SubjectRequest.id, SubjectRequest.kind, SubjectRequest.due_at,
                                  SubjectRequest.completed_at).where(
        SubjectRequest.due_at >= since, SubjectRequest.due_at < until).order_by(SubjectRequest.due_at)).all()
    records: list[dict[str, object]] = [
        {"id": i, "kind": kind, "due_at": due.isoformat(), "completed_at": done.isoformat() if done else None}
            for i, kind, due, done in rows if done is None or done > due]
    return records[:limit]


@dataclass(frozen=True)
class DeletionFigures:
    days: int  # days of the period the install existed (whole days up to now, and today once it ran)
    days_run: int  # of them, days on which a retention run finished
    erased: dict[str, int]  # reason -> deletion records

    @property
    def on_schedule_rate(self) -> float | None:
        return self.days_run / self.days if self.days else None


DAY = timedelta(days=1)


def deletion_figures(session: Session, *, since: datetime, until: datetime, now: datetime,
                     installed_at: datetime | None) -> DeletionFigures:
    """The retention engine runs daily: the share of the period's days on which it finished a run, and
    what was erased, by reason. Days are counted from the period's start, or from the install's first day
    when it began later (`installed_at`; None: nothing was ever recorded, so no day is counted): a day
    before the install existed is not a day the engine missed. The day under way counts once it ran."""
    end = min(until, now)
    if installed_at is None or installed_at >= end:
        first = whole = 0
    else:
        first = max(0, (installed_at - since) // DAY)  # the install's first (local) day counts
        whole = max(first, (end - since) // DAY)  # the days that have ended
    finished = session.scalars(select(RetentionRun.finished_at).where(
        RetentionRun.dry_run.is_(False), RetentionRun.finished_at >= since + first * DAY,
        RetentionRun.finished_at < end)).all() if installed_at is not None else []
    ran = {(f - since) // DAY for f in finished if f is not None}
    today_ran = end < until and whole in ran  # the day under way, once its run is done
    days = whole - first + (1 if today_ran else 0)
    erased = {key: count for key, count in session.execute(select(DeletionRecord.reason, func.count()).where(
        DeletionRecord.erased_at >= since, DeletionRecord.erased_at < until).group_by(DeletionRecord.reason))
        }
    return DeletionFigures(days=days, days_run=len({day for day in ran if first <= day <= whole}) if days else 0,
                           erased=erased)


@dataclass(frozen=True)
class BreachFigures:
    discovered: int
    serious: int
    reported_in_time: int  # serious ones reported to the authority by their deadline
    report_p50_h: float | None  # discovery to the authority's report
    people_notified: int


def breach_figures(session: Session, *, since: datetime, until: datetime) -> BreachFigures:
    rows = session.execute(select(Breach.id, Breach.serious, Breach.discovered_at, Breach.authority_due_at,
                                  Breach.authority_reported_at).where(
        Breach.discovered_at >= since, Breach.discovered_at < until)).all()
    hours = [(reported - found).total_seconds() / 3600 for _, _, found, _, reported in rows if reported is not None]
    in_time = sum(1 for _, serious, _, due, reported in rows
                  if serious and reported is not None and (due is None or reported <= due))
    notified = session.scalar(select(func.count()).select_from(BreachSubject).where(
        BreachSubject.breach_id.in_([r[0] for r in rows]), BreachSubject.notified_at.is_not(None))) if rows else 0
    return BreachFigures(discovered=len(rows), serious=sum(1 for r in rows if r[1]), reported_in_time=in_time,
                         report_p50_h=quantile(hours, 0.5), people_notified=notified or 0)
