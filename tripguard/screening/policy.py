"""Eligibility as data: the rules an applicant is screened against live in a versioned JSON file
(`policies/art14.json`: Art. 14 of the ride-hailing measures by default), and a city may add its own
(Art. 14 (四)): the operator's file `<screening_policy_dir>/<city>.json`, else the package's
`policies/cities/<city>.json`. A city with neither is screened under Art. 14 alone. An overlay is
validated strictly (known keys and types, and only stricter than the national baseline); one that
cannot be used is a clear error, never a silent fallback. `evaluate` turns an applicant's facts into a decision
(clear, consider, reject, or pending while a check is outstanding) with reason codes, and names the
policy version it used, so every stored decision can be explained later."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tripguard.screening.identity import IdReading

POLICY_DIR = Path(__file__).resolve().parent / "policies"
ROLES = ("driver", "courier")
CITY = re.compile(r"[a-z][a-z-]{1,39}")
RECORD_PATTERN = r"^[a-z][a-z_]{1,39}$"
MAX_OVERLAY_BYTES = 64 * 1024


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


class PolicyInvalid(ValueError):
    """A city's overlay cannot be used: what is wrong (`problems`), in which file, for the operator to fix."""

    def __init__(self, problems: str, *, file: str | None = None) -> None:
        super().__init__(f"{file}: {problems}" if file else problems)
        self.problems, self.file = problems, file


class RoleOverlay(BaseModel):
    """What a city adds to Art. 14 for one role: only stricter conditions (checked against the baseline)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    licence_years_min: float | None = Field(default=None, ge=0, le=60)
    disqualifying_records_added: list[Annotated[str, Field(pattern=RECORD_PATTERN)]] = Field(default_factory=list,
                                                                                              max_length=50)
    points_cycles: int | None = Field(default=None, ge=1, le=10)
    points_full: int | None = Field(default=None, ge=1, le=100)
    credit_score_min: int | None = Field(default=None, ge=0, le=1000)
    age_min: int | None = Field(default=None, ge=16, le=100)
    age_max: int | None = Field(default=None, ge=16, le=100)
    transport_certificate_required: bool | None = None


class Overlay(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: str = Field(pattern=r"^[A-Za-z0-9._-]{1,32}$")
    source: str | None = Field(default=None, max_length=1000)
    roles: dict[Literal["driver", "courier"], RoleOverlay] = Field(min_length=1)


def _base() -> dict[str, Any]:
    return json.loads((POLICY_DIR / "art14.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _loosened(base: dict[str, Any], changes: dict[str, Any]) -> list[str]:
    """What an overlay would make less strict than Art. 14 (a city adds conditions, never removes them)."""
    problems = []
    for key in ("licence_years_min", "age_min", "points_cycles", "credit_score_min"):
        if key in changes and base.get(key) is not None and (changes[key] is None or changes[key] < base[key]):
            problems.append(f"{key}: below the national {base[key]}")
    for key in ("age_max", "points_full"):
        if key in changes and base.get(key) is not None and (changes[key] is None or changes[key] > base[key]):
            problems.append(f"{key}: above the national {base[key]}")
    if base.get("transport_certificate_required") and changes.get("transport_certificate_required") is False:
        problems.append("transport_certificate_required: the national rule requires it")
    return problems


def read_overlay(raw: bytes, *, base: dict[str, Any] | None = None) -> Overlay:
    """An overlay file's content, validated strictly, or PolicyInvalid saying every problem found."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PolicyInvalid(f"not JSON: {exc}") from exc
    try:
        overlay = Overlay.model_validate(document)
    except ValidationError as exc:
        raise PolicyInvalid("; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}"
                                      for e in exc.errors())) from exc
    roles = (base or _base())["roles"]
    problems = [f"roles.{role}.{problem}" for role, changes in overlay.roles.items()
                for problem in _loosened(roles[role], changes.model_dump(exclude_unset=True))]
    for role, changes in overlay.roles.items():
        merged = roles[role] | changes.model_dump(exclude_unset=True)
        if merged.get("age_min") is not None and merged.get("age_max") is not None \
                and merged["age_min"] > merged["age_max"]:
            problems.append(f"roles.{role}: age_min is above age_max")
    if problems:
        raise PolicyInvalid("; ".join(problems))
    return overlay


def overlay_path(city: str, overlay_dir: Path | None = None) -> Path | None:
    """The file that holds a city's own conditions: the operator's (in `overlay_dir`) before the package's;
    None when the city has none (it is screened under Art. 14 alone)."""
    if not CITY.fullmatch(city):
        raise ValueError(f"not a city name: {city!r}")
    for folder in ((overlay_dir,) if overlay_dir is not None else ()) + (POLICY_DIR / "cities",):
        path = folder / f"{city}.json"
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=256)
def _overlay_at(path: Path, _mtime_ns: int, _size: int) -> Overlay | PolicyInvalid:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return PolicyInvalid(f"cannot be read: {exc.strerror or exc}")
    if len(raw) > MAX_OVERLAY_BYTES:
        return PolicyInvalid(f"larger than {MAX_OVERLAY_BYTES} bytes")
    try:
        return read_overlay(raw)
    except PolicyInvalid as exc:
        return exc


def load_overlay(city: str, overlay_dir: Path | None = None) -> Overlay | None:
    """A city's overlay, read again whenever its file changes; PolicyInvalid (naming the file) if unusable."""
    path = overlay_path(city, overlay_dir)
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError as exc:
        raise PolicyInvalid(f"cannot be read: {exc.strerror or exc}", file=str(path)) from exc
    found = _overlay_at(path, stat.st_mtime_ns, stat.st_size)
    if isinstance(found, PolicyInvalid):
        raise PolicyInvalid(found.problems, file=str(path))
    return found


def load_policy(city: str | None = None, overlay_dir: Path | None = None) -> Policy:
    """Art. 14, with a city's own conditions laid over it when `city` names one that has them. A city
    without an overlay is screened under Art. 14 alone. ValueError for a name that is not a city's;
    PolicyInvalid for an overlay that cannot be used."""
    base = _base()
    roles = {role: dict(base["roles"][role]) for role in ROLES}
    version = base["version"]
    overlay = load_overlay(city, overlay_dir) if city is not None else None
    if overlay is not None:
        for role, role_overlay in overlay.roles.items():
            changes = role_overlay.model_dump(exclude_unset=True)
            added = set(changes.pop("disqualifying_records_added", []) or [])
            roles[role].update(changes)
            roles[role]["disqualifying_records"] = sorted(set(roles[role]["disqualifying_records"]) | added)
        version = f"{version}+{overlay.version}"
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
