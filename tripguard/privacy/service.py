"""Data subjects: record with notice, find by phone, read through the gate, export, erase."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.service import Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import Base
from tripguard.core.errors import FieldProblem, InvalidInput, NotFound
from tripguard.core.ids import new_id
from tripguard.privacy import access
from tripguard.privacy.catalogue import Category, Key, PersonalField, catalogue
from tripguard.privacy.models import DataSubject, DeletionRecord, PrivacyNotice
from tripguard.privacy.subjects import Seen, register, register_many
from tripguard.security.permissions import Decision, Purpose
from tripguard.security.principal import refuse_own
from tripguard.vault.crypto import DecryptionFailed
from tripguard.vault.journal import Erasure
from tripguard.vault.service import SubjectErased, Vault

SUBJECT_FIELDS = ("name", "phone", "email")
__all__ = ["Seen", "register", "register_many"]  # domains register the people they store through this service


@dataclass(frozen=True)
class Erasing:
    """An erasure under way, as each domain's step sees it."""

    actor: Actor
    subject_id: str
    at: datetime
    vault: Vault | None  # given by a live erasure, not by a restore's re-application


T = TypeVar("T")
ErasureStep = Callable[[Session, Erasing], dict[str, int]]  # what it did, by kind
BeforeShred = Callable[[Session, Vault, str], object]  # (session, vault, subject id): while their key opens
ExportPart = Callable[[Session, Vault, Actor, DataSubject], tuple[dict[str, Any], set[str]]]  # (part, fields opened)
KeptByLaw = Callable[[Session, str, int], list[dict[str, object]]]  # (subject id, trip-data days)


@dataclass
class _Domains:
    """What the domains holding something about a person registered at start-up (`tripguard.wiring`):
    privacy asks them through these, never importing them."""

    before_shred: dict[str, BeforeShred]
    erasure: dict[str, tuple[int, ErasureStep]]
    export: dict[str, tuple[int, ExportPart]]
    kept_by_law: dict[str, KeptByLaw]


_domains = _Domains({}, {}, {}, {})


def register_erasure(name: str, *, order: int, step: ErasureStep, before_shred: BeforeShred | None = None) -> None:
    """`step` runs in every erasure, live or re-applied by a restore, in `order`; `before_shred` only in a
    live one, before the person's key goes."""
    _domains.erasure[name] = (order, step)
    if before_shred is not None:
        _domains.before_shred[name] = before_shred


def register_export(name: str, *, order: int, part: ExportPart) -> None:
    _domains.export[name] = (order, part)


def register_kept_by_law(name: str, kept: KeptByLaw) -> None:
    _domains.kept_by_law[name] = kept


def _in_order(registered: dict[str, tuple[int, T]]) -> list[T]:
    if not registered:  # an erasure that skipped the domains would leave the person behind
        raise RuntimeError("no domain is registered with privacy (tripguard.wiring.wire)")
    return [entry for _, entry in sorted(registered.values(), key=lambda item: item[0])]


def normalise_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]  # +86 138… and 138… are the same number
    return digits


def published_notice(session: Session, *, version: str) -> PrivacyNotice | None:
    return session.get(PrivacyNotice, version)


def notices(session: Session) -> list[PrivacyNotice]:
    """Every version published, newest first."""
    return list(session.scalars(select(PrivacyNotice).order_by(PrivacyNotice.published_at.desc())))


def get_notice(session: Session, *, version: str) -> PrivacyNotice:
    notice = published_notice(session, version=version)
    if notice is None:
        raise InvalidInput(errors=[FieldProblem(field="notice_version", message=f"no published notice {version!r}")])
    return notice


def publish_notice(session: Session, *, actor: Actor, version: str, purposes: list[str], categories: list[str],
                   retention_zh: str, retention_en: str, text_zh: str, text_en: str) -> PrivacyNotice:
    existing = session.get(PrivacyNotice, version)
    if existing is not None:
        return existing  # a published version never changes; publishing again is a no-op
    notice = PrivacyNotice(version=version, purposes=purposes, categories=categories,
                           retention_zh=retention_zh, retention_en=retention_en, text_zh=text_zh,
                           text_en=text_en, published_at=utcnow())
    session.add(notice)
    audit.record(session, actor=actor, action="notice.publish", target_type="notice", target_id=version)
    return notice


