"""Console pages of the privacy officer: catalogue, subject-request queue, retention, breaches (here, in
the console kit's package, since the kit sits above the platform; the notices page:
privacy_notices_pages.py)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool

from tripguard.audit import repository as audit_repository
from tripguard.console.confirmations import ask
from tripguard.console.lists import (
    Column,
    Filter,
    ListSpec,
    csv_response,
    fetch,
    read_query,
)
from tripguard.console.privacy_notices_pages import router as notices_router
from tripguard.console.shell import (
    Confirmation,
    ask_first,
    error_text,
    i18n_text,
    page,
)
from tripguard.core.admission import Bulk, BulkWhenDownloaded
from tripguard.core.clock import utcnow
from tripguard.core.db import Base, DbSession
from tripguard.core.deps import AppSettings, Sessions
from tripguard.core.errors import DomainError, InvalidInput
from tripguard.core.i18n import N_
from tripguard.core.identifiers import is_identifier
from tripguard.core.settings import Settings
from tripguard.core.types import CleanStr, Identifier
from tripguard.privacy import access, breaches, requests, retention
from tripguard.privacy import service as privacy_service
from tripguard.privacy.catalogue import Category, catalogue
from tripguard.privacy.models import SubjectRequest
from tripguard.security.auth import BreachManager, CatalogueReader, RequestHandler, RetentionManager
from tripguard.security.permissions import Purpose
from tripguard.security.principal import Principal
from tripguard.vault.deps import AppVault
from tripguard.vault.service import Vault

router = APIRouter(prefix="/console/privacy", include_in_schema=False)
router.include_router(notices_router)  # the notices page: console/privacy_notices_pages.py
# Irreversible actions: what each asks first (console/confirmations.py), what it says will happen, its button.
RETENTION_RUN = ask("privacy.retention_run", N_("Run retention now?"),
                    N_("Everything past its retention period is erased for good: its keys are shredded. "
                       "A dry run counts it first without erasing anything."), N_("Run now (erases)"))
BREACH_QUESTIONS = {
    "notify": ask("privacy.breach_notify", N_("Notify the affected people now?"),
                  N_("Each affected person is sent the breach notice (SMS or e-mail). It cannot be recalled."),
                  N_("Notify affected people")),
    "close": ask("privacy.breach_close", N_("Close this breach?"),
                 N_("The closing report is written and the breach can no longer be changed."),
                 N_("Close with a report")),
}
ERASE_ON_VERIFY = ask("privacy.erasure_verify", N_("Erase this person now?"),
                      N_("Marking the request verified erases the person at once: their keys are shredded and their "
                         "data cannot be read again by anyone, from any backup. Only the deletion record stays."),
                      N_("Mark as verified and erase"))
APPLY_CORRECTION = ask("privacy.correction_apply", N_("Apply this correction?"),
                       N_("The person's record is overwritten with the corrected values and the request is "
                          "completed. The values it replaces are not kept."), N_("Apply"))
LIFT_HOLD = ask("privacy.hold_lift", N_("Lift this legal hold?"),
                N_("The person's data is no longer kept for the case: the next retention run erases whatever of "
                   "it is past its period, for good."), N_("Lift"))


@router.get("/catalogue")
def catalogue_page(request: Request, principal: CatalogueReader) -> HTMLResponse:
    fields = [{"table": f.table, "column": f.column, "category": f.category.value, "description": f.rule.description,
               "purposes": sorted(p.value for p in f.rule.purposes), "example": f.rule.example,
               "masked": f.rule.mask(f.rule.example)} for f in catalogue(Base.metadata)]
    return page(request, "privacy/catalogue.html", principal, "/console/privacy/catalogue", fields=fields)


def _days_left(due: datetime) -> int:
    """Whole days left, counting a started day as a day (0: due today, negative: late)."""
    return math.ceil((due - utcnow()).total_seconds() / 86400)


REQUESTS = ListSpec(
    name="subject-requests", model=SubjectRequest, default_sort="due", default_descending=False,
    tiebreak=SubjectRequest.id,
    columns=[Column("request", N_("Request"), SubjectRequest.id),
             Column("person", N_("Person"), SubjectRequest.subject_id),
             Column("kind", N_("Kind"), SubjectRequest.kind), Column("state", N_("State"), SubjectRequest.status),
             Column("received", N_("Received"), SubjectRequest.received_at),
             Column("due", N_("Days left"), SubjectRequest.due_at)],
    filters=[Filter("state", N_("State"), [("open", N_("Not yet answered")), ("awaiting_verification",
                                                                                N_("awaiting_verification")),
                                           ("verified", N_("verified")), ("completed", N_("completed")),
                                           ("rejected", N_("rejected")), ("all", N_("All"))],
                    lambda statement, value: statement if value == "all" else statement.where(
                        SubjectRequest.status.in_(("awaiting_verification", "verified")) if value == "open"
                        else SubjectRequest.status == value), default="open"),
             Filter("kind", N_("Kind"), [("", N_("All")), ("access", N_("access")), ("correction", N_("correction")),
                                         ("erasure", N_("erasure"))],
                    lambda statement, value: statement.where(SubjectRequest.kind == value))],
    search=[SubjectRequest.id, SubjectRequest.subject_id])


@router.get("/requests", dependencies=[BulkWhenDownloaded])
def requests_page(request: Request, principal: RequestHandler, session: DbSession) -> Response:
    query = read_query(request, REQUESTS)
    if query.export:
        return csv_response(request, session, principal, REQUESTS, query,
                            header=[N_("Request"), N_("Person"), N_("Kind"), N_("State"), N_("Received"),
                                    N_("Answer by"), N_("At the latest"), N_("verified"), N_("completed")],
                            row=lambda r, cells: [r.id, r.subject_id, cells.word(r.kind), cells.word(r.status),
                                                  r.received_at, r.due_at, r.hard_due_at, r.verified_at,
                                                  r.completed_at])
    listing = fetch(session, spec=REQUESTS, query=query)
    return page(request, "privacy/requests.html", principal, "/console/privacy/requests", list=listing,
                days_left={r.id: _days_left(r.due_at) for r in listing.rows})



def _request_page(request: Request, principal: Principal, session: DbSession, vault: Vault,
                  request_id: str, *, status_code: int = 200, error: str | None = None
                  ) -> HTMLResponse:
    subject_request = requests.get_request(session, request_id=request_id)
    correction = None
    if subject_request.kind == "correction" and subject_request.correction is not None:
        opened = access.read_fields(vault, session, principal, subject_request, ["correction"],
                                    purpose=Purpose.SUBJECT_REQUEST)["correction"].value
        try:
            correction = json.loads(opened) if opened else None
        except ValueError:
            correction = None
    history = audit_repository.search_entries(session, query=audit_repository.AuditFilter(
        target_type="privacy_requests", target_id=subject_request.id, limit=100))
    return page(request, "privacy/request.html", principal, "/console/privacy/requests", status_code=status_code,
                r=subject_request, correction=correction, history=history, error=error,
                days_left=_days_left(subject_request.due_at))


@router.get("/requests/{request_id}")
def request_page(request: Request, request_id: Identifier, principal: RequestHandler,
                 session: DbSession, vault: AppVault) -> HTMLResponse:
    """One request: what was asked, the deadline, what happened (from the audit log), and the actions left."""
    return _request_page(request, principal, session, vault, request_id)


@router.post("/requests/{request_id}/verify")
def request_verify(request: Request, request_id: Identifier, principal: RequestHandler,
                   session: DbSession, how: Annotated[CleanStr, Form(min_length=3, max_length=100)],
                   vault: AppVault, confirm: Confirmation = "") -> Response:
    """Identity confirmed another way (in person, a call back): an erasure then runs at once, so it asks first."""
    subject_request = requests.get_request(session, request_id=request_id)
    if (subject_request.kind == "erasure"
            and subject_request.status == "awaiting_verification" and (asked := ask_first(
            request, principal, f"/console/privacy/requests/{request_id}", question=ERASE_ON_VERIFY,
            action=f"/console/privacy/requests/{request_id}/verify", fields={"how": how}, confirm=confirm))):
        return asked
    try:
        requests.verify_in_person(session, vault=vault, actor=principal.actor, request_id=request_id,
                                  how=how)
    except DomainError as exc:
        session.rollback()
        return _request_page(request, principal, session, vault, request_id, status_code=exc.status,
                             error=error_text(request, exc))
    return RedirectResponse(f"/console/privacy/requests/{request_id}", status_code=303)


@router.post("/requests/{request_id}/decision")
def request_decision(request: Request, request_id: Identifier, principal: RequestHandler,
                     session: DbSession, apply: Annotated[str, Form(pattern="^(yes|no)$")],
                     note: Annotated[CleanStr, Form(min_length=1, max_length=500)], vault: AppVault,
                     confirm: Confirmation = "") -> Response:
    """Apply the correction (it overwrites the record, so it asks first) or refuse it, saying why."""
    if apply == "yes" and (asked := ask_first(
            request, principal, f"/console/privacy/requests/{request_id}", question=APPLY_CORRECTION,
            action=f"/console/privacy/requests/{request_id}/decision", fields={"apply": "yes", "note": note},
            confirm=confirm)):
        return asked
    try:
        requests.decide_correction(session, vault=vault, actor=principal.actor, request_id=request_id,
                                   apply=apply == "yes", note=note)
    except DomainError as exc:
        session.rollback()
        return _request_page(request, principal, session, vault, request_id, status_code=exc.status,
                             error=error_text(request, exc))
    return RedirectResponse(f"/console/privacy/requests/{request_id}", status_code=303)


def _retention_page(request: Request, principal: Principal, session: DbSession, settings: Settings,
                    *, status_code: int = 200, error: str | None = None,
                    values: dict[str, str] | None = None) -> HTMLResponse:
    runs = retention.recent_runs(session, limit=20)
    holds = retention.open_holds(session, newest_first=True)
    return page(request, "privacy/retention.html", principal, "/console/privacy/retention", status_code=status_code,
                runs=runs, holds=holds, rules=retention.rules(settings), error=error,
                values=values or {})


@router.get("/retention")
def retention_page(request: Request, principal: RetentionManager, session: DbSession,
                   settings: AppSettings) -> HTMLResponse:
    return _retention_page(request, principal, session, settings)


@router.post("/holds")
def hold_place(request: Request, principal: RetentionManager, session: DbSession,
               subject_id: Annotated[str, Form(max_length=200)],
               case_ref: Annotated[str, Form(max_length=200)],
               reason: Annotated[str, Form(max_length=1000)], settings: AppSettings) -> Response:
    """Keep a person's data past retention while a case needs it (the retention run skips them)."""
    values = {"subject_id": subject_id, "case_ref": case_ref, "reason": reason}
    try:
        if not (is_identifier(subject_id.strip()) and 0 < len(case_ref.strip()) <= 64 and case_ref.isprintable()
                and 3 <= len(reason.strip()) <= 200 and reason.isprintable()):
            raise InvalidInput("a hold names a known person, its case (up to 64 characters) and a reason")
        privacy_service.get_subject(session, subject_id=subject_id.strip())
        retention.place_hold(session, actor=principal.actor, subject_id=subject_id.strip(),
                             case_ref=case_ref.strip(), reason=reason.strip())
    except DomainError as exc:
        session.rollback()
        return _retention_page(request, principal, session, settings, status_code=exc.status,
                               error=error_text(request, exc),
                               values=values)
    return RedirectResponse("/console/privacy/retention#holds", status_code=303)


