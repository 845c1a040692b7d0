"""HTTP routes: data subjects (record, read by purpose, find, erase), the catalogue, notices."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, status

from tripguard.core.admission import Bulk
from tripguard.core.db import Base, DbSession
from tripguard.core.deps import AppSettings, SecretKey, Sessions
from tripguard.core.errors import FieldProblem, InvalidInput, NotFound
from tripguard.core.i18n import negotiate_locale
from tripguard.core.ids import new_id
from tripguard.core.types import Identifier
from tripguard.privacy import access, breaches, requests, retention, service
from tripguard.privacy.catalogue import catalogue
from tripguard.privacy.models import DataSubject
from tripguard.privacy.retention import run_retention
from tripguard.privacy.schemas import (
    PHONE_PATTERN,
    AffectedSubjects,
    AuthorityReport,
    BreachCreate,
    BreachRead,
    CatalogueEntry,
    Containment,
    CorrectionDecision,
    DeletionRecordRead,
    EraseRequest,
    FieldValue,
    HoldCreate,
    HoldRead,
    Investigation,
    InvestigationRead,
    NoticeCreate,
    NoticeRead,
    RequestCreate,
    RequestRead,
    RetentionRunCreate,
    RetentionRunRead,
    SubjectReceipt,
    SubjectUpsert,
    SubjectView,
    VerifyCode,
)
from tripguard.security.auth import (
    BreachManager,
    CatalogueReader,
    DataSubjectSelf,
    NoticePublisher,
    PersonalReader,
    Public,
    RequestHandler,
    RetentionManager,
    SubjectEraser,
    SubjectWriter,
)
from tripguard.security.permissions import Purpose
from tripguard.security.principal import Principal
from tripguard.vault.deps import AppVault
from tripguard.vault.service import Vault

router = APIRouter(prefix="/api/v1", tags=["privacy"])
SubjectId = Annotated[Identifier, Path(description="the operator's id for the person")]


def _receipt(subject: DataSubject) -> SubjectReceipt:
    return SubjectReceipt(id=subject.id, kind=subject.kind, notice_version=subject.notice_version,
                          fields_held=[c for c in service.SUBJECT_FIELDS if getattr(subject, c) is not None])


def _view(vault: Vault, session: DbSession, principal: Principal, subject: DataSubject,
          purpose: Purpose) -> SubjectView:
    views = access.read_fields(vault, session, principal, subject,
                               list(service.SUBJECT_FIELDS), purpose=purpose)
    return SubjectView(id=subject.id, kind=subject.kind, notice_version=subject.notice_version,
                       erased=subject.erased_at is not None, purpose=purpose.value,
                       fields={c: FieldValue(value=v.value, plaintext=v.plaintext) for c, v in views.items()})


@router.put("/subjects/{subject_id}")
def upsert_subject(subject_id: SubjectId, body: SubjectUpsert, principal: SubjectWriter,
                   session: DbSession, vault: AppVault) -> SubjectReceipt:
    """Record a person's details as the operator collected them (idempotent: PUT the same again)."""
    values = {c: getattr(body, c) for c in service.SUBJECT_FIELDS if c in body.model_fields_set}
    subject = service.upsert_subject(session, vault=vault, actor=principal.actor,
                                     subject_id=subject_id, kind=body.kind,
                                     notice_version=body.notice_version, values=values)
    return _receipt(subject)


@router.get("/subjects/{subject_id}")
def read_subject(subject_id: SubjectId, purpose: Purpose, principal: PersonalReader,
                 request: Request, session: DbSession, vault: AppVault) -> SubjectView:
    """Plaintext for fields the caller's roles may read for `purpose`; the mask otherwise. Audited."""
    return _view(vault, session, principal, service.get_subject(session, subject_id=subject_id), purpose)


