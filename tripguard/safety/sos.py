"""The emergency button: every press becomes one incident in the safety centre's queue.

A press creates the incident with the caller, the trip (or the delivery order) named or under way,
the vehicle, the driver and the last known position; tells the caller's verified emergency contacts
by SMS with a live share link; and queues a police-dispatch payload for the emergency gateway. A
retry (same Idempotency-Key) or a second press within a minute is the same incident. Everything
sent goes through the outbox in the same transaction.

A press is never refused. A trip or order it names that cannot be linked to the caller (not ingested
yet, or not theirs) is kept on the case as the caller's claim, unverified: the case shows it, but
nothing of that trip or order (vehicle, driver, share link, track) is attached to it.

Presses are stored in groups: `raise_many` takes every press waiting at that moment and writes
them in one transaction with one query per kind of thing it reads (see `intake.py`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import SYSTEM
from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.delivery import service as delivery
from tripguard.notify import service as notify
from tripguard.notify.models import Priority
from tripguard.privacy import access
from tripguard.privacy.models import DataSubject
from tripguard.safety import shares
from tripguard.safety.models import EmergencyContact, Incident
from tripguard.safety.service import LIVE_STATES, add_event, case_key
from tripguard.screening import service as screening
from tripguard.security.principal import Principal
from tripguard.telematics import service as telematics
from tripguard.telematics.service import LiveMonitor, TripView, VehicleView
from tripguard.vault.service import SubjectErased, Vault

DOUBLE_TAP = timedelta(seconds=60)  # a second press within this is the same emergency


@dataclass(frozen=True)
class Press:
    caller: Principal
    trip_id: str | None = None
    order_id: str | None = None
    silent: bool = False
    lon: float | None = None
    lat: float | None = None
    idempotency_key: str | None = None

    @property
    def key(self) -> str | None:
        """The caller's key, scoped to the caller: the id's length first, so no other caller's id and key
        spell the same (caller "X" with key "a:k" and caller "X:a" with key "k" did)."""
        caller = self.caller.id
        return f"{len(caller)}:{caller}:{self.idempotency_key}" if self.idempotency_key else None


@dataclass(frozen=True)
class Raised:
    incident: Incident
    new: bool  # False: a retry or a double tap found the first press's incident


@dataclass(frozen=True)
class SosDesk:
    """What pressing needs from the running service."""

    vault: Vault
    live: LiveMonitor
    ack_seconds: int
    secret_key: str
    base_url: str


@dataclass
class _Created:
    press: Press
    trip: TripView | None
    incident: Incident


def raise_many(session: Session, *, desk: SosDesk, presses: list[Press]) -> list[Raised]:
    """Each press's incident, in the order given: never a refusal."""
    now = utcnow()
    callers = sorted({p.caller.id for p in presses})
    by_key, recent = _earlier_presses(session, [k for p in presses if (k := p.key)], callers, now)
    trips = _trips_of(session, presses, callers)
    orders = delivery.parties(session,
                              order_ids=sorted({p.order_id for p in presses if p.order_id}))
    results: list[Raised] = []
    created: list[_Created] = []
    for press in presses:
        if press.key is not None and press.key in by_key:
            results.append(Raised(by_key[press.key], False))
            continue
        named = trips.get(press.trip_id) if press.trip_id else None
        if press.caller.id not in _people_of(named):
            named = None  # someone else's trip: the caller's claim only, none of its data on the case
        trip = named or trips.get(f"active:{press.caller.id}")
        claimed_trip = press.trip_id if press.trip_id and named is None else None
        order_linked = press.order_id is not None and press.caller.id in orders.get(press.order_id, ())
        claimed_order = press.order_id if press.order_id and not order_linked else None
        tap = (press.caller.id, press.trip_id or (trip.id if trip else None), press.order_id)
        if tap in recent:
            results.append(Raised(recent[tap], False))
            continue
        incident = Incident(id=new_id("inc"), source="sos", severity="critical", status="open", silent=press.silent,
                            caller_id=press.caller.id,
                            caller_role=min((r.value for r in press.caller.roles), default=None),
                            trip_id=trip.id if trip else None, order_id=press.order_id if order_linked else None,
                            claimed_trip_id=claimed_trip, claimed_order_id=claimed_order,
                            vehicle_id=trip.vehicle_id if trip else None, driver_id=trip.driver_id if trip else None,
                            idempotency_key=press.key, created_at=now,
                            ack_due_at=now + timedelta(seconds=desk.ack_seconds))
        if press.key is not None:
            by_key[press.key] = incident
        recent[tap] = incident
        created.append(_Created(press, trip, incident))
        results.append(Raised(incident, True))
    if created:
        _store_and_tell(session, desk, created)
    return results


