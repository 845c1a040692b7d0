"""The one check of a one-time code a person types (emergency contacts, subject requests, hand-over codes).

The try is counted before the answer is known, with one atomic UPDATE (`attempts < limit`), and a
wrong or exhausted try is committed at once, in its own transaction: parallel guesses each count,
and the error the caller then raises (which rolls its request back) cannot undo the count.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute, Session

from tripguard.core.clock import utcnow


class CodeCheck(StrEnum):
    OK = "ok"
    MISMATCH = "mismatch"
    EXHAUSTED = "exhausted"  # tried `limit` times already
    EXPIRED = "expired"  # past its time, or none was issued


def check_code(session: Session, *, model: type, row_id: str, attempts: InstrumentedAttribute[int], limit: int,
               stored_hash: str | None, expires_at: datetime | None, offered_hash: str,
               on_failure: Callable[[CodeCheck], None] | None = None) -> CodeCheck:
    """OK leaves the counted try in the caller's transaction; any other outcome is committed before it returns
    (`on_failure` runs first, so what it records, an audit entry say, is committed with it)."""
    if stored_hash is None or expires_at is None or expires_at < utcnow():
        outcome = CodeCheck.EXPIRED
    else:
        counted = session.execute(
            update(model).where(model.id == row_id, attempts < limit)  # type: ignore[attr-defined]
            .values({attempts.key: attempts + 1}).execution_options(synchronize_session=False)).rowcount
        if counted != 1:
            outcome = CodeCheck.EXHAUSTED
        elif hmac.compare_digest(stored_hash, offered_hash):
            return CodeCheck.OK
        else:
            outcome = CodeCheck.MISMATCH
    if on_failure is not None:
        on_failure(outcome)
    session.commit()  # a failed try counts even when the request then fails: the limit holds against guessing
    return outcome
