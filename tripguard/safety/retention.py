"""What a case keeps about where its caller was, past the trip-data period after the case ended.

A resolved or closed case keeps its record (the safety statistics count it), but after the period
its position goes, and its own key (`incident:<id>`: an erased caller's position, the notes and
police payload of a caller without a key) is shredded through the vault's erasure journal, so an
older backup restored later cannot open them again. A legal hold on the case (subject
`incident:<id>`), its caller or its driver keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, func, literal, not_, or_, select
from sqlalchemy.orm import Session

from tripguard.safety.models import Incident
from tripguard.safety.service import case_key
from tripguard.vault.models import DataKey
from tripguard.vault.service import Vault

BATCH = 200


def _own_key() -> ColumnElement[str]:
    return literal("incident:").concat(Incident.id)


def _held(held_subjects: Select[str]) -> ColumnElement[bool]:
    return or_(_own_key().in_(held_subjects), Incident.caller_id.in_(held_subjects),
               Incident.driver_id.in_(held_subjects))


def expired_cases(keep: timedelta, held_subjects: Callable[[], Select[str]],
                  ) -> Callable[[Session, Vault, datetime, bool], tuple[int, int]]:
    def run(session: Session, vault: Vault, now: datetime, dry_run: bool) -> tuple[int, int]:
        ended = func.coalesce(Incident.closed_at, Incident.resolved_at)
        still_kept = or_(Incident.position.is_not(None),
                         _own_key().in_(select(DataKey.subject_id).where(DataKey.wrapped_key.is_not(None))))
        expired = and_(Incident.status.in_(("resolved", "closed")), ended < now - keep, still_kept)
        on_hold = _held(held_subjects())
        held = session.scalar(select(func.count()).select_from(Incident).where(expired, on_hold)) or 0
        free = and_(expired, not_(func.coalesce(on_hold, False)))
        if dry_run:
            return session.scalar(select(func.count()).select_from(Incident).where(free)) or 0, held
        cases = list(session.scalars(select(Incident).where(free).order_by(ended).limit(BATCH)))
        for incident in cases:
            incident.position = incident.position_key = None
            vault.shred(session, subject_id=case_key(incident.id), reason="retention")
        return len(cases), held
    return run
