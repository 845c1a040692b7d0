"""HTTP: training (trainers write courses; workers take them), confidentiality agreements, violations
and discipline, and the supervision team's findings."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from tripguard.console.rendering import request_locale
from tripguard.core.admission import Bulk
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.core.errors import Conflict, InvalidInput, NotFound
from tripguard.core.types import Identifier, Timestamp
from tripguard.privacy import access
from tripguard.security.auth import (
    AgreementPublisher,
    AgreementSigner,
    DisciplineDecider,
    SanctionAppellant,
    SupervisionReader,
    TrainingManager,
    TrainingSelf,
    ViolationRaiser,
)
from tripguard.security.permissions import Purpose, Role
from tripguard.security.principal import Principal
from tripguard.vault.deps import AppVault
from tripguard.workforce import (
    agreements,
    certificates,
    discipline,
    inspections,
    kpi,
    supervision,
    training,
)
from tripguard.workforce.models import Course
from tripguard.workforce.schemas import (
    AgreementRead,
    AgreementVersion,
    AgreementWrite,
    AppealCreate,
    AppealDecision,
    AttemptCreate,
    AttemptRead,
    ChecklistRead,
    ChecklistWrite,
    CourseContent,
    CourseRead,
    CourseWrite,
    FindingRead,
    FindingReview,
    InspectionCreate,
    InspectionRead,
    ModuleRead,
    PlanEntry,
    QuestionRead,
    Rating,
    SanctionCreate,
    SanctionRead,
    SignatureCreate,
    SignatureRead,
    TrainingKpiRead,
    ViolationCreate,
    ViolationDetail,
    ViolationRead,
)

router = APIRouter(prefix="/api/v1", tags=["workforce"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128,
                                              pattern=r"^[\x21-\x7e]+$")]
CourseId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


def _pick(row: object, name: str, locale: str) -> str:
    """A text in the reader's language: `name_zh` or `name_en`, of an object or a dict."""
    key = f"{name}_zh" if locale.startswith("zh") else f"{name}_en"
    return str(row[key] if isinstance(row, dict) else getattr(row, key))


def role_of(worker: Principal) -> str:
    return "driver" if Role.DRIVER in worker.roles else "courier"


def _course_read(course: Course) -> CourseRead:
    return CourseRead(id=course.id, kind=course.kind, audience=course.audience, title_zh=course.title_zh,
                      title_en=course.title_en, pass_mark=course.pass_mark, required=course.required,
                      refresher_months=course.refresher_months, version=course.version, modules=len(course.modules),
                      questions=len(course.quiz))


# --- training ---------------------------------------------------------------------------------------------


@router.put("/courses/{course_id}", responses={201: {"model": CourseRead, "description": "created"}})
def put_course(course_id: CourseId, body: CourseWrite, trainer: TrainingManager, session: DbSession,
               response: Response) -> CourseRead:
    """Create or change a course. Changing its content raises its version; passes already earned stay
    valid until they run out."""
    course, created = training.put_course(session, actor=trainer.actor, course_id=course_id,
                                          content=body.model_dump())
    if created:
        response.status_code = 201
    return _course_read(course)


@router.get("/courses")
def list_courses(_: TrainingManager, session: DbSession) -> list[CourseRead]:
    return [_course_read(c) for c in training.courses(session)]


@router.get("/training/kpi")
def training_kpi(_: TrainingManager, session: DbSession, at: Annotated[Timestamp | None, Query()] = None,
                 since: Annotated[Timestamp | None, Query()] = None) -> TrainingKpiRead:
    """Coverage at `at` (now by default) and satisfaction from `since` (90 days before) until then."""
    at = at or utcnow()
    since = since or at - timedelta(days=90)
    if since >= at:
        raise InvalidInput("since comes before at")
    result = kpi.figures(session, at=at, since=since)
    return TrainingKpiRead(at=result.at, active_workers=result.active_workers,
                           covered_workers=result.covered_workers, coverage=result.coverage, ratings=result.ratings,
                           satisfaction=result.satisfaction, satisfied_share=result.satisfied_share)


