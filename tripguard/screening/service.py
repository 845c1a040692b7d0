"""Applicants from application to decision: consent, the checks an agency runs, the policy's decision,
and what each decision does (active, to a person's review, or a pre-adverse notice).

Every change of an applicant's status is one place (`move`): it writes the timeline, the audit entry
and the `worker.<status>` webhook in the caller's transaction. What the checks found is sealed under
the applicant's key; the timeline and webhooks carry codes and ids only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import SYSTEM, Actor
from tripguard.core import pictures
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from tripguard.core.i18n import N_
from tripguard.core.ids import new_id
from tripguard.core.settings import Settings
from tripguard.notify import service as notify
from tripguard.privacy import access
from tripguard.privacy.service import get_notice, register
from tripguard.screening import consents
from tripguard.screening.identity import read_id_number
from tripguard.screening.models import Applicant, Check, Event, Report
from tripguard.screening.policy import (
    Decision,
    Policy,
    PolicyInvalid,
    evaluate,
    facts_from,
    load_policy,
)
from tripguard.screening.providers import Finding
from tripguard.vault.service import SubjectErased, Vault

logger = logging.getLogger("tripguard.screening")
ROLES = ("driver", "courier")
CHECKS = {"driver": ("identity", "licence", "transport_certificate", "criminal_record", "driving_points", "credit"),
          "courier": ("identity", "criminal_record", "credit")}
STATUSES = ("screening", "review", "pre_adverse", "disputed", "active", "suspended", "rejected", "offboarded")
# Statuses in which a dispute may be filed (a notice is out and its window open).
NOTICED = ("pre_adverse", "suspended")


@dataclass(frozen=True)
class Rules:
    """What the running service decides with."""

    webhook_url: str | None
    dispute_days: int = 7
    rescreen_days: int = 365
    policy_dir: Path | None = None  # the operator's city overlays (`screening_policy_dir`)


def rules_from(settings: Settings) -> Rules:
    return Rules(webhook_url=settings.webhook_url, dispute_days=settings.screening_dispute_days,
                 rescreen_days=settings.screening_rescreen_days, policy_dir=settings.screening_policy_dir)


@dataclass(frozen=True)
class Application:
    role: str
    name: str
    id_number: str
    notice_version: str
    phone: str | None = None
    city: str | None = None
    locale: str = "zh_CN"
    selfie: str | None = None  # base64
    consents: tuple[str, ...] = ()  # the sensitive kinds of data separately consented to (Category values)


def add_event(session: Session, *, applicant: Applicant, kind: str, actor: Actor, **details: object) -> None:
    session.add(Event(id=new_id("sev"), applicant_id=applicant.id, at=utcnow(), kind=kind,
                      actor=f"{actor.type}:{actor.id}", details=details))


def move(session: Session, *, applicant: Applicant, status: str, actor: Actor, rules: Rules, **details: object) -> None:
    """Change the applicant's status: timeline, audit entry and webhook, all in this transaction."""
    previous = applicant.status
    applicant.status, applicant.updated_at = status, utcnow()
    add_event(session, applicant=applicant, kind=f"status.{status}", actor=actor, previous=previous, **details)
    audit.record(session, actor=actor, action=f"screening.{status}", target_type="screening_applicants",
                 target_id=applicant.id, details={"previous": previous, **{k: str(v) for k, v in details.items()}})
    if rules.webhook_url:
        notify.enqueue_webhook(session, url=rules.webhook_url, event=f"worker.{status}",
                               payload={"worker_id": applicant.id, "role": applicant.role, "status": status,
                                        "previous": previous},
                               idempotency_key=f"worker:{applicant.id}:{status}:{new_id('x')}")


def active_workers() -> Select[tuple[str, str]]:
    """The workers now active, as (id, role): what other domains measure their coverage over."""
    return select(Applicant.id, Applicant.role).where(Applicant.status == "active")  # type: ignore[return-value]


def role_of(session: Session, *, worker_id: str) -> str | None:
    return session.scalar(select(Applicant.role).where(Applicant.id == worker_id))