def upsert_subject(session: Session, *, vault: Vault, actor: Actor, subject_id: str, kind: str | None,
                   notice_version: str | None, values: dict[str, str | None]) -> DataSubject:
    """Record what the operator collected, with the notice the person was shown. Fields not given
    are left as they are; a field given as null is removed. (A correction applied to someone registered
    by a domain may carry no notice: the operator's API always names one.)"""
    if notice_version is not None:
        get_notice(session, version=notice_version)
    subject = session.get(DataSubject, subject_id)
    now = utcnow()
    if subject is not None and subject.erased_at is not None:
        raise SubjectErased("this subject was erased; their data is not collected again under this id")
    if subject is None:
        subject = DataSubject(id=subject_id, kind=kind, notice_version=notice_version, source="operator",
                              created_at=now, updated_at=now)
        session.add(subject)
    subject.kind, subject.notice_version, subject.updated_at = kind, notice_version, now
    for column, value in values.items():
        access.write_field(vault, session, subject, column, value)
        if column == "phone":
            subject.phone_index = vault.blind_index("phone", normalise_phone(value)) if value else None
    session.flush()
    audit.record(session, actor=actor, action="subject.upsert", target_type="privacy_subjects",
                 target_id=subject_id, details={"fields": ",".join(sorted(values)), "notice": notice_version})
    return subject


def recorded_kind(session: Session, subject_id: str) -> str | None:
    """The kind of person the operator recorded under this id (passenger, driver, …), or None if unknown."""
    return session.scalar(select(DataSubject.kind).where(DataSubject.id == subject_id))


def on_record(session: Session, *, subject_id: str | None) -> DataSubject | None:
    """The person with the details the operator recorded for them (name, phone or e-mail), or None: someone
    registered only by a domain's write (their first trip) has none here, and nothing to show or read."""
    subject = session.get(DataSubject, subject_id) if subject_id else None
    if subject is None or all(getattr(subject, column) is None for column in SUBJECT_FIELDS):
        return None
    return subject


def get_subject(session: Session, *, subject_id: str) -> DataSubject:
    subject = session.get(DataSubject, subject_id)
    if subject is None:
        raise NotFound("no such data subject")
    return subject


def is_erased(session: Session, *, subject_id: str) -> bool:
    return session.scalar(select(DataSubject.erased_at).where(DataSubject.id == subject_id)) is not None


def find_by_phone(session: Session, *, vault: Vault, phone: str) -> list[DataSubject]:
    index = vault.blind_index("phone", normalise_phone(phone))
    return list(session.scalars(select(DataSubject).where(DataSubject.phone_index == index)))


def export_subject(session: Session, *, vault: Vault, actor: Actor, subject_id: str,
                   request_id: str | None = None) -> dict[str, Any]:
    """Everything held about the person, decrypted: the answer to an access request (PIPL Art. 45). The
    domains add their parts (`register_export`): the person's trips; someone named as an emergency contact
    gets their name and phone as each owner holds them (`safety.contact_rights.held_for`)."""
    subject = get_subject(session, subject_id=subject_id)
    personal = {column: access.open_field(vault, session, subject, column) for column in SUBJECT_FIELDS}
    held = _held_elsewhere(session, vault, subject_id)
    parts: dict[str, Any] = {}
    opened = {f"{table}.{column}" for table, rows in held.items() for row in rows for column in row if column != "id"}
    for part in _in_order(_domains.export):
        more, fields = part(session, vault, actor, subject)
        parts.update(more)
        opened |= fields
    audit.record(session, actor=actor, action="subject.export", target_type="privacy_subjects",
                 target_id=subject_id, purpose=Purpose.SUBJECT_REQUEST.value,
                 details={"request": request_id, "fields": ",".join(sorted(opened))[:2000]})
    return {
        "subject_id": subject.id, "kind": subject.kind, "notice_version": subject.notice_version,
        "collected_at": subject.created_at.isoformat(), "updated_at": subject.updated_at.isoformat(),
        "personal_data": personal, "held_with_other_records": held, **parts,
    }


