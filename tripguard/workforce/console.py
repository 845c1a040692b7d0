"""The workforce's console pages: every staff member's confidentiality agreement; the trainers' courses,
coverage and agreement versions; the supervision team's findings queue; HR's violations and sanctions."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tripguard.console.confirmations import ask
from tripguard.console.lists import Column, Filter, ListSpec, fetch, read_query
from tripguard.console.rendering import request_locale
from tripguard.console.shell import Confirmation, ask_first, error_text, page
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.core.errors import DomainError, FieldProblem, InvalidInput, NotFound
from tripguard.core.i18n import N_
from tripguard.core.periods import is_period
from tripguard.core.types import CleanStr, Identifier
from tripguard.privacy import access
from tripguard.security.auth import (
    AgreementPublisher,
    AgreementSigner,
    DisciplineDecider,
    SupervisionReader,
    TrainingManager,
)
from tripguard.security.permissions import Permission, Purpose
from tripguard.security.principal import Principal
from tripguard.vault.deps import AppVault
from tripguard.vault.service import Vault
from tripguard.workforce import agreements, discipline, inspections, kpi, supervision, training
from tripguard.workforce.models import Course, Finding, Violation

router = APIRouter(prefix="/console", include_in_schema=False)

COURSES = ListSpec(
    name="courses", model=Course, default_sort="course", default_descending=False, tiebreak=Course.id,
    columns=[Column("course", N_("Course"), Course.id), Column("kind", N_("Kind"), Course.kind),
             Column("audience", N_("Audience"), Course.audience), Column("required", N_("Required"), Course.required),
             Column("refresher", N_("Refresher (months)"), Course.refresher_months),
             Column("version", N_("Version"), Course.version), Column("updated", N_("Changed"), Course.updated_at)],
    search=[Course.id, Course.title_zh, Course.title_en])
FINDINGS = ListSpec(
    name="findings", model=Finding, default_sort="found", tiebreak=Finding.id,
    columns=[Column("found", N_("Found"), Finding.created_at), Column("finding", N_("Finding")),
             Column("rule", N_("Rule"), Finding.rule), Column("who", N_("Staff member"), Finding.actor_id),
             Column("count", N_("Count"), Finding.count), Column("window", N_("Window"), Finding.window_start),
             Column("state", N_("State"), Finding.status)],
    filters=[Filter("state", N_("State"), [("open", N_("To review")), ("reviewed", N_("reviewed")), ("", N_("All"))],
                    lambda statement, value: statement.where(Finding.status == value), default="open"),
             Filter("rule", N_("Rule"), [("", N_("All")), ("many_people", N_("many_people")),
                                        ("after_hours", N_("after_hours")), ("bulk_export", N_("bulk_export")),
                                        ("unassigned", N_("unassigned")), ("gate_override", N_("gate_override"))],
                    lambda statement, value: statement.where(Finding.rule == value))],
    search=[Finding.actor_id, Finding.id])
VIOLATIONS = ListSpec(
    name="violations", model=Violation, default_sort="raised", tiebreak=Violation.id,
    columns=[Column("raised", N_("Raised"), Violation.created_at), Column("violation", N_("Violation")),
             Column("who", N_("Person"), Violation.offender_id), Column("as", N_("Role"), Violation.offender_type),
             Column("kind", N_("Kind"), Violation.kind), Column("state", N_("State"), Violation.status)],
    filters=[Filter("state", N_("State"), [("", N_("All")), ("open", N_("To decide")), ("decided", N_("decided"))],
                    lambda statement, value: statement.where(Violation.status == value))],
    search=[Violation.offender_id, Violation.id])


EVIDENCE_LABELS = {"audit": N_("Audit entries"), "incidents": N_("Cases"), "complaints": N_("Complaints"),
                   "findings": N_("Findings")}
APPEAL_LABELS = {"pending": N_("appeal pending"), "upheld": N_("sanction upheld"),
                 "overturned": N_("sanction overturned")}

# Punitive or final decisions ask first (console/confirmations.py): each sanction by its kind, an appeal's decision,
# and a new agreement version (everyone of its audience is shut out of personal data until they sign it).
SANCTION_QUESTIONS = {
    "warning": ask("discipline.warning", N_("Give this person a warning?"),
                   N_("The warning goes on their record with this violation and counts in the reports. It is not "
                      "taken back; they may appeal it."), N_("Decide")),
    "fine": ask("discipline.fine", N_("Fine this person?"),
                N_("The fine is recorded against them with this violation and counts in the reports. It is not "
                   "taken back; they may appeal it."), N_("Decide")),
    "suspension": ask("discipline.suspension", N_("Suspend this person?"),
                      N_("From now on they can take no work and open no personal data, for the days given or until "
                         "lifted. A driver's or courier's suspension is sent to the operator. They may appeal it."),
                      N_("Decide")),
    "dismissal": ask("discipline.dismissal", N_("Dismiss this person?"),
                     N_("They are shut out for good: a staff member's account is disabled and signed out at once; a "
                        "driver's or courier's dismissal is sent to the operator. Only an appeal overturns it."),
                     N_("Decide")),
    "referral": ask("discipline.referral", N_("Refer this person to the authorities?"),
                    N_("The referral is recorded against them with this violation and counts in the reports. It is "
                       "not taken back; they may appeal it."), N_("Decide")),
    "retraining": ask("discipline.retraining", N_("Send this worker back to training?"),
                      N_("They are given no work until they pass the course again. They may appeal it."),
                      N_("Decide")),
}
APPEAL_QUESTIONS = {
    "upheld": ask("discipline.appeal_upheld", N_("Uphold this sanction?"),
                  N_("The appeal is decided for good: the sanction stays in force and they cannot appeal it again."),
                  N_("Uphold")),
    "overturned": ask("discipline.appeal_overturned", N_("Overturn this sanction?"),
                      N_("The appeal is decided for good: the sanction ends at once and cannot be put back; a new "
                         "sanction needs a new decision."), N_("Overturn")),
}
PUBLISH_AGREEMENT = ask("agreement.publish", N_("Publish this agreement version?"),
                        N_("It is in force at once and cannot be changed: everyone it is for opens no personal data "
                           "until they have signed it."), N_("Publish"))


# --- every staff member: the agreement -----------------------------------------------------------------


@router.get("/agreement")
def agreement_page(request: Request, principal: AgreementSigner, session: DbSession) -> HTMLResponse:
    """The confidentiality agreement in force for staff, in the page's language, and the signature."""
    return _agreement_page(request, principal, session)


