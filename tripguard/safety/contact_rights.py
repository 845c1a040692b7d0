"""An emergency contact's own rights (PIPL Art. 44-47): someone a person names as their emergency contact
is a data subject from the moment they are named, and can ask what TripGuard holds about them and have it
erased, though they have no app account.

Who they are. The name and phone are the owner's record, sealed under the owner's key (the owner gave
them; the owner's export lists them). The contact is a data subject of their own, kind `contact`, with a
random id (never one derived from the phone: that would outlive an erasure), one per phone number however
many people name it. They are found through the rows' blind index of the phone
(`EmergencyContact.phone_index`: left out of data backups, rebuilt on restore). Nothing of theirs is kept
beside the owners' rows: when the last owner removes them, TripGuard holds nothing more about them.

How they ask. They give the phone they were named with and what they want (`ask`, a public route that is
rate-limited and answers the same whether or not the number is anyone's contact); a code goes to the phone
as the owners hold it; with the code (`confirm`) an access request returns their export at once and an
erasure is carried out at once. A privacy officer may verify a waiting request some other way instead
(`privacy.requests.verify_in_person`).

What they get (`held_for`): their name and phone as each owner holds them, opened for the subject-request
purpose and audited row by row, with when they were named and confirmed, and by how many people (never
who).

What an erasure does (`forget_contact`, `tell_owners`, run by `privacy.service.erase_subject`): their rows
leave every owner's list; messages still waiting to them never go (the confirmation code, trip links, SOS
messages); each owner is told by SMS that one of their contacts asked to be removed (not who); the erasure
is journaled and recorded like any other.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.db import unit_of_work
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.privacy import access, requests
from tripguard.privacy import service as privacy
from tripguard.privacy.models import SubjectRequest
from tripguard.safety.models import EmergencyContact
from tripguard.security.permissions import Purpose
from tripguard.vault.crypto import DecryptionFailed
from tripguard.vault.service import SubjectErased, Vault

KIND = "contact"
SYSTEM = Actor("system", "contact_rights")
CONFIRM_FAILED = "the code does not match, has expired or was tried too often; ask for a new one"


def phone_index(vault: Vault, phone: str) -> str:
    return vault.blind_index("phone", privacy.normalise_phone(phone))


def _lock_number(session: Session, index: str) -> None:
    """Serialise everything that names or erases the contact with this number, until the transaction ends
    (PostgreSQL: an advisory lock; SQLite's writers are serialised by BEGIN IMMEDIATE already): two people
    naming one new number at once make one subject, and an erasure misses no row added meanwhile."""
    if session.get_bind().dialect.name != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(f"tripguard/contact-number|{index}".encode()).digest()[:8], "big",
                         signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _subject_of(session: Session, index: str) -> str | None:
    """The data subject already named with this number, if anyone names it (and they were not erased)."""
    for subject_id in session.scalars(select(EmergencyContact.contact_subject_id).where(
            EmergencyContact.phone_index == index, EmergencyContact.contact_subject_id.is_not(None))
            .order_by(EmergencyContact.created_at)):
        if subject_id and not privacy.is_erased(session, subject_id=subject_id):
            return subject_id
    return None


def name_as_subject(session: Session, *, vault: Vault, contact: EmergencyContact, phone: str) -> None:
    """In the transaction that stores `contact`: index its phone, and link it to the contact's data subject,
    the one this number already has or a new one (registered now: a data subject from the first write)."""
    index = phone_index(vault, phone)
    _lock_number(session, index)
    contact.phone_index = index
    existing = _subject_of(session, index)
    if existing is None:
        existing = new_id("cts")
        privacy.register(session, subject_id=existing, kind=KIND, source="contact")
    contact.contact_subject_id = existing


def link_existing(factory: sessionmaker[Session], *, vault: Vault, batch: int = 200) -> int:
    """Contacts stored before contacts were data subjects (migration 0042) get theirs, a batch a transaction.
    Run when the server starts; a second run, or one on another replica at once, finds nothing more to do.
    Returns how many rows were linked."""
    linked, last = 0, ""
    while True:
        with unit_of_work(factory) as session:
            rows = list(session.scalars(select(EmergencyContact).where(
                EmergencyContact.contact_subject_id.is_(None), EmergencyContact.id > last)
                .order_by(EmergencyContact.id).limit(batch)))
            if not rows:
                return linked
            done = 0
            for row in rows:
                last = row.id
                try:
                    phone = access.open_field(vault, session, row, "phone")
                except (SubjectErased, DecryptionFailed):
                    continue  # its owner was erased: the row goes with their erasure
                if phone:
                    name_as_subject(session, vault=vault, contact=row, phone=phone)
                    done += 1
            if done:  # the phones were opened to index them: one entry a batch, as a restore's rebuild does
                audit.record(session, actor=SYSTEM, action="contact.register_existing", target_type="safety_contacts",
                             target_id="phone_index", details={"linked": done, "last": last})
            linked += done


def subject_for_phone(session: Session, *, vault: Vault, phone: str) -> str | None:
    return _subject_of(session, phone_index(vault, phone))


def _rows(session: Session, subject_id: str) -> list[EmergencyContact]:
    return list(session.scalars(select(EmergencyContact).where(EmergencyContact.contact_subject_id == subject_id)
                                .order_by(EmergencyContact.created_at, EmergencyContact.id)))


def _named_with(session: Session, vault: Vault, subject_id: str) -> str | None:
    """The phone as the newest owner to name them holds it (opened for the request, audited)."""
    for row in reversed(_rows(session, subject_id)):
        try:
            phone = access.open_field(vault, session, row, "phone")
        except (SubjectErased, DecryptionFailed):
            continue
        if phone:
            access.record_use(session, actor=Actor("subject", subject_id), row=row, columns=["phone"],
                              purpose=Purpose.SUBJECT_REQUEST, use="verification code", disclosed=[])
            return phone
    return None


def ask(session: Session, *, vault: Vault, secret_key: str, phone: str, kind: str, locale: str) -> None:
    """Someone gives a phone and asks for their data or its erasure. If the number is a contact's, a code
    goes to it (a request filed, or the waiting one's code sent again); if not, nothing happens. The caller
    answers the same either way."""
    subject_id = subject_for_phone(session, vault=vault, phone=phone)
    if subject_id is None:
        return
    send_to = _named_with(session, vault, subject_id)
    if send_to is None:
        return
    waiting = requests.awaiting(session, subject_id=subject_id, kind=kind)
    if waiting is not None:
        # too many wrong codes: no new one (refused before any write), same answer
        with contextlib.suppress(requests.VerifyInPerson):
            requests.resend_code(session, vault=vault, secret_key=secret_key, subject_id=subject_id,
                                 request_id=waiting.id, locale=locale, send_to=send_to)
        return
    requests.file_request(session, vault=vault, secret_key=secret_key, subject_id=subject_id, kind=kind,
                          correction=None, locale=locale, idempotency_key=new_id("ctq"), send_to=send_to)


def confirm(session: Session, *, vault: Vault, secret_key: str, phone: str, kind: str,
            code: str) -> tuple[SubjectRequest, dict[str, Any] | None]:
    """The code the phone got: an access request is answered with the export, an erasure carried out. Any
    failure (no such contact, no request waiting, a wrong, old or overused code) is the same error."""
    subject_id = subject_for_phone(session, vault=vault, phone=phone)
    waiting = requests.awaiting(session, subject_id=subject_id, kind=kind) if subject_id else None
    if subject_id is None or waiting is None:
        raise requests.VerificationFailed(CONFIRM_FAILED)
    try:
        verified = requests.verify(session, vault=vault, secret_key=secret_key, subject_id=subject_id,
                                   request_id=waiting.id, code=code)
    except requests.VerificationFailed:
        raise requests.VerificationFailed(CONFIRM_FAILED) from None
    if kind != "access":
        return verified, None
    return verified, requests.export_for(session, vault=vault, subject_id=subject_id, request_id=verified.id)


def held_for(session: Session, *, vault: Vault, subject_id: str, actor: Actor) -> dict[str, Any] | None:
    """For the contact's export: their name and phone as each owner holds them (opened for the
    subject-request purpose, each row's opening audited), when each named and confirmed them, and by how
    many people. Never who: the owners' ids and data are theirs."""
    rows = _rows(session, subject_id)
    if not rows:
        return None
    entries = []
    for row in rows:
        opened = {column: access.open_for_export(vault, session, row, column) for column in ("name", "phone")}
        access.record_use(session, actor=actor, row=row, columns=["name", "phone"], purpose=Purpose.SUBJECT_REQUEST,
                          use="the contact's access request", disclosed=sorted(c for c, v in opened.items() if v))
        entries.append({**opened, "named_at": row.created_at.isoformat(),
                        "confirmed_at": row.verified_at.isoformat() if row.verified_at else None})
    return {"named_by": len({row.subject_id for row in rows}), "entries": entries}



@dataclass(frozen=True)
class Removed:
    """A row an erasure took from an owner's list: whom to tell, and what to tell them (when it was added)."""

    contact_id: str
    owner_id: str
    added: datetime


def forget_contact(session: Session, *, subject_id: str) -> list[Removed]:
    """On the contact's erasure: their rows leave every owner's list, and messages still waiting to them
    (the confirmation code, trip links, SOS messages, queued under the owners' keys) never go. Run by a live
    erasure and by a restore's re-application alike."""
    for index in sorted({row.phone_index for row in _rows(session, subject_id) if row.phone_index}):
        _lock_number(session, index)
    rows = _rows(session, subject_id)  # again, under the locks: a row added meanwhile goes too
    if not rows:
        return []
    # The keys of messages to a contact end with its row id (contacts.add, share_automatically, sos).
    notify.cancel_keyed(session, key_endings=[f":{row.id}" for row in rows])
    removed = [Removed(contact_id=row.id, owner_id=row.subject_id, added=row.created_at) for row in rows]
    session.execute(delete(EmergencyContact).where(EmergencyContact.id.in_([r.contact_id for r in removed]))
                    .execution_options(synchronize_session="fetch"))
    return removed


def tell_owners(session: Session, *, vault: Vault, removed: list[Removed], actor: Actor) -> int:
    """Each owner is told by SMS that a contact of theirs (added on that day) asked to be erased and was
    removed, so they can name someone else; not who. The removal is in the audit log either way."""
    told = 0
    for item in removed:
        audit.record(session, actor=actor, action="contact.remove", target_type="contact", target_id=item.contact_id,
                     details={"owner": item.owner_id, "why": "the contact's erasure"})
        phone = privacy.reach(session, vault=vault, subject_id=item.owner_id, actor=SYSTEM, purpose=Purpose.SUPPORT,
                              use="emergency contact removed")
        if not phone:
            continue
        notify.enqueue_to_person(session, vault=vault, subject_id=item.owner_id, channel="sms",
                                 to=phone,
                                 template="contact_removed", locale="zh_CN",
                                 params={"added": item.added.date().isoformat()},
                                 idempotency_key=f"contact-removed:{item.contact_id}:owner")
        told += 1
    return told
