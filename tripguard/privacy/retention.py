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

from sqlalchemy import ColumnElement, CompoundSelect, Select, func, or_, select, union
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service as audit
from tripguard.audit.service import Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.errors import NotFound
from tripguard.core.ids import new_id
from tripguard.core.settings import Settings
from tripguard.privacy import service
from tripguard.privacy.models import DataSubject, LegalHold, RetentionRun
from tripguard.vault.service import Vault

BATCH = 200


Run = Callable[[Session, Vault, datetime, bool], tuple[int, int]]  # (now, dry run) -> (erased, held back)


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    keep: timedelta
    run: Run


RuleFor = Callable[[Settings], Rule]  # a rule, its period taken from the deployment's settings
Busy = Callable[[datetime | None], list[Select[Any]]]  # (active since) -> people busy with the domain

_rules: dict[str, tuple[int, RuleFor]] = {}
_busy_sources: dict[str, Busy] = {}
# Each domain registers the rules that erase its own data, and who it is busy with, at start-up
# (`tripguard.wiring`): retention runs them in `order` and never imports the domains.


def register_rule(name: str, *, order: int, rule: RuleFor) -> None:
    """`order`: where the rule runs among the others (an erased person's order contacts before the orders)."""
    _rules[name] = (order, rule)


def register_busy(name: str, source: Busy) -> None:
    _busy_sources[name] = source


def held_subjects() -> Select[str]:
    """The subjects under an active legal hold, as a subquery: rules filter them out in SQL, so a batch is
    never filled with held items (which would stall the rule for good)."""
    return select(LegalHold.subject_id).where(LegalHold.released_at.is_(None))


def _busy(active_since: datetime | None = None) -> list[Select[Any]]:
    """People with an order in flight (or, given `active_since`, one completed since then) or a safety case
    not yet resolved: no rule erases them, or empties their orders' contacts, meanwhile. Filtered in SQL
    like legal holds (one flat UNION: SQLite takes no nested one), and counted as held."""
    if not _busy_sources:  # erasing people with an order in flight is worse than not running
        raise RuntimeError("retention has no domain registered (tripguard.wiring.wire)")
    return [query for source in _busy_sources.values() for query in source(active_since)]


def held_or_busy(active_since: datetime | None = None) -> CompoundSelect[str]:
    """Under a legal hold, or busy (`_busy`)."""
    return union(held_subjects(), *_busy(active_since))


def _count(session: Session, model: type, *where: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _erase_inactive_subjects(keep: timedelta, kinds: tuple[str, ...], reason: str
                             ) -> Run:
    def run(session: Session, vault: Vault, now: datetime, dry_run: bool) -> tuple[int, int]:
        # Only people the operator recorded details for: someone registered by a domain's first write (an
        # order, an application, a trip) holds nothing here; their data goes with that domain's own rule
        # (an order's contact after its window), and their key must live while the domain still needs it.
        recorded = or_(*(getattr(DataSubject, column).is_not(None) for column in service.SUBJECT_FIELDS))
        expired = (DataSubject.erased_at.is_(None), DataSubject.kind.in_(kinds), DataSubject.updated_at < now - keep,
                   recorded)
        # A returning customer's new order still in flight (or delivered within the window) needs their key.
        on_hold = DataSubject.id.in_(held_or_busy(active_since=now - keep))
        held = _count(session, DataSubject, *expired, on_hold)
        if dry_run:
            return _count(session, DataSubject, *expired, ~on_hold), held
        erasable = list(session.scalars(select(DataSubject.id).where(*expired, ~on_hold)
                                        .order_by(DataSubject.updated_at).limit(BATCH)))
        for subject_id in erasable:
            service.erase_subject(session, vault=vault, actor=Actor("system", "retention"), subject_id=subject_id,
                                  reason=reason)
        return len(erasable), held
    return run


def rules(settings: Settings) -> list[Rule]:
    """Every registered rule, in order, its period from the settings."""
    return [rule(settings) for _, rule in sorted(_rules.values(), key=lambda entry: entry[0])]


def _subjects_rule(name: str, description: str, kinds: tuple[str, ...], days: Callable[[Settings], float],
                   unit: str) -> RuleFor:
    def rule(settings: Settings) -> Rule:
        keep = timedelta(**{unit: days(settings)})
        return Rule(name, description, keep, _erase_inactive_subjects(keep, kinds, "retention"))
    return rule


# privacy's own rules: the people it records (the domains' rules are registered by them)
register_rule("delivery_contacts", order=10, rule=_subjects_rule(
    "delivery_contacts", "food-delivery customers' contact data after the order window", ("customer",),
    lambda settings: settings.retention_delivery_contact_hours, "hours"))  # the confidential-delivery rules, 二(四)1
register_rule("ride_subjects", order=30, rule=_subjects_rule(
    "ride_subjects", "passengers, drivers, couriers and contacts inactive past the trip-data period",
    ("passenger", "driver", "courier", "emergency_contact"), lambda settings: settings.retention_trip_data_days,
    "days"))


def run_retention(factory: sessionmaker[Session], *, vault: Vault, settings: Settings, dry_run: bool,
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


def recent_runs(session: Session, *, limit: int) -> list[RetentionRun]:
    """The latest retention runs, newest first."""
    return list(session.scalars(select(RetentionRun).order_by(RetentionRun.started_at.desc()).limit(limit)))


def open_holds(session: Session, *, newest_first: bool = False) -> list[LegalHold]:
    """The legal holds not released, in the order they were placed (or the newest first)."""
    placed = LegalHold.created_at.desc() if newest_first else LegalHold.created_at
    return list(session.scalars(select(LegalHold).where(LegalHold.released_at.is_(None)).order_by(placed)))


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