def _agreement_page(request: Request, principal: Principal, session: DbSession, *, error: str | None = None,
                    status_code: int = 200) -> HTMLResponse:
    text, signature = agreements.in_force_for(session, principal=principal)
    zh = request_locale(request).startswith("zh")
    return page(request, "workforce/agreement.html", principal, "/console/agreement", status_code=status_code,
                text=text, title=text.title_zh if zh else text.title_en, body=text.body_zh if zh else text.body_en,
                signature=signature, error=error)


@router.post("/agreement")
def sign_agreement(request: Request, principal: AgreementSigner, session: DbSession,
                   sha256: Annotated[str, Form(pattern=r"^[0-9a-f]{64}$")]) -> Response:
    try:
        agreements.sign(session, principal=principal, sha256=sha256,
                        ip=request.client.host if request.client else None,
                        user_agent=request.headers.get("user-agent"))
    except DomainError as exc:
        session.rollback()
        return _agreement_page(request, principal, session, error=error_text(request, exc), status_code=exc.status)
    return RedirectResponse("/console/agreement", status_code=303)


# --- trainers ----------------------------------------------------------------------------------------------


@router.get("/training")
def training_page(request: Request, principal: TrainingManager, session: DbSession) -> HTMLResponse:
    """Courses, the coverage and satisfaction figures, and the agreements' versions."""
    now = utcnow()
    return page(request, "workforce/training.html", principal, "/console/training",
                list=fetch(session, spec=COURSES, query=read_query(request, COURSES)),
                figures=kpi.figures(session, at=now, since=now - timedelta(days=90)),
                versions=agreements.versions(session), zh=request_locale(request).startswith("zh"))


@router.get("/training/courses/{course_id}")
def course_page(request: Request, course_id: Identifier, principal: TrainingManager,
                session: DbSession) -> HTMLResponse:
    """One course as the worker reads it (with the quiz's answers), and how it is taken: one aggregate
    query whatever the number of workers."""
    course = training.get_course(session, course_id=course_id)
    return page(request, "workforce/course.html", principal, "/console/training", course=course,
                zh=request_locale(request).startswith("zh"),
                stats=training.course_figures(session, course_id=course.id))


