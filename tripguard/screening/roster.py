"""Who was on the roster in a period, from the applicants' timelines (effective-dated), never from the
status they hold today: what screening and training coverage of a past period are measured over.

A worker is on a period's roster when they were active ("may work") at some moment of it: they became
active before its end and did not leave (suspended, offboarded, rejected) before its start. Each is judged
at the last moment of the period they were active: then, was their screening clear and current?"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, or_, select
from sqlalchemy.orm import Session

from tripguard.screening.models import Applicant, Event

RESCREEN_GRACE = timedelta(days=30)  # a re-screening still under way does not block at once (as the gate)
DEFAULT_CYCLE = timedelta(days=365)


@dataclass(frozen=True)
class Member:
    worker_id: str
    role: str
    at: datetime  # the last moment of the period at which the worker was active
    screened: bool  # at `at`: a clear screening, current (its re-screening not overdue past the grace)


def _spans(statuses: list[tuple[datetime, str]], until: datetime) -> list[tuple[datetime, datetime]]:
    """The worker's active spans [from, to), the last one open until `until`."""
    spans = []
    for n, (at, status) in enumerate(statuses):
        if status == "active":
            spans.append((at, statuses[n + 1][0] if n + 1 < len(statuses) else until))
    return spans


def _screened(events: list[tuple[datetime, str, str | None]], at: datetime, cycle: timedelta) -> bool:
    """Clear and current at `at`: the last clearing (activation, or a clear re-screening) before it is within
    its cycle plus the grace, and no finding flagged since (a `consider` decision while active)."""
    cleared: datetime | None = None
    for when, kind, outcome in events:
        if when > at:
            break
        if kind == "status.active" or (kind == "decision" and outcome == "clear"):
            cleared = when
        elif kind == "decision" and outcome == "consider":
            cleared = None
    return cleared is not None and cleared + cycle + RESCREEN_GRACE > at


def roster(session: Session, *, since: datetime, until: datetime) -> list[Member]:
    """The workers active at some moment of [since, until), each judged at the last such moment."""
    rows = session.execute(select(Event.applicant_id, Event.at, Event.kind, Event.details).where(
        Event.at < until, or_(Event.kind.like("status.%"), Event.kind == "decision"))
        .order_by(Event.applicant_id, Event.at, Event.id)).all()
    timelines: dict[str, list[tuple[datetime, str, str | None]]] = defaultdict(list)
    for applicant_id, at, kind, extra in rows:
        outcome = extra.get("outcome") if isinstance(extra, dict) else None
        timelines[applicant_id].append((at, kind, outcome if isinstance(outcome, str) else None))
    last_active: dict[str, datetime] = {}
    for applicant_id, events in timelines.items():
        statuses = [(at, kind.removeprefix("status.")) for at, kind, _ in events if kind.startswith("status.")]
        overlapping = [(start, end) for start, end in _spans(statuses, until) if start < until and end > since]
        if overlapping:
            # judged just before the span ended (the status that ended it is not yet in force)
            end = overlapping[-1][1]
            last_active[applicant_id] = end if end == until else end - timedelta(microseconds=1)
    if not last_active:
        return []
    wanted = sorted(last_active)
    details: dict[str, Row[tuple[str, str, datetime | None, datetime | None]]] = {}
    for first in range(0, len(wanted), 500):
        details.update({row.id: row for row in session.execute(select(
            Applicant.id, Applicant.role, Applicant.cleared_at, Applicant.rescreen_due_at).where(
            Applicant.id.in_(wanted[first:first + 500])))})
    members = []
    for applicant_id, at in sorted(last_active.items()):
        row = details.get(applicant_id)
        if row is None:
            continue
        cycle = (row.rescreen_due_at - row.cleared_at) if row.cleared_at and row.rescreen_due_at else DEFAULT_CYCLE
        members.append(Member(applicant_id, row.role, at, _screened(timelines[applicant_id], at, cycle)))
    return members
