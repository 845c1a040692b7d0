"""Talking to the screening agency: requests go out from a queue, answers come back as callbacks.

A report is claimed in one short transaction, the agency is asked with no transaction open (a slow
agency holds no database writer), and its answer is stored in another. A timeout or a 5xx is retried
with exponential back-off; a refusal, or the last attempt, fails the report and puts the applicant
before a screening officer, so nobody waits for ever unseen. A crashed dispatcher's claim runs out
and the report is sent again: agencies deduplicate by our report id.

Callbacks are verified on the raw body before anything is parsed, and taken once per event id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit.actor import SYSTEM, Actor
from tripguard.core import jsonbody
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.errors import DomainError, InvalidInput, NotFound
from tripguard.core.ids import new_id
from tripguard.privacy import access
from tripguard.screening import service
from tripguard.screening.models import AgencyEvent, Applicant, Check, Report
from tripguard.screening.providers import (
    AgencyError,
    AgencyRefused,
    Finding,
    ScreeningAgency,
    verify,
)
from tripguard.vault.service import SubjectErased, Vault

logger = logging.getLogger("tripguard.screening")
MAX_BACKOFF = timedelta(hours=1)
CHECK_KINDS = frozenset(service.CHECKS["driver"])


class BadSignature(DomainError):
    status, type, title = 400, "/problems/bad-signature", "Signature not valid"


@dataclass
class DispatchResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Claimed:
    report_id: str
    applicant_id: str
    kind: str
    role: str
    name: str
    id_number: str
    selfie: str | None
    attempts: int


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=10 * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def _claim(factory: sessionmaker[Session], vault: Vault, *, hold: timedelta, batch: int) -> list[_Claimed]:
    claimed: list[_Claimed] = []
    with unit_of_work(factory) as session:
        now = utcnow()
        due = session.scalars(select(Report).where(Report.status == "queued", Report.next_attempt_at <= now)
                              .order_by(Report.next_attempt_at).limit(batch)).all()
        for report in due:
            # A conditional update: two dispatchers never take the same attempt.
            taken = session.execute(update(Report).where(Report.id == report.id, Report.status == "queued",
                                                         Report.attempts == report.attempts)
                                    .values(attempts=report.attempts + 1, next_attempt_at=now + hold)
                                    .execution_options(synchronize_session=False))
            if not taken.rowcount:  # type: ignore[attr-defined]
                continue
            applicant = session.get(Applicant, report.applicant_id)
            if applicant is None:
                continue
            try:
                name = access.open_field(vault, session, applicant, "name") or ""
                id_number = access.open_field(vault, session, applicant, "id_number") or ""
                selfie = access.open_field(vault, session, applicant, "selfie")
            except SubjectErased:
                report.status, report.last_error = "cancelled", "the applicant's data was erased"
                continue
            claimed.append(_Claimed(report.id, applicant.id, report.kind, applicant.role, name, id_number, selfie,
                                    report.attempts + 1))
    return claimed


def dispatch_reports(factory: sessionmaker[Session], *, vault: Vault, agency: ScreeningAgency, rules: service.Rules,
                     max_attempts: int = 8, timeout_seconds: float = 10, batch: int = 20) -> DispatchResult:
    """Send every queued report that is due; store what comes back at once."""
    result = DispatchResult()
    for claim in _claim(factory, vault, hold=timedelta(seconds=3 * timeout_seconds + 30), batch=batch):
        try:
            if claim.kind == "unenroll":
                agency.unenroll(applicant_id=claim.applicant_id)
                findings: list[Finding] = []
            else:
                findings = agency.request(report_id=claim.report_id, applicant_id=claim.applicant_id,
                                          id_number=claim.id_number, name=claim.name, role=claim.role,
                                          selfie=claim.selfie)
        except AgencyError as exc:
            final = claim.attempts >= max_attempts
            _note_failure(factory, vault, claim, str(exc), rules, final=final)
            result.failed += final
            result.retried += not final
            result.errors.append(f"{claim.report_id}: {exc}")
            continue
        except AgencyRefused as exc:
            _note_failure(factory, vault, claim, str(exc), rules, final=True)
            result.failed += 1
            result.errors.append(f"{claim.report_id}: {exc}")
            continue
        with unit_of_work(factory) as session:
            report = session.get(Report, claim.report_id)
            if report is None or report.status != "queued":
                continue
            report.status, report.requested_at, report.last_error = "requested", utcnow(), None
            if claim.kind == "unenroll":
                report.status, report.completed_at = "complete", utcnow()
            else:
                take_findings(session, vault=vault, report=report, findings=findings, rules=rules)
        result.sent += 1
    return result


def _note_failure(factory: sessionmaker[Session], vault: Vault, claim: _Claimed, error: str, rules: service.Rules,
                  *, final: bool) -> None:
    with unit_of_work(factory) as session:
        report = session.get(Report, claim.report_id)
        if report is None or report.status != "queued":
            return
        report.last_error = error[:200]
        if not final:
            report.next_attempt_at = utcnow() + _backoff(claim.attempts)
            return
        report.status = "failed"
        applicant = session.get(Applicant, claim.applicant_id)
        if applicant is None:
            return
        service.add_event(session, applicant=applicant, kind="report.failed", actor=SYSTEM, report=report.id,
                          attempts=claim.attempts)
        if applicant.status == "screening":
            service.move(session, applicant=applicant, status="review", actor=SYSTEM, rules=rules, why="agency_failed")
        logger.warning("screening report failed", extra={"event": f"{report.id} after {claim.attempts} attempts"})


def take_findings(session: Session, *, vault: Vault, report: Report, findings: list[Finding],
                  rules: service.Rules) -> bool:
    """Store answers and settle the applicant once nothing is pending. False when nothing changed."""
    changed = False
    for finding in findings:
        changed |= service.record_finding(session, vault=vault, report=report, finding=finding)
    if not changed:
        return False
    pending = session.scalar(select(Check.id).where(Check.report_id == report.id, Check.status == "pending")
                             .limit(1))
    if pending is not None:
        return True  # decided on the whole report, never on part of it
    if report.status in ("requested", "queued"):
        report.status, report.completed_at = "complete", utcnow()
    applicant = session.get(Applicant, report.applicant_id)
    if applicant is not None:
        session.flush()
        service.settle(session, vault=vault, applicant=applicant, rules=rules)
    return True


# --- callbacks --------------------------------------------------------------------------------------

def _finding(body: dict[str, Any]) -> Finding:
    check, status, result, facts = body.get("check"), body.get("status"), body.get("result"), body.get("facts")
    if check not in CHECK_KINDS or status not in ("complete", "suspended") or not isinstance(facts, dict):
        raise InvalidInput("a check.completed event names a known check, its status and its facts")
    if status == "complete" and result not in ("clear", "consider"):
        raise InvalidInput("a complete check is clear or consider")
    return Finding(str(check), str(status), str(result) if status == "complete" else None, facts)


def take_callback(session: Session, *, vault: Vault, rules: service.Rules, secret: str | None, agency: str,
                  raw: bytes, signature: str | None, now: int) -> str:
    """One signed event from the agency: `check.completed` for a report, `record.found` for a worker it
    monitors. Returns what happened: taken | duplicate."""
    if not secret or not verify(secret.encode(), raw, signature, now=now):
        raise BadSignature("the callback's signature does not match its body")
    try:
        body = jsonbody.loads(raw)
    except jsonbody.TooDeep as exc:  # 100,000 nested brackets were a RecursionError, a 500
        raise InvalidInput(str(exc)) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the body is not JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not 0 < len(body["id"]) <= 100:
        raise InvalidInput("an event carries its id")
    event_id = f"{agency}:{body['id']}"
    if session.get(AgencyEvent, event_id) is not None:
        return "duplicate"
    kind = body.get("type")
    if kind == "check.completed":
        report = session.get(Report, str(body.get("report", "")))
        if report is None:
            raise NotFound("no such report")
        applicant_id = report.applicant_id
        session.add(AgencyEvent(id=event_id, applicant_id=applicant_id, kind=kind, received_at=utcnow()))
        session.flush()  # a concurrent delivery of the same event fails here, before anything else is written
        take_findings(session, vault=vault, report=report, findings=[_finding(body)], rules=rules)
    elif kind == "record.found":
        applicant = session.get(Applicant, str(body.get("worker", "")))
        if applicant is None:
            raise NotFound("no such worker")
        records = body.get("records")
        if not isinstance(records, list) or not records or not all(isinstance(r, str) and len(r) <= 64
                                                                   for r in records):
            raise InvalidInput("a record.found event lists the record categories found")
        session.add(AgencyEvent(id=event_id, applicant_id=applicant.id, kind=kind, received_at=utcnow()))
        session.flush()
        record_pushed(session, vault=vault, applicant=applicant, records=records, agency=agency, rules=rules)
    else:
        raise InvalidInput("unknown event type")
    return "taken"


def record_pushed(session: Session, *, vault: Vault, applicant: Applicant, records: list[str], agency: str,
                  rules: service.Rules, actor: Actor = SYSTEM) -> None:
    """A new record found by the agency's continuous monitoring, added to what was known."""
    found, _ = service.latest_findings(session, vault=vault, applicant=applicant)
    known = set(found.get("criminal_record", {}).get("records") or [])
    now = utcnow()
    report = Report(id=new_id("rep"), applicant_id=applicant.id, kind="monitor", agency=agency,
                    status="complete", attempts=0, next_attempt_at=now, created_at=now, requested_at=now,
                    completed_at=now)
    session.add(report)
    check = Check(id=new_id("chk"), report_id=report.id, applicant_id=applicant.id, kind="criminal_record",
                  status="complete", result="consider", updated_at=now)
    session.add(check)
    session.flush()
    access.write_field(vault, session, check, "facts",
                       json.dumps({"records": sorted(known | set(records))}, ensure_ascii=False))
    service.add_event(session, applicant=applicant, kind="record.found", actor=actor, report=report.id)
    session.flush()
    service.settle(session, vault=vault, applicant=applicant, rules=rules)
