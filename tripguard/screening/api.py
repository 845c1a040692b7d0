"""HTTP routes of screening: the operator's backend (applicants, leavers, shift-start selfies, the
dispatch gate), the agency's callbacks, the applicant's own view and dispute, the officer's queue."""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tripguard.audit import service as audit
from tripguard.core import pictures
from tripguard.core.admission import Bulk
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings, fast_reader_of, read_cache_of
from tripguard.core.errors import FieldProblem, InvalidInput, NotFound, PermissionDenied
from tripguard.core.identifiers import ID_PATTERN
from tripguard.core.types import Identifier
from tripguard.screening import adjudication, agency, consents, gate, invitations, service, workers
from tripguard.screening.deps import Agency, AppFaceMatcher, ScreeningRules, ScreeningWake
from tripguard.screening.models import Applicant
from tripguard.screening.providers import SIGNATURE_HEADER, decode_picture
from tripguard.screening.schemas import (
    ApplicantCreate,
    ApplicantDetail,
    ApplicantRead,
    CallbackReceipt,
    CheckRead,
    Decide,
    DisputeCreate,
    DisputeRead,
    EligibilityRead,
    IdentityCheckCreate,
    IdentityCheckRead,
    InvitationCreate,
    InvitationRead,
    MyScreening,
)
from tripguard.security.auth import (
    ApplicantSelf,
    EligibilityReader,
    Public,
    ScreeningOfficer,
    ScreeningSubmitter,
)
from tripguard.security.principal import Principal
from tripguard.vault.deps import AppVault

router = APIRouter(prefix="/api/v1", tags=["screening"])
WorkerId = Annotated[Identifier, Path(description="the operator's id for the driver or courier")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128,
                                              pattern=r"^[\x21-\x7e]+$")]


def _picture(value: str, field: str) -> bytes:
    try:
        return decode_picture(value)
    except ValueError as exc:
        raise InvalidInput(errors=[FieldProblem(field=field, message="not base64")]) from exc


@router.put("/applicants/{worker_id}", status_code=201,
            responses={200: {"model": ApplicantRead, "description": "already an applicant: nothing changed"}})
def apply(worker_id: WorkerId, body: ApplicantCreate, principal: ScreeningSubmitter,
          response: Response, session: DbSession, vault: AppVault, screening_agency: Agency,
          settings: AppSettings, screening_wake: ScreeningWake) -> ApplicantRead:
    """A driver or courier who consented to screening (the notice version they saw). The ID number is
    read before anything is stored; the checks are then asked of the screening agency. PUT again: the
    same applicant, unchanged. Someone who left may apply again and is screened afresh."""
    if body.selfie is not None:
        pictures.decode(body.selfie, field="selfie")
    applicant, new = service.apply(
        session, vault=vault, actor=principal.actor, applicant_id=worker_id,
        application=service.Application(role=body.role, name=body.name, id_number=body.id_number.strip().upper(),
                                        notice_version=body.notice_version, phone=body.phone, city=body.city,
                                        locale=body.locale, selfie=body.selfie,
                                        consents=tuple(kind.value for kind in body.consents)),
        agency=screening_agency.name, policy_dir=settings.screening_policy_dir)
    if not new:
        response.status_code = 200
    screening_wake.set()
    return ApplicantRead.model_validate(applicant)


@router.post("/invitations", status_code=201)
def invite(body: InvitationCreate, principal: ScreeningSubmitter, session: DbSession,
           settings: AppSettings) -> InvitationRead:
    """A link for a person to apply and consent themselves (the notice shown in their language). Each call
    makes a new link; a link works once, for 72 hours."""
    if body.city is not None:
        service.check_city(body.city, settings.screening_policy_dir)
    issued = invitations.invite(session, secret_key=settings.secret_key.get_secret_value(), actor=principal.actor,
                                worker_id=body.worker_id, role=body.role, city=body.city, locale=body.locale,
                                notice_version=body.notice_version)
    return InvitationRead(worker_id=body.worker_id, url=f"{settings.base_url.rstrip('/')}/apply/{issued.token}",
                          expires_at=issued.invitation.expires_at)