@router.post("/holds/{hold_id}/release")
def hold_release(request: Request, hold_id: Identifier, principal: RetentionManager,
                 session: DbSession, settings: AppSettings, confirm: Confirmation = "") -> Response:
    """Lift a hold: the next retention run may erase the person's data, so it asks first."""
    if asked := ask_first(request, principal, "/console/privacy/retention", question=LIFT_HOLD,
                          action=f"/console/privacy/holds/{hold_id}/release", fields={}, confirm=confirm):
        return asked
    try:
        retention.release_hold(session, actor=principal.actor, hold_id=hold_id)
    except DomainError as exc:
        session.rollback()
        return _retention_page(request, principal, session, settings, status_code=exc.status,
                               error=error_text(request, exc))
    return RedirectResponse("/console/privacy/retention#holds", status_code=303)


@router.post("/retention/run", dependencies=[Bulk])
def retention_run(request: Request, principal: RetentionManager, session: DbSession,
                  mode: Annotated[str, Form(pattern="^(dry|real)$")], sessions: Sessions,
                  vault: AppVault, settings: AppSettings, confirm: Confirmation = "") -> Response:
    if mode == "real" and (asked := ask_first(request, principal, "/console/privacy/retention",
                                              question=RETENTION_RUN, action="/console/privacy/retention/run",
                                              fields={"mode": "real"}, confirm=confirm)):
        return asked
    session.commit()  # the run commits its own batches; this request must not hold the writer lock meanwhile
    retention.run_retention(sessions, vault=vault, settings=settings,
                            dry_run=mode == "dry", actor=principal.actor)
    return RedirectResponse("/console/privacy/retention", status_code=303)


