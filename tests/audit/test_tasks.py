"""Background sequencing: a busy second is sequenced in short transactions, every entry once, in order."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.audit.test_api import add_entries
from tripguard.audit import tasks
from tripguard.audit.models import AuditEntry


def test_pending_entries_are_sequenced_in_chunks_in_insertion_order(db: Session,
                                                                    session_factory: sessionmaker[Session]) -> None:
    add_entries(db, 25)
    transactions = 0
    real = session_factory

    def counting() -> Session:
        nonlocal transactions
        transactions += 1
        return real()

    assert tasks.sequence_entries(counting, chunk=10, pause=0) == 25  # type: ignore[arg-type]
    assert transactions == 3  # 10 + 10 + 5
    rows = db.execute(select(AuditEntry.id, AuditEntry.seq).order_by(AuditEntry.id)).all()
    assert [seq for _, seq in rows] == list(range(25))
    assert tasks.sequence_entries(counting, chunk=10, pause=0) == 0  # type: ignore[arg-type]