@router.get("/applicants/{worker_id}")
def read_applicant(worker_id: WorkerId, _: ScreeningSubmitter, session: DbSession) -> ApplicantDetail:
    """Where the screening stands, check by check (what they found is not shown here)."""
    applicant = service.get(session, applicant_id=worker_id)
    checks = [CheckRead.model_validate(c) for c in service.checks_of(session, applicant_id=worker_id)]
    return ApplicantDetail(**ApplicantRead.model_validate(applicant).model_dump(), checks=checks,
                           consents=consents.given(session, applicant_id=worker_id,
                                                   notice_version=applicant.notice_version))


@router.post("/applicants/{worker_id}/offboard")
def offboard(worker_id: WorkerId, principal: ScreeningSubmitter, session: DbSession,
             screening_wake: ScreeningWake, rules: ScreeningRules) -> ApplicantRead:
    """The worker left: out of dispatch at once, and un-enrolled from the agency's monitoring."""
    applicant = adjudication.offboard(session, actor=principal.actor, applicant_id=worker_id, rules=rules)
    screening_wake.set()
    return ApplicantRead.model_validate(applicant)


# The dispatch gate has its own router, matched before every other (asked before each dispatch).
eligibility_router = APIRouter(prefix="/api/v1", tags=["screening"])


@eligibility_router.get("/workers/{worker_id}/eligibility", response_model=EligibilityRead)
async def eligibility(worker_id: WorkerId, _: EligibilityReader, request: Request,
                      vehicle_id: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)] = None,
                      ) -> Response:
    """May this worker be dispatched now? A driver names the vehicle they are about to drive, whose
    monitoring device must be working. Every blocker is listed, not only the first: screening,
    training, the confidentiality agreement, discipline, the vehicle. Read on the event loop
    (`core.fastread`): it is asked before every dispatch."""
    # The reader is taken from the app, not as a dependency: this route solves one dependency only (the key).
    result = await gate.cached_eligibility(fast_reader_of(request.app), cache=read_cache_of(request.app),
                                           worker_id=worker_id, vehicle_id=vehicle_id)
    body = {"worker_id": result.worker_id, "eligible": result.eligible, "blockers": gate.blockers_json(result)}
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


@router.post("/workers/{worker_id}/identity-checks", status_code=201)
def identity_check(worker_id: WorkerId, body: IdentityCheckCreate, principal: ScreeningSubmitter,
                   session: DbSession, vault: AppVault, face_matcher: AppFaceMatcher,
                   settings: AppSettings, rules: ScreeningRules,
                   idempotency_key: IdempotencyKey = None) -> IdentityCheckRead:
    """The selfie a driver takes before going online, matched to the photo taken at screening. A
    mismatch blocks dispatch and opens a case for the safety centre. The selfie is not kept."""
    check = workers.check_identity(session, vault=vault, matcher=face_matcher, rules=rules,
                                   actor=principal.actor, worker_id=worker_id,
                                   selfie=pictures.decode(body.selfie, field="selfie").data,
                                   idempotency_key=idempotency_key,
                                   ack_seconds=settings.incident_ack_seconds)
    return IdentityCheckRead.model_validate(check)


@router.post("/screening/callbacks", dependencies=[Public],
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object"}}}}})
async def agency_callback(request: Request, session: DbSession, settings: AppSettings,
                          vault: AppVault, screening_agency: Agency, rules: ScreeningRules,
                          signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER, max_length=1000)] = None
                          ) -> CallbackReceipt:
    """The screening agency's events, signed (`X-Screening-Signature: t=…,v1=…`, HMAC-SHA256 over
    `t.body`, 5 minutes' tolerance). `check.completed` answers a check of a report; `record.found`
    tells of a new record of a worker it monitors. An event delivered twice is taken once."""
    raw = await request.body()
    secret = settings.screening_callback_secret
    received = await run_in_threadpool(
        agency.take_callback, session, vault=vault, rules=rules,
        secret=secret.get_secret_value() if secret else None, agency=screening_agency.name,
        raw=raw, signature=signature, now=int(time.time()))
    return CallbackReceipt(received=received)  # type: ignore[arg-type]