def names_of(session: Session, *, vault: Vault, worker_ids: list[str]) -> dict[str, str]:
    """The names TripGuard holds from screening, for the workers that have one (opened through the gate's
    `open_field`: the caller records why, as the SOS does for the police payload). A worker erased since
    has none."""
    names: dict[str, str] = {}
    if not worker_ids:
        return names
    for applicant in session.scalars(select(Applicant).where(Applicant.id.in_(sorted(set(worker_ids))),
                                                             Applicant.name.is_not(None))):
        try:
            name = access.open_field(vault, session, applicant, "name")
        except SubjectErased:
            continue
        if name:
            names[applicant.id] = name
    return names


def get(session: Session, *, applicant_id: str) -> Applicant:
    applicant = session.get(Applicant, applicant_id)
    if applicant is None:
        raise NotFound("no such applicant")
    return applicant


def _new_report(session: Session, applicant: Applicant, kind: str, agency: str) -> Report:
    now = utcnow()
    report = Report(id=new_id("rep"), applicant_id=applicant.id, kind=kind, agency=agency, status="queued",
                    attempts=0, next_attempt_at=now, created_at=now)
    session.add(report)
    if kind != "unenroll":
        for check in CHECKS[applicant.role]:
            session.add(Check(id=new_id("chk"), report_id=report.id, applicant_id=applicant.id, kind=check,
                              status="pending", updated_at=now))
    add_event(session, applicant=applicant, kind=f"report.{kind}", actor=SYSTEM, report=report.id, agency=agency)
    return report


def check_city(city: str, policy_dir: Path | None) -> None:
    """A city an applicant may be screened in: any city (one without its own conditions is screened under
    Art. 14 alone), unless its overlay cannot be used: then nobody is screened there until it is fixed."""
    try:
        load_policy(city, policy_dir)
    except PolicyInvalid as exc:
        logger.error("a city's screening policy cannot be used", extra={"event": str(exc)})
        raise InvalidInput(N_("The screening policy of this city cannot be used: the operator must fix it."),
                           errors=[FieldProblem(field="city", message=f"its policy overlay is invalid: "
                                                                      f"{exc.problems}")]) from exc
    except ValueError as exc:
        raise InvalidInput(errors=[FieldProblem(field="city", message="not a city name")]) from exc


def apply(session: Session, *, vault: Vault, actor: Actor, applicant_id: str, application: Application,
          agency: str, policy_dir: Path | None = None) -> tuple[Applicant, bool]:
    """Record an applicant with their consent, and queue their screening. The same PUT again is the same
    applicant (nothing changes); someone who left may apply again and is screened afresh."""
    if application.role not in ROLES:
        raise InvalidInput(errors=[FieldProblem(field="role", message="must be driver or courier")])
    reading = read_id_number(application.id_number, today=utcnow().date())
    if not reading.valid:
        raise InvalidInput("the ID number cannot be a real resident ID number",
                           errors=[FieldProblem(field="id_number", message=f"identity.{reading.problem}")])
    if application.selfie is not None:
        pictures.decode(application.selfie, field="selfie")  # a photo, whole, before anything is kept
    if application.city is not None:
        check_city(application.city, policy_dir)
    notice = get_notice(session, version=application.notice_version)
    granted = consents.check(notice, consents.needed(CHECKS[application.role], selfie=application.selfie is not None),
                             application.consents)
    applicant = session.get(Applicant, applicant_id)
    now = utcnow()
    if applicant is not None and applicant.status != "offboarded":
        if applicant.role != application.role:
            raise Conflict(f"already an applicant as {applicant.role}")
        return applicant, False
    if applicant is None:
        applicant = Applicant(id=applicant_id, created_at=now)
        session.add(applicant)
    applicant.role, applicant.city, applicant.status = application.role, application.city, "screening"
    applicant.locale, applicant.notice_version, applicant.consented_at = application.locale, \
        application.notice_version, now
    applicant.updated_at = now
    for column in ("outcome", "reasons", "policy_version", "decided_at", "decided_by", "assigned_to",
                   "notice_sent_at", "notice_key", "notice_failed_at", "dispute_due_at", "cleared_at",
                   "rescreen_due_at", "suspended_at",
                   "identity_blocked_at", "offboarded_at"):
        setattr(applicant, column, None)
    session.flush()
    # A data subject from their application on (the same id names them everywhere): their access or erasure
    # request works without the operator recording them separately.
    register(session, subject_id=applicant_id, kind=application.role, notice_version=application.notice_version,
             source="screening")
    for column in ("name", "id_number", "phone", "selfie"):
        access.write_field(vault, session, applicant, column, getattr(application, column))
    consents.record(session, applicant_id=applicant_id, notice_version=application.notice_version, kinds=granted,
                    actor=actor, at=now)
    consented = ",".join(sorted(kind.value for kind in granted))
    add_event(session, applicant=applicant, kind="applied", actor=actor, role=application.role,
              notice=application.notice_version, consents=consented)
    audit.record(session, actor=actor, action="screening.apply", target_type="screening_applicants",
                 target_id=applicant_id, details={"role": application.role, "notice": application.notice_version,
                                                  "consents": consented})
    _new_report(session, applicant, "initial", agency)
    return applicant, True


