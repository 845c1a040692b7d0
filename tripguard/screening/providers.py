"""Screening agencies behind one interface, and the signature on their callbacks.

A real agency answers asynchronously: TripGuard requests a report, the agency calls back when each
screening completes. Callbacks are signed like Stripe's webhooks: the header
`X-Screening-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, checked on the
raw body before it is parsed, within a tolerance, in constant time; several `v1` values may be sent
while the agency rotates its secret.

`SimulatedScreeningAgency` is for development and tests, and named so: its answers are driven by the
test ID number's sequence digits (the 15th to 17th), so a scenario is chosen by the number typed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

SIGNATURE_HEADER = "X-Screening-Signature"
TOLERANCE_SECONDS = 300


def sign(secret: bytes, body: bytes, at: int) -> str:
    digest = hmac.new(secret, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def verify(secret: bytes, body: bytes, header: str | None, *, now: int,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    """True when `header` signs `body` with `secret`, made within `tolerance` seconds of `now`."""
    if not header or len(header) > 1000 or not header.isascii():
        return False
    stamp: int | None = None
    offered: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            stamp = int(value)
        elif key == "v1" and len(value) == 64:
            offered.append(value)
    if stamp is None or not offered or abs(now - stamp) > tolerance:
        return False
    expected = hmac.new(secret, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


@dataclass(frozen=True)
class Finding:
    """One screening's answer, as an agency reports it."""

    check: str  # identity | licence | transport_certificate | criminal_record | driving_points | credit
    status: str  # complete | suspended (the agency cannot finish: a human must look)
    result: str | None  # clear | consider (for complete)
    facts: dict[str, object]


class AgencyError(Exception):
    """The agency did not answer (timeout, 5xx): the request is retried with back-off."""


class ScreeningAgency(Protocol):
    name: str

    def screen(self, *, id_number: str, name: str, role: str) -> list[Finding]: ...


# The simulated agency's scenarios, chosen by the ID number's 15th-17th digits.
SCENARIOS: dict[str, list[Finding]] = {
    "001": [],  # everything clear (filled in below)
    "002": [Finding("criminal_record", "complete", "consider", {"records": ["drug_use"]})],
    "003": [Finding("driving_points", "complete", "consider", {"points_by_cycle": [0, 12, 3]})],
    "004": [Finding("licence", "complete", "consider", {"licence_years": 1.5})],
    "005": [Finding("credit", "complete", "consider", {"credit_score": 480})],
    "006": [Finding("criminal_record", "complete", "consider", {"records": ["fraud"]})],
    "007": [Finding("identity", "complete", "consider", {"name_match": False})],
}
CLEAR = [Finding("identity", "complete", "clear", {"name_match": True}),
         Finding("licence", "complete", "clear", {"licence_years": 8.0}),
         Finding("transport_certificate", "complete", "clear", {"valid": True}),
         Finding("criminal_record", "complete", "clear", {"records": []}),
         Finding("driving_points", "complete", "clear", {"points_by_cycle": [0, 2, 0]}),
         Finding("credit", "complete", "clear", {"credit_score": 720})]


@dataclass
class SimulatedScreeningAgency:
    """A stand-in agency for development and tests (never a real check). Sequence digits 008 make it
    time out, 009 fail; any other number not listed in SCENARIOS comes back clear."""

    name: str = "simulated"

    def screen(self, *, id_number: str, name: str, role: str) -> list[Finding]:
        scenario = id_number.strip()[14:17]
        if scenario == "008":
            raise AgencyError("simulated timeout")
        if scenario == "009":
            raise AgencyError("simulated server error")
        changed = {f.check: f for f in SCENARIOS.get(scenario, [])}
        findings = [changed.get(f.check, f) for f in CLEAR]
        return [f for f in findings if role == "driver" or f.check not in ("licence", "transport_certificate",
                                                                             "driving_points")]
