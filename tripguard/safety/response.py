"""What the case page puts in front of the agent to drive the response: who called and how to reach
them, who was told, the police dispatch, the trip (route, the last minutes of the track, vehicle,
driver), what opened the case, and a timeline that names people. Every personal field is opened
through the access gate for the emergency purpose, and so audited."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.core.errors import InvalidInput, PermissionDenied
from tripguard.notify import service as notify
from tripguard.privacy import access
from tripguard.privacy.models import DataSubject
from tripguard.privacy.service import on_record
from tripguard.safety.models import EmergencyContact, Incident
from tripguard.safety.service import HANDLERS, LIVE_STATES, TimelineItem, add_event, handles
from tripguard.safety.telephony import CallResult, Telephony
from tripguard.security import service as security
from tripguard.security.permissions import Permission, Purpose, purposes_for
from tripguard.security.principal import Principal
from tripguard.telematics import service as telematics
from tripguard.telematics.service import AlertView, CheckInView, TripView, VehicleView
from tripguard.vault.service import Vault

RECENT_TRACK = timedelta(minutes=10)


@dataclass(frozen=True)
class Person:
    name: str | None
    phone: str | None
    plain: bool  # False: masked or unavailable for this principal


@dataclass(frozen=True)
class ContactState:
    id: str
    name: str | None
    phone: str | None
    told: str  # sent | pending | dead | not_told


@dataclass(frozen=True)
class TripContext:
    trip: TripView
    vehicle: VehicleView | None
    driver_name: str | None
    route: list[list[float]] = field(default_factory=list)
    recent: list[list[float]] = field(default_factory=list)  # [lon, lat] of the last minutes, oldest first
    pickup: list[float] | None = None
    dropoff: list[float] | None = None
    track_note: str | None = None  # why the track is not shown


def _person(vault: Vault, session: Session, principal: Principal, row: DataSubject | EmergencyContact) -> Person:
    views = access.read_fields(vault, session, principal, row, ["name", "phone"], purpose=Purpose.EMERGENCY)
    return Person(views["name"].value, views["phone"].value, views["name"].plaintext or views["phone"].plaintext)


def caller(session: Session, *, vault: Vault, principal: Principal, incident: Incident) -> Person | None:
    """The caller's name and phone (audited). None when the case has no caller on record."""
    subject = on_record(session, subject_id=incident.caller_id)
    return _person(vault, session, principal, subject) if subject is not None else None


def contacts(session: Session, *, vault: Vault, principal: Principal, incident: Incident) -> list[ContactState]:
    """The caller's emergency contacts and whether each was told of this case (its SMS's delivery)."""
    if not incident.caller_id:
        return []
    rows = list(session.scalars(select(EmergencyContact).where(EmergencyContact.subject_id == incident.caller_id,
                                                                EmergencyContact.verified_at.is_not(None))
                                .order_by(EmergencyContact.created_at)))
    told = notify.deliveries(session,
                             idempotency_keys=[f"sos:{incident.id}:contact:{c.id}" for c in rows])
    states = []
    for contact in rows:
        person = _person(vault, session, principal, contact)
        delivery = told.get(f"sos:{incident.id}:contact:{contact.id}")
        states.append(ContactState(contact.id, person.name, person.phone, delivery.status if delivery else "not_told"))
    return states


def police_dispatch(session: Session, *, incident: Incident) -> notify.Delivery | None:
    """The payload for the emergency gateway (police dispatch), if the case sent one."""
    return notify.deliveries(session,
                             idempotency_keys=[f"sos:{incident.id}:gateway"]).get(f"sos:{incident.id}:gateway")


