"""Incidents (cases): the safety centre works them from open to closed, on a timeline.

SOS presses open them (`sos.py`); so do high-severity monitor alerts and check-ins answered "help"
or not at all. Agents acknowledge within the SLA (or the case escalates), assign, note, resolve with
an outcome and close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service as audit
from tripguard.audit.actor import SYSTEM, Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import as_hour, hour_of, unit_of_work
from tripguard.core.errors import Conflict, InvalidInput, NotFound
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.privacy import access, freetext
from tripguard.safety import recordings
from tripguard.safety.models import EmergencyContact, Incident, IncidentEvent
from tripguard.security.models import StaffAccount
from tripguard.security.permissions import Purpose, Role
from tripguard.security.principal import Principal
from tripguard.security.service import staff_roles
from tripguard.telematics import service as telematics
from tripguard.vault.service import Vault

ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {  # action: (from states, to state)
    "acknowledge": (("open",), "acknowledged"),
    "start": (("open", "acknowledged"), "in_progress"),
    "resolve": (("open", "acknowledged", "in_progress"), "resolved"),
    "close": (("resolved",), "closed"),
}
OUTCOMES = ("genuine", "false_alarm", "mistaken", "malicious")
HANDLERS = frozenset({Role.SAFETY_AGENT, Role.INVESTIGATOR})


def case_key(incident_id: str) -> str:
    """The vault subject of a case's own key: what the case keeps about a caller who has no key of their
    own any more (an erased caller's position, notes, the police payload). Shredded by the case's
    retention rule (`safety.retention`)."""
    return f"incident:{incident_id}"


def add_event(session: Session, *, incident: Incident, kind: str, actor: Actor, **details: object) -> None:
    session.add(IncidentEvent(id=new_id("iev"), incident_id=incident.id, at=utcnow(), kind=kind,
                              actor=f"{actor.type}:{actor.id}", details=details))


def feed_item(incident: Incident) -> dict[str, object]:
    """What the live queue shows before anyone opens the case (no personal data): its state, who holds
    it, when it was acknowledged (the countdown stops everywhere) and escalated (the alarm sounds again)."""
    return {"type": "incident", "id": incident.id, "source": incident.source, "severity": incident.severity,
            "status": incident.status, "silent": incident.silent, "trip_id": incident.trip_id,
            "order_id": incident.order_id, "claimed_trip_id": incident.claimed_trip_id,
            "claimed_order_id": incident.claimed_order_id, "assigned_to": incident.assigned_to,
            "created_at": incident.created_at.isoformat(), "ack_due_at": incident.ack_due_at.isoformat(),
            "acknowledged_at": _iso(incident.acknowledged_at), "escalated_at": _iso(incident.escalated_at),
            "escalated": incident.escalated_at is not None, "version": incident.version}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def get(session: Session, *, incident_id: str) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound("no such incident")
    return incident


def act(session: Session, *, vault: Vault, actor: Principal, incident_id: str, action: str, outcome: str | None,
        note: str | None, assignee: str | None = None) -> Incident:
    """An agent moves the case on, assigns it, or adds a note. Resolving names what it turned out to be."""
    # Locked (PostgreSQL): a change made meanwhile (the escalation) is waited for and read, not overwritten.
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise NotFound("no such incident")
    now = utcnow()
    if action == "assign":
        staff = session.get(StaffAccount, assignee) if assignee else None
        if staff is None or staff.disabled_at is not None or not (staff_roles(staff) & HANDLERS):
            raise InvalidInput("assign to an active safety agent or investigator (their staff id)")
        incident.assigned_to = staff.id
        add_event(session, incident=incident, kind="assign", actor=actor.actor, to=staff.id)
        return incident
    if action == "note":
        if not note:
            raise InvalidInput("a note needs text")
        # A note is free text about the caller: sealed under their key (the case's own if they have none or
        # were erased), so it dies with them; the timeline keeps a reference.
        caller_alive = incident.caller_id is not None and vault.data_key(
            session, incident.caller_id, create=False) is not None
        sealed_for = str(incident.caller_id) if caller_alive else case_key(incident.id)
        add_event(session, incident=incident, kind="note", actor=actor.actor,
                  **freetext.keep(session, vault=vault, subject_id=sealed_for, text=note[:500], label="note"))
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
    add_event(session, incident=incident, kind=action, actor=actor.actor, outcome=outcome)
    audit.record(session, actor=actor.actor, action=f"incident.{action}", target_type="incident", target_id=incident.id,
                 details={"outcome": outcome or ""})
    return incident


def escalate_overdue(factory: sessionmaker[Session], *, webhook_url: str | None) -> list[dict[str, object]]:
    """Open cases nobody acknowledged in time: marked, on the timeline, and sent to the operator."""
    now = utcnow()
    with unit_of_work(factory) as session:
        # A case an agent is acknowledging right now is left to the next run (it may not be waiting any more).
        overdue = list(session.scalars(select(Incident).where(Incident.status == "open",
                                                              Incident.escalated_at.is_(None),
                                                              Incident.ack_due_at <= now)
                                       .limit(100).with_for_update(skip_locked=True)))
        for incident in overdue:
            incident.escalated_at = now
            add_event(session, incident=incident, kind="escalated", actor=SYSTEM,
                      late_s=round((now - incident.ack_due_at).total_seconds()))
            if webhook_url:
                notify.enqueue_webhook(session, url=webhook_url, event="incident_escalated",
                                       payload={"incident_id": incident.id, "trip_id": incident.trip_id},
                                       idempotency_key=f"incident:{incident.id}:escalated")
        session.flush()  # the versions the items carry are those written
        return [feed_item(i) for i in overdue]


def note_evidence(session: Session, *, incident_id: str, trip_id: str, actor: Actor, **what: object) -> Incident:
    """Evidence about the trip was opened from this case: on its timeline. The case must be about that
    trip and still open (404 otherwise: the case is how the evidence was asked for)."""
    incident = session.get(Incident, incident_id)
    if incident is None or incident.trip_id != trip_id or incident.status == "closed":
        raise NotFound("no open case about this trip")
    add_event(session, incident=incident, kind="evidence", actor=actor, **what)
    return incident


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str
    actor: str
    details: dict[str, object]


def timeline(session: Session, *, vault: Vault, principal: Principal, incident_id: str) -> list[TimelineItem]:
    """The case's timeline; notes are opened through the gate for the emergency purpose (each read audited)."""
    events = list(session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                  .order_by(IncidentEvent.at, IncidentEvent.id)))
    refs = [str(e.details["note_ref"]) for e in events if e.kind == "note" and "note_ref" in e.details]
    notes = freetext.read(session, vault=vault, principal=principal, refs=refs, purpose=Purpose.EMERGENCY)
    items = []
    for event in events:
        details = {k: v for k, v in event.details.items() if k not in ("note_ref", "note_mac")}
        if "note_ref" in event.details:
            details["text"] = notes.get(str(event.details["note_ref"])) or access.ERASED
        items.append(TimelineItem(at=event.at, kind=event.kind, actor=event.actor, details=details))
    return items


