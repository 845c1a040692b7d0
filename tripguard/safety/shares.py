"""Trip sharing: an unguessable link to follow a trip live, dead 24 hours after arrival or when revoked.

The page shows the live position on the route, an ETA, the vehicle (plate, colour, model), the
driver's masked name, and where the trip started and is going; nothing else. Every view is audited
under the share's own id.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.bookkeeping import free_row
from tripguard.core.clock import utcnow
from tripguard.core.errors import DomainError, NotFound
from tripguard.core.ids import new_id
from tripguard.privacy import access
from tripguard.privacy.models import DataSubject
from tripguard.safety.models import Incident, TripShare
from tripguard.security import credentials
from tripguard.telematics import service as telematics
from tripguard.telematics.service import LiveMonitor, TripView
from tripguard.vault.service import SubjectErased, Vault

LIVES_AFTER_ARRIVAL = timedelta(hours=24)
ETA_SPEED_MPS = 8.3  # 30 km/h, a city average, when the car's own speed is unknown


class ShareGone(DomainError):
    status, type, title = 410, "/problems/share-gone", "This link no longer works"


def _hash(secret_key: str, token: str) -> str:
    return credentials.keyed_hash(secret_key, token, purpose="trip-share")


def _someone_on_it_erased(session: Session, trip: TripView) -> bool:
    """A person on the trip was erased: what the law keeps of it is blocked, never shown to family."""
    people = [person for person in (trip.passenger_id, trip.driver_id) if person is not None]
    return bool(people) and session.scalar(select(DataSubject.id).where(
        DataSubject.id.in_(people), DataSubject.erased_at.is_not(None)).limit(1)) is not None


def create(session: Session, *, secret_key: str, trip: TripView, created_by: str) -> tuple[TripShare, str]:
    """A new link (the token is returned once; only its keyed hash is kept). None for the trip of an erased
    person, whatever token they still hold, but an SOS's: the police follow it (vital interest)."""
    if not created_by.startswith("sos:") and _someone_on_it_erased(session, trip):
        raise ShareGone("a person on this trip was erased: it is not shared")
    token = secrets.token_urlsafe(24)
    share = TripShare(id=new_id("shr"), trip_id=trip.id, token_hash=_hash(secret_key, token), created_by=created_by,
                      created_at=utcnow(), views=0)
    session.add(share)
    session.flush()
    return share, token


def own_trip(session: Session, *, subject_id: str, trip_id: str) -> TripView:
    return telematics.own_trip(session, subject_id=subject_id, trip_id=trip_id)  # telematics owns the check


def revoke(session: Session, *, actor: Actor, subject_id: str, trip_id: str, share_id: str) -> TripShare:
    own_trip(session, subject_id=subject_id, trip_id=trip_id)
    share = session.get(TripShare, share_id)
    if share is None or share.trip_id != trip_id:
        raise NotFound("no such share")
    share.revoked_at = share.revoked_at or utcnow()
    audit.record(session, actor=actor, action="share.revoke", target_type="share", target_id=share.id)
    return share


def revoke_for_person(session: Session, *, actor: Actor, subject_id: str) -> int:
    """On erasure: every live link to a trip of theirs dies (its page would show where they were)."""
    trip_ids = telematics.trip_ids_with(subject_id)
    shares = list(session.scalars(select(TripShare).where(TripShare.trip_id.in_(trip_ids),
                                                          TripShare.revoked_at.is_(None))))
    now = utcnow()
    for share in shares:
        share.revoked_at = now
    if shares:
        audit.record(session, actor=actor, action="share.revoke", target_type="privacy_subjects",
                     target_id=subject_id, details={"shares": len(shares), "why": "erasure"})
    return len(shares)


def count_views(session: Session, *, share_id: str, views: int) -> bool:
    """Add views to a link's count: a bookkeeping write (`core.bookkeeping`), never inside the viewing request's
    transaction, where family members polling one link would queue on its row."""
    free = free_row(select(TripShare.id).where(TripShare.id == share_id))
    written = session.execute(update(TripShare).where(TripShare.id == free.scalar_subquery())
                              .values(views=TripShare.views + views).execution_options(synchronize_session=False))
    return bool(written.rowcount)  # type: ignore[attr-defined]