def request_rescreen(session: Session, *, applicant: Applicant, agency: str) -> Report:
    return _new_report(session, applicant, "rescreen", agency)


# --- what the agency found ------------------------------------------------------------------------

def _open_facts(session: Session, vault: Vault, check: Check) -> dict[str, Any]:
    raw = access.open_field(vault, session, check, "facts")
    return json.loads(raw) if raw else {}


def record_finding(session: Session, *, vault: Vault, report: Report, finding: Finding) -> bool:
    """Store one check's answer. False when it changes nothing (the same answer again)."""
    check = session.scalar(select(Check).where(Check.report_id == report.id, Check.kind == finding.check))
    if check is None:
        raise InvalidInput(f"report {report.id} has no {finding.check} check")
    if check.status == "cancelled":
        return False
    if (check.status, check.result) == (finding.status, finding.result) and \
            _open_facts(session, vault, check) == finding.facts:
        return False
    check.status, check.result, check.updated_at = finding.status, finding.result, utcnow()
    access.write_field(vault, session, check, "facts", json.dumps(finding.facts, ensure_ascii=False, sort_keys=True))
    return True


def latest_findings(session: Session, *, vault: Vault,
                    applicant: Applicant) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The newest completed answer of each check over every report, and the checks an agency suspended."""
    checks = session.scalars(select(Check).where(Check.applicant_id == applicant.id,
                                                 Check.status.in_(("complete", "suspended")))
                             .order_by(Check.updated_at)).all()
    found: dict[str, dict[str, Any]] = {}
    suspended: dict[str, bool] = {}
    for check in checks:
        if check.status == "complete":
            found[check.kind] = _open_facts(session, vault, check)
            suspended.pop(check.kind, None)
        else:
            suspended[check.kind] = True
    return found, [kind for kind in suspended if kind not in found]


def _policy_for(applicant: Applicant, policy_dir: Path | None) -> tuple[Policy, bool]:
    """The applicant's city's policy; or Art. 14 alone, flagged, when the city's overlay became unusable."""
    try:
        return load_policy(applicant.city, policy_dir), False
    except ValueError as exc:
        logger.error("a city's screening policy cannot be used", extra={"event": str(exc)})
        return load_policy(None), True


def assess(session: Session, *, vault: Vault, applicant: Applicant, policy_dir: Path | None = None) -> Decision:
    """The policy's decision over everything found so far. A check the agency could not finish makes the
    decision a person's (`consider`) rather than leaving it pending for ever. Should the city's overlay have
    become unusable since the application, Art. 14 still rejects on its own, but nobody is cleared without
    a person (`policy.overlay_invalid`): the city's own conditions could not be asked."""
    found, suspended = latest_findings(session, vault=vault, applicant=applicant)
    id_number = access.open_field(vault, session, applicant, "id_number") or ""
    facts = facts_from(applicant.role, read_id_number(id_number, today=utcnow().date()), found)
    policy, unusable = _policy_for(applicant, policy_dir)
    decision = evaluate(policy, facts, today=utcnow().date())
    if unusable and decision.outcome == "clear":
        decision = Decision("consider", ("policy.overlay_invalid",), decision.policy_version)
    waiting_on_suspended = [kind for kind in decision.pending if kind in suspended]
    if decision.outcome == "pending" and len(waiting_on_suspended) == len(decision.pending):
        reasons = decision.reasons + tuple(f"check.{kind}.suspended" for kind in waiting_on_suspended)
        return Decision("consider", reasons, decision.policy_version)
    return decision


