"""The feedback domain's console pages: complaints and low ratings (the supervisors read them); a
complaint's text is free text its author wrote, so it opens only through the access gate."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from tripguard.core.db import DbSession
from tripguard.core.errors import NotFound
from tripguard.core.i18n import N_
from tripguard.core.types import Identifier
from tripguard.feedback.models import Complaint
from tripguard.privacy import access
from tripguard.security.auth import ComplaintReader
from tripguard.security.permissions import Purpose
from tripguard.web.lists import (
    Column,
    Filter,
    ListSpec,
    csv_response,
    fetch,
    iso_or_blank,
    read_query,
)
from tripguard.web.shell import page

router = APIRouter(prefix="/console/complaints", include_in_schema=False)
CATEGORIES = ("safety", "conduct", "privacy", "service", "low_rating", "other")
COMPLAINTS = ListSpec(
    name="complaints", default_sort="received", tiebreak=Complaint.id,
    columns=[Column("received", N_("Received"), Complaint.created_at), Column("complaint", N_("Complaint")),
             Column("category", N_("Category"), Complaint.category), Column("rating", N_("Rating"), Complaint.rating),
             Column("role", N_("Role"), Complaint.subject_role), Column("subject", N_("Trip or order")),
             Column("state", N_("State"), Complaint.status)],
    filters=[Filter("category", N_("Category"), [("", N_("All")), *((c, c) for c in CATEGORIES)],
                    lambda statement, value: statement.where(Complaint.category == value))],
    search=[Complaint.id, Complaint.trip_id, Complaint.order_id])



@router.get("")
def complaints_page(request: Request, principal: ComplaintReader, session: DbSession) -> Response:
    """What people complained about; the list carries no complaint text (it opens one at a time)."""
    query = read_query(request, COMPLAINTS)
    if query.export:
        return csv_response(session, principal, select(Complaint), COMPLAINTS, query,
                            header=["complaint", "category", "rating", "role", "trip", "order", "state", "received_at"],
                            row=lambda c: [c.id, c.category, c.rating, c.subject_role, c.trip_id, c.order_id, c.status,
                                           iso_or_blank(c.created_at)])
    return page(request, "feedback/complaints.html", principal, "/console/complaints",
                list=fetch(session, select(Complaint), COMPLAINTS, query))


@router.get("/{complaint_id}")
def complaint_page(request: Request, complaint_id: Identifier, principal: ComplaintReader,
                   session: DbSession) -> HTMLResponse:
    """One complaint; its text is opened through the gate for the support purpose (audited; masked for a
    role that does not hold that purpose)."""
    complaint = session.get(Complaint, complaint_id)
    if complaint is None:
        raise NotFound("no such complaint")
    text = access.read_fields(request.app.state.vault, session, principal, complaint, ["text"],
                              purpose=Purpose.SUPPORT)["text"] if complaint.text is not None else None
    return page(request, "feedback/complaint.html", principal, "/console/complaints", c=complaint, text=text)
