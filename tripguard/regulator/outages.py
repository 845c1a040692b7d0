"""Planned outages of the feed: recorded only when announced at least 72 hours before they start
(运行管理办法: 计划停机提前72小时报告). The sender pauses during one; back-fill needs nothing after it, since
everything queued meanwhile goes out in sequence when it ends."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit.actor import Actor
from tripguard.audit.service import record
from tripguard.core.clock import utcnow
from tripguard.core.errors import DomainError, FieldProblem
from tripguard.core.ids import new_id
from tripguard.regulator.models import PlannedOutage

NOTICE = timedelta(hours=72)
LONGEST = timedelta(days=7)


class OutageRefused(DomainError):
    status, type, title = 422, "/problems/regulator-outage-refused", "Planned outage refused"


def announce(session: Session, *, starts_at: datetime, ends_at: datetime, reason: str, actor: Actor,
             now: datetime | None = None) -> PlannedOutage:
    """Record a planned outage, refused unless it starts at least 72 hours from now."""
    now = now or utcnow()
    if starts_at - now < NOTICE:
        earliest = now + NOTICE
        raise OutageRefused(
            f"a planned outage must be announced at least 72 hours ahead: the earliest start now is "
            f"{earliest:%Y-%m-%d %H:%M} UTC",
            errors=[FieldProblem(field="starts_at", message="less than 72 hours from now")])
    if ends_at <= starts_at:
        raise OutageRefused("the outage ends before it starts",
                            errors=[FieldProblem(field="ends_at", message="not after the start")])
    if ends_at - starts_at > LONGEST:
        raise OutageRefused("a planned outage lasts at most 7 days",
                            errors=[FieldProblem(field="ends_at", message="more than 7 days after the start")])
    if not reason.strip():
        raise OutageRefused("say why", errors=[FieldProblem(field="reason", message="empty")])
    outage = PlannedOutage(id=new_id("out"), starts_at=starts_at, ends_at=ends_at, reason=reason.strip()[:1000],
                           announced_at=now, announced_by=f"{actor.type}:{actor.id}"[:80])
    session.add(outage)
    record(session, actor=actor, action="regulator.outage_announce", target_type="regulator_outage",
           target_id=outage.id, details={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()})
    session.flush()
    return outage


def listed(session: Session, *, limit: int = 200) -> list[PlannedOutage]:
    """The latest first."""
    return list(session.scalars(select(PlannedOutage).order_by(PlannedOutage.starts_at.desc()).limit(limit)))