@router.post("/training/agreements")
def publish_agreement(request: Request, principal: AgreementPublisher, session: DbSession,
                      audience: Annotated[str, Form(pattern="^(staff|worker)$")],
                      version: Annotated[str, Form(pattern=r"^[A-Za-z0-9._-]{1,32}$")],
                      title_zh: Annotated[CleanStr, Form(min_length=1, max_length=200)],
                      title_en: Annotated[CleanStr, Form(min_length=1, max_length=200)],
                      body_zh: Annotated[CleanStr, Form(min_length=1, max_length=20000)],
                      body_en: Annotated[CleanStr, Form(min_length=1, max_length=20000)],
                      confirm: Confirmation = "") -> Response:
    """A new version: everyone of its audience signs it again before their next read of personal data."""
    if asked := ask_first(request, principal, "/console/training", question=PUBLISH_AGREEMENT,
                          action="/console/training/agreements", confirm=confirm,
                          fields={"audience": audience, "version": version, "title_zh": title_zh,
                                  "title_en": title_en, "body_zh": body_zh, "body_en": body_en}):
        return asked
    agreements.publish(session, actor=principal.actor, audience=audience, version=version, title_zh=title_zh,
                       title_en=title_en, body_zh=body_zh, body_en=body_en)
    return RedirectResponse("/console/training", status_code=303)


# --- the supervision team ----------------------------------------------------------------------------------


@router.get("/supervision")
def findings_page(request: Request, principal: SupervisionReader, session: DbSession) -> HTMLResponse:
    """What the rules flagged over the audit log, to review: justified, or a violation; and the
    inspections against the team's checklists."""
    return _findings_page(request, principal, session)


def _findings_page(request: Request, principal: Principal, session: DbSession, *, error: str | None = None,
                   status_code: int = 200) -> HTMLResponse:
    return page(request, "workforce/findings.html", principal, "/console/supervision", status_code=status_code,
                list=fetch(session, spec=FINDINGS, query=read_query(request, FINDINGS)),
                checklists=inspections.checklists(session), inspections=inspections.recent(session, limit=20),
                zh=request_locale(request).startswith("zh"), error=error)


@router.post("/supervision/inspections")
async def record_inspection(request: Request, principal: SupervisionReader, session: DbSession,
                            vault: AppVault) -> Response:
    """An inspection from the checklist's form: `result.<item>` for each item, the period, notes."""
    form = await request.form()
    checklist_id, period = str(form.get("checklist_id", "")), str(form.get("period", ""))
    results = {str(name).removeprefix("result."): str(value) for name, value in form.items()
               if str(name).startswith("result.") and str(value) in inspections.RESULTS}
    notes = str(form.get("notes", "")).strip()[:4000] or None
    try:
        if not is_period(period):
            raise InvalidInput(errors=[FieldProblem(field="period", message="e.g. 2026-11")])
        await run_in_threadpool(inspections.record, session, vault=vault, actor=principal.actor,
                                inspector=principal.id, checklist_id=checklist_id, period=period, results=results,
                                notes=notes, idempotency_key=None)
    except DomainError as exc:
        session.rollback()
        return await run_in_threadpool(_findings_page, request, principal, session,
                                       error=error_text(request, exc), status_code=exc.status)
    return RedirectResponse("/console/supervision", status_code=303)


def _finding_page(request: Request, principal: Principal, session: DbSession, finding: Finding, *,
                  error: str | None = None, status_code: int = 200) -> HTMLResponse:
    return page(request, "workforce/finding.html", principal, "/console/supervision", status_code=status_code,
                f=finding, entries=supervision.evidence_entries(session, finding=finding,
                                                                limit=100), error=error,
                can_raise=principal.can(Permission.VIOLATION_RAISE))


@router.get("/supervision/{finding_id}")
def finding_page(request: Request, finding_id: Identifier, principal: SupervisionReader,
                 session: DbSession) -> HTMLResponse:
    finding = supervision.get(session, finding_id=finding_id)
    return _finding_page(request, principal, session, finding)


@router.post("/supervision/{finding_id}")
def review_finding(request: Request, finding_id: Identifier, principal: SupervisionReader,
                   session: DbSession,
                   action: Annotated[str, Form(pattern="^(justified|violation)$")], vault: AppVault,
                   kind: Annotated[str, Form(pattern="^(privacy|safety|service|conduct)$")] = "privacy",
                   summary: Annotated[CleanStr, Form(max_length=4000)] = "") -> Response:
    """Close the finding as justified, or raise a violation against the staff member with it as evidence."""
    finding = supervision.get(session, finding_id=finding_id)
    try:
        if action == "justified":
            supervision.review(session, actor=principal.actor, finding_id=finding.id, outcome="justified")
        else:
            if not principal.can(Permission.VIOLATION_RAISE):
                raise NotFound("no such action")
            if len(summary.strip()) < 2:
                raise InvalidInput(errors=[FieldProblem(field="summary", message="say what was done")])
            discipline.raise_violation(session, vault=vault, actor=principal.actor,
                                       offender_type="staff",
                                       offender_id=finding.actor_id, kind=kind, summary=summary.strip(),
                                       evidence={"findings": [finding.id],
                                                 "audit": [str(i) for i in finding.evidence[:50]]})
    except DomainError as exc:
        session.rollback()
        return _finding_page(request, principal, session, finding, error=error_text(request, exc),
                             status_code=exc.status)
    return RedirectResponse(f"/console/supervision/{finding.id}", status_code=303)


