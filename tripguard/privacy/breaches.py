"""Data breaches (PIPL Art. 57; seed 004 五(一)): contain, investigate, notify, report, close.

Investigation reads the audit log: which people's records were opened, by whom, in the window.
Notification goes to each affected person through the outbox with the Art. 57 fields (categories,
cause, possible harm, measures taken, what they can do, contact). A serious incident must be
reported to the authority within 4 hours of discovery; the clock is kept and the report says
whether it was met.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry
from tripguard.audit.service import Actor
from tripguard.core import i18n
from tripguard.core.clock import utcnow
from tripguard.core.db import Base
from tripguard.core.errors import Conflict, NotFound
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.privacy import access, service
from tripguard.privacy.catalogue import catalogue
from tripguard.privacy.models import Breach, BreachSubject, DataSubject
from tripguard.security import service as security
from tripguard.security.permissions import Purpose
from tripguard.vault.service import SubjectErased, Vault

AUTHORITY_DEADLINE = timedelta(hours=4)

PeopleOf = Callable[[Session, str], list[str | None]]  # (session, target id) -> the people a read exposed
OnScreen = Callable[[Session, list[dict[str, object]]], set[str]]  # live-map entries' details -> people shown
_people_of: dict[str, PeopleOf] = {}
_on_screen: list[OnScreen] = []
# Registered at start-up by the domains whose reads are audited under their own target types (a trip, a
# recording, a case's caller and driver) and by the live map (`tripguard.wiring`).


def register_people_of(target_type: str, people: PeopleOf) -> None:
    _people_of[target_type] = people


def people_of(session: Session, *, target_type: str, target_id: str) -> list[str | None]:
    """The people a read of this target exposed, as its domain registered them (a recording's are its trip's)."""
    registered = _people_of.get(target_type)
    return registered(session, target_id) if registered is not None else []


def register_on_screen(people: OnScreen) -> None:
    _on_screen[:] = [people]

# Every audited read of personal data: a person's record or any sealed field of theirs (case pages, contacts),
# an export, a trip's positions (with where its alerts happened), a recording, a share-link view; every
# machine use of a plaintext the system resolved (a telephony route's real number); the live map, whose
# openings and streams name the trips on screen (`telematics.detection.onscreen`); every record the regulator's feed
# exported (`regulator.gate`: the driver, the trip, the complaint, read for the legal obligation).
READ_ACTIONS = ("personal.read", "personal.use", "subject.export", "trip.trajectory_read", "recording.open",
                "share.view", "live_map.open", "live_map.shown", "regulator.export")
LIVE_MAP_ACTIONS = frozenset({"live_map.open", "live_map.shown"})


def get_breach(session: Session, *, breach_id: str) -> Breach:
    breach = session.get(Breach, breach_id)
    if breach is None:
        raise NotFound("no such breach")
    return breach


def all_breaches(session: Session) -> list[Breach]:
    """Every breach, the latest discovered first."""
    return list(session.scalars(select(Breach).order_by(Breach.discovered_at.desc())))


def affected(session: Session, *, breach_id: str) -> list[BreachSubject]:
    """The people a breach is known to have touched."""
    return list(session.scalars(select(BreachSubject).where(BreachSubject.breach_id == breach_id)))


def _open_only(breach: Breach) -> None:
    if breach.status == "closed":
        raise Conflict("this breach is closed")


def open_breach(session: Session, *, actor: Actor, title: str, serious: bool, occurred_from: datetime,
                occurred_to: datetime, categories: list[str], cause: str, harm: str, measures: str, advice: str,
                contact: str) -> Breach:
    now = utcnow()
    breach = Breach(id=new_id("brh"), title=title, status="open", serious=serious, discovered_at=now,
                    occurred_from=occurred_from, occurred_to=occurred_to, categories=categories, cause=cause,
                    harm=harm, measures=measures, advice=advice, contact=contact, containment=[],
                    authority_due_at=now + AUTHORITY_DEADLINE if serious else None,
                    opened_by=f"{actor.type}:{actor.id}")
    session.add(breach)
    audit.record(session, actor=actor, action="breach.open", target_type="breach", target_id=breach.id,
                 details={"serious": serious})
    return breach


def contain(session: Session, *, actor: Actor, breach_id: str, staff_ids: list[str], api_key_ids: list[str],
            vault: Vault | None = None) -> Breach:
    """Cut off access at once: end the named staff members' sessions, revoke the named API keys, and
    (given the vault) start a key rotation: a new KEK version seals everything from now on; the
    rewrap of existing data keys is `tripguard keys rotate --resume`."""
    breach = get_breach(session, breach_id=breach_id)
    _open_only(breach)
    actions: list[dict[str, object]] = []
    for staff_id in staff_ids:
        security.get_staff(session, staff_id=staff_id)
        count = security.revoke_sessions(session, actor=actor, staff_id=staff_id, reason=f"breach {breach.id}")
        actions.append({"at": utcnow().isoformat(), "action": "revoke_sessions", "staff_id": staff_id, "count": count})
    for key_id in api_key_ids:
        security.revoke_api_key(session, actor=actor, key_id=key_id)
        actions.append({"at": utcnow().isoformat(), "action": "revoke_api_key", "key_id": key_id})
    if vault is not None:
        version = vault.keys.add_version()
        actions.append({"at": utcnow().isoformat(), "action": "rotate_keys", "kek_version": version,
                        "next": "tripguard keys rotate --resume"})
    breach.containment = [*breach.containment, *actions]
    if breach.status == "open":
        breach.status = "contained"
    audit.record(session, actor=actor, action="breach.contain", target_type="breach", target_id=breach.id,
                 details={"actions": len(actions)})
    return breach


@dataclass(frozen=True)
class Findings:
    entries: int
    readers: dict[str, int]
    subjects: list[str]


def investigate(session: Session, *, actor: Actor, breach_id: str, reader_id: str | None,
                since: datetime | None, until: datetime | None) -> Findings:
    """Who opened which people's records in the window (default: the breach's); they become affected."""
    breach = get_breach(session, breach_id=breach_id)
    _open_only(breach)
    statement = select(AuditEntry).where(
        AuditEntry.action.in_(READ_ACTIONS),
        AuditEntry.ts >= (since or breach.occurred_from), AuditEntry.ts < (until or breach.occurred_to))
    if reader_id:
        statement = statement.where(AuditEntry.actor_id == reader_id)
    entries = list(session.scalars(statement.order_by(AuditEntry.id)))
    readers = Counter(f"{e.actor_type}:{e.actor_id}" for e in entries)
    resolve = _PeopleRead(session)
    people = {person for e in entries if e.action not in LIVE_MAP_ACTIONS for person in resolve(e)}
    shown = [json.loads(e.details or "{}") for e in entries if e.action in LIVE_MAP_ACTIONS]
    for on_screen in _on_screen:
        people |= on_screen(session, shown)
    subjects = sorted(people)
    known = set(session.scalars(select(BreachSubject.subject_id).where(BreachSubject.breach_id == breach.id)))
    for subject_id in subjects:
        if subject_id not in known:
            session.add(BreachSubject(breach_id=breach.id, subject_id=subject_id, found_by="investigation"))
    audit.record(session, actor=actor, action="breach.investigate", target_type="breach", target_id=breach.id,
                 details={"entries": len(entries), "subjects": len(subjects), "reader": reader_id})
    return Findings(entries=len(entries), readers=dict(readers), subjects=subjects)


class _PeopleRead:
    """The people whose data an audited read exposed (cached per target)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[tuple[str, str, frozenset[str]], list[str]] = {}

    def __call__(self, entry: AuditEntry) -> list[str]:
        if not entry.target_id or not entry.target_type:
            return []
        named = json.loads(entry.details or "{}").get("fields")
        fields = frozenset(named.split(",")) if isinstance(named, str) and named else frozenset()
        key = (entry.target_type, entry.target_id, fields)
        if key not in self.cache:
            self.cache[key] = [p for p in self._resolve(entry.target_type, entry.target_id, fields)
                               if p and not p.startswith(("trip:", "trip#", "incident:"))]
        return self.cache[key]

    def _resolve(self, target_type: str, target_id: str, named: frozenset[str]) -> list[str | None]:
        if target_type == DataSubject.__tablename__:
            return [target_id]
        people = people_of(self.session, target_type=target_type, target_id=target_id)
        # Any table with sealed fields (an incident's position, a contact): the subject column of the fields
        # the entry names (an order's customer phone is the customer's, not the merchant's), else all.
        fields = [f for f in catalogue(Base.metadata) if f.table == target_type]
        fields = [f for f in fields if f.column in named] or fields
        if not fields:
            return people
        table = Base.metadata.tables[target_type]
        columns = {f.subject_column for f in fields}
        row = self.session.execute(select(*(table.c[c] for c in columns)).where(table.c.id == target_id)).first()
        return [*(row if row is not None else ()), *people]