Tap = tuple[str, str | None, str | None]  # caller, trip, order (linked or claimed: as the caller named them)


def _earlier_presses(session: Session, keys: list[str], callers: list[str],
                     now: datetime) -> tuple[dict[str, Incident], dict[Tap, Incident]]:
    """Incidents these presses may repeat, in one query: by idempotency key (a retry), and each
    caller's SOS cases of the last minute by trip and order (a double tap)."""
    double_tap = and_(Incident.caller_id.in_(callers), Incident.source == "sos", Incident.status != "closed",
                      Incident.created_at >= now - DOUBLE_TAP)
    found = session.scalars(select(Incident).where(or_(Incident.idempotency_key.in_(keys), double_tap) if keys
                                                   else double_tap).order_by(Incident.created_at))
    wanted = set(keys)
    by_key: dict[str, Incident] = {}
    recent: dict[Tap, Incident] = {}
    for incident in found:  # oldest first: the latest of each tap wins
        if incident.idempotency_key in wanted:
            by_key[str(incident.idempotency_key)] = incident
        if incident.source == "sos" and incident.status != "closed" and incident.created_at >= now - DOUBLE_TAP:
            recent[(str(incident.caller_id), incident.claimed_trip_id or incident.trip_id,
                    incident.claimed_order_id or incident.order_id)] = incident
    return by_key, recent


def _trips_of(session: Session, presses: list[Press], callers: list[str]) -> dict[str, TripView]:
    """Trips named by id, and each caller's latest trip under way as `active:<caller>` (for a press that
    names none, or names one that is not the caller's)."""
    trips = telematics.trips_by_id(session, trip_ids={p.trip_id for p in presses if p.trip_id})
    if any(p.trip_id is None or p.caller.id not in _people_of(trips.get(p.trip_id)) for p in presses):
        under_way = telematics.trips_under_way(session, people=callers)
        wanted = set(callers)
        for trip in under_way:  # oldest first: the latest under way wins
            for person in (trip.passenger_id, trip.driver_id):
                if person in wanted:
                    trips[f"active:{person}"] = trip
    return trips


def _people_of(trip: TripView | None) -> tuple[str | None, ...]:
    return (trip.passenger_id, trip.driver_id) if trip is not None else ()