def _store_decision(session: Session, vault: Vault, applicant: Applicant, decision: Decision, by: Actor) -> None:
    applicant.outcome, applicant.policy_version = decision.outcome, decision.policy_version
    applicant.decided_at, applicant.decided_by = utcnow(), f"{by.type}:{by.id}"
    access.write_field(vault, session, applicant, "reasons", json.dumps(list(decision.reasons)))
    add_event(session, applicant=applicant, kind="decision", actor=by, outcome=decision.outcome,
              policy=decision.policy_version, reasons=len(decision.reasons))


def reasons_of(session: Session, *, vault: Vault, applicant: Applicant) -> list[str]:
    """The stored decision's reason codes, for a notice (internal: the officer reads them through the gate)."""
    raw = access.open_field(vault, session, applicant, "reasons")
    return list(json.loads(raw)) if raw else []


def settle(session: Session, *, vault: Vault, applicant: Applicant, rules: Rules) -> Decision | None:
    """Decide once nothing is pending, and act on it. Before a first decision: clear makes the worker
    active, consider goes to a screening officer, reject sends the pre-adverse notice. After it (a
    re-screening, a record pushed by the agency): a disqualifying finding suspends an active worker at
    once, with the same notice and dispute window; anything else needing judgement is flagged for review
    while the worker stays active."""
    decision = assess(session, vault=vault, applicant=applicant, policy_dir=rules.policy_dir)
    if decision.outcome == "pending" or applicant.status in ("offboarded", "rejected"):
        return None
    if applicant.status == "screening":
        _store_decision(session, vault, applicant, decision, SYSTEM)
        if decision.outcome == "clear":
            activate(session, vault=vault, applicant=applicant, actor=SYSTEM, rules=rules)
        elif decision.outcome == "consider":
            move(session, applicant=applicant, status="review", actor=SYSTEM, rules=rules)
        else:
            send_notice(session, vault=vault, applicant=applicant, actor=SYSTEM, rules=rules, status="pre_adverse")
        return decision
    if applicant.status == "active":
        changed = decision.outcome != applicant.outcome
        _store_decision(session, vault, applicant, decision, SYSTEM)
        if decision.outcome == "reject":
            applicant.suspended_at = utcnow()
            send_notice(session, vault=vault, applicant=applicant, actor=SYSTEM, rules=rules, status="suspended")
        elif decision.outcome == "clear":
            applicant.cleared_at = utcnow()
            applicant.rescreen_due_at = utcnow() + timedelta(days=rules.rescreen_days)
        elif changed:
            add_event(session, applicant=applicant, kind="flagged_for_review", actor=SYSTEM)
        return decision
    # Under review, noticed or disputed: the new finding is on the record for the officer's decision.
    _store_decision(session, vault, applicant, decision, SYSTEM)
    return decision


def activate(session: Session, *, vault: Vault, applicant: Applicant, actor: Actor, rules: Rules) -> None:
    now = utcnow()
    applicant.cleared_at, applicant.rescreen_due_at = now, now + timedelta(days=rules.rescreen_days)
    applicant.suspended_at = applicant.dispute_due_at = applicant.notice_failed_at = None
    move(session, applicant=applicant, status="active", actor=actor, rules=rules)
    tell(session, vault=vault, applicant=applicant, template="screening_cleared", params={},
         key=f"cleared:{now.isoformat()}")


NOTICE_TEMPLATE = "screening_pre_adverse"


def _notice_key(applicant: Applicant, key: str) -> str:
    return f"screening:{applicant.id}:{NOTICE_TEMPLATE}:{key}"