def _held_elsewhere(session: Session, vault: Vault, subject_id: str) -> dict[str, list[dict[str, str | None]]]:
    """The person's sealed fields in other records, opened for the subject-request purpose: their screening
    record (name, ID number, photo, the decision's reasons), what the checks found, their orders' contact
    and address, emergency contacts, where they pressed SOS, complaints, correction requests. Driven by the
    data catalogue (`PersonalField.exported`), so a new kind of record is exported as soon as it declares
    its personal fields. Fields under a trip's own key (positions, the planned route) belong to the trip:
    the export lists the person's trips; the positions are evidence, opened on a purpose (telematics.store.trips)."""
    by_table: dict[str, list[PersonalField]] = defaultdict(list)
    for spec in catalogue(Base.metadata):
        if spec.table != DataSubject.__tablename__ and spec.exported:
            by_table[spec.table].append(spec)
    models = {mapper.class_.__tablename__: mapper.class_ for mapper in Base.registry.mappers}
    held: dict[str, list[dict[str, str | None]]] = {}
    for table, specs in sorted(by_table.items()):
        model = models[table]
        keys = list(model.__table__.primary_key.columns)
        opened: dict[str, dict[str, str | None]] = {}
        for about in sorted({spec.about for spec in specs}):  # only the fields about this person (not a merchant's)
            theirs = [spec for spec in specs if spec.about == about]
            for row in session.scalars(select(model).where(getattr(model, about) == subject_id).order_by(*keys)):
                row_id = ":".join(str(getattr(row, key.key)) for key in keys)
                opened.setdefault(row_id, {"id": row_id}).update(
                    {spec.column: access.open_for_export(vault, session, row, spec.column) for spec in theirs})
        if opened:
            held[table] = list(opened.values())
    return held



def _kept_by_law(session: Session, subject_id: str, trip_data_days: int) -> list[dict[str, object]]:
    return [kept for rule in _domains.kept_by_law.values() for kept in rule(session, subject_id, trip_data_days)]


def erase_subject(session: Session, *, vault: Vault, actor: Actor, subject_id: str, reason: str,
                  request_id: str | None = None, trip_data_days: int = 730) -> DeletionRecord:
    """Crypto-shred the subject: every copy of their data, backups included once the key-backup window
    has passed, stops opening. The vault shreds the key; `erase_footprint` does the rest, the same way a
    restore re-applies it. Trip data kept by law stays, blocked (the deletion record says so)."""
    refuse_own(actor, Decision.SUBJECT_REQUEST, subject_id)  # a staff member never erases themselves
    get_subject(session, subject_id=subject_id)
    record_id = new_id("del")
    _in_order(_domains.erasure)  # no domain registered: refuse before anything is shredded
    for keep in _domains.before_shred.values():  # while their key still opens what the domain must keep
        keep(session, vault, subject_id)
    vault.shred(session, subject_id=subject_id, reason=reason, record_id=record_id)
    record, done = erase_footprint(session, actor=actor, subject_id=subject_id, at=utcnow(), record_id=record_id,
                                   reason=reason, request_id=request_id, trip_data_days=trip_data_days, vault=vault)
    assert record is not None
    audit.record(session, actor=actor, action="subject.erase", target_type="privacy_subjects",
                 target_id=subject_id, details={"reason": reason, "categories": ",".join(record.categories),
                                                "record": record.id, **done})
    return record


def erase_footprint(session: Session, *, actor: Actor, subject_id: str, at: datetime, record_id: str | None,
                    reason: str, request_id: str | None = None, trip_data_days: int = 730,
                    vault: Vault | None = None) -> tuple[DeletionRecord | None, dict[str, int]]:
    """Everything an erasure does to the database once the vault has shredded the person's key: the one
    function a live erasure and a restore's re-application both run, so a restored database holds exactly
    what the live one did. Their sealed columns and blind index go and `erased_at` is set; their open
    requests close and their codes die; links to their trips and unused invitation links stop working; their
    emergency contacts go; where they are someone's emergency contact, they leave every owner's list and
    messages waiting to them never go (`safety.contact_rights`; with `vault`, given by a live erasure and not
    by a restore's re-application, the owners are told); messages waiting under their key never go; the
    deletion record is kept (recreated when a restored backup predates it). What the law keeps (trips, SOS
    cases) stays, blocked.

    Each domain that holds something about a person does its part through the step it registered
    (`register_erasure`). Returns the record and what was done, by kind."""
    from tripguard.notify import service as notify
    from tripguard.privacy import requests

    subject = session.get(DataSubject, subject_id)
    categories = _categories(subject) if subject is not None else []
    if subject is not None:
        _clear(subject, at)
    record = session.get(DeletionRecord, record_id) if record_id else None
    if record_id and record is None:
        record = DeletionRecord(id=record_id, subject_id=subject_id, categories=categories, reason=reason[:32],
                                request_id=request_id, actor=f"{actor.type}:{actor.id}",
                                erased_at=subject.erased_at if subject is not None and subject.erased_at else at,
                                retained=_kept_by_law(session, subject_id, trip_data_days))
        session.add(record)
    done = {"requests": requests.close_for_erasure(session, subject_id=subject_id, record_id=record_id),
            "messages": notify.cancel_for_person(session, subject_id=subject_id)}
    erasing = Erasing(actor=actor, subject_id=subject_id, at=at, vault=vault)
    for step in _in_order(_domains.erasure):
        done.update(step(session, erasing))
    session.flush()
    return record, done