def live_until(trip: TripView) -> datetime | None:
    return trip.ended_at + LIVES_AFTER_ARRIVAL if trip.ended_at else None


@dataclass(frozen=True)
class ShareView:
    trip_id: str
    arrived: bool
    position: tuple[float, float] | None
    position_at: str | None
    route: list[list[float]]
    start: list[float] | None
    destination: list[float] | None
    eta_minutes: int | None
    vehicle: dict[str, str] | None
    driver: str | None
    share_id: str = ""  # for its view count (`count_views`)
    shared_by: str | None = None  # the sharer's masked name
    start_name: str | None = None  # the place names the operator sent with the trip, if any
    destination_name: str | None = None
    how: str = "shared"  # shared | automatic | sos: how the link came to be


def _masked_name(session: Session, vault: Vault, person: DataSubject | None) -> str | None:
    """A person's name as a stranger may see it (王*明); None when unknown or erased."""
    if person is None:
        return None
    try:
        name = access.open_field(vault, session, person, "name")
    except SubjectErased:
        return None
    return access.fields_of(DataSubject)["name"].rule.mask(name) if name else None


def view(session: Session, *, vault: Vault, live: LiveMonitor, secret_key: str, token: str) -> ShareView:
    """What the link shows now; audited. A revoked link, or one 24 h past arrival, is gone (410)."""
    share = session.scalar(select(TripShare).where(TripShare.token_hash == _hash(secret_key, token)))
    if share is None:
        raise NotFound("no such link")
    trip = telematics.trip(session, trip_id=share.trip_id)
    until = live_until(trip) if trip else None
    if trip is None or share.revoked_at is not None or (until is not None and utcnow() >= until) or (
            not share.created_by.startswith("sos:") and _someone_on_it_erased(session, trip)):
        raise ShareGone("the trip has ended or the link was withdrawn")
    audit.record(session, actor=Actor("share", share.id), action="share.view", target_type="trip", target_id=trip.id)
    plan = telematics.trip_plan(session, vault=vault, trip_id=trip.id)
    position = None
    position_at = None
    if trip.ended_at is None:
        known = live.position(trip.id)
        if known is not None:
            position = (known[0], known[1])
            position_at = datetime.fromtimestamp(known[2], UTC).isoformat()
    elif plan.get("end"):
        position = tuple(plan["end"])  # type: ignore[assignment, arg-type]
    route = [list(p) for p in plan.get("route") or []]  # type: ignore[attr-defined]
    destination = plan.get("dropoff")
    eta = None
    if position is not None and destination and trip.ended_at is None:
        metres = telematics.haversine_m(position[0], position[1], destination[0], destination[1])  # type: ignore[index]
        eta = max(1, round(metres * 1.3 / ETA_SPEED_MPS / 60))  # 1.3: streets are longer than the crow flies
    vehicle = telematics.vehicle(session, vehicle_id=trip.vehicle_id)
    driver = session.get(DataSubject, trip.driver_id) if trip.driver_id else None
    driver_name = _masked_name(session, vault, driver)
    how, _, ref = share.created_by.partition(":")
    if how == "sos":
        incident = session.get(Incident, ref)
        sharer_id = incident.caller_id if incident is not None else None
    else:
        sharer_id = ref if how in ("subject", "auto") else None
    sharer = session.get(DataSubject, sharer_id) if sharer_id else None
    names = {key: value if isinstance(value, str) else None
             for key, value in (("start_name", plan.get("pickup_name")),
                                ("destination_name", plan.get("dropoff_name")))}
    return ShareView(share_id=share.id, shared_by=_masked_name(session, vault, sharer), **names,
                     how={"auto": "automatic", "sos": "sos"}.get(how, "shared"), trip_id=trip.id,
                     arrived=trip.ended_at is not None, position=position, position_at=position_at,
                     route=route, start=plan.get("pickup"), destination=destination,  # type: ignore[arg-type]
                     eta_minutes=eta, driver=driver_name,
                     vehicle={"plate": vehicle.plate, "colour": vehicle.colour, "model": vehicle.model}
                     if vehicle else None)
