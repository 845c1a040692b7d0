"""Supervision rules over the audit log, run incrementally: each run reads only the entries sequenced
since the last (by their leaf index), and flags staff who
- read many distinct people's data within an hour (`many_people`, 100 by default);
- read personal data outside working hours in the operator's time zone (`after_hours`, 08:00-20:00);
- export a list in bulk (`bulk_export`, 1,000 rows or more);
- read an order's personal data, or a trip's positions, without a case or a complaint about it to read
  it for (`unassigned`: one finding per person and record, each further read added to its evidence). A
  case is a reason for whoever handles it, and, while it waits in the queue unacknowledged, for any
  safety agent on duty who opens it to triage (`safety.service.had_a_case`); a complaint, for the
  support agent who holds it (the feedback desk's, registered at start-up by `tripguard.wiring`:
  feedback sits above workforce, which never imports it);
- give work to a worker the dispatch gate refuses, overriding it with a reason (`gate_override`: one
  finding per override, staff or the operator's backend alike, the order as its record).
A finding names the staff member, the window and how many, with the audit entries as evidence, and
goes to the supervision team. One open finding per rule, person and window: a run never repeats one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.audit.service import EntryView
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.errors import Conflict, NotFound
from tripguard.core.ids import new_id
from tripguard.safety import service as safety
from tripguard.security.permissions import Decision
from tripguard.security.principal import refuse_own
from tripguard.workforce.models import Finding, SupervisionCursor

CURSOR = "rules"
BATCH = 5000
EVIDENCE = 500


@dataclass(frozen=True)
class Thresholds:
    people_per_hour: int = 100
    working_from: time = time(8)
    working_until: time = time(20)
    bulk_rows: int = 1000
    timezone: str = "Asia/Shanghai"


def _open_finding(session: Session, rule: str, actor_id: str, since: datetime) -> Finding | None:
    return session.scalar(select(Finding).where(Finding.rule == rule, Finding.actor_id == actor_id,
                                                Finding.status == "open", Finding.window_end >= since).limit(1))


def _add(session: Session, rule: str, entry: EntryView, start: datetime, end: datetime, count: int,
         evidence: list[int]) -> Finding:
    finding = Finding(id=new_id("fnd"), rule=rule, actor_type=entry.actor_type, actor_id=entry.actor_id,
                      window_start=start, window_end=end, count=count, evidence=evidence[:EVIDENCE], status="open",
                      created_at=utcnow())
    session.add(finding)
    session.flush()
    return finding


def _many_people(session: Session, entry: EntryView, limits: Thresholds) -> None:
    start = entry.ts - timedelta(hours=1)
    if _open_finding(session, "many_people", entry.actor_id, start) is not None:
        return
    people = audit.targets_in_window(session, actor_type="staff", actor_id=entry.actor_id, action="personal.read",
                                     since=start, until=entry.ts)
    if people >= limits.people_per_hour:
        ids = audit.ids_in_window(session, actor_type="staff", actor_id=entry.actor_id, action="personal.read",
                                  since=start, until=entry.ts, limit=EVIDENCE)
        _add(session, "many_people", entry, start, entry.ts, people, ids)


def _after_hours(session: Session, entry: EntryView, limits: Thresholds) -> None:
    local = entry.ts.astimezone(ZoneInfo(limits.timezone))
    if limits.working_from <= local.time() < limits.working_until:
        return
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(entry.ts.tzinfo)
    existing = _open_finding(session, "after_hours", entry.actor_id, day_start)
    if existing is not None:
        existing.count += 1
        existing.window_end = max(existing.window_end, entry.ts)
        if len(existing.evidence) < EVIDENCE:
            existing.evidence = [*existing.evidence, entry.id]
        return
    _add(session, "after_hours", entry, entry.ts, entry.ts, 1, [entry.id])


def _bulk_export(session: Session, entry: EntryView, limits: Thresholds) -> None:
    try:
        rows = int(json.loads(entry.details or "{}").get("rows", 0))
    except (ValueError, TypeError, AttributeError):
        return
    if rows >= limits.bulk_rows:
        _add(session, "bulk_export", entry, entry.ts, entry.ts, rows, [entry.id])


# Where reading a record needs a reason the system knows of: a case or a complaint about it, for the reader.
UNASSIGNED_READS = {("personal.read", "delivery_orders"): "order_id", ("trip.trajectory_read", "trip"): "trip_id"}


class HoldsComplaint(Protocol):
    def __call__(self, session: Session, *, staff_id: str, trip_id: str | None = None,
                 order_id: str | None = None) -> bool:
        """Does this support agent hold a complaint about the trip or the order?"""
        ...


@dataclass
class _Feedback:
    holds_complaint: HoldsComplaint | None = None


_feedback = _Feedback()


def register_complaint_holder(holds_complaint: HoldsComplaint) -> None:
    """The feedback desk's answer (`feedback.desk.is_assigned`)."""
    _feedback.holds_complaint = holds_complaint


