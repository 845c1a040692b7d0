"""Queries over the audit log for the explorer and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit.models import AuditEntry, TreeHead
from tripguard.core.errors import NotFound


@dataclass(frozen=True)
class AuditFilter:
    actor_id: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 50


def search_entries(session: Session, *, query: AuditFilter) -> list[AuditEntry]:
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(query.limit)
    if query.actor_id:
        statement = statement.where(AuditEntry.actor_id == query.actor_id)
    if query.action:
        statement = statement.where(AuditEntry.action.startswith(query.action, autoescape=True))
    if query.target_type:
        statement = statement.where(AuditEntry.target_type == query.target_type)
    if query.target_id:
        statement = statement.where(AuditEntry.target_id == query.target_id)
    if query.outcome:
        statement = statement.where(AuditEntry.outcome == query.outcome)
    if query.since:
        statement = statement.where(AuditEntry.ts >= query.since)
    if query.until:
        statement = statement.where(AuditEntry.ts < query.until)
    if query.before_id is not None:
        statement = statement.where(AuditEntry.id < query.before_id)
    return list(session.scalars(statement))


def entry(session: Session, *, seq: int) -> AuditEntry:
    """The entry at leaf index `seq`; NotFound while no entry has that place in the log."""
    found = session.scalar(select(AuditEntry).where(AuditEntry.seq == seq))
    if found is None:
        raise NotFound(f"no audit entry {seq}")
    return found


def list_heads(session: Session, *, limit: int = 100) -> list[TreeHead]:
    return list(session.scalars(select(TreeHead).order_by(TreeHead.tree_size.desc()).limit(limit)))
