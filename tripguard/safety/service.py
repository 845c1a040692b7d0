"""SOS and incidents: one press becomes one case in the safety centre's queue within a second.

Pressing SOS creates the incident with the caller, the trip, the vehicle, the driver and the last
known position; tells the caller's verified emergency contacts by SMS; queues a police-dispatch
payload for the emergency gateway; and puts the case on the agents' live feed. A retry or a double
tap is the same incident. Everything sent goes through the outbox in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service as audit
from tripguard.audit.actor import SYSTEM, Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.errors import Conflict, InvalidInput, NotFound
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.privacy import access
from tripguard.privacy.models import DataSubject
from tripguard.safety import shares
from tripguard.safety.models import EmergencyContact, Incident, IncidentEvent
from tripguard.security.models import StaffAccount
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.security.service import staff_roles
from tripguard.telematics.models import CheckIn, Trip, TripAlert, Vehicle
from tripguard.telematics.service import LiveMonitor
from tripguard.vault.service import Vault

DOUBLE_TAP = timedelta(seconds=60)  # a second press within this is the same emergency
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {  # action: (from states, to state)
    "acknowledge": (("open",), "acknowledged"),
    "start": (("open", "acknowledged"), "in_progress"),
    "resolve": (("open", "acknowledged", "in_progress"), "resolved"),
    "close": (("resolved",), "closed"),
}
OUTCOMES = ("genuine", "false_alarm", "mistaken", "malicious")
HANDLERS = frozenset({Role.SAFETY_AGENT, Role.INVESTIGATOR})


@dataclass(frozen=True)
class SosRequest:
    trip_id: str | None
    silent: bool
    lon: float | None
    lat: float | None
    idempotency_key: str | None


def _event(session: Session, incident: Incident, kind: str, actor: Actor, **details: object) -> None:
    session.add(IncidentEvent(id=new_id("iev"), incident_id=incident.id, at=utcnow(), kind=kind,
                              actor=f"{actor.type}:{actor.id}", details=details))


def feed_item(incident: Incident) -> dict[str, object]:
    """What the live queue shows before anyone opens the case (no personal data)."""
    return {"type": "incident", "id": incident.id, "source": incident.source, "severity": incident.severity,
            "status": incident.status, "silent": incident.silent, "trip_id": incident.trip_id,
            "created_at": incident.created_at.isoformat(), "ack_due_at": incident.ack_due_at.isoformat()}


def _callers_trip(session: Session, caller: Principal, trip_id: str | None) -> Trip | None:
    mine = or_(Trip.passenger_id == caller.id, Trip.driver_id == caller.id)
    if trip_id is not None:
        trip = session.scalar(select(Trip).where(Trip.id == trip_id, mine))
        if trip is None:
            raise NotFound("no such trip of yours")
        return trip
    return session.scalar(select(Trip).where(mine, Trip.status == "active").order_by(Trip.updated_at.desc()).limit(1))


def raise_sos(session: Session, vault: Vault, live: LiveMonitor, *, caller: Principal, request: SosRequest,
              ack_seconds: int, secret_key: str, base_url: str) -> tuple[Incident, bool]:
    """The incident for this press, and whether it is new (a retry or a double tap finds the first)."""
    key = f"{caller.id}:{request.idempotency_key}" if request.idempotency_key else None
    if key is not None and (known := session.scalar(select(Incident).where(Incident.idempotency_key == key))):
        return known, False
    trip = _callers_trip(session, caller, request.trip_id)
    now = utcnow()
    recent = session.scalar(select(Incident).where(
        Incident.caller_id == caller.id, Incident.source == "sos", Incident.status != "closed",
        (Incident.trip_id == trip.id) if trip else Incident.trip_id.is_(None),
        Incident.created_at >= now - DOUBLE_TAP).order_by(Incident.created_at.desc()).limit(1))
    if recent is not None:
        return recent, False
    incident = Incident(id=new_id("inc"), source="sos", severity="critical", status="open", silent=request.silent,
                        caller_id=caller.id, caller_role=next(iter(sorted(r.value for r in caller.roles)), None),
                        trip_id=trip.id if trip else None, vehicle_id=trip.vehicle_id if trip else None,
                        driver_id=trip.driver_id if trip else None, idempotency_key=key, created_at=now,
                        ack_due_at=now + timedelta(seconds=ack_seconds))
    position = _position(live, trip, request)
    if position is not None:
        lon, lat, at = position
        access.write_field(vault, session, incident, "position", f"{lon:.6f},{lat:.6f}")
        incident.position_at = at
    session.add(incident)
    session.flush()
    _event(session, incident, "created", caller.actor, silent=request.silent, trip=incident.trip_id)
    audit.record(session, actor=caller.actor, action="sos.raise", target_type="incident", target_id=incident.id)
    vehicle = session.get(Vehicle, incident.vehicle_id) if incident.vehicle_id else None
    link = None
    if trip is not None:  # contacts and the police follow the trip live
        _, token = shares.create(session, secret_key, trip=trip, created_by=f"sos:{incident.id}")
        link = f"{base_url}/s/{token}"
    told = _tell_contacts(session, vault, incident, caller, vehicle, link)
    _dispatch(session, vault, incident, vehicle, position, link)
    _event(session, incident, "notified", SYSTEM, contacts=told, gateway=True)
    return incident, True


def _position(live: LiveMonitor, trip: Trip | None, request: SosRequest) -> tuple[float, float, datetime] | None:
    if request.lon is not None and request.lat is not None:  # the phone's own fix, sent with the press
        return request.lon, request.lat, utcnow()
    if trip is None:
        return None
    with live.lock:
        known = live.monitor.position(trip.id)
    if known is None:
        return None
    return known[0], known[1], datetime.fromtimestamp(known[2], UTC)


def _name(session: Session, vault: Vault, subject_id: str | None) -> str | None:
    person = session.get(DataSubject, subject_id) if subject_id else None
    return access.open_field(vault, session, person, "name") if person is not None else None


def _tell_contacts(session: Session, vault: Vault, incident: Incident, caller: Principal,
                   vehicle: Vehicle | None, link: str | None) -> int:
    contacts = session.scalars(select(EmergencyContact).where(EmergencyContact.subject_id == caller.id,
                                                              EmergencyContact.verified_at.is_not(None)))
    name = _name(session, vault, caller.id) or "—"
    told = 0
    for contact in contacts:
        phone = access.open_field(vault, session, contact, "phone")
        if not phone:
            continue
        notify.enqueue_to_person(session, vault, subject_id=caller.id, channel="sms", to=phone, template="sos_contact",
                                 locale="zh_CN", params={"name": name, "plate": vehicle.plate if vehicle else None,
                                                         "colour": vehicle.colour if vehicle else None,
                                                         "model": vehicle.model if vehicle else None,
                                                         "link": link},
                                 idempotency_key=f"sos:{incident.id}:contact:{contact.id}")
        told += 1
    return told


def _dispatch(session: Session, vault: Vault, incident: Incident, vehicle: Vehicle | None,
              position: tuple[float, float, datetime] | None, link: str | None) -> None:
    payload: dict[str, object] = {
        "incident_id": incident.id, "silent": incident.silent, "created_at": incident.created_at.isoformat(),
        "caller": {"id": incident.caller_id, "role": incident.caller_role,
                   "name": _name(session, vault, incident.caller_id),
                   "phone": _phone(session, vault, incident.caller_id)},
        "location": None if position is None else {"lon": position[0], "lat": position[1],
                                                   "at": position[2].isoformat()},
        "trip_id": incident.trip_id, "share_link": link,
        "vehicle": None if vehicle is None else {"plate": vehicle.plate, "colour": vehicle.colour,
                                                 "model": vehicle.model},
        "driver": None if incident.driver_id is None else {"id": incident.driver_id,
                                                           "name": _name(session, vault, incident.driver_id)},
    }
    notify.enqueue_emergency(session, vault, subject_id=str(incident.caller_id), payload=payload,
                             idempotency_key=f"sos:{incident.id}:gateway")


def _phone(session: Session, vault: Vault, subject_id: str | None) -> str | None:
    person = session.get(DataSubject, subject_id) if subject_id else None
    return access.open_field(vault, session, person, "phone") if person is not None else None


def act(session: Session, *, actor: Principal, incident_id: str, action: str, outcome: str | None,
        note: str | None, assignee: str | None = None) -> Incident:
    """An agent moves the case on, assigns it, or adds a note. Resolving names what it turned out to be."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound("no such incident")
    now = utcnow()
    if action == "assign":
        staff = session.get(StaffAccount, assignee) if assignee else None
        if staff is None or staff.disabled_at is not None or not (staff_roles(staff) & HANDLERS):
            raise InvalidInput("assign to an active safety agent or investigator (their staff id)")
        incident.assigned_to = staff.id
        _event(session, incident, "assign", actor.actor, to=staff.id)
        return incident
    if action == "note":
        if not note:
            raise InvalidInput("a note needs text")
        _event(session, incident, "note", actor.actor, text=note[:500])
        return incident
    allowed, target = ACTIONS[action]
    if incident.status not in allowed:
        raise Conflict(f"an incident that is {incident.status} cannot be {action}d")
    if action == "resolve":
        if outcome not in OUTCOMES:
            raise InvalidInput(f"resolving needs an outcome: one of {', '.join(OUTCOMES)}")
        incident.outcome, incident.resolved_at = outcome, now
    if action in ("acknowledge", "start") and incident.acknowledged_at is None:
        incident.acknowledged_at = now
        incident.assigned_to = incident.assigned_to or actor.id
    if action == "close":
        incident.closed_at = now
    incident.status = target
    _event(session, incident, action, actor.actor, outcome=outcome)
    audit.record(session, actor=actor.actor, action=f"incident.{action}", target_type="incident", target_id=incident.id,
                 details={"outcome": outcome or ""})
    return incident