def trip_context(session: Session, *, vault: Vault, principal: Principal, incident: Incident) -> TripContext | None:
    """The trip, vehicle and driver; the planned route and the last minutes of the track while the case
    is live (opened as evidence for the emergency purpose: audited with the case as the reason)."""
    trip = telematics.trip(session, trip_id=incident.trip_id) if incident.trip_id else None
    if trip is None:
        return None
    vehicle = telematics.vehicle(session, vehicle_id=trip.vehicle_id)
    driver = on_record(session, subject_id=trip.driver_id)
    driver_name = access.read_fields(vault, session, principal, driver, ["name"], purpose=Purpose.EMERGENCY)[
        "name"].value if driver is not None else None
    if incident.status not in LIVE_STATES:
        return TripContext(trip, vehicle, driver_name, track_note="case_not_live")
    if not (principal.can(Permission.TRAJECTORY_READ) and Purpose.EMERGENCY in purposes_for(principal.roles)):
        return TripContext(trip, vehicle, driver_name, track_note="not_permitted")
    try:
        access.check_clearance(session, principal=principal)
        evidence = telematics.open_evidence(session, vault=vault, actor=principal.actor, trip_id=trip.id,
                                       purpose=Purpose.EMERGENCY, reason=f"case {incident.id}",
                                       case_id=incident.id if handles(principal, incident) else None)
    except PermissionDenied:
        return TripContext(trip, vehicle, driver_name, track_note="erased")
    track = evidence.track
    recent: list[list[float]] = []
    if len(track):
        since = int(track.t_ms[-1]) - int(RECENT_TRACK.total_seconds() * 1000)
        keep = track.t_ms >= since
        recent = [[lon / 1e6, lat / 1e6] for lon, lat in zip(track.lon_e6[keep].tolist(), track.lat_e6[keep].tolist(),
                                                              strict=True)]
    plan = evidence.plan

    def point(name: str) -> list[float] | None:
        value = plan.get(name)
        return [float(v) for v in value] if isinstance(value, list) else None

    route = plan.get("route")
    return TripContext(trip, vehicle, driver_name,
                       route=[[float(x), float(y)] for x, y in route] if isinstance(route, list) else [],
                       recent=recent, pickup=point("pickup"), dropoff=point("dropoff"))


def triggers(session: Session, *, timeline: list[TimelineItem]) -> tuple[list[AlertView], list[CheckInView]]:
    """The monitor alerts and check-ins that opened the case or were added to it, with their evidence."""
    alert_ids = [str(e.details["alert"]) for e in timeline if "alert" in e.details]
    check_in_ids = [str(e.details["check_in"]) for e in timeline if "check_in" in e.details]
    return telematics.alerts_by_id(session,
                                   alert_ids=alert_ids), telematics.check_ins_by_id(session, check_in_ids=check_in_ids)


def handlers(session: Session) -> list[tuple[str, str]]:
    """Active staff who may take a case: (staff id, display name)."""
    return [(s.id, s.display_name) for s in security.list_staff(session)
            if s.disabled_at is None and security.staff_roles(s) & HANDLERS]


def actor_names(session: Session, *, incident: Incident, actors: list[str]) -> dict[str, str]:
    """Timeline actors ("staff:stf_…", "subject:psg_…", "system:…") as people read them: staff by
    their display name; the caller as "caller"; the system as "system". No internal ids."""
    staff_ids = {a.partition(":")[2] for a in actors if a.startswith("staff:")}
    names = {f"staff:{s.id}": s.display_name for s in security.list_staff(session) if s.id in staff_ids}
    for actor in actors:
        kind, _, ident = actor.partition(":")
        if actor in names:
            continue
        if kind == "subject":
            names[actor] = "caller" if ident == incident.caller_id else "subject"
        elif kind == "system":
            names[actor] = "system"
        else:
            names[actor] = kind or "system"
    return names


def place_call(session: Session, *, vault: Vault, telephony: Telephony, principal: Principal, incident: Incident,
               to: str) -> CallResult:
    """Call the caller ("caller") or one of their contacts ("contact:<id>") through the telephony
    adapter. The number is opened through the gate (audited) and never put on the timeline."""
    if incident.status not in LIVE_STATES:
        raise InvalidInput("this case is no longer live")
    row: DataSubject | EmergencyContact | None
    if to == "caller":
        row = on_record(session, subject_id=incident.caller_id)
    elif to.startswith("contact:"):
        row = session.get(EmergencyContact, to.partition(":")[2])
        if row is not None and row.subject_id != incident.caller_id:
            row = None
    else:
        row = None
    if row is None:
        raise InvalidInput("nobody to call: choose the caller or one of their contacts")
    phone = _person(vault, session, principal, row)
    if not phone.plain or not phone.phone:
        raise PermissionDenied("this number is not open to you for the emergency purpose")
    result = telephony.call(incident_id=incident.id, agent=principal.actor.id, to=phone.phone)
    add_event(session, incident=incident, kind="call", actor=principal.actor,
              to="caller" if to == "caller" else "contact", via=telephony.name, result=result.status,
              reference=result.reference)
    return result