def add_subjects(session: Session, *, actor: Actor, breach_id: str, subject_ids: list[str]) -> int:
    breach = get_breach(session, breach_id=breach_id)
    _open_only(breach)
    known = set(session.scalars(select(BreachSubject.subject_id).where(BreachSubject.breach_id == breach.id)))
    added = [s for s in dict.fromkeys(subject_ids) if s not in known]
    for subject_id in added:
        session.add(BreachSubject(breach_id=breach.id, subject_id=subject_id, found_by="manual"))
    audit.record(session, actor=actor, action="breach.add_subjects", target_type="breach", target_id=breach.id,
                 details={"added": len(added)})
    return len(added)


def notify_affected(session: Session, *, vault: Vault, actor: Actor, breach_id: str, locale: str,
                    operator: str) -> int:
    """Queue the Art. 57 notice to every affected person not yet told (once each, however often called)."""
    breach = get_breach(session, breach_id=breach_id)
    _open_only(breach)
    pending = session.scalars(select(BreachSubject).where(BreachSubject.breach_id == breach.id,
                                                          BreachSubject.notified_at.is_(None))).all()
    words = i18n.translations_for(locale if locale in i18n.LOCALES else "zh_CN")
    kinds = ("、" if locale.startswith("zh") else ", ").join(words.gettext(c) for c in breach.categories)  # named
    params: dict[str, object] = {"operator": operator, "occurred": breach.occurred_from.strftime("%Y-%m-%d"),
              "categories": kinds, "cause": breach.cause, "harm": breach.harm,
              "measures": breach.measures, "advice": breach.advice, "contact": breach.contact}
    told = 0
    for affected in pending:
        subject = session.get(DataSubject, affected.subject_id)
        if subject is None:
            continue
        try:
            phone = access.open_field(vault, session, subject, "phone")
            email = access.open_field(vault, session, subject, "email")
        except SubjectErased:
            continue  # nothing of theirs is left to expose or to write to
        if not phone and not email:  # someone known through a domain: the phone their own records hold
            phone = service.reach(session, vault=vault, subject_id=subject.id, actor=actor,
                                  purpose=Purpose.BREACH_RESPONSE, use="breach notice")
        if not phone and not email:
            continue
        channel, to = ("sms", phone) if phone else ("email", email)
        notify.enqueue_to_person(session, vault=vault, subject_id=subject.id, channel=channel,
                                 to=str(to),
                                 template="breach_notice", locale=locale, params=params,
                                 idempotency_key=f"breach:{breach.id}:{subject.id}")
        affected.notified_at = utcnow()
        told += 1
    breach.status = "notifying"
    audit.record(session, actor=actor, action="breach.notify", target_type="breach", target_id=breach.id,
                 details={"notified": told})
    return told


