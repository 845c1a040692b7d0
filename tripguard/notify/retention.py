"""Retention of the outbox: sent or abandoned messages carry contact details, so they go after their period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tripguard.notify.models import OutboxMessage
from tripguard.vault.service import Vault

BATCH = 200


def finished_messages(keep: timedelta) -> Callable[[Session, Vault, datetime, bool], tuple[int, int]]:
    """Retention rule: messages sent or dead for longer than `keep` are deleted (a batch a call)."""
    def run(session: Session, vault: Vault, now: datetime, dry_run: bool) -> tuple[int, int]:
        where = (OutboxMessage.status.in_(("sent", "dead")), OutboxMessage.created_at < now - keep)
        if dry_run:
            return session.scalar(select(func.count()).select_from(OutboxMessage).where(*where)) or 0, 0
        ids = list(session.scalars(select(OutboxMessage.id).where(*where).limit(BATCH)))
        if ids:
            session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
        return len(ids), 0
    return run
