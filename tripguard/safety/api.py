"""HTTP: the emergency button, the safety centre's incidents, a person's emergency contacts."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tripguard.audit import service as audit
from tripguard.core.admission import Bulk, Emergency
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings, SecretKey
from tripguard.core.errors import FieldProblem, InvalidInput, TooManyRequests
from tripguard.core.i18n import N_, negotiate_locale, translations_for
from tripguard.core.settings import Settings
from tripguard.core.types import Identifier, Reason
from tripguard.privacy import access
from tripguard.privacy.schemas import RequestRead
from tripguard.safety import contact_rights, contacts, kpi, recordings, service, shares, sos
from tripguard.safety.deps import AppSosIntake, ContactRequestLimiter
from tripguard.safety.schemas import (
    ContactCreate,
    ContactRead,
    ContactRequestAccepted,
    ContactRequestCreate,
    ContactRequestDone,
    ContactRequestVerify,
    ContactUpdate,
    ContactVerify,
    IncidentAction,
    IncidentDetail,
    IncidentEventRead,
    IncidentRead,
    RecordingCreate,
    RecordingRead,
    SafetyUseRead,
    ShareCreated,
    SosCreate,
    SosReceipt,
)
from tripguard.security.auth import (
    ContactsOwner,
    IncidentHandler,
    Public,
    RecordingOpener,
    SosCaller,
    TelematicsIngest,
    TripSharer,
)
from tripguard.security.permissions import Purpose
from tripguard.security.rate_limit import SlidingWindowLimiter, client_address
from tripguard.telematics.deps import Feed
from tripguard.vault.deps import AppVault
from tripguard.vault.service import Vault

router = APIRouter(prefix="/api/v1", tags=["safety"])
IncidentId = Annotated[Identifier, Path()]


@router.post("/sos", dependencies=[Emergency], status_code=201,
             responses={200: {"model": SosReceipt, "description": "the same press again"}})
async def press_sos(body: SosCreate, caller: SosCaller, response: Response,
                    sos_intake: AppSosIntake,
                    idempotency_key: Annotated[str | None, Header(
                        alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")] = None
                    ) -> SosReceipt:
    """One-tap emergency help. A retry (same Idempotency-Key) or a second press within a minute is the
    same incident (200); a new one is 201. Contacts, the emergency gateway and the agents are told at once."""
    raised = await sos_intake.submit(sos.Press(
        caller=caller, trip_id=body.trip_id, order_id=body.order_id, silent=body.silent, lon=body.lon, lat=body.lat,
        idempotency_key=idempotency_key))
    if not raised.new:
        response.status_code = 200
    incident = raised.incident
    return SosReceipt(incident_id=incident.id, status=incident.status, created_at=incident.created_at, new=raised.new)


@router.get("/incidents")
def list_incidents(_: IncidentHandler, session: DbSession,
                   status: Annotated[str | None, Query(pattern=r"^(open|acknowledged|in_progress|resolved|closed)$")]
                   = None) -> list[IncidentRead]:
    """The queue, newest first: every case not closed, or those in one state."""
    return [IncidentRead.model_validate(i) for i in service.queue(session, status=status)]


@router.get("/incidents/{incident_id}")
def incident_detail(incident_id: IncidentId, principal: IncidentHandler, session: DbSession,
                    vault: AppVault) -> IncidentDetail:
    """A case with its timeline; where the caller was is read for the emergency purpose (audited)."""
    incident = service.get(session, incident_id=incident_id)
    position = access.read_fields(vault, session, principal, incident, ["position"],
                                  purpose=Purpose.EMERGENCY)["position"].value if incident.position else None
    return IncidentDetail(incident=IncidentRead.model_validate(incident), position=position,
                          position_at=incident.position_at,
                          timeline=[IncidentEventRead.model_validate(e) for e in service.timeline(
                              session, vault=vault, principal=principal, incident_id=incident_id)])


@router.post("/incidents/{incident_id}/actions")
def incident_action(incident_id: IncidentId, body: IncidentAction, principal: IncidentHandler,
                    session: DbSession, vault: AppVault, feed: Feed) -> IncidentRead:
    """Acknowledge, start, resolve (with an outcome: genuine, false alarm, mistaken, malicious), close, or note."""
    incident = service.act(session, vault=vault, actor=principal, incident_id=incident_id,
                           action=body.action,
                           outcome=body.outcome, note=body.note, assignee=body.assignee)
    feed.publish(service.feed_item(incident))
    return IncidentRead.model_validate(incident)


@router.get("/me/contacts")
def my_contacts(owner: ContactsOwner, session: DbSession, vault: AppVault) -> list[ContactRead]:
    """Your emergency contacts, masked."""
    return [ContactRead(id=c.id, name=v["name"], phone=v["phone"], verified=c.verified_at is not None,
                        auto_share=c.auto_share)
            for c, v in contacts.listing(session, vault=vault, owner=owner)]


@router.post("/me/contacts", status_code=201)
def add_contact(body: ContactCreate, owner: ContactsOwner, session: DbSession, vault: AppVault,
                secret: SecretKey) -> ContactRead:
    """Name an emergency contact (at most five); a code goes to their phone to confirm."""
    contact = contacts.add(session, vault=vault, secret_key=secret, owner=owner, name=body.name,
                           phone=body.phone, auto_share=body.auto_share)
    return ContactRead(id=contact.id, name=None, phone=None, verified=False, auto_share=contact.auto_share)


@router.patch("/me/contacts/{contact_id}")
def update_contact(contact_id: Annotated[Identifier, Path()], body: ContactUpdate, owner: ContactsOwner,
                   session: DbSession) -> ContactRead:
    """Choose when this contact gets a live link as your trip starts."""
    contact = contacts.set_auto_share(session, owner=owner, contact_id=contact_id, auto_share=body.auto_share)
    return ContactRead(id=contact.id, name=None, phone=None, verified=contact.verified_at is not None,
                       auto_share=contact.auto_share)


@router.post("/me/contacts/{contact_id}/verify")
def verify_contact(contact_id: Annotated[Identifier, Path()], body: ContactVerify,
                   owner: ContactsOwner, session: DbSession, secret: SecretKey) -> ContactRead:
    contact = contacts.verify(session, secret_key=secret, owner=owner, contact_id=contact_id, code=body.code)
    return ContactRead(id=contact.id, name=None, phone=None, verified=True, auto_share=contact.auto_share)


@router.delete("/me/contacts/{contact_id}", status_code=204)
def remove_contact(contact_id: Annotated[Identifier, Path()], owner: ContactsOwner, session: DbSession) -> Response:
    contacts.remove(session, owner=owner, contact_id=contact_id)
    return Response(status_code=204)


# ---- an emergency contact's own requests (they have no app account) ---------------------------------

CONTACT_CODE_SENT = N_("If this number is someone's emergency contact, a code has been sent to it by SMS. "
                       "Give it with the same number to get your data or have it erased.")


def _limit_contact_requests(request: Request, limiter: SlidingWindowLimiter, vault: Vault,
                            settings: Settings, phone: str) -> None:
    """At most `contact_request_rate_per_hour` asks and tries an hour from one address, and for one number
    (counted by its blind index, never the number), whether or not the number is anyone's contact."""
    number = contact_rights.phone_index(vault, phone)
    address = client_address(request, settings.trusted_proxies)
    waits = [wait for wait in (limiter.hit(f"address:{address}"), limiter.hit(f"number:{number}")) if wait]
    if waits:
        raise TooManyRequests("too many requests; try again later", retry_after=max(waits))