def _store_and_tell(session: Session, desk: SosDesk, created: list[_Created]) -> None:
    callers = sorted({c.press.caller.id for c in created})
    drivers = sorted({c.trip.driver_id for c in created if c.trip and c.trip.driver_id})
    desk.vault.prefetch(session, callers, create_missing=True)
    desk.vault.prefetch(session, drivers)
    people = {s.id: s for s in session.scalars(select(DataSubject).where(DataSubject.id.in_(callers + drivers)))}
    # A driver the operator recorded without a name (or not at all) whom TripGuard screened: the police are
    # told the name the screening holds.
    screened = screening.names_of(session, vault=desk.vault, worker_ids=[d for d in drivers if people.get(d) is None
                                                        or people[d].name is None]) if drivers else {}
    contacts: dict[str, list[EmergencyContact]] = defaultdict(list)
    for contact in session.scalars(select(EmergencyContact).where(EmergencyContact.subject_id.in_(callers),
                                                                  EmergencyContact.verified_at.is_not(None))
                                   .order_by(EmergencyContact.created_at)):
        contacts[contact.subject_id].append(contact)
    vehicle_ids = sorted({c.trip.vehicle_id for c in created if c.trip and c.trip.vehicle_id})
    vehicles = telematics.vehicles_by_id(session, vehicle_ids=vehicle_ids)
    # Where the caller was is the case's evidence, kept by law with the case: sealed under the case's own key
    # (made for the whole group in one go), so erasing the caller never takes it from an open case. The
    # case's retention rule (`safety.retention`) removes it and shreds that key.
    placed = [(item, _position(desk.live, item.trip, item.press)) for item in created]
    desk.vault.prefetch(session, [case_key(i.incident.id) for i, p in placed if p is not None], create_missing=True)
    for item, position in placed:
        incident, press, trip = item.incident, item.press, item.trip
        # An erased caller still gets help: the case opens with what is known. Nothing is sealed under their
        # shredded key (vital interest, PIPL Art. 13(4)): the gateway's payload goes under the case's key too.
        erased = desk.vault.data_key(session, press.caller.id, create=False) is None
        if position is not None:
            incident.position_key = case_key(incident.id)
            access.write_field(desk.vault, session, incident, "position", f"{position[0]:.6f},{position[1]:.6f}")
            incident.position_at = position[2]
        session.add(incident)
        add_event(session, incident=incident, kind="created", actor=press.caller.actor, silent=press.silent,
                  trip=incident.trip_id, order=incident.order_id, claimed_trip=incident.claimed_trip_id,
                  claimed_order=incident.claimed_order_id)
        link = None
        if trip is not None:  # contacts and the police follow the trip live
            _, token = shares.create(session, secret_key=desk.secret_key, trip=trip, created_by=f"sos:{incident.id}")
            link = f"{desk.base_url}/s/{token}"
        vehicle = vehicles.get(incident.vehicle_id) if incident.vehicle_id else None
        caller = None if erased else people.get(press.caller.id)
        caller_name = _opened(session, desk.vault, caller, "name")
        told = 0 if erased else _tell_contacts(session, desk.vault, incident, contacts[press.caller.id], caller_name,
                                               vehicle, link)
        _dispatch(session, desk.vault, incident, vehicle, position, link, caller=caller, caller_name=caller_name,
                  driver=people.get(incident.driver_id) if incident.driver_id else None,
                  driver_screened_name=screened.get(incident.driver_id) if incident.driver_id else None,
                  sealed_for=case_key(incident.id) if erased else str(incident.caller_id))
        add_event(session, incident=incident, kind="notified", actor=SYSTEM, contacts=told, gateway=True,
                  caller_erased=erased)
        # One entry per press: the press, and what telling people opened for the emergency purpose (the
        # caller's name and phone, the driver's name, the contacts' phones).
        audit.record(session, actor=press.caller.actor, action="sos.raise", target_type="incident",
                     target_id=incident.id, purpose="emergency",
                     details={"driver": incident.driver_id or "", "contacts_told": told, "gateway": True})


def _position(live: LiveMonitor, trip: TripView | None, press: Press) -> tuple[float, float, datetime] | None:
    if press.lon is not None and press.lat is not None:  # the phone's own fix, sent with the press
        return press.lon, press.lat, utcnow()
    if trip is None:
        return None
    known = live.position(trip.id)  # in scale-out, from the live feed: the monitor runs in the workers
    if known is None:
        return None
    return known[0], known[1], datetime.fromtimestamp(known[2], UTC)


def _opened(session: Session, vault: Vault, person: DataSubject | None, column: str) -> str | None:
    if person is None:
        return None
    try:
        return access.open_field(vault, session, person, column)
    except SubjectErased:  # a driver erased since the trip began: the case goes on without the name
        return None