# --- the applicant's own ----------------------------------------------------------------------------

def _own(session: DbSession, principal: Principal) -> Applicant:
    applicant = service.find(session, applicant_id=principal.id)
    if applicant is None:
        raise NotFound("you have not applied")
    if applicant.role not in {role.value for role in principal.roles}:
        raise PermissionDenied("you have no screening under this role")
    return applicant


@router.get("/me/screening")
def my_screening(principal: ApplicantSelf, session: DbSession, vault: AppVault) -> MyScreening:
    """Your screening: its status, and the reasons of a decision against you with the dispute deadline."""
    applicant = _own(session, principal)
    reasons = service.reasons_of(session, vault=vault, applicant=applicant) \
        if applicant.status in ("pre_adverse", "suspended", "disputed", "rejected") else []
    audit.record(session, actor=principal.actor, action="personal.read", target_type="screening_applicants",
                 target_id=applicant.id, purpose="subject_request", details={"fields": "reasons"})
    return MyScreening(**ApplicantRead.model_validate(applicant).model_dump(), reasons=reasons)


@router.post("/me/screening/disputes", dependencies=[Bulk], status_code=201,
             responses={200: {"model": DisputeRead, "description": "the same dispute again (a retry)"}})
def file_dispute(body: DisputeCreate, principal: ApplicantSelf, response: Response,
                 session: DbSession, vault: AppVault, rules: ScreeningRules,
                 idempotency_key: IdempotencyKey = None) -> DisputeRead:
    """Dispute the notice within its window (7 days by default), with up to 5 documents (PDF, JPEG, PNG,
    2 MiB each). A screening officer then decides."""
    applicant = _own(session, principal)
    documents = []
    for index, upload in enumerate(body.documents):
        data = _picture(upload.data, f"documents.{index}.data")
        if len(data) > adjudication.MAX_DOCUMENT_BYTES:
            raise InvalidInput(errors=[FieldProblem(field=f"documents.{index}.data", message="larger than 2 MiB")])
        documents.append(adjudication.Document(upload.content_type, data))
    record, new = adjudication.dispute(session, vault=vault, rules=rules, applicant_id=applicant.id,
                                       text=body.text, documents=documents, idempotency_key=idempotency_key)
    if not new:
        response.status_code = 200
    return DisputeRead.model_validate(record)


# --- the screening officer's ------------------------------------------------------------------------

@router.get("/screening/queue")
def review_queue(_: ScreeningOfficer, session: DbSession,
                 status: Annotated[str | None, Query(pattern=r"^(review|disputed|pre_adverse|suspended|active)$")]
                 = None) -> list[ApplicantRead]:
    """Cases for a screening officer, oldest first (no personal data)."""
    return [ApplicantRead.model_validate(a) for a in adjudication.queue(session, status=status)]


@router.post("/applicants/{worker_id}/take")
def take(worker_id: WorkerId, officer: ScreeningOfficer, session: DbSession) -> ApplicantRead:
    return ApplicantRead.model_validate(adjudication.take(session, officer=officer, applicant_id=worker_id))


@router.post("/applicants/{worker_id}/decision")
def decide(worker_id: WorkerId, body: Decide, officer: ScreeningOfficer, session: DbSession,
           vault: AppVault, rules: ScreeningRules) -> ApplicantRead:
    """clear (the worker is active), pre_adverse (the notice goes out with its dispute window), or reject
    (the final decision: after a dispute, or once the window has passed)."""
    applicant = adjudication.decide(session, vault=vault, rules=rules, officer=officer,
                                    applicant_id=worker_id, action=body.action, note=body.note)
    return ApplicantRead.model_validate(applicant)
