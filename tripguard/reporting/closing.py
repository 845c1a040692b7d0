"""Closing a quarter: its figures are computed once more from the quarter's own records and frozen
(version 1); every later report shows them. A restatement is explicit: it names the version it replaces
and a reason, recomputes, and keeps the earlier versions; each closing and restatement is audited."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.errors import Conflict, InvalidInput, NotFound
from tripguard.reporting import kpis, periods
from tripguard.reporting.models import PeriodFigures

QUARTER = r"^[0-9]{4}Q[1-4]$"
REASON_MAX = 500


def _quarter(label: str, timezone: str, now: datetime) -> periods.Period:
    if not re.match(QUARTER, label):
        raise InvalidInput("only a quarter (2026Q3) is closed")
    period = periods.parse(label, timezone)
    if period.end > now:
        raise Conflict(f"{label} has not ended yet: a quarter is closed once it is over")
    return period


def _by(actor: Actor) -> str:
    return f"{actor.type}:{actor.id}"[:80]


def versions(session: Session, *, label: str) -> list[PeriodFigures]:
    """Every version of a closed quarter's figures, the first (the closing) first."""
    return list(session.scalars(select(PeriodFigures).where(PeriodFigures.period == label)
                                .order_by(PeriodFigures.version)))


def _store(session: Session, row: PeriodFigures) -> bool:
    """Add the version unless another request made it meanwhile (the primary key is the period and version)."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def close(session: Session, *, label: str, actor: Actor, now: datetime, timezone: str,
          ack_seconds: int) -> tuple[PeriodFigures, bool]:
    """Freeze a finished quarter's figures; (its figures, whether this call closed it). Closing a closed
    quarter changes nothing (a retried request gets the same answer)."""
    period = _quarter(label, timezone, now)
    existing = kpis.frozen(session, label=label)
    if existing is not None:
        return existing, False
    results = kpis.compute(session, period=period, now=now, ack_seconds=ack_seconds,
                           timezone=timezone, live=True)
    row = PeriodFigures(period=label, version=1, figures=[kpis.to_record(r) for r in results], reason=None,
                        made_by=_by(actor), made_at=now)
    if not _store(session, row):
        kept = kpis.frozen(session, label=label)
        assert kept is not None
        return kept, False
    audit.record(session, actor=actor, action="report.close", target_type="reporting_period", target_id=label,
                 details={"version": 1, "figures": len(row.figures)})
    return row, True


def _changes(before: list[dict[str, object]], after: list[dict[str, object]]) -> str:
    old = {str(r.get("key")): r for r in before}
    changed = []
    for record in after:
        key = str(record.get("key"))
        was = old.get(key, {}).get("value")
        if (was, old.get(key, {}).get("denominator")) != (record.get("value"), record.get("denominator")):
            changed.append(f"{key}: {was} -> {record.get('value')}")
    return "; ".join(changed)[:900] or "none"


def restate(session: Session, *, label: str, version: int, reason: str, actor: Actor, now: datetime,
            timezone: str, ack_seconds: int) -> PeriodFigures:
    """Replace version `version` of a closed quarter's figures with a recomputation, for `reason`. A retry
    of the same restatement returns it; restating a version that is no longer the latest is a conflict."""
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX:
        raise InvalidInput(f"a restatement needs a reason (1-{REASON_MAX} characters)")
    period = _quarter(label, timezone, now)
    latest = kpis.frozen(session, label=label)
    if latest is None:
        raise NotFound(f"{label} is not closed: its figures are computed when asked; close it first")
    if latest.version == version + 1 and latest.reason == reason and latest.made_by == _by(actor):
        return latest  # the same restatement, retried
    if latest.version != version:
        raise Conflict(f"{label} is at version {latest.version}: restate that version")
    results = kpis.compute(session, period=period, now=now, ack_seconds=ack_seconds,
                           timezone=timezone, live=True)
    row = PeriodFigures(period=label, version=version + 1, figures=[kpis.to_record(r) for r in results],
                        reason=reason, made_by=_by(actor), made_at=now)
    if not _store(session, row):
        raise Conflict(f"{label} version {version} was restated meanwhile")
    audit.record(session, actor=actor, action="report.restate", target_type="reporting_period", target_id=label,
                 details={"version": row.version, "replaces": version, "reason": reason,
                          "changed": _changes(latest.figures, row.figures)})
    return row
