"""Complaint figures for reports: how many, answered by their deadline, and how long answers took.

A complaint is judged once it is settled: answered, or past its deadline unanswered (late). One still
open and not yet due is pending: it counts neither for nor against the figure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.core.stats import quantile
from tripguard.feedback.models import Complaint


@dataclass(frozen=True)
class ComplaintFigures:
    received: int
    answered: int
    answered_in_time: int
    answer_p50_h: float | None
    answer_p90_h: float | None
    by_category: dict[str, int]
    pending: int = 0  # received, open and not yet due: not judged yet

    @property
    def settled(self) -> int:
        """Answered, or due and not answered: what the in-time rate is over."""
        return self.received - self.pending

    @property
    def in_time_rate(self) -> float | None:
        return self.answered_in_time / self.settled if self.settled else None


def _pending(due: datetime | None, answered: datetime | None, now: datetime) -> bool:
    return answered is None and (due is None or due > now)


def _late(due: datetime | None, answered: datetime | None, now: datetime) -> bool:
    if answered is None:
        return due is not None and due <= now
    return due is not None and answered > due


def complaint_figures(session: Session, *, since: datetime, until: datetime, now: datetime) -> ComplaintFigures:
    rows = session.execute(select(Complaint.category, Complaint.created_at, Complaint.due_at, Complaint.answered_at)
                           .where(Complaint.created_at >= since, Complaint.created_at < until)).all()
    hours = [(answered - created).total_seconds() / 3600 for _, created, _, answered in rows if answered is not None]
    in_time = sum(1 for _, _, due, answered in rows if answered is not None and (due is None or answered <= due))
    pending = sum(1 for _, _, due, answered in rows if _pending(due, answered, now))
    categories: dict[str, int] = {}
    for category, *_ in rows:
        categories[category] = categories.get(category, 0) + 1
    return ComplaintFigures(received=len(rows), answered=len(hours), answered_in_time=in_time,
                            answer_p50_h=quantile(hours, 0.5), answer_p90_h=quantile(hours, 0.9),
                            by_category=categories, pending=pending)


def late_complaints(session: Session, *, since: datetime, until: datetime, now: datetime,
                    limit: int = 200) -> list[dict[str, object]]:
    """The complaints received in the period answered after their deadline, or past it unanswered."""
    rows = session.execute(select(Complaint.id, Complaint.category, Complaint.due_at, Complaint.answered_at)
                           .where(Complaint.created_at >= since, Complaint.created_at < until)
                           .order_by(Complaint.created_at)).all()
    records: list[dict[str, object]] = [{"id": i, "category": c, "due_at": due.isoformat() if due else None,
                                         "answered_at": answered.isoformat() if answered else None}
                                        for i, c, due, answered in rows if _late(due, answered, now)]
    return records[:limit]