@router.get("/me/training")
def my_training(worker: TrainingSelf, request: Request, session: DbSession) -> list[PlanEntry]:
    """Your courses, required ones first, each with why it is due: onboarding, refresher, retraining,
    optional, or done."""
    locale = request_locale(request)
    return [PlanEntry(course_id=d.course.id, kind=d.course.kind, title=_pick(d.course, "title", locale),
                      required=d.course.required, reason=d.reason, passed_at=d.passed_at, expires_at=d.expires_at)
            for d in training.plan(session, worker_id=worker.id, role=role_of(worker))]


@router.get("/me/training/{course_id}")
def course_content(course_id: CourseId, worker: TrainingSelf, request: Request, session: DbSession) -> CourseContent:
    """A course to read, in your language, and its quiz (without the answers)."""
    course = training.get_course(session, course_id=course_id)
    if course.audience not in training.for_audience(role_of(worker)):
        raise NotFound("no such course for you")
    locale = request_locale(request)
    return CourseContent(
        id=course.id, kind=course.kind, title=_pick(course, "title", locale), version=course.version,
        pass_mark=course.pass_mark,
        modules=[ModuleRead(title=_pick(m, "title", locale), body=_pick(m, "body", locale)) for m in course.modules],
        quiz=[QuestionRead(text=_pick(q, "text", locale),
                           options=q["options_zh" if locale.startswith("zh") else "options_en"]) for q in course.quiz])


@router.post("/me/training/{course_id}/attempts", status_code=201)
def submit_attempt(course_id: CourseId, body: AttemptCreate, worker: TrainingSelf, session: DbSession,
                   idempotency_key: IdempotencyKey = None) -> AttemptRead:
    """Your answers to the quiz. A pass is your completion, with a certificate; otherwise try again."""
    attempt = training.submit(session, actor=worker.actor, worker_id=worker.id, role=role_of(worker),
                              course_id=course_id, answers=body.answers, idempotency_key=idempotency_key)
    return AttemptRead.model_validate(attempt)


@router.put("/me/training/attempts/{attempt_id}/rating")
def rate_course(attempt_id: Identifier, body: Rating, worker: TrainingSelf, session: DbSession) -> AttemptRead:
    """How satisfied you were with the course you passed (once)."""
    return AttemptRead.model_validate(training.rate(session, worker_id=worker.id, attempt_id=attempt_id,
                                                    rating=body.rating))


@router.get("/me/training/attempts/{attempt_id}/certificate", dependencies=[Bulk],
            responses={200: {"content": {"application/pdf": {}}, "description": "the certificate"}})
def certificate(attempt_id: Identifier, worker: TrainingSelf, session: DbSession,
                settings: AppSettings) -> Response:
    attempt = training.own_attempt(session, worker_id=worker.id, attempt_id=attempt_id)
    if not attempt.passed:
        raise Conflict("a certificate is given for a passed course")
    pdf = certificates.render_pdf(attempt,
                                  training.get_course(session, course_id=attempt.course_id),
                                  timezone=settings.timezone)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="certificate-{attempt.certificate_no}.pdf"'})


# --- confidentiality agreements ---------------------------------------------------------------------------

Audience = Annotated[str, Path(pattern="^(staff|worker)$")]
Version = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,32}$")]


@router.put("/agreements/{audience}/{version}", responses={201: {"model": AgreementVersion}})
def publish_agreement(audience: Audience, version: Version, body: AgreementWrite, trainer: AgreementPublisher,
                      session: DbSession, response: Response) -> AgreementVersion:
    """Publish a new version for staff or for workers: from now on everyone of that audience signs it
    before opening personal data (and workers before being dispatched). A published text never changes."""
    agreement, created = agreements.publish(session, actor=trainer.actor, audience=audience, version=version,
                                            **body.model_dump())
    if created:
        response.status_code = 201
    return AgreementVersion.model_validate(agreement)


