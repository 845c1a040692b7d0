"""The screening officer's console: the review queue, applicants, one applicant's file with the
decision and dispute flow. An applicant's identity, what the checks found, the reasons and the
dispute (text and documents) open through the access gate for the screening purpose, audited."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Select

from tripguard.console.confirmations import ask
from tripguard.console.lists import (
    Column,
    Filter,
    ListSpec,
    csv_response,
    fetch,
    read_query,
)
from tripguard.console.shell import Confirmation, ask_first, error_text, page
from tripguard.core.admission import Bulk, BulkWhenDownloaded
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.errors import DomainError
from tripguard.core.i18n import N_
from tripguard.core.types import CleanStr, Identifier
from tripguard.privacy import access
from tripguard.screening import adjudication, kpi, service
from tripguard.screening.deps import ScreeningRules
from tripguard.screening.models import Applicant
from tripguard.security.auth import ScreeningOfficer
from tripguard.security.permissions import Purpose
from tripguard.security.principal import Principal
from tripguard.vault.deps import AppVault
from tripguard.vault.service import Vault

router = APIRouter(prefix="/console/screening", include_in_schema=False)

STATUS_LABELS = {
    "screening": N_("being screened"), "review": N_("to review"), "pre_adverse": N_("pre-adverse notice sent"),
    "disputed": N_("disputed"), "active": N_("may work"), "suspended": N_("suspended"), "rejected": N_("rejected"),
    "offboarded": N_("left"),
}
OUTCOME_LABELS = {"clear": N_("clear"), "consider": N_("consider"), "reject": N_("reject"), "pending": N_("pending")}
CHECK_LABELS = {
    "identity": N_("Identity (name and ID number)"), "licence": N_("Driving licence"),
    "transport_certificate": N_("Ride-hailing driver's certificate"), "criminal_record": N_("Criminal record"),
    "driving_points": N_("Driving points"), "credit": N_("Credit"),
}
REASON_LABELS = {
    "licence.too_recent": N_("Driving licence held less than 3 years"),
    "points.full_in_recent_cycles": N_("12 points reached in one of the last 3 scoring cycles"),
    "record.traffic_accident_crime": N_("A traffic-accident crime on record"),
    "record.dangerous_driving_crime": N_("A dangerous-driving crime on record"),
    "record.drug_use": N_("A drug record"), "record.drink_driving": N_("A drink-driving record"),
    "record.violent_crime": N_("A violent crime on record"),
    "record.other": N_("Another record: judge whether it bears on the work"),
    "credit.below_threshold": N_("Credit evaluation below the city's threshold"),
    "identity.name_mismatch": N_("The name does not match the ID number"),
    "identity.liveness_failed": N_("The selfie failed the liveness check"),
    "transport_certificate.missing": N_("No ride-hailing driver's certificate"),
    "age.below_minimum": N_("Below the minimum age"), "age.above_maximum": N_("Above the city's maximum age"),
    "policy.overlay_invalid": N_("The city's own conditions could not be read: judge against them by hand"),
}
EVENT_LABELS = {
    "applied": N_("Applied, consent recorded"), "report.initial": N_("Checks asked of the agency"),
    "report.rescreen": N_("Yearly re-screening asked"), "report.failed": N_("The agency did not answer"),
    "decision": N_("The policy decided"), "taken": N_("Taken by an officer"),
    "officer.clear": N_("Officer cleared"), "officer.pre_adverse": N_("Officer sent the pre-adverse notice"),
    "officer.reject": N_("Officer rejected"), "notice.queued": N_("Notice sent to the applicant"),
    "notice.not_sent": N_("No phone: notice not sent"),
    "notice.undelivered": N_("The notice did not reach the applicant: the clock is stopped"),
    "officer.notice_delivered": N_("Officer recorded the notice as given another way"),
    "record.found": N_("The agency reported a new record"),
    "flagged_for_review": N_("Flagged for review"), "window_closed": N_("Dispute window closed"),
    "identity.mismatch": N_("Shift-start selfie did not match"), "identity.unblocked": N_("Shift-start selfie matched"),
    "rescreen.scheduled": N_("Re-screening scheduled"),
    **{f"status.{key}": label for key, label in STATUS_LABELS.items()},
}
STATE_LABELS = {  # of a check, and of a dispute
    "pending": N_("pending"), "complete": N_("complete"), "suspended": N_("the agency could not finish"),
    "cancelled": N_("cancelled"), "open": N_("open"), "upheld": N_("upheld"), "dismissed": N_("dismissed"),
}
WAITING = ("review", "disputed", "pre_adverse", "suspended")


def _by_assignee(principal: Principal) -> Any:
    def apply(statement: Select[Any], value: str) -> Select[Any]:
        if value == "none":
            return statement.where(Applicant.assigned_to.is_(None))
        return statement.where(Applicant.assigned_to == principal.id)
    return apply


def _spec(principal: Principal, *, queue: bool) -> ListSpec:
    statuses = WAITING if queue else tuple(STATUS_LABELS)
    return ListSpec(
        name="screening_queue" if queue else "applicants", model=Applicant, default_sort="updated",
        default_descending=not queue, tiebreak=Applicant.id,
        columns=[Column("updated", N_("Since"), Applicant.updated_at), Column("applicant", N_("Applicant")),
                 Column("role", N_("Role"), Applicant.role), Column("status", N_("State"), Applicant.status),
                 Column("outcome", N_("Policy"), Applicant.outcome),
                 Column("due", N_("Dispute by"), Applicant.dispute_due_at),
                 Column("assignee", N_("Assigned to"))],
        filters=[Filter("status", N_("State"), [("", N_("All")), *((s, STATUS_LABELS[s]) for s in statuses)],
                        lambda statement, value: statement.where(Applicant.status == value)),
                 Filter("role", N_("Role"), [("", N_("All")), ("driver", N_("driver")), ("courier", N_("courier"))],
                        lambda statement, value: statement.where(Applicant.role == value)),
                 Filter("assignee", N_("Assigned to"), [("", N_("Anyone")), ("me", N_("Me")), ("none", N_("Nobody"))],
                        _by_assignee(principal))],
        search=[Applicant.id])


def _listing(request: Request, principal: Principal, session: DbSession, *, queue: bool) -> Response:
    spec = _spec(principal, queue=queue)
    statement = adjudication.waiting() if queue else None
    query = read_query(request, spec)
    if query.export:
        return csv_response(request, session, principal, spec, query, statement=statement,
                            header=[N_("Applicant"), N_("Role"), N_("City"), N_("State"), N_("Policy"),
                                    N_("Policy version"), N_("Decided"), N_("Dispute by"), N_("Last clear"),
                                    N_("Assigned to"), N_("Updated")],
                            row=lambda a, cells: [
                                a.id, cells.word(a.role), a.city, cells.word(a.status, STATUS_LABELS),
                                cells.word(a.outcome, OUTCOME_LABELS), a.policy_version, a.decided_at,
                                a.dispute_due_at, a.cleared_at, cells.staff(a.assigned_to), a.updated_at])
    now = utcnow()
    figures = kpi.figures(session, since=now - timedelta(days=90), until=now) if not queue else None
    return page(request, "screening/applicants.html", principal,
                "/console/screening/queue" if queue else "/console/screening",
                list=fetch(session, statement=statement, spec=spec, query=query), queue=queue, figures=figures, now=now,
                status_labels=STATUS_LABELS, outcome_labels=OUTCOME_LABELS)


@router.get("/queue", dependencies=[BulkWhenDownloaded])
def queue_page(request: Request, principal: ScreeningOfficer, session: DbSession) -> Response:
    """Cases for a screening officer, oldest first: reviews, disputes, notices waiting out their window."""
    return _listing(request, principal, session, queue=True)


@router.get("", dependencies=[BulkWhenDownloaded])
def applicants_page(request: Request, principal: ScreeningOfficer, session: DbSession) -> Response:
    """Every applicant and worker, with the screening figures of the last 90 days."""
    return _listing(request, principal, session, queue=False)


def _file(request: Request, principal: Principal, session: DbSession, vault: Vault,
          applicant_id: str, *, status_code: int = 200, error: str | None = None) -> HTMLResponse:
    applicant = service.get(session, applicant_id=applicant_id)
    person = access.read_fields(vault, session, principal, applicant, ["name", "id_number", "phone", "reasons"],
                                purpose=Purpose.SCREENING)
    reasons_view = person.pop("reasons")
    reasons = _codes(reasons_view.value) if reasons_view.plaintext else None
    checks = []
    for check in service.checks_of(session, applicant_id=applicant.id):
        found = access.read_fields(vault, session, principal, check, ["facts"], purpose=Purpose.SCREENING)["facts"] \
            if check.facts is not None else None
        checks.append({"check": check, "facts": _facts(found.value) if found and found.plaintext else None,
                       "withheld": found is not None and not found.plaintext})
    disputes = []
    records = adjudication.disputes_of(session, applicant_id=applicant.id)
    documents = adjudication.documents_of(session, dispute_ids=[d.id for d in records])
    for record in records:
        text = access.read_fields(vault, session, principal, record, ["text"], purpose=Purpose.SCREENING)["text"]
        disputes.append({"dispute": record, "text": text,
                         "documents": [d for d in documents if d.dispute_id == record.id]})
    return page(request, "screening/applicant.html", principal, "/console/screening/queue", status_code=status_code,
                a=applicant, person=person, reasons=reasons, reason_labels=REASON_LABELS, checks=checks,
                check_labels=CHECK_LABELS, disputes=disputes, events=service.timeline(session,
                                                                                      applicant_id=applicant.id),
                event_labels=EVENT_LABELS, status_labels=STATUS_LABELS, state_labels=STATE_LABELS,
                outcome_labels=OUTCOME_LABELS,
                error=error, now=utcnow(), window_open=applicant.dispute_due_at is not None
                and applicant.dispute_due_at > utcnow())


def _codes(raw: str | None) -> list[str]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return []
    return [str(code) for code in value] if isinstance(value, list) else []


def _facts(raw: str | None) -> dict[str, object]:
    """What the agency found, as it sent it (the page names each key and value: `console.readable.facts`)."""
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items()}


@router.get("/{applicant_id}")
def applicant_page(request: Request, applicant_id: Identifier, principal: ScreeningOfficer,
                   session: DbSession, vault: AppVault) -> HTMLResponse:
    """One applicant's file: identity, what each check found, the reasons, disputes, the timeline, and the
    decision. Everything personal opens for the screening purpose and is audited."""
    return _file(request, principal, session, vault, applicant_id)


@router.post("/{applicant_id}/take")
def take(request: Request, applicant_id: Identifier, principal: ScreeningOfficer, session: DbSession) -> Response:
    adjudication.take(session, officer=principal, applicant_id=applicant_id)
    return RedirectResponse(f"/console/screening/{applicant_id}", status_code=303)


QUESTIONS = {
    "pre_adverse": ask("screening.pre_adverse", N_("Send the pre-adverse notice?"),
                       N_("The applicant is told the reasons by SMS and may dispute them within the window. They "
                          "cannot take work meanwhile."), N_("Send the pre-adverse notice")),
    "reject": ask("screening.reject", N_("Reject this applicant for good?"),
                  N_("The final decision is sent to the applicant and to the operator; the agency stops monitoring "
                     "them."), N_("Reject")),
}


@router.post("/{applicant_id}/decision")
def decide(request: Request, applicant_id: Identifier, principal: ScreeningOfficer,
           session: DbSession,
           action: Annotated[str, Form(pattern="^(clear|pre_adverse|reject|notice_delivered)$")],
           vault: AppVault, rules: ScreeningRules,
           note: Annotated[CleanStr, Form(max_length=2000)] = "", confirm: Confirmation = ""
           ) -> Response:
    if action in QUESTIONS and (asked := ask_first(
            request, principal, f"/console/screening/{applicant_id}", question=QUESTIONS[action],
            action=f"/console/screening/{applicant_id}/decision", fields={"action": action, "note": note},
            confirm=confirm)):
        return asked
    try:
        adjudication.decide(session, vault=vault, rules=rules, officer=principal,
                            applicant_id=applicant_id, action=action, note=note.strip() or None)
    except DomainError as exc:
        session.rollback()
        return _file(request, principal, session, vault, applicant_id, status_code=exc.status,
                     error=error_text(request, exc))
    return RedirectResponse(f"/console/screening/{applicant_id}", status_code=303)


@router.get("/{applicant_id}/documents/{document_id}", dependencies=[Bulk])
def document(applicant_id: Identifier, document_id: Identifier, principal: ScreeningOfficer,
             session: DbSession, vault: AppVault) -> Response:
    """A paper sent with a dispute, opened for the screening purpose (audited)."""
    row = adjudication.document(session, applicant_id=applicant_id, document_id=document_id)
    data = adjudication.open_document(session, vault=vault, principal=principal, row=row)
    return Response(data, media_type=row.content_type, headers={
        "Content-Disposition": f'attachment; filename="{row.id}"', "Cache-Control": "no-store"})
