"""Screening's figures for a period: the pass rate (the plan's target: ≥ 95 %), coverage (the share of
the period's roster with a current clear screening) and the time from application to a final decision.
The roster is the period's own, from the applicants' timelines (`roster`), never today's statuses: a
finished period is measured as it was."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from tripguard.core.stats import quantile
from tripguard.screening.models import Applicant, Event
from tripguard.screening.roster import roster

FINAL = ("status.active", "status.rejected")


@dataclass(frozen=True)
class Figures:
    decided: int  # applicants whose first final decision fell in the period
    passed: int
    pass_rate: float | None  # passed / decided
    active: int  # workers active at some moment of the period (until `now`)
    covered: int  # of them, with a clear and current screening at the last such moment
    coverage: float | None
    days_to_decision_p50: float | None
    days_to_decision_p90: float | None


def figures(session: Session, *, since: datetime, until: datetime, now: datetime | None = None) -> Figures:
    first = (select(Event.applicant_id, func.min(Event.at).label("at")).where(Event.kind.in_(FINAL))
             .group_by(Event.applicant_id).subquery())
    rows = session.execute(
        select(Event.kind, Event.at, Applicant.consented_at)
        .join(first, and_(Event.applicant_id == first.c.applicant_id, Event.at == first.c.at))
        .join(Applicant, Applicant.id == Event.applicant_id)
        .where(Event.kind.in_(FINAL), first.c.at >= since, first.c.at < until)).all()
    decided = len(rows)
    passed = sum(1 for kind, _, _ in rows if kind == "status.active")
    days = [(at - consented).total_seconds() / 86400 for _, at, consented in rows]
    members = roster(session, since=since, until=min(now or until, until))
    active, covered = len(members), sum(1 for member in members if member.screened)
    return Figures(decided=decided, passed=passed, pass_rate=passed / decided if decided else None, active=active,
                   covered=covered, coverage=covered / active if active else None,
                   days_to_decision_p50=quantile(days, 0.5), days_to_decision_p90=quantile(days, 0.9))