def escalate_overdue(factory: sessionmaker[Session], *, webhook_url: str | None) -> list[dict[str, object]]:
    """Open cases nobody acknowledged in time: marked, on the timeline, and sent to the operator."""
    now = utcnow()
    with unit_of_work(factory) as session:
        overdue = list(session.scalars(select(Incident).where(Incident.status == "open", Incident.escalated_at.is_(None),
                                                              Incident.ack_due_at <= now).limit(100)))
        for incident in overdue:
            incident.escalated_at = now
            _event(session, incident, "escalated", SYSTEM, late_s=round((now - incident.ack_due_at).total_seconds()))
            if webhook_url:
                notify.enqueue_webhook(session, url=webhook_url, event="incident_escalated",
                                       payload={"incident_id": incident.id, "trip_id": incident.trip_id},
                                       idempotency_key=f"incident:{incident.id}:escalated")
        return [{**feed_item(i), "escalated": True} for i in overdue]


def timeline(session: Session, incident_id: str) -> list[IncidentEvent]:
    return list(session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                .order_by(IncidentEvent.at, IncidentEvent.id)))


def queue(session: Session, *, status: str | None, limit: int = 200) -> list[Incident]:
    statement = select(Incident).order_by(Incident.created_at.desc()).limit(limit)
    if status:
        statement = statement.where(Incident.status == status)
    else:
        statement = statement.where(Incident.status != "closed")
    return list(session.scalars(statement))