def report_to_authority(session: Session, *, actor: Actor, breach_id: str, reference: str) -> Breach:
    breach = get_breach(session, breach_id=breach_id)
    _open_only(breach)
    breach.authority_reported_at, breach.authority_reference = utcnow(), reference
    audit.record(session, actor=actor, action="breach.report_authority", target_type="breach", target_id=breach.id)
    return breach


def close(session: Session, *, actor: Actor, breach_id: str) -> Breach:
    breach = get_breach(session, breach_id=breach_id)
    _open_only(breach)
    touched = affected(session, breach_id=breach.id)
    on_time = None
    if breach.serious:
        on_time = bool(breach.authority_reported_at and breach.authority_due_at
                       and breach.authority_reported_at <= breach.authority_due_at)
    breach.report = {
        "affected": len(touched), "notified": sum(1 for a in touched if a.notified_at),
        "containment_actions": len(breach.containment), "serious": breach.serious,
        "authority_reported_at": breach.authority_reported_at.isoformat() if breach.authority_reported_at else None,
        "authority_report_on_time": on_time,
        "hours_open": round((utcnow() - breach.discovered_at).total_seconds() / 3600, 2),
    }
    breach.status, breach.closed_at = "closed", utcnow()
    audit.record(session, actor=actor, action="breach.close", target_type="breach", target_id=breach.id)
    return breach


def open_count(session: Session) -> int:
    """Breaches not yet closed (the privacy office's dashboard)."""
    return session.scalar(select(func.count()).select_from(Breach).where(Breach.status != "closed")) or 0