async def _contact_locale(request: Request, settings: AppSettings) -> str:
    return negotiate_locale(cookie=None, accept_language=request.headers.get("accept-language"),
                            default=settings.locale)


ContactLocale = Annotated[str, Depends(_contact_locale)]


@router.post("/contact-requests", dependencies=[Public], status_code=202)
def ask_as_contact(body: ContactRequestCreate, request: Request, session: DbSession,
                   vault: AppVault, secret: SecretKey, locale: ContactLocale,
                   contact_limiter: ContactRequestLimiter, settings: AppSettings
                   ) -> ContactRequestAccepted:
    """Someone named as an emergency contact asks for their data or its erasure, with the phone they were
    named with. If the number is a contact's, a code goes to it by SMS; the answer is the same either way."""
    _limit_contact_requests(request, contact_limiter, vault, settings, body.phone)
    contact_rights.ask(session, vault=vault, secret_key=secret, phone=body.phone, kind=body.kind,
                       locale=locale)
    return ContactRequestAccepted(detail=translations_for(locale).gettext(CONTACT_CODE_SENT))


@router.post("/contact-requests/verify", dependencies=[Public])
def verify_as_contact(body: ContactRequestVerify, request: Request, session: DbSession,
                      vault: AppVault, secret: SecretKey, contact_limiter: ContactRequestLimiter,
                      settings: AppSettings) -> ContactRequestDone:
    """The code the phone received: an access request is answered with your data at once, an erasure is
    carried out at once. A wrong code, an unknown number or no request waiting is the same 422."""
    _limit_contact_requests(request, contact_limiter, vault, settings, body.phone)
    verified, export = contact_rights.confirm(session, vault=vault, secret_key=secret, phone=body.phone,
                                              kind=body.kind, code=body.code)  # a failed try is committed by the check
    return ContactRequestDone(request=RequestRead.model_validate(verified), export=export)