@router.get("/agreements")
def list_agreements(_: AgreementPublisher, session: DbSession) -> list[AgreementVersion]:
    return [AgreementVersion.model_validate(a) for a in agreements.versions(session)]


@router.get("/me/agreement")
def my_agreement(signer: AgreementSigner, request: Request, session: DbSession) -> AgreementRead:
    """The confidentiality agreement in force for you, in your language, and whether you signed it."""
    text, signature = agreements.in_force_for(session, principal=signer)
    locale = request_locale(request)
    return AgreementRead(audience=text.audience, version=text.version, title=_pick(text, "title", locale),
                         body=_pick(text, "body", locale), sha256=text.sha256, published_at=text.published_at,
                         signed_at=signature.signed_at if signature else None)


@router.post("/me/agreement/signature", status_code=201)
def sign_agreement(body: SignatureCreate, signer: AgreementSigner, request: Request, session: DbSession,
                   user_agent: Annotated[str | None, Header(max_length=1000)] = None) -> SignatureRead:
    """Sign the version you read, named by its `sha256` (a stale one is a 409: read it again)."""
    client = request.client.host if request.client else None
    return SignatureRead.model_validate(agreements.sign(session, principal=signer, sha256=body.sha256, ip=client,
                                                        user_agent=user_agent))


# --- violations and discipline ---------------------------------------------------------------------------


@router.post("/violations", status_code=201)
def raise_violation(body: ViolationCreate, raiser: ViolationRaiser, session: DbSession,
                    vault: AppVault, idempotency_key: IdempotencyKey = None) -> ViolationRead:
    """Record a violation by a worker or a staff member with its evidence; HR decides the sanction."""
    violation = discipline.raise_violation(
        session, vault=vault, actor=raiser.actor, offender_type=body.offender_type,
        offender_id=body.offender_id, kind=body.kind, summary=body.summary, evidence=body.evidence.model_dump(),
        idempotency_key=idempotency_key)
    return ViolationRead.model_validate(violation)


@router.get("/violations")
def list_violations(_: DisciplineDecider, session: DbSession,
                    status: Annotated[str | None, Query(pattern="^(open|decided|closed)$")] = None,
                    ) -> list[ViolationRead]:
    return [ViolationRead.model_validate(v) for v in discipline.violations(session, status=status)]


@router.get("/violations/{violation_id}")
def read_violation(violation_id: Identifier, hr: DisciplineDecider, session: DbSession,
                   vault: AppVault) -> ViolationDetail:
    """A violation with its summary (read for the discipline purpose, audited) and its sanctions."""
    violation = discipline.get(session, violation_id=violation_id)
    summary = access.read_fields(vault, session, hr, violation, ["summary"],
                                 purpose=Purpose.DISCIPLINE)["summary"].value
    return ViolationDetail(**ViolationRead.model_validate(violation).model_dump(), summary=summary,
                           sanctions=[SanctionRead.model_validate(s)
                                      for s in discipline.sanctions_of(session, violation_id=violation.id)])


@router.post("/violations/{violation_id}/sanctions", status_code=201)
def decide_sanction(violation_id: Identifier, body: SanctionCreate, hr: DisciplineDecider,
                    session: DbSession, settings: AppSettings) -> SanctionRead:
    """A sanction. A suspension or dismissal closes the dispatch gate and the access gate at once."""
    sanction = discipline.decide(session, actor=hr.actor, violation_id=violation_id, kind=body.kind,
                                 amount_fen=body.amount_fen, days=body.days, course_id=body.course_id,
                                 webhook_url=settings.webhook_url)
    return SanctionRead.model_validate(sanction)