def open_for_alert(session: Session, *, alert: TripAlert, ack_seconds: int) -> Incident | None:
    """A high-severity alert (route deviation, possible crash) becomes a case; later ones of the same trip
    go on that case's timeline while it is not closed."""
    if alert.severity != "high":
        return None
    return _case_for_trip(session, source="alert", severity="high", trip_id=alert.trip_id, ack_seconds=ack_seconds,
                          kind="alert", details={"alert": alert.id, "alert_kind": alert.kind})


def open_for_check_in(session: Session, *, check_in: CheckIn, ack_seconds: int) -> Incident | None:
    """"Help" asked in a check-in is critical; no answer in time is high."""
    if check_in.status not in ("help", "unanswered"):
        return None
    return _case_for_trip(session, source="check_in", severity="critical" if check_in.status == "help" else "high",
                          trip_id=check_in.trip_id, ack_seconds=ack_seconds, kind="check_in",
                          details={"check_in": check_in.id, "answer": check_in.status, "role": check_in.role})


def _case_for_trip(session: Session, *, source: str, severity: str, trip_id: str, ack_seconds: int, kind: str,
                   details: dict[str, object]) -> Incident:
    incident = session.scalar(select(Incident).where(Incident.trip_id == trip_id, Incident.status != "closed")
                              .order_by(Incident.created_at.desc()).limit(1))
    if incident is None:
        trip = session.get(Trip, trip_id)
        now = utcnow()
        incident = Incident(id=new_id("inc"), source=source, severity=severity, status="open", silent=False,
                            caller_id=trip.passenger_id if trip else None, caller_role="passenger" if trip else None,
                            trip_id=trip_id, vehicle_id=trip.vehicle_id if trip else None,
                            driver_id=trip.driver_id if trip else None, created_at=now,
                            ack_due_at=now + timedelta(seconds=ack_seconds))
        session.add(incident)
        session.flush()
        _event(session, incident, "created", SYSTEM, source=source)
    elif severity == "critical" and incident.severity != "critical":
        incident.severity = "critical"
    _event(session, incident, kind, SYSTEM, **details)
    return incident