def _holds_complaint(session: Session, *, staff_id: str, trip_id: str | None = None,
                     order_id: str | None = None) -> bool:
    if _feedback.holds_complaint is None:  # refuse rather than flag every support agent's read
        raise RuntimeError("no holder of complaints is registered (tripguard.wiring.wire)")
    return _feedback.holds_complaint(session, staff_id=staff_id, trip_id=trip_id, order_id=order_id)


def _unassigned(session: Session, entry: EntryView) -> None:
    if entry.purpose == "delivery":  # a kitchen printing its own order's label: its link to the merchant is the reason
        return
    about = {UNASSIGNED_READS[(entry.action, entry.target_type or "")]: entry.target_id}
    if safety.had_a_case(session, staff_id=entry.actor_id, at=entry.ts, **about) or _holds_complaint(
            session, staff_id=entry.actor_id, **about):
        return
    existing = session.scalar(select(Finding).where(Finding.rule == "unassigned", Finding.actor_id == entry.actor_id,
                                                    Finding.status == "open", Finding.record == entry.target_id))
    if existing is not None:
        existing.count += 1
        existing.window_end = max(existing.window_end, entry.ts)
        if len(existing.evidence) < EVIDENCE:
            existing.evidence = [*existing.evidence, entry.id]
        return
    _add(session, "unassigned", entry, entry.ts, entry.ts, 1, [entry.id]).record = entry.target_id


# Work given over the dispatch gate (`delivery.service.ask_gate`): each one is put before the supervision team.
GATE_OVERRIDES = ("order.assign_override",)


def _gate_override(session: Session, entry: EntryView) -> None:
    _add(session, "gate_override", entry, entry.ts, entry.ts, 1, [entry.id]).record = entry.target_id


def run_rules(factory: sessionmaker[Session], *, limits: Thresholds) -> int:
    """Read the entries sequenced since the last run; returns how many were read."""
    with unit_of_work(factory) as session:
        cursor = session.get(SupervisionCursor, CURSOR)
        if cursor is None:
            cursor = SupervisionCursor(name=CURSOR, last_seq=-1)
            session.add(cursor)
        top = audit.last_seq(session)
        if top is None or top <= cursor.last_seq:
            return 0
        entries = audit.sequenced_between(session, after=cursor.last_seq, upto=top, actor_type="staff",
                                          or_actions=GATE_OVERRIDES, limit=BATCH)
        for entry in entries:
            if entry.action in GATE_OVERRIDES:
                _gate_override(session, entry)
                continue
            if (entry.action, entry.target_type or "") in UNASSIGNED_READS:
                _unassigned(session, entry)
            if entry.action == "personal.read":
                _many_people(session, entry, limits)
                _after_hours(session, entry, limits)
            elif entry.action == "console.export":
                _bulk_export(session, entry, limits)
        # A full batch stops at its last entry; otherwise everything up to `top` has been read.
        cursor.last_seq = int(entries[-1].seq or top) if len(entries) == BATCH else int(top)
        return len(entries)


def findings(session: Session, *, status: str | None = "open", limit: int = 200) -> list[Finding]:
    statement = select(Finding).order_by(Finding.created_at.desc()).limit(limit)
    if status:
        statement = statement.where(Finding.status == status)
    return list(session.scalars(statement))


def get(session: Session, *, finding_id: str) -> Finding:
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise NotFound("no such finding")
    return finding


def review(session: Session, *, actor: Actor, finding_id: str, outcome: str) -> Finding:
    finding = get(session, finding_id=finding_id)
    if finding.status != "open":
        raise Conflict("this finding was reviewed")
    if finding.actor_type == actor.type:  # a finding about a staff member's reads, or an API key's
        refuse_own(actor, Decision.FINDING, finding.actor_id)
    finding.status, finding.outcome = "reviewed", outcome
    finding.reviewed_by, finding.reviewed_at = f"{actor.type}:{actor.id}", utcnow()
    audit.record(session, actor=actor, action="finding.review", target_type="workforce_findings",
                 target_id=finding.id, details={"outcome": outcome})
    return finding


def evidence_entries(session: Session, *, finding: Finding, limit: int = 100) -> list[EntryView]:
    """The audit entries a finding names, oldest first (its evidence)."""
    return audit.entries_by_id(session, entry_ids=finding.evidence[:limit])