def changed_since(session: Session, *, since: datetime, limit: int = 500) -> list[Incident]:
    """Cases with a timeline entry at or after `since`, oldest change first: what a live view that was
    away since then must be shown (a case opened or moved on during its gap)."""
    last_change = (select(IncidentEvent.incident_id, func.max(IncidentEvent.at).label("at"))
                   .where(IncidentEvent.at >= since).group_by(IncidentEvent.incident_id).subquery())
    statement = (select(Incident).join(last_change, last_change.c.incident_id == Incident.id)
                 .order_by(last_change.c.at, Incident.id).limit(limit))
    return list(session.scalars(statement))


LIVE_STATES = ("open", "acknowledged", "in_progress")
HANDLED_BY = ("acknowledge", "start", "resolve", "close")  # timeline kinds that show who worked the case


def people_with_live_cases() -> list[Select[Any]]:
    """Callers and drivers of cases not yet resolved, as subqueries: retention leaves them be meanwhile."""
    live = Incident.status.in_(LIVE_STATES)
    return [select(Incident.caller_id).where(live, Incident.caller_id.is_not(None)),
            select(Incident.driver_id).where(live, Incident.driver_id.is_not(None))]


def handles(principal: Principal, incident: Incident) -> bool:
    """Is this principal the live case's handler now: its assignee, or, while the case waits in the queue
    (open: nobody has acknowledged it), any safety agent or investigator, who may open it to triage?"""
    if incident.status not in LIVE_STATES or not (principal.roles & HANDLERS):
        return False
    return incident.status == "open" or incident.assigned_to == principal.id