def send_notice(session: Session, *, vault: Vault, applicant: Applicant, actor: Actor, rules: Rules,
                status: str) -> None:
    """The pre-adverse notice: the reasons, and how long the applicant has to dispute them. The window
    runs only for a notice that goes out: with no phone to send it to, no clock starts and the case waits
    for a screening officer (`notice_undelivered`)."""
    now = utcnow()
    if not access.open_field(vault, session, applicant, "phone"):
        applicant.notice_sent_at = applicant.dispute_due_at = applicant.notice_key = None
        move(session, applicant=applicant, status=status, actor=actor, rules=rules, notice="undelivered")
        notice_undelivered(session, applicant=applicant, rules=rules, why="no_phone")
        return
    key = f"notice:{now.isoformat()}"
    applicant.notice_sent_at, applicant.dispute_due_at = now, now + timedelta(days=rules.dispute_days)
    applicant.notice_key, applicant.notice_failed_at = _notice_key(applicant, key), None
    move(session, applicant=applicant, status=status, actor=actor, rules=rules,
         dispute_due_at=applicant.dispute_due_at.isoformat())
    tell(session, vault=vault, applicant=applicant, template=NOTICE_TEMPLATE,
         params={"reasons": reasons_of(session, vault=vault,
                                       applicant=applicant), "due": _local_day(applicant.dispute_due_at),
          "suspended": status == "suspended"}, key=key)


def notice_undelivered(session: Session, *, applicant: Applicant, rules: Rules, why: str) -> None:
    """The notice did not reach the applicant (no phone, or its send failed): the clock stops, and the case
    is in the officer's queue until the notice is sent again or recorded as given another way. The operator
    is told (`worker.notice_undelivered`): it may hold a number to reach the person."""
    applicant.dispute_due_at, applicant.notice_failed_at = None, utcnow()
    add_event(session, applicant=applicant, kind="notice.undelivered", actor=SYSTEM, why=why)
    audit.record(session, actor=SYSTEM, action="screening.notice_undelivered", target_type="screening_applicants",
                 target_id=applicant.id, outcome="failure", details={"why": why})
    if rules.webhook_url:
        notify.enqueue_webhook(session, url=rules.webhook_url, event="worker.notice_undelivered",
                               payload={"worker_id": applicant.id, "role": applicant.role, "status": applicant.status,
                                        "why": why},
                               idempotency_key=f"worker:{applicant.id}:notice_undelivered:{new_id('x')}")


def _local_day(at: datetime) -> str:
    return at.date().isoformat()


def tell(session: Session, *, vault: Vault, applicant: Applicant, template: str, params: dict[str, object],
         key: str) -> None:
    phone = access.open_field(vault, session, applicant, "phone")
    if not phone:
        add_event(session, applicant=applicant, kind="notice.not_sent", actor=SYSTEM, template=template, why="no_phone")
        return
    notify.enqueue_to_person(session, vault=vault, subject_id=applicant.id, channel="sms", to=phone,
                             template=template,
                             locale=applicant.locale, params=params,
                             idempotency_key=f"screening:{applicant.id}:{template}:{key}")
    add_event(session, applicant=applicant, kind="notice.queued", actor=SYSTEM, template=template)


def timeline(session: Session, *, applicant_id: str) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.applicant_id == applicant_id).order_by(Event.at, Event.id)))


def checks_of(session: Session, *, applicant_id: str) -> list[Check]:
    return list(session.scalars(select(Check).where(Check.applicant_id == applicant_id)
                                .order_by(Check.updated_at.desc())))


def reports_of(session: Session, *, applicant_id: str) -> list[Report]:
    return list(session.scalars(select(Report).where(Report.applicant_id == applicant_id)
                                .order_by(Report.created_at.desc())))


def drivers_changed(session: Session, *, start: datetime, end: datetime) -> list[Applicant]:
    """Drivers who have worked (active, suspended or offboarded) whose record changed in [start, end), oldest
    change first: what the regulator's base data on drivers follows."""
    return list(session.scalars(select(Applicant).where(
        Applicant.role == "driver", Applicant.status.in_(("active", "suspended", "offboarded")),
        Applicant.updated_at >= start, Applicant.updated_at < end).order_by(Applicant.updated_at, Applicant.id)))


def find(session: Session, *, applicant_id: str | None) -> Applicant | None:
    return None if applicant_id is None else session.get(Applicant, applicant_id)
