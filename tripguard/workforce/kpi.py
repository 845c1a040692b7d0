"""Training figures for the plan's fifth target: coverage (every worker on the roster has passed every
required course of their audience, in force) and satisfaction (the ratings given after courses).

Coverage is measured over the roster of the period (screening's timelines, never today's statuses), each
worker judged at the last moment they were active in it, against the required courses that existed then.
A worker whose audience has no required course at all is not covered: no course, no training."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from tripguard.screening import roster as screening_roster
from tripguard.workforce.models import Attempt, Course

INSTANT = timedelta(microseconds=1)


@dataclass(frozen=True)
class TrainingFigures:
    at: datetime
    active_workers: int
    covered_workers: int
    ratings: int
    satisfaction: float | None
    satisfied_share: float | None

    @property
    def coverage(self) -> float | None:
        return self.covered_workers / self.active_workers if self.active_workers else None


def _covered(session: Session, members: list[screening_roster.Member]) -> int:
    """How many of the members had passed, and still had in force, every required course of their audience
    that existed at the moment they are judged at (and there was at least one)."""
    if not members:
        return 0
    latest = max(member.at for member in members)
    courses = session.execute(select(Course.id, Course.audience, Course.created_at).where(
        Course.required.is_(True), Course.created_at <= latest)).all()
    passes: dict[tuple[str, str], list[tuple[datetime, datetime | None]]] = defaultdict(list)
    ids = sorted({member.worker_id for member in members})
    for first in range(0, len(ids), 500):
        for worker_id, course_id, at, expires_at in session.execute(select(
                Attempt.worker_id, Attempt.course_id, Attempt.at, Attempt.expires_at).where(
                Attempt.passed.is_(True), Attempt.at <= latest, Attempt.worker_id.in_(ids[first:first + 500]))):
            passes[(worker_id, course_id)].append((at, expires_at))
    covered = 0
    for member in members:
        required = [course_id for course_id, audience, created in courses
                    if audience in (member.role, "worker") and created <= member.at]
        if required and all(any(at <= member.at and (expires is None or expires > member.at)
                                for at, expires in passes[(member.worker_id, course_id)]) for course_id in required):
            covered += 1
    return covered


def figures(session: Session, *, at: datetime, since: datetime,
            roster_since: datetime | None = None) -> TrainingFigures:
    """Coverage over the workers active at some moment of [roster_since, at) (just before `at` when not
    given), satisfaction from the ratings given in [since, at)."""
    members = screening_roster.roster(session, since=roster_since if roster_since is not None else at - INSTANT,
                                      until=at)
    rated = and_(Attempt.rating.is_not(None), Attempt.rated_at >= since, Attempt.rated_at < at)
    count, mean, satisfied = session.execute(select(
        func.count(Attempt.id), func.avg(Attempt.rating),
        func.sum(case((Attempt.rating >= 4, 1), else_=0))).where(rated)).one()
    return TrainingFigures(at=at, active_workers=len(members), covered_workers=_covered(session, members),
                           ratings=count or 0, satisfaction=round(float(mean), 2) if mean is not None else None,
                           satisfied_share=(satisfied or 0) / count if count else None)