def _categories(subject: DataSubject) -> list[str]:
    return sorted({access.fields_of(DataSubject)[c].category.value for c in SUBJECT_FIELDS
                   if getattr(subject, c) is not None})


def _clear(subject: DataSubject, at: datetime) -> None:
    for column in SUBJECT_FIELDS:
        setattr(subject, column, None)
    subject.phone_index = None  # the blind index would still say "this phone was here"
    subject.erased_at = subject.erased_at or at


def people_without_keys(session: Session) -> list[str]:
    """People not erased, with sealed fields, and no data key: their data would be lost (wrong key backup)."""
    from tripguard.vault.models import DataKey

    has_data = or_(*(getattr(DataSubject, c).is_not(None) for c in SUBJECT_FIELDS))
    return list(session.scalars(select(DataSubject.id).where(
        DataSubject.erased_at.is_(None), has_data, DataSubject.id.not_in(select(DataKey.subject_id))).limit(5)))


RESTORE = Actor("restore", "erasure-journal")


def reapply_erasures(session: Session, erasures: list[Erasure]) -> None:
    """After a restore: everyone in the erasure journal is erased again, completely. The vault has shredded
    their keys again; here `erase_footprint` runs for each, the same function a live erasure runs. Journal
    lines for a trip's or a case's key (retention, no deletion record, no person) need only the shred."""
    for erasure in erasures:
        if erasure.record_id is None and session.get(DataSubject, erasure.subject_id) is None:
            continue
        erase_footprint(session, actor=RESTORE, subject_id=erasure.subject_id, at=datetime.fromisoformat(erasure.at),
                        record_id=erasure.record_id, reason=erasure.reason)
    session.flush()
    missing = people_without_keys(session)
    if missing:
        raise InvalidInput(f"people in the data backup have no key in the key backup (e.g. {missing[0]}): it is from "
                           "another database or older than the data backup; nothing was restored")


def phone_on_file(session: Session, *, vault: Vault, subject_id: str) -> str | None:
    """The person's phone as the operator recorded it, to send them a message (internal use, not a person
    looking); None when there is none, or the person was erased."""
    subject = session.get(DataSubject, subject_id)
    if subject is None or subject.phone is None or subject.erased_at is not None:
        return None
    try:
        return access.open_field(vault, session, subject, "phone")
    except SubjectErased:
        return None


def reach(session: Session, *, vault: Vault, subject_id: str, actor: Actor, purpose: Purpose,
          use: str) -> str | None:
    """A phone to send the person a message: the one the operator recorded for them, else the newest their
    own records hold (their order's contact phone, their application's), found through the data catalogue.
    A phone from another record is opened for `purpose` and its use audited (`access.record_use`); someone
    else's phone the person gave (an emergency contact's) is never used. None when there is none, or the
    person was erased."""
    own = phone_on_file(session, vault=vault, subject_id=subject_id)
    if own:
        return own
    subject = session.get(DataSubject, subject_id)
    if subject is not None and subject.erased_at is not None:
        return None
    found = _newest_phone_row(session, subject_id)
    if found is None:
        return None
    row, column = found
    try:
        phone = access.open_field(vault, session, row, column)
    except (SubjectErased, DecryptionFailed):
        return None
    if phone:
        access.record_use(session, actor=actor, row=row, columns=[column], purpose=purpose, use=use,
                          disclosed=[column])
    return phone


def _newest_phone_row(session: Session, subject_id: str) -> tuple[Base, str] | None:
    models = {mapper.class_.__tablename__: mapper.class_ for mapper in Base.registry.mappers}
    candidates: list[tuple[datetime | None, Base, str]] = []
    for spec in catalogue(Base.metadata):
        if (spec.category is not Category.PHONE or spec.key is not Key.PERSON or spec.third_party
                or spec.table == DataSubject.__tablename__):
            continue
        model = models[spec.table]
        column = getattr(model, spec.column)
        statement = select(model).where(getattr(model, spec.about) == subject_id, column.is_not(None))
        created = getattr(model, "created_at", None)
        if created is not None:
            statement = statement.order_by(created.desc())
        row = session.scalars(statement.limit(1)).first()
        if row is not None:
            candidates.append((getattr(row, "created_at", None), row, spec.column))
    if not candidates:
        return None
    newest = max(candidates, key=lambda c: c[0] or datetime.min.replace(tzinfo=UTC))
    return newest[1], newest[2]
