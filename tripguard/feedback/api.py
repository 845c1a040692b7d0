"""HTTP: people file complaints and low ratings; supervisors see the list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from tripguard.core.db import DbSession
from tripguard.feedback import service
from tripguard.feedback.schemas import ComplaintCreate, ComplaintRead
from tripguard.security.auth import ComplaintFiler, ComplaintReader

router = APIRouter(prefix="/api/v1", tags=["feedback"])


@router.post("/complaints", status_code=201,
             responses={200: {"model": ComplaintRead, "description": "the same complaint again (a retry)"}})
def file_complaint(body: ComplaintCreate, filer: ComplaintFiler, request: Request, response: Response,
                   session: DbSession,
                   idempotency_key: Annotated[str | None, Header(
                       alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")] = None,
                   ) -> ComplaintRead:
    """A complaint, or a rating of one or two stars (`low_rating`), about a trip or an order of yours.
    About a trip, it keeps the trip's in-car recordings 16 days instead of 7."""
    complaint, new = service.file(
        session, request.app.state.vault, filer=filer,
        request=service.ComplaintRequest(category=body.category, trip_id=body.trip_id, order_id=body.order_id,
                                         rating=body.rating, text=body.text, idempotency_key=idempotency_key),
        recording_hold_days=request.app.state.settings.retention_recording_complaint_days)
    if not new:
        response.status_code = 200
    return ComplaintRead.model_validate(complaint)


@router.get("/me/complaints")
def my_complaints(filer: ComplaintFiler, session: DbSession) -> list[ComplaintRead]:
    """What you filed, newest first."""
    return [ComplaintRead.model_validate(c) for c in service.of_person(session, filer.id)]


@router.get("/complaints")
def list_complaints(_: ComplaintReader, session: DbSession,
                    category: Annotated[str | None, Query(
                        pattern=r"^(safety|conduct|privacy|service|low_rating|other)$")] = None,
                    ) -> list[ComplaintRead]:
    """Complaints newest first (without their text), for the supervisors."""
    return [ComplaintRead.model_validate(c) for c in service.recent(session, category=category)]