@router.post("/sanctions/{sanction_id}/lift")
def lift_sanction(sanction_id: Identifier, hr: DisciplineDecider, session: DbSession) -> SanctionRead:
    return SanctionRead.model_validate(discipline.lift(session, actor=hr.actor, sanction_id=sanction_id))


@router.post("/sanctions/{sanction_id}/appeal-decision")
def decide_appeal(sanction_id: Identifier, body: AppealDecision, hr: DisciplineDecider,
                  session: DbSession) -> SanctionRead:
    """Upheld keeps the sanction; overturned ends it at once."""
    return SanctionRead.model_validate(discipline.decide_appeal(session, actor=hr.actor, sanction_id=sanction_id,
                                                                outcome=body.outcome))


@router.get("/me/sanctions")
def my_sanctions(person: SanctionAppellant, session: DbSession) -> list[SanctionRead]:
    return [SanctionRead.model_validate(s) for s in discipline.sanctions_of(session, offender_id=person.id)]


@router.post("/me/sanctions/{sanction_id}/appeal")
def appeal_sanction(sanction_id: Identifier, body: AppealCreate, person: SanctionAppellant,
                    session: DbSession, vault: AppVault) -> SanctionRead:
    """Appeal a sanction on you, once; it stays in force until HR decides."""
    return SanctionRead.model_validate(discipline.appeal(session, vault=vault, principal=person,
                                                         sanction_id=sanction_id, text=body.text))


# --- supervision ------------------------------------------------------------------------------------------


@router.get("/supervision/findings")
def findings(_: SupervisionReader, session: DbSession,
             status: Annotated[str | None, Query(pattern="^(open|reviewed)$")] = "open") -> list[FindingRead]:
    """What the supervision rules flagged, newest first, each with its audit entries as evidence."""
    return [FindingRead.model_validate(f) for f in supervision.findings(session, status=status)]


@router.post("/supervision/findings/{finding_id}/review")
def review_finding(finding_id: Identifier, body: FindingReview, supervisor: SupervisionReader,
                   session: DbSession) -> FindingRead:
    """Close a finding as justified (the access had a reason). To discipline instead, raise a violation
    naming the finding as its evidence."""
    return FindingRead.model_validate(supervision.review(session, actor=supervisor.actor, finding_id=finding_id,
                                                         outcome=body.outcome))



@router.put("/inspection-checklists/{checklist_id}", responses={201: {"model": ChecklistRead}})
def put_checklist(checklist_id: CourseId, body: ChecklistWrite, supervisor: SupervisionReader, session: DbSession,
                  response: Response) -> ChecklistRead:
    """A checklist the supervision team inspects against; a change raises its version."""
    checklist, created = inspections.put_checklist(session, actor=supervisor.actor, checklist_id=checklist_id,
                                                   title_zh=body.title_zh, title_en=body.title_en,
                                                   items=[item.model_dump() for item in body.items])
    if created:
        response.status_code = 201
    return ChecklistRead.model_validate(checklist)


@router.get("/inspection-checklists")
def list_checklists(_: SupervisionReader, session: DbSession) -> list[ChecklistRead]:
    return [ChecklistRead.model_validate(c) for c in inspections.checklists(session)]


@router.post("/inspections", status_code=201)
def record_inspection(body: InspectionCreate, supervisor: SupervisionReader, session: DbSession,
                      vault: AppVault, idempotency_key: IdempotencyKey = None) -> InspectionRead:
    """An inspection: a result (pass, fail, n/a) for every item of the checklist, for a period."""
    return InspectionRead.model_validate(inspections.record(
        session, vault=vault, actor=supervisor.actor, inspector=supervisor.id,
        checklist_id=body.checklist_id, period=body.period, results=dict(body.results), notes=body.notes,
        idempotency_key=idempotency_key))


@router.get("/inspections")
def list_inspections(_: SupervisionReader, session: DbSession) -> list[InspectionRead]:
    """The latest inspections, newest first."""
    return [InspectionRead.model_validate(i) for i in inspections.recent(session)]