@router.get("/breaches")
def breaches_page(request: Request, principal: BreachManager, session: DbSession) -> HTMLResponse:
    return _breaches_page(request, principal, session)


class BreachForm(BaseModel):
    """The breach form as typed: checked here, so a mistake comes back with the input kept and the field marked."""

    model_config = ConfigDict(str_strip_whitespace=True)
    title: str = Field(min_length=1, max_length=200)
    occurred_from: datetime
    occurred_to: datetime
    categories: list[Category] = Field(min_length=1)
    cause: str = Field(min_length=1, max_length=2000)
    harm: str = Field(min_length=1, max_length=2000)
    measures: str = Field(min_length=1, max_length=2000)
    advice: str = Field(min_length=1, max_length=2000)
    contact: str = Field(min_length=1, max_length=200)
    serious: bool = False

    @field_validator("title", "cause", "harm", "measures", "advice", "contact")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.replace("\n", "").replace("\r", "").isprintable():
            raise ValueError("control characters are not allowed")
        return value

    @model_validator(mode="after")
    def _in_order(self) -> BreachForm:
        if (self.occurred_from.tzinfo is None) != (self.occurred_to.tzinfo is None):  # not comparable
            raise ValueError("give both times in the same way: with a time zone or without one")
        if self.occurred_to < self.occurred_from:
            raise PydanticCustomError("range", "a breach cannot end before it starts")
        return self