def _tell_contacts(session: Session, vault: Vault, incident: Incident, contacts: list[EmergencyContact],
                   caller_name: str | None, vehicle: VehicleView | None, link: str | None) -> int:
    told = 0
    for contact in contacts:
        phone = access.open_field(vault, session, contact, "phone")
        if not phone:
            continue
        notify.enqueue_to_person(session, vault=vault, subject_id=contact.subject_id, channel="sms",
                                 to=phone,
                                 template="sos_contact", locale="zh_CN",
                                 params={"name": caller_name or "—", "plate": vehicle.plate if vehicle else None,
                                         "colour": vehicle.colour if vehicle else None,
                                         "model": vehicle.model if vehicle else None, "link": link},
                                 idempotency_key=f"sos:{incident.id}:contact:{contact.id}", fresh_key=True,
                                 priority=Priority.EMERGENCY)
        told += 1
    return told


def _dispatch(session: Session, vault: Vault, incident: Incident, vehicle: VehicleView | None,
              position: tuple[float, float, datetime] | None, link: str | None, *,
              caller: DataSubject | None, caller_name: str | None, driver: DataSubject | None,
              driver_screened_name: str | None, sealed_for: str) -> None:
    payload: dict[str, object] = {
        "incident_id": incident.id, "silent": incident.silent, "created_at": incident.created_at.isoformat(),
        "caller": {"id": incident.caller_id, "role": incident.caller_role,
                   "name": caller_name, "phone": _opened(session, vault, caller, "phone")},
        "location": None if position is None else {"lon": position[0], "lat": position[1],
                                                   "at": position[2].isoformat()},
        "trip_id": incident.trip_id, "order_id": incident.order_id, "share_link": link,
        "vehicle": None if vehicle is None else {"plate": vehicle.plate, "colour": vehicle.colour,
                                                 "model": vehicle.model},
        "driver": None if incident.driver_id is None else {"id": incident.driver_id,
                                                           "name": _opened(session, vault, driver, "name")
                                                           or driver_screened_name},
    }
    notify.enqueue_emergency(session, vault=vault, subject_id=sealed_for, payload=payload,
                             idempotency_key=f"sos:{incident.id}:gateway", fresh_key=True)


def keep_positions_of(session: Session, *, vault: Vault, caller_id: str) -> int:
    """Before the caller's key is shredded: a case raised before positions were sealed under the case's key
    moves its position there, so the erasure does not take it from the case. Cases raised since hold it
    there already, which is why a restore (run after the key is gone) needs nothing of this."""
    if vault.data_key(session, caller_id, create=False) is None:
        return 0  # shredded already: nothing of theirs opens any more
    cases = list(session.scalars(select(Incident).where(Incident.position_key == caller_id,
                                                        Incident.position.is_not(None))))
    for incident in cases:
        where = access.open_field(vault, session, incident, "position")
        incident.position_key = case_key(incident.id)
        access.write_field(vault, session, incident, "position", where)
    return len(cases)


def link_claims(session: Session, *, trip: TripView) -> list[Incident]:
    """A trip just received: live SOS cases whose caller named it before it arrived, and who is its
    passenger or driver, now have it (vehicle, driver; on the timeline). A claim on someone else's trip
    stays a claim. One indexed query per trip started."""
    people = [p for p in (trip.passenger_id, trip.driver_id) if p]
    if not people:
        return []
    cases = list(session.scalars(select(Incident).where(
        Incident.claimed_trip_id == trip.id, Incident.caller_id.in_(people), Incident.status.in_(LIVE_STATES))
        .with_for_update()))  # an agent's change meanwhile is waited for, not overwritten
    for incident in cases:
        incident.trip_id, incident.vehicle_id, incident.driver_id = trip.id, trip.vehicle_id, trip.driver_id
        incident.claimed_trip_id = None
        add_event(session, incident=incident, kind="claim_verified", actor=SYSTEM, trip=trip.id)
    session.flush()  # the versions their feed items carry are those written
    return cases
