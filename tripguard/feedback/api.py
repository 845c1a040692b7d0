"""HTTP: people file complaints and low ratings; supervisors see the list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.core.types import Identifier
from tripguard.feedback import desk, service
from tripguard.feedback.schemas import (
    Answer,
    Assign,
    ComplaintCreate,
    ComplaintRead,
    DeskComplaint,
    Escalate,
    MyComplaint,
)
from tripguard.notify.deps import Wake
from tripguard.privacy import access
from tripguard.security.auth import ComplaintFiler, ComplaintHandler, ComplaintReader
from tripguard.vault.deps import AppVault

router = APIRouter(prefix="/api/v1", tags=["feedback"])


@router.post("/complaints", status_code=201,
             responses={200: {"model": ComplaintRead, "description": "the same complaint again (a retry)"}})
def file_complaint(body: ComplaintCreate, filer: ComplaintFiler, request: Request,
                   response: Response, session: DbSession, vault: AppVault, settings: AppSettings,
                   idempotency_key: Annotated[str | None, Header(
                       alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")] = None
                   ) -> ComplaintRead:
    """A complaint, or a rating of one or two stars (`low_rating`), about a trip or an order of yours.
    About a trip, it keeps the trip's in-car recordings 16 days instead of 7."""
    complaint, new = service.file(
        session, vault=vault, filer=filer,
        request=service.ComplaintRequest(category=body.category, trip_id=body.trip_id, order_id=body.order_id,
                                         rating=body.rating, text=body.text, idempotency_key=idempotency_key),
        recording_hold_days=settings.retention_recording_complaint_days)
    if not new:
        response.status_code = 200
    return ComplaintRead.model_validate(complaint)


@router.get("/me/complaints")
def my_complaints(filer: ComplaintFiler, session: DbSession, vault: AppVault) -> list[MyComplaint]:
    """What you filed, newest first, with the desk's answer."""
    return [MyComplaint(**ComplaintRead.model_validate(c).model_dump(),
                        answer=access.open_field(vault, session, c, "answer") if c.answer is not None else None)
            for c in service.of_person(session, subject_id=filer.id)]


@router.post("/complaints/{complaint_id}/assign")
def assign(complaint_id: Identifier, body: Assign, handler: ComplaintHandler, session: DbSession) -> ComplaintRead:
    """The feedback desk takes a complaint (a support agent; yourself by default)."""
    return ComplaintRead.model_validate(desk.assign(session, actor=handler.actor, complaint_id=complaint_id,
                                                    assignee=body.assignee or handler.id))


@router.post("/complaints/{complaint_id}/answer")
def answer(complaint_id: Identifier, body: Answer, handler: ComplaintHandler, session: DbSession,
           vault: AppVault, settings: AppSettings, outbox_wake: Wake) -> ComplaintRead:
    """The answer to the person, sealed under their key; they are told by SMS and read it in their app."""
    complaint = desk.answer(session, vault=vault, actor=handler.actor, complaint_id=complaint_id,
                            text=body.text, locale=settings.locale)
    outbox_wake.set()
    return ComplaintRead.model_validate(complaint)


@router.post("/complaints/{complaint_id}/escalate")
def escalate(complaint_id: Identifier, body: Escalate, handler: ComplaintHandler,
             session: DbSession, settings: AppSettings, vault: AppVault) -> DeskComplaint:
    """Turn it into a case for the safety centre (`incident`), a breach for the privacy officer (`breach`),
    or a violation by a worker or a staff member for HR (`violation`, naming whom and what)."""
    violation = None
    if body.to == "violation":
        assert body.offender_type and body.offender_id and body.kind and body.summary  # the schema checks
        violation = desk.ViolationSpec(body.offender_type, body.offender_id, body.kind, body.summary)
    return DeskComplaint.model_validate(desk.escalate(
        session, actor=handler.actor, complaint_id=complaint_id, to=body.to,
        ack_seconds=settings.incident_ack_seconds, vault=vault,
        violation=violation))


@router.get("/complaints")
def list_complaints(_: ComplaintReader, session: DbSession,
                    category: Annotated[str | None, Query(
                        pattern=r"^(safety|conduct|privacy|service|low_rating|other)$")] = None,
                    ) -> list[ComplaintRead]:
    """Complaints newest first (without their text), for the supervisors."""
    return [ComplaintRead.model_validate(c) for c in service.recent(session, category=category)]