def _breaches_page(request: Request, principal: Principal, session: DbSession, *, status_code: int = 200,
                   values: dict[str, Any] | None = None, errors: dict[str, str] | None = None) -> HTMLResponse:
    items = breaches.all_breaches(session)
    return page(request, "privacy/breaches.html", principal, "/console/privacy/breaches", status_code=status_code,
                breaches=items, categories=[c.value for c in Category], values=values or {}, errors=errors or {})


@router.post("/breaches")
async def breach_open(request: Request, principal: BreachManager, session: DbSession,
                      settings: AppSettings) -> Response:
    form = await request.form()
    values: dict[str, Any] = {k: str(v)[:2000] for k, v in form.items() if k != "categories"}
    values["categories"] = [str(v) for v in form.getlist("categories")][:20]
    values["serious"] = values.get("serious") == "yes"
    zone = ZoneInfo(settings.timezone)
    try:
        checked = BreachForm.model_validate(values)
    except ValidationError as exc:
        errors = {}
        for problem in exc.errors():
            field = str(problem["loc"][0]) if problem["loc"] else ("occurred_to" if problem["type"] == "range"
                                                                   else "form")
            errors[field] = i18n_text(request, N_("A breach cannot end before it starts.")) \
                if problem["type"] == "range" else i18n_text(request, "not valid")
        return await run_in_threadpool(_breaches_page, request, principal, session, status_code=422, values=values,
                                       errors=errors)

    def store() -> str:
        breach = breaches.open_breach(
            session, actor=principal.actor, title=checked.title, serious=checked.serious,
            occurred_from=_local(checked.occurred_from, zone), occurred_to=_local(checked.occurred_to, zone),
            categories=[c.value for c in checked.categories], cause=checked.cause, harm=checked.harm,
            measures=checked.measures, advice=checked.advice, contact=checked.contact)
        return breach.id

    breach_id = await run_in_threadpool(store)
    return RedirectResponse(f"/console/privacy/breaches/{breach_id}", status_code=303)


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    """The form's datetime-local inputs are in the operator's time zone (labelled) and carry no zone."""
    return moment.replace(tzinfo=zone).astimezone(UTC) if moment.tzinfo is None else moment