# --- HR: violations and sanctions --------------------------------------------------------------------------


@router.get("/discipline")
def violations_page(request: Request, principal: DisciplineDecider, session: DbSession) -> HTMLResponse:
    return page(request, "workforce/violations.html", principal, "/console/discipline",
                list=fetch(session, spec=VIOLATIONS,
                           query=read_query(request, VIOLATIONS)))


def _violation_page(request: Request, principal: Principal, session: DbSession, vault: Vault,
                    violation: Violation, *, error: str | None = None, status_code: int = 200
                    ) -> HTMLResponse:
    summary = access.read_fields(vault, session, principal, violation, ["summary"], purpose=Purpose.DISCIPLINE)
    sanctions = discipline.sanctions_of(session, violation_id=violation.id)
    appeals = {s.id: access.read_fields(vault, session, principal, s, ["appeal"], purpose=Purpose.DISCIPLINE)["appeal"]
               for s in sanctions if s.appeal is not None}
    return page(request, "workforce/violation.html", principal, "/console/discipline", status_code=status_code,
                v=violation, summary=summary["summary"], sanctions=sanctions, appeals=appeals, error=error,
                courses=training.course_ids(session), appeal_labels=APPEAL_LABELS,
                evidence_labels=EVIDENCE_LABELS,
                can_incidents=principal.can(Permission.INCIDENT_HANDLE),
                can_complaints=principal.can(Permission.COMPLAINT_READ))


@router.get("/discipline/{violation_id}")
def violation_page(request: Request, violation_id: Identifier, principal: DisciplineDecider,
                   session: DbSession, vault: AppVault) -> HTMLResponse:
    """A violation: what was done (read for the discipline purpose, audited), its evidence, its sanctions."""
    return _violation_page(request, principal, session, vault,
                           discipline.get(session, violation_id=violation_id))


@router.post("/discipline/{violation_id}")
def decide(request: Request, violation_id: Identifier, principal: DisciplineDecider,
           session: DbSession,
           action: Annotated[str, Form(pattern="^(sanction|lift|upheld|overturned)$")],
           settings: AppSettings, vault: AppVault,
           kind: Annotated[str, Form(pattern="^(warning|fine|suspension|dismissal|referral|retraining)$")] = "warning",
           amount_yuan: Annotated[int | None, Form(ge=1, le=1_000_000)] = None,
           days: Annotated[int | None, Form(ge=1, le=3650)] = None,
           course_id: Annotated[str, Form(max_length=64)] = "",
           sanction_id: Annotated[str, Form(max_length=40)] = "", confirm: Confirmation = ""
           ) -> Response:
    """A sanction, lifting one, or an appeal's decision. A sanction and an appeal's decision ask first."""
    violation = discipline.get(session, violation_id=violation_id)
    question = SANCTION_QUESTIONS[kind] if action == "sanction" else APPEAL_QUESTIONS.get(action)
    fields = {"action": action, "kind": kind, "course_id": course_id, "sanction_id": sanction_id,
              **({"amount_yuan": str(amount_yuan)} if amount_yuan is not None else {}),
              **({"days": str(days)} if days is not None else {})}
    if question and (asked := ask_first(request, principal, f"/console/discipline/{violation.id}", question=question,
                                        action=f"/console/discipline/{violation.id}", fields=fields,
                                        confirm=confirm)):
        return asked
    try:
        if action == "sanction":
            discipline.decide(session, actor=principal.actor, violation_id=violation.id, kind=kind,
                              amount_fen=amount_yuan * 100 if amount_yuan else None, days=days,
                              course_id=course_id or None, webhook_url=settings.webhook_url)
        elif action == "lift":
            discipline.lift(session, actor=principal.actor, sanction_id=sanction_id)
        else:
            discipline.decide_appeal(session, actor=principal.actor, sanction_id=sanction_id, outcome=action)
    except DomainError as exc:
        session.rollback()
        return _violation_page(request, principal, session, vault, violation, error=error_text(request, exc),
                               status_code=exc.status)
    return RedirectResponse(f"/console/discipline/{violation.id}", status_code=303)
