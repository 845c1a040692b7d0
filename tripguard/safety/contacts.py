"""Emergency contacts: up to five a person, sealed under that person's key, each confirmed by a code
sent to the contact's own phone (so nobody is named a contact without knowing it). The contact is a data
subject of their own from the moment they are named (`contact_rights`)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, InvalidInput, NotFound
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.privacy import access
from tripguard.safety import contact_rights, shares
from tripguard.safety.models import EmergencyContact
from tripguard.security import credentials
from tripguard.security.codes import CodeCheck, check_code
from tripguard.security.permissions import Purpose
from tripguard.security.principal import Principal
from tripguard.telematics.service import TripView
from tripguard.vault.service import Vault

MAX_CONTACTS = 5
CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5


def _hash(secret_key: str, contact_id: str, code: str) -> str:
    return credentials.keyed_hash(secret_key, f"{contact_id}:{code}", purpose="emergency-contact-code")


def add(session: Session, *, vault: Vault, secret_key: str, owner: Principal, name: str, phone: str,
        auto_share: str = "never") -> EmergencyContact:
    """A new contact in a free slot of the owner's five. The slot is unique per person in the database, so
    parallel additions cannot pass the limit: one that loses a slot to another tries the next free one."""
    contact = EmergencyContact(id=new_id("ctc"), subject_id=owner.id, attempts=0, auto_share=auto_share,
                               created_at=utcnow())
    access.write_field(vault, session, contact, "name", name)
    access.write_field(vault, session, contact, "phone", phone)
    contact_rights.name_as_subject(session, vault=vault, contact=contact,
                                   phone=phone)  # the contact is a data subject from now on
    code = f"{secrets.randbelow(10**6):06d}"
    contact.code_hash = _hash(secret_key, contact.id, code)
    contact.code_expires_at = utcnow() + CODE_LIFETIME
    if not _take_slot(session, contact):
        raise Conflict(f"at most {MAX_CONTACTS} emergency contacts; remove one first")
    notify.enqueue_to_person(session, vault=vault, subject_id=owner.id, channel="sms", to=phone,
                             template="contact_code",
                             locale="zh_CN", params={"code": code, "minutes": int(CODE_LIFETIME.total_seconds() // 60)},
                             idempotency_key=f"contact-code:{contact.id}")
    audit.record(session, actor=owner.actor, action="contact.add", target_type="contact", target_id=contact.id)
    return contact


def _take_slot(session: Session, contact: EmergencyContact) -> bool:
    """Store `contact` in the first slot still free (False: all five are taken)."""
    held = list(session.scalars(select(EmergencyContact.slot).where(EmergencyContact.subject_id == contact.subject_id)))
    if len(held) >= MAX_CONTACTS:
        return False
    for slot in sorted(set(range(1, MAX_CONTACTS + 1)) - set(held)):
        contact.slot = slot
        try:
            with session.begin_nested():
                session.add(contact)
                session.flush()
            return True
        except IntegrityError:  # a parallel addition took this slot first
            continue
    return False


def _own(session: Session, owner: Principal, contact_id: str) -> EmergencyContact:
    contact = session.get(EmergencyContact, contact_id)
    if contact is None or contact.subject_id != owner.id:
        raise NotFound("no such contact")
    return contact


def verify(session: Session, *, secret_key: str, owner: Principal, contact_id: str, code: str) -> EmergencyContact:
    contact = _own(session, owner, contact_id)
    if contact.verified_at is not None:
        return contact
    outcome = check_code(session, model=EmergencyContact, row_id=contact.id, attempts=EmergencyContact.attempts,
                         limit=MAX_ATTEMPTS, stored_hash=contact.code_hash, expires_at=contact.code_expires_at,
                         offered_hash=_hash(secret_key, contact.id, code.strip()))
    if outcome is CodeCheck.MISMATCH:
        raise InvalidInput("the code does not match")
    if outcome is not CodeCheck.OK:
        raise Conflict("this code can no longer be used; add the contact again")
    contact.verified_at, contact.code_hash = utcnow(), None
    audit.record(session, actor=owner.actor, action="contact.verify", target_type="contact", target_id=contact.id)
    return contact


def remove(session: Session, *, owner: Principal, contact_id: str) -> None:
    contact = _own(session, owner, contact_id)
    session.delete(contact)
    audit.record(session, actor=owner.actor, action="contact.remove", target_type="contact", target_id=contact_id)


def forget_person(session: Session, *, subject_id: str) -> int:
    """On erasure: the person's emergency contacts go, with any code still waiting to confirm one, so no trip
    of theirs is shared automatically again and no SOS tries to tell anyone (sealed under their shredded key,
    nobody could be reached anyway)."""
    removed = session.execute(delete(EmergencyContact).where(EmergencyContact.subject_id == subject_id)
                              .execution_options(synchronize_session="fetch"))
    return int(removed.rowcount)  # type: ignore[attr-defined]


def listing(session: Session, *, vault: Vault,
            owner: Principal) -> list[tuple[EmergencyContact, dict[str, str | None]]]:
    """The owner's contacts, masked (the app shows 王* 138****1234); each read audited by the gate."""
    rows = session.scalars(select(EmergencyContact).where(EmergencyContact.subject_id == owner.id)
                           .order_by(EmergencyContact.created_at))
    return [(c, {k: v.value for k, v in access.read_fields(vault, session, owner, c, ["name", "phone"],
                                                           purpose=Purpose.SUPPORT).items()}) for c in rows]


def set_auto_share(session: Session, *, owner: Principal, contact_id: str, auto_share: str) -> EmergencyContact:
    contact = _own(session, owner, contact_id)
    contact.auto_share = auto_share
    return contact


def night(local: datetime) -> bool:
    return local.hour >= 22 or local.hour < 6


def share_automatically(session: Session, *, vault: Vault, secret_key: str, trip: TripView, base_url: str,
                        zone: ZoneInfo) -> int:
    """A trip starts: its passenger's verified contacts who asked for it get a live link by SMS
    (every trip, or trips starting between 22:00 and 06:00 local time)."""
    if trip.passenger_id is None or trip.started_at is None:
        return 0
    wanted = ("always", "night") if night(trip.started_at.astimezone(zone)) else ("always",)
    chosen = list(session.scalars(select(EmergencyContact).where(
        EmergencyContact.subject_id == trip.passenger_id, EmergencyContact.verified_at.is_not(None),
        EmergencyContact.auto_share.in_(wanted))))
    if not chosen:
        return 0
    _, token = shares.create(session, secret_key=secret_key, trip=trip, created_by=f"auto:{trip.passenger_id}")
    for contact in chosen:
        phone = access.open_field(vault, session, contact, "phone")
        if phone:
            notify.enqueue_to_person(session, vault=vault, subject_id=trip.passenger_id,
                                     channel="sms", to=phone,
                                     template="trip_share", locale="zh_CN", params={"link": f"{base_url}/s/{token}"},
                                     idempotency_key=f"auto-share:{trip.id}:{contact.id}")
    return len(chosen)