def _breach_page(request: Request, principal: Principal, session: DbSession, breach_id: str, **context: Any
                 ) -> HTMLResponse:
    breach = breaches.get_breach(session, breach_id=breach_id)
    return page(request, "privacy/breach.html", principal, "/console/privacy/breaches", breach=breach,
                affected=breaches.affected(session, breach_id=breach.id), now=utcnow(), **context)


@router.get("/breaches/{breach_id}")
def breach_page(request: Request, breach_id: Identifier, principal: BreachManager, session: DbSession) -> HTMLResponse:
    return _breach_page(request, principal, session, breach_id)


@router.post("/breaches/{breach_id}/action")
def breach_action(request: Request, breach_id: Identifier, principal: BreachManager,
                  session: DbSession,
                  action: Annotated[str, Form(pattern="^(investigate|notify|report|close|add)$")],
                  vault: AppVault, settings: AppSettings,
                  subject_ids: Annotated[str, Form(max_length=20_000)] = "",
                  reader_id: Annotated[str, Form(max_length=64)] = "",
                  reference: Annotated[CleanStr, Form(max_length=100)] = "",
                  confirm: Confirmation = "") -> Response:
    if action in BREACH_QUESTIONS and (asked := ask_first(
            request, principal, f"/console/privacy/breaches/{breach_id}", question=BREACH_QUESTIONS[action],
            action=f"/console/privacy/breaches/{breach_id}/action", fields={"action": action}, confirm=confirm)):
        return asked
    actor = principal.actor
    try:
        if action == "investigate":
            found = breaches.investigate(session, actor=actor, breach_id=breach_id, reader_id=reader_id.strip() or None,
                                         since=None, until=None)
            return _breach_page(request, principal, session, breach_id, findings=found)
        if action == "add":
            ids = [part for part in subject_ids.replace(",", " ").split() if part]
            if not ids or len(ids) > 1000 or not all(is_identifier(i) for i in ids):
                raise InvalidInput("list the affected people's ids, separated by spaces, commas or lines")
            breaches.add_subjects(session, actor=actor, breach_id=breach_id, subject_ids=ids)
        elif action == "notify":
            breaches.notify_affected(session, vault=vault, actor=actor, breach_id=breach_id,
                                     locale=settings.locale, operator="TripGuard")
        elif action == "report":
            breaches.report_to_authority(session, actor=actor, breach_id=breach_id, reference=reference or "-")
        else:
            breaches.close(session, actor=actor, breach_id=breach_id)
    except DomainError as exc:
        session.rollback()
        return _breach_page(request, principal, session, breach_id, error=error_text(request, exc),
                            status_code=exc.status)
    return RedirectResponse(f"/console/privacy/breaches/{breach_id}", status_code=303)
