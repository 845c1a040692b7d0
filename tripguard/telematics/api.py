"""HTTP routes: event ingest from the operator's backend; alerts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tripguard.core.admission import Bulk
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.core.errors import DomainError, FieldProblem, InvalidInput, PermissionDenied
from tripguard.core.types import TIME_WINDOW, Identifier, Reason
from tripguard.privacy import access
from tripguard.security.auth import AlertsReader, CheckInReplier, TelematicsIngest, TrajectoryReader
from tripguard.security.permissions import Purpose, purposes_for
from tripguard.telematics import cases, service
from tripguard.telematics.deps import Bus, Feed, Ingest
from tripguard.telematics.detection import checkins
from tripguard.telematics.fleet import registry
from tripguard.telematics.ingest import batches
from tripguard.telematics.ingest.batches import IdempotencyInProgress
from tripguard.telematics.ingest.bus import EventBus
from tripguard.telematics.models import Device
from tripguard.telematics.schemas import (
    AlertRead,
    CheckInAnswer,
    CheckInRead,
    DeviceInstall,
    DeviceKpiRead,
    DeviceRead,
    IngestReport,
    RejectedLine,
    TripDetail,
    TripRead,
    VehicleRead,
    VehicleUpsert,
)
from tripguard.telematics.service import IngestOptions
from tripguard.telematics.store import trips
from tripguard.vault.deps import AppVault

router = APIRouter(prefix="/api/v1/telematics", tags=["telematics"])
MAX_BODY_BYTES = 16 * 1024 * 1024

_EVENT_SCHEMA = {"type": "object", "required": ["type", "ts"], "properties": {
    "type": {"type": "string", "enum": ["trip_started", "ping", "trip_ended", "device_heartbeat"]},
    "ts": {"type": "string", "format": "date-time", **TIME_WINDOW}}, "additionalProperties": True}


class PayloadTooLarge(DomainError):
    status, type, title = 413, "/problems/payload-too-large", "Payload too large"


def _lines(body: bytes, content_type: str) -> list[str]:
    if content_type.startswith("application/json"):
        try:
            items = json.loads(body)
            if not isinstance(items, list):
                raise InvalidInput(errors=[FieldProblem(field="body", message="a JSON array of events")])
            return [json.dumps(item) for item in items]
        except RecursionError as exc:
            raise InvalidInput(errors=[FieldProblem(field="body", message="JSON nested too deeply")]) from exc
        except ValueError as exc:
            raise InvalidInput(errors=[FieldProblem(field="body", message="not JSON")]) from exc
    try:
        return body.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InvalidInput(errors=[FieldProblem(field="body", message="not UTF-8")]) from exc


def _event_lines(body: bytes, content_type: str) -> list[str]:
    return [line for line in _lines(body, content_type) if line.strip()]


@router.post("/events", dependencies=[Bulk], openapi_extra={"requestBody": {"required": True, "content": {
    "application/x-ndjson": {"schema": {"type": "string", "maxLength": MAX_BODY_BYTES}},
    "application/json": {"schema": {"type": "array", "items": _EVENT_SCHEMA, "maxItems": service.MAX_EVENTS_PER_BATCH}},
}}})
async def ingest_events(request: Request, principal: TelematicsIngest, session: DbSession, bus: Bus,
                        ingest_options: Ingest,
                        idempotency_key: Annotated[str | None, Header(
                            alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$",
                            description="a retry with the same key gets the first answer back")] = None
                        ) -> IngestReport:
    """Trip events (DESIGN.md §4) as NDJSON or a JSON array, up to 10,000 a batch.

    Good lines are taken even when others are bad; each bad line is named with its number and why.
    `alerts` counts the alerts this batch raised when the monitor runs in the API process (the embedded
    default); scaled out (NATS), monitor workers raise them moments later and it is 0. While the event
    bus is unreachable the batch is refused with 503 and Retry-After: send it again.
    Re-sending a batch is safe: pings already seen are skipped and alerts are kept once. With an
    `Idempotency-Key` (kept a day), a retry is answered with the first report, unprocessed.
    """
    key = f"{principal.id}:{idempotency_key}" if idempotency_key else None
    if key is not None:
        done = await run_in_threadpool(_claim, session, key)
        if done is not None:
            return done
        try:
            return await _ingest(request, session, bus, ingest_options, key)
        except BaseException:
            await run_in_threadpool(_release, session, key)
            raise
    return await _ingest(request, session, bus, ingest_options, None)


def _claim(session: Session, key: str) -> IngestReport | None:
    """Take the key for this request, committed at once: a concurrent retry then sees it (409 while this
    one works, the first report after), instead of both processing and one failing at commit."""
    for _ in range(2):
        try:
            done = batches.claim_batch(session, key=key)
        except IdempotencyInProgress:
            session.rollback()
            raise
        if done is not None:
            return done
        try:
            session.commit()  # the claim is seen by a concurrent retry while this request still works
            return None
        except IntegrityError:
            session.rollback()  # another request claimed it between our read and our insert: look again
    raise IdempotencyInProgress("a request with this Idempotency-Key is being processed; retry shortly")


def _release(session: Session, key: str) -> None:
    """The request failed: free the key, so that a retry is processed (not answered 409 until stale)."""
    session.rollback()
    if batches.release_batch(session, key=key):
        session.commit()  # the request then fails and rolls back: the freed key must outlive that


async def _ingest(request: Request, session: Session, bus: EventBus, options: IngestOptions,
                  key: str | None) -> IngestReport:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"at most {MAX_BODY_BYTES // (1024 * 1024)} MiB a batch")
    # Off the event loop: a 16 MiB JSON array takes a while to read, and an SOS must not wait behind it.
    lines = await run_in_threadpool(_event_lines, body, request.headers.get("content-type", ""))
    if not lines:
        raise InvalidInput(errors=[FieldProblem(field="body", message="no events")])
    if len(lines) > service.MAX_EVENTS_PER_BATCH:
        raise InvalidInput(errors=[FieldProblem(field="body",
                                                message=f"at most {service.MAX_EVENTS_PER_BATCH} events a batch")])
    result = await bus.ingest(session, lines, options)
    if result.accepted == 0:
        raise InvalidInput("no line was a valid event",
                           errors=[FieldProblem(field=f"line {e.line}", message=e.reason)
                                   for e in result.rejected[:100]])
    report = IngestReport(accepted=result.accepted, alerts=len(result.alerts),
                          rejected=[RejectedLine(line=e.line, reason=e.reason) for e in result.rejected])
    if key is not None:
        batches.finish_batch(session, key=key, report=report)
    return report


@router.get("/alerts")
def list_alerts(_: AlertsReader, session: DbSession, trip_id: Identifier | None = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[AlertRead]:
    """Alerts as the monitor raised them, newest first."""
    return [AlertRead.model_validate(a) for a in service.recent_alerts(session, trip_id=trip_id, limit=limit)]


# ---- vehicles and devices ----------------------------------------------------------------------


def _device_read(device: Device) -> DeviceRead:
    return DeviceRead(id=device.id, vehicle_id=device.vehicle_id, installed_at=device.installed_at,
                      last_heartbeat_at=device.last_heartbeat_at, status=registry.status(device, utcnow()))


@router.put("/vehicles/{vehicle_id}")
def upsert_vehicle(vehicle_id: Annotated[Identifier, Path()], body: VehicleUpsert, principal: TelematicsIngest,
                   session: DbSession) -> VehicleRead:
    """Register or update a vehicle (idempotent)."""
    return VehicleRead.model_validate(registry.upsert_vehicle(
        session, actor=principal.actor, vehicle_id=vehicle_id, plate=body.plate, colour=body.colour, model=body.model))


@router.put("/devices/{device_id}")
def install_device(device_id: Annotated[Identifier, Path()], body: DeviceInstall, principal: TelematicsIngest,
                   session: DbSession) -> DeviceRead:
    """Record that a monitoring device is installed in a vehicle (idempotent)."""
    if service.vehicle(session, vehicle_id=body.vehicle_id) is None:
        raise InvalidInput(errors=[FieldProblem(field="vehicle_id", message="no such vehicle; register it first")])
    return _device_read(registry.install_device(session, actor=principal.actor, device_id=device_id,
                                                vehicle_id=body.vehicle_id, installed_at=body.installed_at))


@router.get("/devices")
def list_devices(_: AlertsReader, session: DbSession) -> list[DeviceRead]:
    """Every device with its status: online, offline, faulty (camera or storage), tampered, not installed."""
    return [_device_read(d) for d in registry.devices(session, limit=10_000)]


@router.get("/kpi/devices")
def device_kpi(_: AlertsReader, session: DbSession,
               hours: Annotated[int, Query(ge=1, le=24 * 92, description="the period, counted back from now")] = 24
               ) -> DeviceKpiRead:
    kpi = registry.device_kpi(session, since=utcnow() - timedelta(hours=hours))
    return DeviceKpiRead(since=kpi.since, vehicles=kpi.vehicles, vehicles_with_device=kpi.vehicles_with_device,
                         install_rate=kpi.install_rate, devices_installed=kpi.devices_installed,
                         devices_heard=kpi.devices_heard, operating_rate=kpi.operating_rate)


# ---- trips, trajectories, check-ins --------------------------------------------------------------


@router.get("/trips")
def list_trips(_: AlertsReader, session: DbSession,
               status: Annotated[Literal["active", "ended"] | None, Query()] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[TripRead]:
    """Trips, most recently active first (no positions here)."""
    return [TripRead.model_validate(t) for t in trips.latest(session, status=status, limit=limit)]


@router.get("/trips/{trip_id}")
def trip_detail(trip_id: Annotated[Identifier, Path()], _: AlertsReader, session: DbSession) -> TripDetail:
    """A trip with its vehicle, alerts and check-ins."""
    trip = trips.get_trip(session, trip_id=trip_id)
    vehicle = service.vehicle(session, vehicle_id=trip.vehicle_id)
    return TripDetail(trip=TripRead.model_validate(trip),
                      vehicle=VehicleRead.model_validate(vehicle) if vehicle else None,
                      alerts=[AlertRead.model_validate(a) for a in service.recent_alerts(session, trip_id=trip_id,
                                                                                        limit=500)],
                      check_ins=[CheckInRead.model_validate(c) for c in checkins.for_trip(session, trip_id=trip_id)])


@router.get("/trips/{trip_id}/trajectory", responses={200: {"content": {
    "application/geo+json": {}, "text/csv": {}}, "description": "GeoJSON FeatureCollection or CSV"}})
def trip_trajectory(trip_id: Annotated[Identifier, Path()], principal: TrajectoryReader,
                    session: DbSession, purpose: Annotated[Purpose, Query()],
                    reason: Annotated[Reason, Query(description="why you open it; kept in the audit log")],
                    vault: AppVault,
                    format: Annotated[Literal["geojson", "csv"], Query()] = "geojson",
                    incident_id: Annotated[Identifier | None, Query(
                        description="the open case this is for: the request goes on its timeline")] = None
                    ) -> Response:
    """Every kept position of the trip, as evidence. Names a purpose your role holds and a reason; audited.
    The handler of a live case about the trip (`incident_id`) opens it on the emergency purpose even when a
    person on it was erased."""
    if purpose not in purposes_for(principal.roles) or purpose not in (
            Purpose.EMERGENCY, Purpose.INVESTIGATION, Purpose.LEGAL_CLAIMS):
        raise PermissionDenied(f"your role may not open trajectories for {purpose.value}")
    case_id = None
    if incident_id is not None:
        case_id = cases.note_evidence(session, principal=principal, incident_id=incident_id, trip_id=trip_id,
                                      trajectory=trip_id, format=format, purpose=purpose.value)
    access.check_clearance(session, principal=principal)
    evidence = trips.open_evidence(session, vault=vault, actor=principal.actor, trip_id=trip_id,
                                   purpose=purpose, reason=reason, case_id=case_id)
    disposition = {"Content-Disposition": f'attachment; filename="trip-{trip_id}.{format}"'}
    if format == "csv":
        return Response(evidence.track.to_csv(), media_type="text/csv", headers=disposition)
    return Response(json.dumps(evidence.geojson()), media_type="application/geo+json", headers=disposition)


@router.post("/check-ins/{check_in_id}/answer")
def answer_check_in(check_in_id: Annotated[Identifier, Path()], body: CheckInAnswer,
                    principal: CheckInReplier, session: DbSession, settings: AppSettings, feed: Feed
                    ) -> CheckInRead:
    """The passenger's or driver's own answer to "are you OK?" (the same answer twice is harmless)."""
    check_in = checkins.answer(session, actor=principal.actor, subject_id=principal.id, check_in_id=check_in_id,
                               reply=body.answer, webhook_url=settings.webhook_url)
    if check_in.status == "help":
        feed.publish({"type": "check_in", **checkins.as_payload(check_in)})
        case = cases.open_for_help(session, check_in=check_in, ack_seconds=settings.incident_ack_seconds)
        if case is not None:
            feed.publish(case)
    return CheckInRead.model_validate(check_in)


@router.get("/check-ins")
def list_check_ins(_: AlertsReader, session: DbSession) -> list[CheckInRead]:
    """Check-ins that need a safety agent: help asked for, or no answer in time."""
    return [CheckInRead.model_validate(c) for c in checkins.needing_attention(session)]