@router.get("/subjects")
def find_subjects(phone: Annotated[str, Query(pattern=PHONE_PATTERN)], purpose: Purpose,
                  principal: PersonalReader, request: Request, session: DbSession, vault: AppVault
                  ) -> list[SubjectView]:
    """Find people by phone number through its blind index (the number itself is never stored)."""
    found = service.find_by_phone(session, vault=vault, phone=phone)
    return [_view(vault, session, principal, subject, purpose) for subject in found]


@router.post("/subjects/{subject_id}/erase")
def erase_subject(subject_id: SubjectId, body: EraseRequest, principal: SubjectEraser,
                  session: DbSession, vault: AppVault, settings: AppSettings) -> DeletionRecordRead:
    record = service.erase_subject(session, vault=vault, actor=principal.actor,
                                   subject_id=subject_id, reason=body.reason,
                                   trip_data_days=settings.retention_trip_data_days)
    return DeletionRecordRead.model_validate(record)


@router.get("/privacy/catalogue")
def read_catalogue(_: CatalogueReader) -> list[CatalogueEntry]:
    """Every personal field TripGuard stores, its category, the purposes it may be read for."""
    return [CatalogueEntry(table=f.table, column=f.column, category=f.category.value,
                           description=f.rule.description, purposes=sorted(p.value for p in f.rule.purposes),
                           mask_example=f.rule.mask(f.rule.example))
            for f in catalogue(Base.metadata)]


@router.post("/privacy/notices", status_code=status.HTTP_201_CREATED)
def publish_notice(body: NoticeCreate, principal: NoticePublisher, session: DbSession) -> NoticeRead:
    """Publish a notice version; a version never changes once published (publishing it again is a no-op)."""
    notice = service.publish_notice(session, actor=principal.actor, version=body.version,
                                    purposes=[p.value for p in body.purposes],
                                    categories=[c.value for c in body.categories], retention_zh=body.retention_zh,
                                    retention_en=body.retention_en, text_zh=body.text_zh, text_en=body.text_en)
    return NoticeRead.model_validate(notice)


@router.get("/privacy/notices/{version}", dependencies=[Public])
def read_notice(version: Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,32}$")], session: DbSession) -> NoticeRead:
    """The text apps show people before collecting their data."""
    notice = service.published_notice(session, version=version)
    if notice is None:
        raise NotFound(f"no notice {version}")
    return NoticeRead.model_validate(notice)


# ---- subject requests --------------------------------------------------------------------------

RequestId = Annotated[Identifier, Path()]


async def _locale(request: Request, settings: AppSettings) -> str:
    return negotiate_locale(cookie=None, accept_language=request.headers.get("accept-language"),
                            default=settings.locale)


Locale = Annotated[str, Depends(_locale)]  # the person's language, for what they are sent


@router.post("/me/requests", status_code=status.HTTP_202_ACCEPTED)
def file_request(body: RequestCreate, principal: DataSubjectSelf, request: Request,
                 session: DbSession, vault: AppVault, secret: SecretKey, locale: Locale,
                 idempotency_key: Annotated[str | None, Header(pattern=r"^[A-Za-z0-9_.:-]{8,100}$")] = None
                 ) -> RequestRead:
    """Ask for one's data, its correction or its erasure; a code goes to the contact on file.

    Send an `Idempotency-Key` header: a retried request is then filed (and the code sent) once.
    """
    correction = body.correction.model_dump(exclude_none=True) if body.correction else None
    filed = requests.file_request(session, vault=vault, secret_key=secret, subject_id=principal.id,
                                  kind=body.kind, correction=correction, locale=locale,
                                  idempotency_key=idempotency_key or new_id("idem"))
    return RequestRead.model_validate(filed)


@router.get("/me/requests/{request_id}")
def read_own_request(request_id: RequestId, principal: DataSubjectSelf, session: DbSession) -> RequestRead:
    return RequestRead.model_validate(requests.own_request(session, subject_id=principal.id, request_id=request_id))


