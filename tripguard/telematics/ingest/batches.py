"""Ingest batches sent with an Idempotency-Key: the request's claim on its key, and the report a retry gets back.

The route commits the claim and its release at once, on their own (a concurrent retry must see them); these
functions only read and change the rows.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.core.errors import DomainError
from tripguard.telematics.models import IngestBatch
from tripguard.telematics.schemas import IngestReport

CLAIM_STALE = timedelta(minutes=5)


class IdempotencyInProgress(DomainError):
    status, type, title = 409, "/problems/idempotency-in-progress", "In progress"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


def claim_batch(session: Session, *, key: str) -> IngestReport | None:
    """The first report when the batch with this key was processed; otherwise the key is taken for this
    request (not flushed: the caller commits it). IdempotencyInProgress while another request holds it; a
    claim left by a process that died (older than CLAIM_STALE) is taken over."""
    found = session.get(IngestBatch, key)
    if found is not None and found.report:
        return IngestReport.model_validate(found.report)
    if found is not None and found.created_at > utcnow() - CLAIM_STALE:
        raise IdempotencyInProgress("a request with this Idempotency-Key is being processed; retry shortly")
    if found is not None:
        found.created_at = utcnow()
    else:
        session.add(IngestBatch(key=key, report={}, created_at=utcnow()))
    return None


def release_batch(session: Session, *, key: str) -> bool:
    """Free the key of a request that failed, so that a retry is processed; whether there was a claim to free
    (a finished batch keeps its report)."""
    claim = session.get(IngestBatch, key)
    if claim is None or claim.report:
        return False
    session.delete(claim)
    return True


def finish_batch(session: Session, *, key: str, report: IngestReport) -> None:
    """The batch was processed: its report, for a retry with the same key."""
    claimed = session.get(IngestBatch, key)
    assert claimed is not None
    claimed.report = report.model_dump()
