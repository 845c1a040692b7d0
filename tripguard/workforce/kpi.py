"""Training figures for the plan's fifth target: coverage (every active worker has passed every required
course of their audience, in force) and satisfaction (the ratings given after courses). SQL aggregates:
a course taken by thousands of workers costs the console one query, not one per worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from tripguard.screening import service as screening
from tripguard.workforce.models import Attempt, Course


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


def figures(session: Session, *, at: datetime, since: datetime) -> TrainingFigures:
    workers = screening.active_workers().subquery()
    pass_in_force = exists().where(Attempt.worker_id == workers.c.id, Attempt.course_id == Course.id,
                                   Attempt.passed.is_(True), Attempt.at <= at,
                                   or_(Attempt.expires_at.is_(None), Attempt.expires_at > at)
                                   ).correlate_except(Attempt)  # the worker is the outermost query's
    missing = exists().where(Course.required.is_(True), Course.audience.in_([workers.c.role, literal("worker")]),
                             ~pass_in_force)
    active = session.scalar(select(func.count()).select_from(workers)) or 0
    covered = session.scalar(select(func.count()).select_from(workers).where(~missing)) or 0
    rated = and_(Attempt.rating.is_not(None), Attempt.rated_at >= since, Attempt.rated_at < at)
    count, mean, satisfied = session.execute(select(
        func.count(Attempt.id), func.avg(Attempt.rating),
        func.sum(case((Attempt.rating >= 4, 1), else_=0))).where(rated)).one()
    return TrainingFigures(at=at, active_workers=active, covered_workers=covered, ratings=count or 0,
                           satisfaction=round(float(mean), 2) if mean is not None else None,
                           satisfied_share=(satisfied or 0) / count if count else None)