@router.post("/me/requests/{request_id}/verify")
def verify_request(request_id: RequestId, body: VerifyCode, principal: DataSubjectSelf,
                   session: DbSession, vault: AppVault, secret: SecretKey) -> RequestRead:
    """Prove it is you with the code; an erasure is then carried out at once."""
    verified = requests.verify(session, vault=vault, secret_key=secret, subject_id=principal.id,
                               request_id=request_id, code=body.code)  # a failed try is committed by the check
    return RequestRead.model_validate(verified)


@router.post("/me/requests/{request_id}/code")
def resend_code(request_id: RequestId, principal: DataSubjectSelf, request: Request,
                session: DbSession, vault: AppVault, secret: SecretKey, locale: Locale
                ) -> RequestRead:
    return RequestRead.model_validate(requests.resend_code(
        session, vault=vault, secret_key=secret, subject_id=principal.id, request_id=request_id,
        locale=locale))


@router.get("/me/requests/{request_id}/export", dependencies=[Bulk])
def export_own_data(request_id: RequestId, principal: DataSubjectSelf, request: Request,
                    session: DbSession, vault: AppVault) -> dict[str, object]:
    """Everything TripGuard holds about you, decrypted (a verified access request)."""
    return requests.export_for(session, vault=vault, subject_id=principal.id, request_id=request_id)


@router.get("/privacy/requests")
def request_queue(_: RequestHandler, session: DbSession,
                  status_filter: Annotated[Literal["awaiting_verification", "verified", "completed", "rejected"] | None,
                                           Query(alias="status")] = None) -> list[RequestRead]:
    """The privacy officer's queue, soonest deadline first."""
    return [RequestRead.model_validate(r) for r in requests.queue(session, status=status_filter)]


@router.post("/privacy/requests/{request_id}/decision")
def decide_correction(request_id: RequestId, body: CorrectionDecision, principal: RequestHandler,
                      request: Request, session: DbSession, vault: AppVault) -> RequestRead:
    """Apply or refuse a verified correction request."""
    return RequestRead.model_validate(requests.decide_correction(
        session, vault=vault, actor=principal.actor, request_id=request_id, apply=body.apply,
        note=body.note))


# ---- retention and legal holds -----------------------------------------------------------------


@router.get("/privacy/retention/runs")
def retention_runs(_: RetentionManager, session: DbSession) -> list[RetentionRunRead]:
    return [RetentionRunRead.model_validate(run) for run in retention.recent_runs(session, limit=50)]


@router.post("/privacy/retention/runs", dependencies=[Bulk], status_code=status.HTTP_201_CREATED)
def start_retention_run(body: RetentionRunCreate, principal: RetentionManager, request: Request,
                        session: DbSession, sessions: Sessions, vault: AppVault,
                        settings: AppSettings) -> RetentionRunRead:
    """Run the retention rules now (a dry run by default: it only counts)."""
    session.commit()  # the run commits its own batches; this request must not hold the writer lock meanwhile
    run = run_retention(sessions, vault=vault, settings=settings,
                        dry_run=body.dry_run, actor=principal.actor)
    return RetentionRunRead.model_validate(run)


@router.get("/privacy/holds")
def list_holds(_: RetentionManager, session: DbSession) -> list[HoldRead]:
    return [HoldRead.model_validate(hold) for hold in retention.open_holds(session)]


@router.post("/privacy/holds", status_code=status.HTTP_201_CREATED)
def place_hold(body: HoldCreate, principal: RetentionManager, session: DbSession) -> HoldRead:
    """Keep a person's data past retention while a case needs it."""
    service.get_subject(session, subject_id=body.subject_id)
    return HoldRead.model_validate(retention.place_hold(session, actor=principal.actor, subject_id=body.subject_id,
                                                        case_ref=body.case_ref, reason=body.reason))


