"""The feedback domain's console pages: complaints and low ratings (the supervisors read them); a
complaint's text is free text its author wrote, so it opens only through the access gate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tripguard.console.lists import (
    Column,
    Filter,
    ListSpec,
    csv_response,
    fetch,
    read_query,
)
from tripguard.console.rendering import request_locale
from tripguard.console.shell import error_text, page
from tripguard.core.admission import BulkWhenDownloaded
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.core.errors import DomainError, FieldProblem, InvalidInput
from tripguard.core.i18n import N_
from tripguard.core.settings import Settings
from tripguard.core.types import CleanStr, Identifier
from tripguard.feedback import answer_templates, desk
from tripguard.feedback.answers_console import router as answers_router
from tripguard.feedback.models import Complaint
from tripguard.notify.deps import Wake
from tripguard.privacy import access
from tripguard.security.auth import ComplaintHandler, ComplaintReader
from tripguard.security.permissions import Permission, Purpose
from tripguard.security.principal import Principal
from tripguard.vault.deps import AppVault
from tripguard.vault.service import Vault

router = APIRouter(prefix="/console/complaints", include_in_schema=False)
router.include_router(answers_router)  # the answer templates' pages (feedback/answers_console.py), before /{id}
CATEGORIES = ("safety", "conduct", "privacy", "service", "low_rating", "other")
COMPLAINTS = ListSpec(
    name="complaints", model=Complaint, default_sort="received", tiebreak=Complaint.id,
    columns=[Column("received", N_("Received"), Complaint.created_at), Column("complaint", N_("Complaint")),
             Column("category", N_("Category"), Complaint.category), Column("rating", N_("Rating"), Complaint.rating),
             Column("role", N_("Role"), Complaint.subject_role), Column("subject", N_("Trip or order")),
             Column("state", N_("State"), Complaint.status), Column("due", N_("Answer by"), Complaint.due_at)],
    filters=[Filter("category", N_("Category"), [("", N_("All")), *((c, c) for c in CATEGORIES)],
                    lambda statement, value: statement.where(Complaint.category == value)),
             Filter("state", N_("State"), [("", N_("All")), ("open", N_("To answer")), ("answered", N_("answered"))],
                    lambda statement, value: statement.where(
                        Complaint.status.in_(("received", "assigned")) if value == "open"
                        else Complaint.status == value))],
    search=[Complaint.id, Complaint.trip_id, Complaint.order_id])



@router.get("", dependencies=[BulkWhenDownloaded])
def complaints_page(request: Request, principal: ComplaintReader, session: DbSession) -> Response:
    """What people complained about; the list carries no complaint text (it opens one at a time)."""
    query = read_query(request, COMPLAINTS)
    if query.export:
        return csv_response(request, session, principal, COMPLAINTS, query,
                            header=[N_("Complaint"), N_("Category"), N_("Rating"), N_("Role"), N_("Trip"), N_("Order"),
                                    N_("State"), N_("Received"), N_("Answer by")],
                            row=lambda c, cells: [
                                c.id, cells.word(c.category), c.rating, cells.word(c.subject_role), c.trip_id,
                                c.order_id, cells.word(c.status), c.created_at, c.due_at])
    return page(request, "feedback/complaints.html", principal, "/console/complaints",
                list=fetch(session, spec=COMPLAINTS, query=query))


@router.get("/{complaint_id}")
def complaint_page(request: Request, complaint_id: Identifier, principal: ComplaintReader,
                   session: DbSession, settings: AppSettings, vault: AppVault,
                   template: Annotated[str | None, Query(max_length=40)] = None,
                   lang: Annotated[str | None, Query(pattern="^(zh_CN|en)$")] = None
                   ) -> HTMLResponse:
    """One complaint; its text is opened through the gate for the support purpose (audited; masked for a
    role that does not hold that purpose). `template` (and `lang`): the answer starts from that template."""
    complaint = desk.get(session, complaint_id=complaint_id)
    chosen = answer_templates.in_use(session, template_id=template) \
        if template and principal.can(Permission.COMPLAINT_HANDLE) else None
    if chosen is None:
        return _complaint_page(request, principal, session, vault, settings, complaint)
    language = lang or settings.locale
    return _complaint_page(request, principal, session, vault, settings, complaint, template_id=chosen.id,
                           language=language,
                           draft=chosen.body_zh if language.startswith("zh") else chosen.body_en)


def _complaint_page(request: Request, principal: Principal, session: DbSession, vault: Vault,
                    settings: Settings, complaint: Complaint, *, error: str | None = None,
                    status_code: int = 200, draft: str = "", template_id: str = "",
                    language: str | None = None) -> HTMLResponse:
    columns = [c for c in ("text", "answer") if getattr(complaint, c) is not None]
    read = access.read_fields(vault, session, principal, complaint, columns,
                              purpose=Purpose.SUPPORT) if columns else {}
    return page(request, "feedback/complaint.html", principal, "/console/complaints", status_code=status_code,
                c=complaint, text=read.get("text"), answer=read.get("answer"), error=error,
                can_handle=principal.can(Permission.COMPLAINT_HANDLE), can_trips=principal.can(Permission.ALERTS_READ),
                now=utcnow(), draft=draft,
                template_id=template_id, language=language or settings.locale,
                templates=answer_templates.offered(session) if principal.can(Permission.COMPLAINT_HANDLE) else [],
                zh=request_locale(request).startswith("zh"))


@router.post("/{complaint_id}/desk")
def desk_action(request: Request, complaint_id: Identifier, principal: ComplaintHandler,
                session: DbSession,
                action: Annotated[str, Form(pattern="^(take|answer|incident|breach)$")],
                vault: AppVault, settings: AppSettings, outbox_wake: Wake,
                text: Annotated[CleanStr, Form(max_length=2000)] = "",
                template_id: Annotated[str, Form(max_length=40)] = "") -> Response:
    """The feedback desk: take the complaint, answer it (the person is told; `template_id`: the answer template
    it started from), or turn it into a case or a breach."""
    try:
        if action == "take":
            desk.assign(session, actor=principal.actor, complaint_id=complaint_id, assignee=principal.id)
        elif action == "answer":
            if len(text.strip()) < 2:
                raise InvalidInput(errors=[FieldProblem(field="text", message="write the answer")])
            desk.answer(session, vault=vault, actor=principal.actor, complaint_id=complaint_id,
                        text=text.strip(), locale=settings.locale,
                        template_id=template_id or None)
            outbox_wake.set()
        else:
            desk.escalate(session, actor=principal.actor, complaint_id=complaint_id, to=action,
                          ack_seconds=settings.incident_ack_seconds)
    except DomainError as exc:
        session.rollback()
        return _complaint_page(request, principal, session, vault, settings,
                               desk.get(session, complaint_id=complaint_id),
                               error=error_text(request, exc), status_code=exc.status, draft=text,
                               template_id=template_id if action == "answer" else "")
    return RedirectResponse(f"/console/complaints/{complaint_id}", status_code=303)
