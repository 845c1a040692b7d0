"""Complaint figures for reports: how many, answered by their deadline, and how long answers took."""

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

    @property
    def in_time_rate(self) -> float | None:
        return self.answered_in_time / self.received if self.received else None


def complaint_figures(session: Session, *, since: datetime, until: datetime) -> ComplaintFigures:
    rows = session.execute(select(Complaint.category, Complaint.created_at, Complaint.due_at, Complaint.answered_at)
                           .where(Complaint.created_at >= since, Complaint.created_at < until)).all()
    hours = [(answered - created).total_seconds() / 3600 for _, created, _, answered in rows if answered is not None]
    in_time = sum(1 for _, _, due, answered in rows if answered is not None and (due is None or answered <= due))
    categories: dict[str, int] = {}
    for category, *_ in rows:
        categories[category] = categories.get(category, 0) + 1
    return ComplaintFigures(received=len(rows), answered=len(hours), answered_in_time=in_time,
                            answer_p50_h=quantile(hours, 0.5), answer_p90_h=quantile(hours, 0.9),
                            by_category=categories)


def late_complaints(session: Session, *, since: datetime, until: datetime, limit: int = 200) -> list[dict[str, object]]:
    rows = session.execute(select(Complaint.id, Complaint.category, Complaint.due_at, Complaint.answered_at)
                           .where(Complaint.created_at >= since, Complaint.created_at < until)
                           .order_by(Complaint.created_at)).all()
    records: list[dict[str, object]] = [{"id": i, "category": c, "due_at": due.isoformat() if due else None,
             "answered_at": answered.isoformat() if answered else None}
            for i, c, due, answered in rows if answered is None or (due is not None and answered > due)]
    return records[:limit]