@router.post("/privacy/holds/{hold_id}/release")
def release_hold(hold_id: Annotated[Identifier, Path()], principal: RetentionManager, session: DbSession) -> HoldRead:
    return HoldRead.model_validate(retention.release_hold(session, actor=principal.actor, hold_id=hold_id))


# ---- breaches ----------------------------------------------------------------------------------

BreachId = Annotated[Identifier, Path()]


@router.get("/privacy/breaches")
def list_breaches(_: BreachManager, session: DbSession) -> list[BreachRead]:
    return [BreachRead.model_validate(b) for b in breaches.all_breaches(session)]


@router.post("/privacy/breaches", status_code=status.HTTP_201_CREATED)
def open_breach(body: BreachCreate, principal: BreachManager, session: DbSession) -> BreachRead:
    """Open a breach; a serious one starts the 4-hour clock for the report to the authority."""
    if body.occurred_to < body.occurred_from:
        raise InvalidInput(errors=[FieldProblem(field="occurred_to", message="is before occurred_from")])
    return BreachRead.model_validate(breaches.open_breach(
        session, actor=principal.actor, **body.model_dump(exclude={"categories"}),
        categories=[c.value for c in body.categories]))


@router.get("/privacy/breaches/{breach_id}")
def read_breach(breach_id: BreachId, _: BreachManager, session: DbSession) -> BreachRead:
    return BreachRead.model_validate(breaches.get_breach(session, breach_id=breach_id))


@router.post("/privacy/breaches/{breach_id}/contain")
def contain_breach(breach_id: BreachId, body: Containment, principal: BreachManager,
                   session: DbSession, vault: AppVault) -> BreachRead:
    """End staff sessions, revoke API keys, start a key rotation: now."""
    return BreachRead.model_validate(breaches.contain(
        session, actor=principal.actor, breach_id=breach_id, staff_ids=body.staff_ids, api_key_ids=body.api_key_ids,
        vault=vault if body.rotate_keys else None))


@router.post("/privacy/breaches/{breach_id}/investigate")
def investigate_breach(breach_id: BreachId, body: Investigation, principal: BreachManager,
                       session: DbSession) -> InvestigationRead:
    """Search the audit log for who opened which people's records; those people become affected."""
    findings = breaches.investigate(session, actor=principal.actor, breach_id=breach_id, reader_id=body.reader_id,
                                    since=body.since, until=body.until)
    return InvestigationRead(entries=findings.entries, readers=findings.readers, subjects=findings.subjects)


@router.post("/privacy/breaches/{breach_id}/subjects")
def add_affected(breach_id: BreachId, body: AffectedSubjects, principal: BreachManager,
                 session: DbSession) -> dict[str, int]:
    return {"added": breaches.add_subjects(session, actor=principal.actor, breach_id=breach_id,
                                           subject_ids=body.subject_ids)}


@router.post("/privacy/breaches/{breach_id}/notify")
def notify_affected(breach_id: BreachId, principal: BreachManager, session: DbSession,
                    vault: AppVault, settings: AppSettings) -> dict[str, int]:
    """Tell every affected person not yet told, with the PIPL Art. 57 fields (idempotent)."""
    told = breaches.notify_affected(session, vault=vault, actor=principal.actor, breach_id=breach_id,
                                    locale=settings.locale, operator="TripGuard")
    return {"notified": told}


@router.post("/privacy/breaches/{breach_id}/authority-report")
def report_breach(breach_id: BreachId, body: AuthorityReport, principal: BreachManager,
                  session: DbSession) -> BreachRead:
    return BreachRead.model_validate(breaches.report_to_authority(session, actor=principal.actor,
                                                                  breach_id=breach_id, reference=body.reference))


@router.post("/privacy/breaches/{breach_id}/close")
def close_breach(breach_id: BreachId, principal: BreachManager, session: DbSession) -> BreachRead:
    return BreachRead.model_validate(breaches.close(session, actor=principal.actor, breach_id=breach_id))
