"""The safety agents' live map (active trips, routes, last positions, alerts as they arrive over SSE)
and the trip pages (a trip's vehicle, driver, alerts and check-ins; its trajectory on request)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, cast

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tripguard.audit import service as audit
from tripguard.console.labels import trip_state
from tripguard.console.lists import (
    Column,
    Filter,
    ListSpec,
    csv_response,
    fetch,
    read_query,
)
from tripguard.console.shell import page
from tripguard.console.streams import stream_response
from tripguard.core.admission import BulkWhenDownloaded
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import Sessions
from tripguard.core.errors import PermissionDenied
from tripguard.core.fanout import Item
from tripguard.core.i18n import N_
from tripguard.core.types import Identifier
from tripguard.privacy import access
from tripguard.privacy.service import on_record
from tripguard.security.auth import AlertsReader, LiveMapReader
from tripguard.security.permissions import Permission, Purpose, purposes_for
from tripguard.security.principal import Principal
from tripguard.telematics import service
from tripguard.telematics.deps import Feed
from tripguard.telematics.detection import checkins, onscreen
from tripguard.telematics.detection.feed import LiveFeed
from tripguard.telematics.fleet import registry
from tripguard.telematics.models import CheckIn, Device, Trip
from tripguard.telematics.store import trips
from tripguard.vault.deps import AppVault

router = APIRouter(prefix="/console/live", include_in_schema=False)
trips_router = APIRouter(prefix="/console/trips", include_in_schema=False)
devices_router = APIRouter(prefix="/console/devices", include_in_schema=False)
check_ins_router = APIRouter(prefix="/console/check-ins", include_in_schema=False)


TRIPS = ListSpec(
    name="trips", model=Trip, default_sort="updated", tiebreak=Trip.id,
    columns=[Column("trip", N_("Trip"), Trip.id), Column("state", N_("State"), Trip.status),
             Column("vehicle", N_("Vehicle"), Trip.vehicle_id), Column("started", N_("Started"), Trip.started_at),
             Column("ended", N_("Ended"), Trip.ended_at), Column("points", N_("Positions"), Trip.points),
             Column("updated", N_("Updated"), Trip.updated_at)],
    filters=[Filter("state", N_("State"), [("", N_("All")), ("active", N_("under way")), ("ended", N_("trip ended"))],
                    lambda statement, value: statement.where(Trip.status == value))],
    search=[Trip.id, Trip.vehicle_id])


@trips_router.get("", dependencies=[BulkWhenDownloaded])
def trips_page(request: Request, principal: AlertsReader, session: DbSession) -> Response:
    query = read_query(request, TRIPS)
    if query.export:
        return csv_response(request, session, principal, TRIPS, query,
                            header=[N_("Trip"), N_("State"), N_("Vehicle"), N_("Started"), N_("Ended"),
                                    N_("Positions")],
                            row=lambda t, cells: [t.id, trip_state(t.status), t.vehicle_id, t.started_at, t.ended_at,
                                                  t.points])
    return page(request, "telematics/trips.html", principal, "/console/trips",
                list=fetch(session, spec=TRIPS, query=query))



def _device_list(now: datetime) -> ListSpec:
    state = registry.status_sql(now)
    return ListSpec(
        name="devices", model=Device, default_sort="heartbeat", tiebreak=Device.id,
        columns=[Column("device", N_("Device"), Device.id), Column("vehicle", N_("Vehicle"), Device.vehicle_id),
                 Column("state", N_("State"), state), Column("installed", N_("Installed"), Device.installed_at),
                 Column("heartbeat", N_("Last heartbeat"), Device.last_heartbeat_at)],
        filters=[Filter("state", N_("State"), [("", N_("All")), *((s, s) for s in registry.DEVICE_STATES)],
                        lambda statement, value: statement.where(state == value))],
        search=[Device.id, Device.vehicle_id])


@devices_router.get("", dependencies=[BulkWhenDownloaded])
def devices_page(request: Request, principal: AlertsReader, session: DbSession) -> Response:
    """Every monitoring device: installed, reporting, camera and storage working, tamper alarms."""
    now = utcnow()
    spec = _device_list(now)
    query = read_query(request, spec)
    if query.export:
        return csv_response(request, session, principal, spec, query,
                            header=[N_("Device"), N_("Vehicle"), N_("State"), N_("Installed"), N_("Last heartbeat"),
                                    N_("Camera works"), N_("Storage works"), N_("Tampering")],
                            row=lambda d, cells: [d.id, d.vehicle_id, cells.word(registry.status(d, now)),
                                                  d.installed_at, d.last_heartbeat_at, d.camera_ok, d.storage_ok,
                                                  d.tamper_reason])
    listing = fetch(session, spec=spec, query=query)
    return page(request, "telematics/devices.html", principal, "/console/devices", list=listing,
                states={d.id: registry.status(d, now) for d in listing.rows},
                kpi=registry.device_kpi(session, since=now - timedelta(days=1)))


CHECK_INS = ListSpec(
    name="check-ins", model=CheckIn, default_sort="sent", tiebreak=CheckIn.id,
    columns=[Column("sent", N_("Sent"), CheckIn.sent_at), Column("trip", N_("Trip"), CheckIn.trip_id),
             Column("role", N_("Role"), CheckIn.role), Column("state", N_("State"), CheckIn.status),
             Column("due", N_("answer by"), CheckIn.answer_by),
             Column("answered", N_("answered"), CheckIn.answered_at)],
    filters=[Filter("state", N_("State"), [("", N_("All")), ("pending", N_("pending")), ("ok", N_("ok")),
                                           ("help", N_("help")), ("unanswered", N_("unanswered"))],
                    lambda statement, value: statement.where(CheckIn.status == value))],
    search=[CheckIn.trip_id, CheckIn.alert_id])


@check_ins_router.get("", dependencies=[BulkWhenDownloaded])
def check_ins_page(request: Request, principal: AlertsReader, session: DbSession) -> Response:
    """"Are you OK?" after an alert: who was asked, what they answered, who did not."""
    query = read_query(request, CHECK_INS)
    if query.export:
        return csv_response(request, session, principal, CHECK_INS, query,
                            header=[N_("Check-in"), N_("Trip"), N_("Role"), N_("State"), N_("Sent"), N_("answer by"),
                                    N_("answered")],
                            row=lambda c, cells: [c.id, c.trip_id, cells.word(c.role), cells.word(c.status), c.sent_at,
                                                  c.answer_by, c.answered_at])
    return page(request, "telematics/check_ins.html", principal, "/console/check-ins",
                list=fetch(session, spec=CHECK_INS, query=query))


@trips_router.get("/{trip_id}")
def trip_page(request: Request, trip_id: Annotated[Identifier, Path()], principal: AlertsReader,
              session: DbSession, vault: AppVault) -> HTMLResponse:
    """What an agent needs to act on a trip; the driver's name is read through the vault (audited)."""
    trip = trips.get_trip(session, trip_id=trip_id)
    vehicle = service.vehicle(session, vehicle_id=trip.vehicle_id)
    devices = registry.devices_in(session, vehicle_id=vehicle.id) if vehicle else []
    driver_name = None
    driver = on_record(session, subject_id=trip.driver_id)
    if driver is not None and principal.can(Permission.PERSONAL_READ):
        driver_name = access.read_fields(vault, session, principal, driver, ["name"],
                                         purpose=Purpose.EMERGENCY)["name"].value
    evidence_purposes = [p.value for p in (Purpose.EMERGENCY, Purpose.INVESTIGATION)
                         if p in purposes_for(principal.roles)] if principal.can(Permission.TRAJECTORY_READ) else []
    now = utcnow()
    return page(request, "telematics/trip.html", principal, "/console/trips", trip=trip, vehicle=vehicle,
                devices=[(d, registry.status(d, now)) for d in devices], driver_name=driver_name,
                alerts=service.recent_alerts(session, trip_id=trip_id, limit=500),
                check_ins=checkins.for_trip(session, trip_id=trip_id), evidence_purposes=evidence_purposes)


