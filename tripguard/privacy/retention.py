"""Retention: erase what has been kept long enough, except what a legal hold keeps; report it all.

Each rule finds expired items in batches and erases them; a run is idempotent (what is erased is
not found again) and a dry run only counts. Defaults follow DESIGN.md §5 and can be set per
deployment (`TRIPGUARD_RETENTION_*`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Select, delete, func, or_, select, union
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service as audit
from tripguard.audit.service import Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.errors import NotFound
from tripguard.core.i18n import N_
from tripguard.core.ids import new_id
from tripguard.core.settings import Settings
from tripguard.delivery import retention as delivery_retention
from tripguard.delivery import service as orders
from tripguard.feedback import service as complaints
from tripguard.notify.models import OutboxMessage
from tripguard.privacy import service
from tripguard.privacy.models import DataSubject, LegalHold, RetentionRun
from tripguard.safety import recordings
from tripguard.safety import service as cases
from tripguard.safety.retention import expired_cases
from tripguard.telematics.store.retention import expired_trips, old_ingest_keys
from tripguard.vault.service import Vault

BATCH = 200


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    keep: timedelta
    run: Callable[[Session, Vault, datetime, bool], tuple[int, int]]  # -> (erased, held back)


def held_subjects() -> Select[str]:
    """The subjects under an active legal hold, as a subquery: rules filter them out in SQL, so a batch is
    never filled with held items (which would stall the rule for good)."""
    return select(LegalHold.subject_id).where(LegalHold.released_at.is_(None))


def _busy(active_since: datetime | None = None) -> list[Select[Any]]:
    """People with an order in flight (or, given `active_since`, one completed since then) or a safety case
    not yet resolved: no rule erases them, or empties their orders' contacts, meanwhile. Filtered in SQL
    like legal holds (one flat UNION: SQLite takes no nested one), and counted as held."""
    return [*orders.people_with_orders(completed_since=active_since), *cases.people_with_live_cases()]


def held_or_busy(active_since: datetime | None = None) -> CompoundSelect[str]:
    """Under a legal hold, or busy (`_busy`)."""
    return union(held_subjects(), *_busy(active_since))


def count(session: Session, model: type, *where: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _erase_inactive_subjects(keep: timedelta, kinds: tuple[str, ...], reason: str):  # type: ignore[no-untyped-def]
    def run(session: Session, vault: Vault, now: datetime, dry_run: bool) -> tuple[int, int]:
        # Only people the operator recorded details for: someone registered by a domain's first write (an
        # order, an application, a trip) holds nothing here; their data goes with that domain's own rule
        # (an order's contact after its window), and their key must live while the domain still needs it.
        recorded = or_(*(getattr(DataSubject, column).is_not(None) for column in service.SUBJECT_FIELDS))
        expired = (DataSubject.erased_at.is_(None), DataSubject.kind.in_(kinds), DataSubject.updated_at < now - keep,
                   recorded)
        # A returning customer's new order still in flight (or delivered within the window) needs their key.
        on_hold = DataSubject.id.in_(held_or_busy(active_since=now - keep))
        held = count(session, DataSubject, *expired, on_hold)
        if dry_run:
            return count(session, DataSubject, *expired, ~on_hold), held
        erasable = list(session.scalars(select(DataSubject.id).where(*expired, ~on_hold)
                                        .order_by(DataSubject.updated_at).limit(BATCH)))
        for subject_id in erasable:
            service.erase_subject(session, vault, actor=Actor("system", "retention"), subject_id=subject_id,
                                  reason=reason)
        return len(erasable), held
    return run


def _delete_finished_messages(keep: timedelta):  # type: ignore[no-untyped-def]
    def run(session: Session, vault: Vault, now: datetime, dry_run: bool) -> tuple[int, int]:
        where = (OutboxMessage.status.in_(("sent", "dead")), OutboxMessage.created_at < now - keep)
        if dry_run:
            return session.scalar(select(func.count()).select_from(OutboxMessage).where(*where)) or 0, 0
        ids = list(session.scalars(select(OutboxMessage.id).where(*where).limit(BATCH)))
        if ids:
            session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
        return len(ids), 0
    return run


def rules(settings: Settings) -> list[Rule]:
    delivery = timedelta(hours=settings.retention_delivery_contact_hours)
    trips = timedelta(days=settings.retention_trip_data_days)
    messages = timedelta(days=settings.retention_messages_days)
    return [
        # the confidential-delivery rules, 二(四)1: delete after the order
        Rule("delivery_contacts", "food-delivery customers' contact data after the order window",
             delivery, _erase_inactive_subjects(delivery, ("customer",), "retention")),
        Rule("delivery_orders", "orders' contact, address and notes after the order (an anonymous record stays)",
             delivery, delivery_retention.expired(delivery, held_or_busy)),
        Rule("ride_subjects", "passengers, drivers, couriers and contacts inactive past the trip-data period",
             trips, _erase_inactive_subjects(trips, ("passenger", "driver", "courier", "emergency_contact"),
                                             "retention")),
        Rule("trips", "trips, their positions, alerts and check-ins past the trip-data period (key shredded)",
             trips, expired_trips(trips, held_subjects)),
        Rule("case_positions", N_("where SOS callers were, and cases' own keys, past the trip-data period after the "
                                  "case ended"), trips, expired_cases(trips, held_subjects)),
        Rule("recordings", "in-car recordings past their period, unless a case about the trip is open",
             timedelta(days=settings.retention_recording_days), recordings.expired()),
        Rule("ingest_keys", "idempotency keys of trip-event batches (a retry comes within minutes)",
             timedelta(days=1), old_ingest_keys(timedelta(days=1))),
        Rule("complaints", "complaints and ratings past the trip-data period, unless their author is on hold",
             trips, complaints.expired(trips, held_subjects)),
        Rule("sent_messages", "sent or abandoned outbox messages (they carry contact details)",
             messages, _delete_finished_messages(messages)),
    ]


def run_retention(factory: sessionmaker[Session], vault: Vault, settings: Settings, *, dry_run: bool,
                  actor: Actor, progress: Callable[[str, int], None] | None = None) -> RetentionRun:
    """Run every rule to completion in committed batches; record the run and its report.

    It opens its own transactions: a caller must not hold one open meanwhile (on SQLite it would
    hold the writer lock the batches wait for).
    """
    now = utcnow()
    with unit_of_work(factory) as session:
        run = RetentionRun(id=new_id("ret"), started_at=now, dry_run=dry_run, actor=f"{actor.type}:{actor.id}",
                           report={})
        session.add(run)
    report: dict[str, object] = {}
    for rule in rules(settings):
        erased_total = held_total = 0
        while True:
            with unit_of_work(factory) as session:
                erased, held = rule.run(session, vault, now, dry_run)
            erased_total += erased
            held_total = max(held_total, held)
            if progress:
                progress(rule.name, erased)
            if dry_run or erased < BATCH:
                break
        report[rule.name] = {"erased" if not dry_run else "would_erase": erased_total, "held": held_total,
                             "keep_days": round(rule.keep.total_seconds() / 86400, 2)}
    # Keys of key backups older than the window: destroyed, so those key backups never open again.
    report["key_backup_keys"] = {"erased" if not dry_run else "would_erase":
                                 vault.backup_keys.expired_count() if dry_run else vault.backup_keys.purge(),
                                 "held": 0, "keep_days": vault.backup_keys.window.days}
    with unit_of_work(factory) as session:
        stored = session.get(RetentionRun, run.id)
        assert stored is not None
        stored.report, stored.finished_at = report, utcnow()
        audit.record(session, actor=actor, action="retention.run", target_type="retention_run", target_id=run.id,
                     details={"dry_run": dry_run, **{k: str(v) for k, v in report.items()}})
        return stored


def place_hold(session: Session, *, actor: Actor, subject_id: str, case_ref: str, reason: str) -> LegalHold:
    hold = LegalHold(id=new_id("hold"), subject_id=subject_id, case_ref=case_ref, reason=reason,
                     created_by=f"{actor.type}:{actor.id}", created_at=utcnow())
    session.add(hold)
    audit.record(session, actor=actor, action="hold.place", target_type="privacy_subjects", target_id=subject_id,
                 details={"case": case_ref, "hold": hold.id})
    return hold


def release_hold(session: Session, *, actor: Actor, hold_id: str) -> LegalHold:
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound("no such legal hold")
    if hold.released_at is None:
        hold.released_at = utcnow()
        audit.record(session, actor=actor, action="hold.release", target_type="privacy_subjects",
                     target_id=hold.subject_id, details={"hold": hold.id})
    return hold
