"""The safety agents' live map (active trips, routes, last positions, alerts as they arrive over SSE)
and the trip pages (a trip's vehicle, driver, alerts and check-ins; its trajectory on request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tripguard.audit import service as audit
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.errors import PermissionDenied
from tripguard.core.types import Identifier
from tripguard.privacy import access
from tripguard.privacy.models import DataSubject
from tripguard.security.auth import AlertsReader, LiveMapReader
from tripguard.security.permissions import Permission, Purpose, purposes_for
from tripguard.security.principal import Principal
from tripguard.telematics import checkins, registry, service, trips
from tripguard.telematics.models import Device, Trip, Vehicle
from tripguard.web.shell import page
from tripguard.web.streams import stream_response

router = APIRouter(prefix="/console/live", include_in_schema=False)
trips_router = APIRouter(prefix="/console/trips", include_in_schema=False)


@trips_router.get("")
def trips_page(request: Request, principal: AlertsReader, session: DbSession) -> HTMLResponse:
    recent = list(session.scalars(select(Trip).order_by(Trip.updated_at.desc(), Trip.id).limit(200)))
    return page(request, "telematics/trips.html", principal, "/console/trips", trips=recent)


@trips_router.get("/{trip_id}")
def trip_page(request: Request, trip_id: Annotated[Identifier, Path()], principal: AlertsReader,
              session: DbSession) -> HTMLResponse:
    """What an agent needs to act on a trip; the driver's name is read through the vault (audited)."""
    trip = trips.get_trip(session, trip_id)
    vehicle = session.get(Vehicle, trip.vehicle_id) if trip.vehicle_id else None
    devices = list(session.scalars(select(Device).where(Device.vehicle_id == trip.vehicle_id))) if vehicle else []
    driver_name = None
    driver = session.get(DataSubject, trip.driver_id) if trip.driver_id else None
    if driver is not None and principal.can(Permission.PERSONAL_READ):
        driver_name = access.read_fields(request.app.state.vault, session, principal, driver, ["name"],
                                         purpose=Purpose.EMERGENCY)["name"].value
    evidence_purposes = [p.value for p in (Purpose.EMERGENCY, Purpose.INVESTIGATION)
                         if p in purposes_for(principal.roles)] if principal.can(Permission.TRAJECTORY_READ) else []
    now = utcnow()
    return page(request, "telematics/trip.html", principal, "/console/trips", trip=trip, vehicle=vehicle,
                devices=[(d, registry.status(d, now)) for d in devices], driver_name=driver_name,
                alerts=service.recent_alerts(session, trip_id=trip_id, limit=500),
                check_ins=checkins.for_trip(session, trip_id), evidence_purposes=evidence_purposes,
                tiles=request.app.state.settings.map_tiles_url,
                attribution=request.app.state.settings.map_tiles_attribution)


def _opened_live_view(session: Session, principal: Principal, view: str) -> None:
    """Every position of every active trip is personal data: only for the emergency purpose, audited."""
    if Purpose.EMERGENCY not in purposes_for(principal.roles):
        raise PermissionDenied("the live map is for roles that answer emergencies")
    audit.record(session, actor=principal.actor, action="live_map.open", target_type="live_map", target_id=view,
                 purpose=Purpose.EMERGENCY.value)


@router.get("")
def live_page(request: Request, principal: LiveMapReader) -> HTMLResponse:
    settings = request.app.state.settings
    return page(request, "telematics/live.html", principal, "/console/live", tiles=settings.map_tiles_url,
                attribution=settings.map_tiles_attribution)


@router.get("/snapshot")
def snapshot(request: Request, principal: LiveMapReader, session: DbSession) -> JSONResponse:
    _opened_live_view(session, principal, "snapshot")
    return JSONResponse(request.app.state.live_monitor.feed.snapshot())


@router.get("/stream")
async def stream(request: Request, principal: LiveMapReader, session: DbSession) -> StreamingResponse:
    """Server-sent events: one JSON object per message (trip_started, position, trip_ended, alert,
    incident, check_in), in the protocol of `web.streams`. After a reconnection or a `resync` the
    page reloads the snapshot (positions are not replayed)."""
    await run_in_threadpool(_opened_live_view, session, principal, "stream")
    return stream_response(request, request.app.state.live_monitor.feed)