def _may_open_live_view(session: Session, principal: Principal) -> None:
    """Every position of every active trip is personal data: only for the emergency purpose."""
    if Purpose.EMERGENCY not in purposes_for(principal.roles):
        raise PermissionDenied("the live map is for roles that answer emergencies")
    access.check_clearance(session, principal=principal)


def _opened_live_view(session: Session, principal: Principal, view: str, trip_ids: list[str]) -> None:
    """Audited with the trips on screen, so that a breach investigation of the viewer finds their people."""
    audit.record(session, actor=principal.actor, action="live_map.open", target_type="live_map", target_id=view,
                 purpose=Purpose.EMERGENCY.value, details=onscreen.shown_details(trip_ids))


@router.get("")
def live_page(request: Request, principal: LiveMapReader) -> HTMLResponse:
    return page(request, "telematics/live.html", principal, "/console/live")


@router.get("/snapshot")
def snapshot(principal: LiveMapReader, session: DbSession, feed: Feed) -> JSONResponse:
    _may_open_live_view(session, principal)
    state = feed.snapshot()
    trips = cast("list[Item]", state["trips"])  # the feed's snapshot: its trips' items
    _opened_live_view(session, principal, "snapshot", [str(t["trip_id"]) for t in trips])
    return JSONResponse(state)


def _open_stream(session: Session, principal: Principal, feed: LiveFeed) -> list[str]:
    _may_open_live_view(session, principal)
    on_map = feed.trip_ids()
    _opened_live_view(session, principal, "stream", on_map)  # committed before the stream's first byte
    return on_map


@router.get("/stream")
async def stream(request: Request, principal: LiveMapReader, session: DbSession, feed: Feed,
                 sessions: Sessions) -> StreamingResponse:
    """Server-sent events: one JSON object per message (trip_started, position, trip_ended, alert,
    incident, check_in), in the protocol of `console.streams`. After a reconnection or a `resync` the
    page reloads the snapshot (positions are not replayed). The trips the stream brings later are
    recorded as it goes (`telematics.detection.onscreen`)."""
    on_map = await run_in_threadpool(_open_stream, session, principal, feed)
    shown = onscreen.ShownTrips(sessions, principal.actor, recorded=on_map)
    return stream_response(request, feed, watcher=shown)
