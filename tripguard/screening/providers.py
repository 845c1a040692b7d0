"""Screening agencies and face-match services behind one interface each, and the signature on the
agencies' callbacks.

A real agency answers asynchronously: TripGuard requests a report (`HttpScreeningAgency`), the agency
calls back when each screening completes, and later whenever a monitored worker gets a new record.
Callbacks are signed like Stripe's webhooks: the header
`X-Screening-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, checked on the
raw body before it is parsed, within a tolerance, in constant time; several `v1` values may be sent
while the agency rotates its secret.

`SimulatedScreeningAgency` is for development and tests, and named so: its answers are driven by the
test ID number's sequence digits (the 15th to 17th), so a scenario is chosen by the number typed
(001 clear, 002 a drug record, 003 full points, 004 a recent licence, 005 low credit, 006 another record,
007 a name that does not match, 008 a timeout, 009 a server error, 010 a selfie that fails liveness).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Protocol

import httpx2 as httpx

from tripguard.core.settings import Settings

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


class AgencyRefused(Exception):
    """The agency refused the request (4xx): retrying the same request cannot help; a person must look."""


class ScreeningAgency(Protocol):
    name: str

    def request(self, *, report_id: str, applicant_id: str, id_number: str, name: str, role: str,
                selfie: str | None) -> list[Finding]:
        """Ask for a report (`selfie`: base64, for the liveness check). What the agency knows at once is
        returned; the rest comes as callbacks."""
        ...

    def unenroll(self, *, applicant_id: str) -> None:
        """Stop watching a worker who left (continuous monitoring ends)."""
        ...


@dataclass
class HttpScreeningAgency:
    """A real agency's REST API: `POST {base_url}/reports` with the candidate and where to call back,
    `DELETE {base_url}/monitoring/{applicant_id}` to un-enrol. Bearer API key; a timeout or a 5xx is an
    `AgencyError` (retried), any other non-2xx an `AgencyRefused`. Results arrive as signed callbacks."""

    base_url: str
    api_key: str
    callback_url: str
    timeout_seconds: float = 10.0
    name: str = "http"

    def _send(self, method: str, path: str, body: dict[str, object] | None = None) -> None:
        try:
            response = httpx.request(method, self.base_url.rstrip("/") + path, timeout=self.timeout_seconds,
                                     content=None if body is None else json.dumps(body, ensure_ascii=False),
                                     headers={"Authorization": f"Bearer {self.api_key}",
                                              "Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise AgencyError(f"{type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise AgencyError(f"HTTP {response.status_code}")
        if response.status_code >= 300 and not (method == "DELETE" and response.status_code == 404):
            raise AgencyRefused(f"HTTP {response.status_code}")

    def request(self, *, report_id: str, applicant_id: str, id_number: str, name: str, role: str,
                selfie: str | None) -> list[Finding]:
        self._send("POST", "/reports", {"reference": report_id, "candidate": applicant_id, "role": role,
                                        "name": name, "id_number": id_number, "selfie": selfie,
                                        "callback_url": self.callback_url})
        return []

    def unenroll(self, *, applicant_id: str) -> None:
        self._send("DELETE", f"/monitoring/{applicant_id}")


# The simulated agency's scenarios, chosen by the ID number's 15th-17th digits.
SCENARIOS: dict[str, list[Finding]] = {
    "001": [],  # everything clear (filled in below)
    "002": [Finding("criminal_record", "complete", "consider", {"records": ["drug_use"]})],
    "003": [Finding("driving_points", "complete", "consider", {"points_by_cycle": [0, 12, 3]})],
    "004": [Finding("licence", "complete", "consider", {"licence_years": 1.5})],
    "005": [Finding("credit", "complete", "consider", {"credit_score": 480})],
    "006": [Finding("criminal_record", "complete", "consider", {"records": ["fraud"]})],
    "007": [Finding("identity", "complete", "consider", {"name_match": False})],
    "010": [],  # the liveness check on the selfie fails (below)
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

    def request(self, *, report_id: str, applicant_id: str, id_number: str, name: str, role: str,
                selfie: str | None) -> list[Finding]:
        return self.screen(id_number=id_number, name=name, role=role, selfie=selfie)

    def unenroll(self, *, applicant_id: str) -> None:
        return None

    def screen(self, *, id_number: str, name: str, role: str, selfie: str | None = None) -> list[Finding]:
        scenario = id_number.strip()[14:17]
        if scenario == "008":
            raise AgencyError("simulated timeout")
        if scenario == "009":
            raise AgencyError("simulated server error")
        changed = {f.check: f for f in SCENARIOS.get(scenario, [])}
        findings = [changed.get(f.check, f) for f in CLEAR]
        # Liveness is checked on the selfie sent with the application (none sent: not checked).
        findings = [Finding(f.check, f.status, f.result if scenario != "010" else "consider",
                            {**f.facts, "liveness": None if selfie is None else scenario != "010"})
                    if f.check == "identity" else f for f in findings]
        return [f for f in findings if role == "driver" or f.check not in ("licence", "transport_certificate",
                                                                             "driving_points")]


@dataclass(frozen=True)
class FaceMatch:
    score: float  # 0 to 1
    matched: bool


class FaceMatcher(Protocol):
    name: str

    def match(self, *, reference: bytes, selfie: bytes) -> FaceMatch:
        """Is the person in `selfie` the person in `reference` (the photo taken at screening)?"""
        ...


@dataclass
class SimulatedFaceMatcher:
    """A stand-in face-match service for development and tests (it sees no faces): the same picture as
    the one taken at screening matches, any other does not."""

    name: str = "simulated"
    threshold: float = 0.8

    def match(self, *, reference: bytes, selfie: bytes) -> FaceMatch:
        same = hmac.compare_digest(hashlib.sha256(reference).digest(), hashlib.sha256(selfie).digest())
        score = 0.99 if same else 0.12
        return FaceMatch(score, score >= self.threshold)


def decode_picture(value: str) -> bytes:
    """A base64 picture from a request body, or ValueError."""
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc


def build_agency(settings: Settings) -> ScreeningAgency:
    if settings.screening_agency == "http":
        if not (settings.screening_agency_url and settings.screening_agency_api_key):
            raise ValueError("the http screening agency needs TRIPGUARD_SCREENING_AGENCY_URL and _API_KEY")
        return HttpScreeningAgency(settings.screening_agency_url, settings.screening_agency_api_key.get_secret_value(),
                                   callback_url=settings.base_url.rstrip("/") + "/api/v1/screening/callbacks",
                                   timeout_seconds=settings.screening_timeout_seconds)
    return SimulatedScreeningAgency()