def had_a_case(session: Session, *, staff_id: str, at: datetime, trip_id: str | None = None,
               order_id: str | None = None) -> bool:
    """Did this staff member have a case about the trip or the order to read it for, at `at` (supervision
    asks)? They hold or held it (assigned to them, or they acknowledged, started, resolved or closed it,
    or it was assigned to them); or it was waiting in the queue then (raised, nobody had acknowledged,
    resolved or closed it yet) and they are an active safety agent or investigator, who triages the queue."""
    about = Incident.trip_id == trip_id if trip_id is not None else Incident.order_id == order_id
    cases = list(session.scalars(select(Incident).where(about).order_by(Incident.created_at.desc()).limit(50)))
    if not cases:
        return False
    if any(case.assigned_to == staff_id for case in cases):
        return True
    if any(_waiting_at(case, at) for case in cases) and _on_duty(session, staff_id):
        return True
    events = session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id.in_([c.id for c in cases]),
                                                         IncidentEvent.kind.in_((*HANDLED_BY, "assign"))))
    return any(e.actor == f"staff:{staff_id}" if e.kind in HANDLED_BY else e.details.get("to") == staff_id
               for e in events)


def evidence_for_case(session: Session, *, principal: Principal, incident_id: str, trip_id: str,
                      **what: object) -> str | None:
    """Evidence about the trip opened from a case (telematics asks, `telematics.cases`): on the case's
    timeline (`note_evidence`); the case's id if the reader handles it now (`handles`), else None."""
    incident = note_evidence(session, incident_id=incident_id, trip_id=trip_id, actor=principal.actor, **what)
    return incident.id if handles(principal, incident) else None


def _waiting_at(incident: Incident, at: datetime) -> bool:
    ended = [t for t in (incident.acknowledged_at, incident.resolved_at, incident.closed_at) if t is not None]
    return incident.created_at <= at and (not ended or at <= min(ended))


def _on_duty(session: Session, staff_id: str) -> bool:
    staff = session.get(StaffAccount, staff_id)
    return staff is not None and staff.disabled_at is None and bool(staff_roles(staff) & HANDLERS)


def live_cases(session: Session, *, limit: int = 200) -> list[Incident]:
    """Cases not yet resolved, newest first."""
    return list(session.scalars(select(Incident).where(Incident.status.in_(LIVE_STATES))
                                .order_by(Incident.created_at.desc()).limit(limit)))


def open_case_ids(session: Session, *, limit: int = 100) -> list[str]:
    """Cases still waiting for an agent, newest first (the shell's badge on every page)."""
    return list(session.scalars(select(Incident.id).where(Incident.status == "open")
                                .order_by(Incident.created_at.desc()).limit(limit)))


def queue(session: Session, *, status: str | None, limit: int = 200) -> list[Incident]:
    statement = select(Incident).order_by(Incident.created_at.desc()).limit(limit)
    statement = statement.where(Incident.status == status) if status else statement.where(Incident.status != "closed")
    return list(session.scalars(statement))


def open_for_alert(session: Session, *, alert: telematics.AlertView, ack_seconds: int) -> Incident | None:
    """A high-severity alert (route deviation, possible crash) becomes a case; later ones of the same trip
    go on that case's timeline while it is not closed."""
    if alert.severity != "high":
        return None
    return _case_for_trip(session, source="alert", severity="high", trip_id=alert.trip_id, ack_seconds=ack_seconds,
                          kind="alert", details={"alert": alert.id, "alert_kind": alert.kind})


def open_for_check_in(session: Session, *, check_in: telematics.CheckInView, ack_seconds: int) -> Incident | None:
    """"Help" asked in a check-in is critical; no answer in time is high."""
    if check_in.status not in ("help", "unanswered"):
        return None
    return _case_for_trip(session, source="check_in", severity="critical" if check_in.status == "help" else "high",
                          trip_id=check_in.trip_id, ack_seconds=ack_seconds, kind="check_in",
                          details={"check_in": check_in.id, "answer": check_in.status, "role": check_in.role})


def case_for_help(session: Session, *, check_in: telematics.CheckInView, ack_seconds: int
                  ) -> dict[str, object] | None:
    """A check-in answered "help" (telematics asks, `telematics.cases`): its case, as the live queue shows it."""
    incident = open_for_check_in(session, check_in=check_in, ack_seconds=ack_seconds)
    return feed_item(incident) if incident is not None else None


