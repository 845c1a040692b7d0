"""Eligibility as data: the rules an applicant is screened against live in a versioned JSON file
(`policies/art14.json`: Art. 14 of the ride-hailing measures by default), and a city may add its own
(`policies/cities/<city>.json`, Art. 14 (四)). `evaluate` turns an applicant's facts into a decision
(clear, consider, reject, or pending while a check is outstanding) with reason codes, and names the
policy version it used, so every stored decision can be explained later."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from tripguard.screening.identity import IdReading

POLICY_DIR = Path(__file__).resolve().parent / "policies"
ROLES = ("driver", "courier")


@dataclass(frozen=True)
class RoleRules:
    licence_years_min: float | None
    disqualifying_records: frozenset[str]
    points_cycles: int | None
    points_full: int | None
    credit_score_min: int | None
    age_min: int | None
    age_max: int | None
    transport_certificate_required: bool = False


@dataclass(frozen=True)
class Policy:
    version: str
    roles: dict[str, RoleRules]


@dataclass(frozen=True)
class Facts:
    """What the checks found; None where a check has not answered yet."""

    role: str
    identity: IdReading | None
    licence_years: float | None = None
    records: frozenset[str] | None = None  # record categories found (empty: a clean record)
    points_by_cycle: tuple[int, ...] | None = None  # most recent scoring cycle first
    credit_score: int | None = None
    name_match: bool | None = None  # the agency's name-ID match (None: not answered yet)
    liveness: bool | None = None  # the agency's liveness check on the selfie (None: not checked)
    transport_certificate: bool | None = None  # holds a valid 网约车驾驶员证


@dataclass(frozen=True)
class Decision:
    outcome: str  # clear | consider | reject | pending
    reasons: tuple[str, ...]
    policy_version: str
    pending: tuple[str, ...] = field(default=())  # the checks still outstanding


def facts_from(role: str, identity: IdReading, found: dict[str, dict[str, Any]]) -> Facts:
    """Facts from what each completed check found (`found`: check kind -> the agency's facts)."""

    def value(check: str, key: str) -> Any:
        return found[check].get(key) if check in found else None

    records = value("criminal_record", "records")
    points = value("driving_points", "points_by_cycle")
    licence = value("licence", "licence_years")
    credit = value("credit", "credit_score")
    name_match = value("identity", "name_match")
    liveness = value("identity", "liveness")
    certificate = value("transport_certificate", "valid")
    return Facts(role=role, identity=identity,
                 licence_years=float(licence) if isinstance(licence, (int, float)) else None,
                 records=frozenset(str(r) for r in records) if isinstance(records, list) else None,
                 points_by_cycle=tuple(int(p) for p in points) if isinstance(points, list) else None,
                 credit_score=int(credit) if isinstance(credit, (int, float)) else None,
                 name_match=bool(name_match) if isinstance(name_match, bool) else None,
                 liveness=bool(liveness) if isinstance(liveness, bool) else None,
                 transport_certificate=bool(certificate) if isinstance(certificate, bool) else None)


def _rules(raw: dict[str, Any]) -> RoleRules:
    return RoleRules(raw.get("licence_years_min"), frozenset(raw.get("disqualifying_records") or ()),
                     raw.get("points_cycles"), raw.get("points_full"), raw.get("credit_score_min"),
                     raw.get("age_min"), raw.get("age_max"), bool(raw.get("transport_certificate_required")))


@lru_cache(maxsize=32)
def load_policy(city: str | None = None) -> Policy:
    """Art. 14, with a city's own conditions laid over it when `city` names one."""
    base = json.loads((POLICY_DIR / "art14.json").read_text(encoding="utf-8"))
    roles = {role: dict(base["roles"][role]) for role in ROLES}
    version = base["version"]
    if city is not None:
        if not city.isascii() or not city.replace("-", "").isalnum():
            raise ValueError(f"not a city name: {city!r}")
        overlay = json.loads((POLICY_DIR / "cities" / f"{city}.json").read_text(encoding="utf-8"))
        for role, changes in overlay.get("roles", {}).items():
            added = set(changes.pop("disqualifying_records_added", []) or [])
            roles[role].update(changes)
            roles[role]["disqualifying_records"] = sorted(set(roles[role]["disqualifying_records"]) | added)
        version = f"{version}+{overlay['version']}"
    return Policy(version, {role: _rules(rules) for role, rules in roles.items()})


def evaluate(policy: Policy, facts: Facts, *, today: date) -> Decision:
    """Reject on anything the policy disqualifies; consider what needs a person's judgement; clear
    otherwise. Outstanding checks make the decision pending (what they would add is not guessed)."""
    rules = policy.roles[facts.role]
    reject: list[str] = []
    consider: list[str] = []
    pending: list[str] = []
    if facts.identity is None or facts.name_match is None:
        pending.append("identity")
    elif not facts.identity.valid:
        reject.append(f"identity.{facts.identity.problem}")
    else:
        age = facts.identity.age_on(today)
        if age is not None and rules.age_min is not None and age < rules.age_min:
            reject.append("age.below_minimum")
        if age is not None and rules.age_max is not None and age > rules.age_max:
            reject.append("age.above_maximum")
        if facts.name_match is False:
            consider.append("identity.name_mismatch")
        if facts.liveness is False:
            consider.append("identity.liveness_failed")
    if rules.licence_years_min is not None:
        if facts.licence_years is None:
            pending.append("licence")
        elif facts.licence_years < rules.licence_years_min:
            reject.append("licence.too_recent")
    if rules.transport_certificate_required:
        if facts.transport_certificate is None:
            pending.append("transport_certificate")
        elif not facts.transport_certificate:
            consider.append("transport_certificate.missing")
    if facts.records is None:
        pending.append("criminal_record")
    else:
        reject.extend(f"record.{category}" for category in sorted(facts.records & rules.disqualifying_records))
        if facts.records - rules.disqualifying_records:
            consider.append("record.other")
    if rules.points_cycles is not None and rules.points_full is not None:
        if facts.points_by_cycle is None:
            pending.append("driving_points")
        elif any(points >= rules.points_full for points in facts.points_by_cycle[:rules.points_cycles]):
            reject.append("points.full_in_recent_cycles")
    if rules.credit_score_min is not None:
        if facts.credit_score is None:
            pending.append("credit")
        elif facts.credit_score < rules.credit_score_min:
            consider.append("credit.below_threshold")
    if reject:
        return Decision("reject", tuple(reject + consider), policy.version, tuple(pending))
    if pending:
        return Decision("pending", tuple(consider), policy.version, tuple(pending))
    return Decision("consider" if consider else "clear", tuple(consider), policy.version)