@router.post("/trips/{trip_id}/shares", status_code=201)
def share_trip(trip_id: Annotated[Identifier, Path()], sharer: TripSharer, session: DbSession,
               settings: AppSettings, secret: SecretKey) -> ShareCreated:
    """A link for family to follow your trip live (shown once; dead 24 h after arrival or when revoked)."""
    trip = shares.own_trip(session, subject_id=sharer.id, trip_id=trip_id)
    share, token = shares.create(session, secret_key=secret, trip=trip, created_by=f"subject:{sharer.id}")
    audit.record(session, actor=sharer.actor, action="share.create", target_type="share", target_id=share.id)
    return ShareCreated(id=share.id, url=f"{settings.base_url}/s/{token}",
                        expires_at=shares.live_until(trip))


@router.delete("/trips/{trip_id}/shares/{share_id}", status_code=204)
def revoke_share(trip_id: Annotated[Identifier, Path()], share_id: Annotated[Identifier, Path()],
                 sharer: TripSharer, session: DbSession) -> Response:
    """Withdraw a link at once."""
    shares.revoke(session, actor=sharer.actor, subject_id=sharer.id, trip_id=trip_id, share_id=share_id)
    return Response(status_code=204)


@router.get("/kpi/safety-use")
def safety_use_kpi(_: IncidentHandler, session: DbSession,
                   days: Annotated[int, Query(ge=1, le=366, description="the period, counted back from now")] = 92,
                   ) -> SafetyUseRead:
    """Trips that used a safety feature (shared, a verified contact, SOS, a check-in answered), over the period."""
    return SafetyUseRead.model_validate(kpi.safety_use(session, since=utcnow() - timedelta(days=days)))


# ---- in-car recordings -----------------------------------------------------------------------------
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


@router.post("/recordings", status_code=201)
def register_recording(body: RecordingCreate, device: TelematicsIngest, session: DbSession,
                       settings: AppSettings) -> RecordingRead:
    """Announce an in-car segment before uploading it (the same segment again finds the first)."""
    return RecordingRead.model_validate(recordings.register(
        session, actor=device.actor, trip_id=body.trip_id, device_id=body.device_id, kind=body.kind,
        content_type=body.content_type, started_at=body.started_at, duration_s=body.duration_s, size=body.size,
        sha256=body.sha256, keep_days=settings.retention_recording_days,
        complaint_keep_days=settings.retention_recording_complaint_days))


@router.get("/recordings/{recording_id}")
def recording_status(recording_id: Annotated[Identifier, Path()], _: TelematicsIngest,
                     session: DbSession) -> RecordingRead:
    """How much has arrived: resume the upload from `received`."""
    return RecordingRead.model_validate(recordings.get(session, recording_id=recording_id))


@router.put("/recordings/{recording_id}/content", dependencies=[Bulk], openapi_extra={"requestBody": {
    "required": True, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary", "maxLength": recordings.MAX_CHUNK}}}}})
async def upload_recording(recording_id: Annotated[Identifier, Path()], _: TelematicsIngest,
                           request: Request, session: DbSession,
                           content_range: Annotated[str, Header(
                               alias="Content-Range", pattern=r"^bytes \d{1,9}-\d{1,9}/\d{1,9}$",
                               description="bytes START-END/TOTAL, END inclusive")],
                           vault: AppVault) -> RecordingRead:
    """One piece of the segment (at most 4 MiB). Sending a piece again is harmless; a gap is 409."""
    match = _RANGE.match(content_range)
    assert match is not None  # the header pattern checked it
    start, end, total = (int(g) for g in match.groups())
    data = await request.body()
    if end < start or end - start + 1 != len(data):
        raise InvalidInput(errors=[FieldProblem(field="Content-Range", message="does not match the body's length")])
    recording = recordings.get(session, recording_id=recording_id)
    if total != recording.size:
        raise InvalidInput(errors=[FieldProblem(field="Content-Range", message="total is not the declared size")])
    return RecordingRead.model_validate(await run_in_threadpool(
        recordings.append, session, vault=vault, recording_id=recording_id, start=start, data=data))


@router.get("/recordings/{recording_id}/content", dependencies=[Bulk],
            responses={200: {"content": {"application/octet-stream": {}}}})
def play_recording(recording_id: Annotated[Identifier, Path()], investigator: RecordingOpener,
                   session: DbSession,
                   incident_id: Annotated[Identifier, Query(description="the open case")],
                   reason: Annotated[Reason, Query()], vault: AppVault) -> Response:
    """The recording, decrypted, for an investigator working an open case about its trip; audited."""
    access.check_clearance(session, principal=investigator)
    recording = recordings.open_for_case(session, vault=vault, actor=investigator.actor,
                                         recording_id=recording_id,
                                         incident_id=incident_id, reason=reason)
    body = b"".join(recordings.content(session, vault=vault, recording=recording))
    return Response(body, media_type=recording.content_type, headers={"Cache-Control": "no-store"})