def _new_case(session: Session, *, source: str, severity: str, ack_seconds: int, **fields: object) -> Incident:
    """A new open case on the queue, its timeline begun."""
    now = utcnow()
    incident = Incident(id=new_id("inc"), source=source, severity=severity, status="open", silent=False,
                        created_at=now, ack_due_at=now + timedelta(seconds=ack_seconds), **fields)
    session.add(incident)
    session.flush()
    add_event(session, incident=incident, kind="created", actor=SYSTEM, source=source)
    return incident


def open_for_identity_mismatch(session: Session, *, worker_id: str, check_id: str, score: float,
                               ack_seconds: int) -> Incident:
    """A shift-start selfie that is not the screened driver: someone else may be driving under their name."""
    incident = _new_case(session, source="identity", severity="high", ack_seconds=ack_seconds, driver_id=worker_id)
    add_event(session, incident=incident, kind="identity_mismatch", actor=SYSTEM, check=check_id, score=round(score, 2))
    return incident


def hold_recordings_for_complaint(session: Session, *, trip_id: str, days: int) -> int:
    """A complaint about the trip: its in-car recordings are kept `days` from when they were made; how many
    were extended (those uploaded later are held by `recordings.LONGER_HOLDS`)."""
    return recordings.hold_for_complaint(session, trip_id=trip_id, days=days)


def open_for_complaint(session: Session, *, complaint_id: str, subject_id: str, trip_id: str | None,
                       order_id: str | None, ack_seconds: int) -> Incident:
    """A complaint the feedback desk judged a safety matter: a case for the safety centre."""
    trip = telematics.trip(session, trip_id=trip_id) if trip_id else None
    incident = _new_case(session, source="complaint", severity="high", ack_seconds=ack_seconds, caller_id=subject_id,
                         trip_id=trip_id, order_id=order_id, vehicle_id=trip.vehicle_id if trip else None,
                         driver_id=trip.driver_id if trip else None)
    add_event(session, incident=incident, kind="complaint", actor=SYSTEM, complaint=complaint_id)
    return incident


def _case_for_trip(session: Session, *, source: str, severity: str, trip_id: str, ack_seconds: int, kind: str,
                   details: dict[str, object]) -> Incident:
    incident = session.scalar(select(Incident).where(Incident.trip_id == trip_id, Incident.status != "closed")
                              .order_by(Incident.created_at.desc()).limit(1))
    if incident is None:
        trip = telematics.trip(session, trip_id=trip_id)
        incident = _new_case(session, source=source, severity=severity, ack_seconds=ack_seconds,
                             caller_id=trip.passenger_id if trip else None,
                             caller_role="passenger" if trip else None, trip_id=trip_id,
                             vehicle_id=trip.vehicle_id if trip else None, driver_id=trip.driver_id if trip else None)
    elif severity == "critical" and incident.severity != "critical":
        incident.severity = "critical"
    add_event(session, incident=incident, kind=kind, actor=SYSTEM, **details)
    return incident


def cases_by_hour(session: Session, *, since: datetime) -> dict[datetime, dict[str, int]]:
    """Cases raised per hour since `since`, by source (the dashboard's chart)."""
    hour = hour_of(Incident.created_at)
    rows = session.execute(select(hour, Incident.source, func.count()).where(Incident.created_at >= since)
                           .group_by(hour, Incident.source))
    counts: dict[datetime, dict[str, int]] = {}
    for at, source, count in rows:
        counts.setdefault(as_hour(at), {})[source] = int(count)
    return counts


def live_case_count(session: Session) -> dict[str, int]:
    """Cases not yet resolved, by state."""
    rows = session.execute(select(Incident.status, func.count()).where(Incident.status.in_(
        ("open", "acknowledged", "in_progress"))).group_by(Incident.status))
    return {status: int(count) for status, count in rows}


def first_contact(session: Session, *, subject_id: str) -> EmergencyContact | None:
    """The person's verified emergency contact in the lowest slot (what an opted-in regulator export names)."""
    return session.scalars(select(EmergencyContact).where(EmergencyContact.subject_id == subject_id,
                                                          EmergencyContact.verified_at.is_not(None))
                           .order_by(EmergencyContact.slot).limit(1)).first()
