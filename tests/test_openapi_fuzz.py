"""schemathesis against the OpenAPI spec: no 5xx, and every response matches its documented schema.

It runs once as each kind of principal: staff holding every role, the operator's API key, and a
subject token of each role (passenger, customer, driver, courier), since each reaches other code
(token claims, own-record checks, per-subject writes). Access control itself is
tests/security/test_permissions.py's, route by route.

Deterministic in `make test` (issue #27: a fresh clone once failed CI by chance, so a bug could pass by
chance too): the `ci` Hypothesis profile (tests/conftest.py) derandomizes every property test, so each run
generates the same requests, and `PAST_FINDINGS` below replays every request the fuzz or a review ever
found a 500 (or a value taken unchecked) with, whatever the generator does. `make fuzz` is the wide random
run (TRIPGUARD_FUZZ=1: the `fuzz` profile, a fresh seed, FUZZ_EXAMPLES per operation); each of its
findings is fixed and then added to PAST_FINDINGS (docs/operations.md, "Fuzzing").
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.privacy.test_breach_form import GOOD as BREACH_FORM
from tripguard.screening.providers import sign
from tripguard.security.permissions import STAFF_ROLES, Permission, Role

FUZZ = bool(os.environ.get("TRIPGUARD_FUZZ"))
FUZZ_EXAMPLES = int(os.environ.get("TRIPGUARD_FUZZ_EXAMPLES", "200" if FUZZ else "25"))

_acting: dict[str, object] = {}  # the principal the fixture set up: its kind and permissions


def _reachable(context) -> bool:  # type: ignore[no-untyped-def]
    # Each principal fuzzes the operations it may call (a refused one answers 403 before any input
    # handling, and the permission tests cover that). Public ones do not depend on who calls: the staff
    # run, which covers nearly every operation, takes them.
    share = _acting.get("share")
    if share is not None and zlib.crc32(f"{context.operation.method} {context.operation.path}".encode()) % 2 != share:
        return False  # the other half of the staff run has it
    needed = context.operation.definition.raw.get("x-permission")
    if needed is None or needed == "public":
        return _acting["kind"] == "staff"
    return Permission(needed) in _acting["held"]  # type: ignore[operator]


# Filters on the lazy schema run after the fixture, per test: each principal gets its own operations.
schema = schemathesis.pytest.from_fixture("api_schema").include(_reachable)

# The staff run, nearly every operation, is split in two halves (by a hash of the operation) so the two
# test workers share it: one test of a minute would otherwise set the suite's pace.
PRINCIPALS: dict[str, tuple[str, set[Role] | frozenset[Role], int | None]] = {
    "staff-1": ("staff", STAFF_ROLES, 0),
    "staff-2": ("staff", STAFF_ROLES, 1),
    "api_key": ("api_key", {Role.INTEGRATION}, None),
    **{role.value: ("subject", {role}, None) for role in (Role.PASSENGER, Role.CUSTOMER, Role.DRIVER, Role.COURIER)},
}


@pytest.fixture(params=sorted(PRINCIPALS))
def api_schema(request: pytest.FixtureRequest, app: FastAPI, act_as):  # type: ignore[no-untyped-def]
    kind, roles, share = PRINCIPALS[request.param]
    principal = act_as(*roles, kind=kind, id=f"{kind}_FUZZ")
    _acting.update(kind=kind, held=principal.permissions, share=share)
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_spec(case: schemathesis.Case) -> None:
    # positive_data_acceptance is left out: a schema-valid request may still break a business rule
    # the schema cannot state (a tree size beyond the log, a password of one repeated character),
    # and a 422 naming the rule is the right answer there.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])



@pytest.mark.no_database
def test_make_test_draws_the_same_examples_every_run() -> None:
    """A fresh clone once failed CI on a new draw (issue #27): outside `make fuzz`, every draw is derandomized
    (a seed from each test's own name) and nothing is replayed from a local example database."""
    current = settings()
    if FUZZ:
        assert not current.derandomize and FUZZ_EXAMPLES >= 25
    else:
        assert current.derandomize and current.database is None and FUZZ_EXAMPLES == 25


# ---- every past finding, replayed as an explicit example -----------------------------------------------

CALLBACK_SECRET = "fuzz-callback-secret-0123456789abcdef"
ROUTE = [[-8.61 + i * 0.001, 41.14] for i in range(5)]


def _signed(raw: bytes) -> dict[str, Any]:
    """Signed when the request is sent (`SIGN_NOW`), not when this module was imported: a run of the suite
    outlasts the signature's tolerance."""
    return {"content": raw, "headers": {"X-Screening-Signature": SIGN_NOW, "Content-Type": "application/json"}}


SIGN_NOW = "<signed when sent>"


def _with_fresh_signature(request: dict[str, Any]) -> dict[str, Any]:
    headers = request.get("headers", {})
    if headers.get("X-Screening-Signature") != SIGN_NOW:
        return request
    signature = sign(CALLBACK_SECRET.encode(), request["content"], int(time.time()))
    return {**request, "headers": {**headers, "X-Screening-Signature": signature}}


def _ndjson(*events: dict[str, object]) -> dict[str, Any]:
    return {"content": "".join(json.dumps(e) + "\n" for e in events).encode(),
            "headers": {"Content-Type": "application/x-ndjson"}}


def _line_refused(line: int, words: str) -> Callable[[Any], bool]:
    def check(answer: Any) -> bool:
        reasons = {r["line"]: r["reason"] for r in answer.json()["rejected"]}
        return words in reasons.get(line, "")
    return check


@dataclass(frozen=True)
class Finding:
    """A request that once answered 500, or took a value it should have refused, and what it answers now."""

    found: str  # where: a commit, or the issue
    roles: tuple[Role, ...]
    method: str
    path: str
    status: int
    request: dict[str, Any] = field(default_factory=dict)  # httpx keyword arguments
    kind: str = "staff"
    check: Callable[[Any], bool] | None = None


_STARTED = {"type": "trip_started", "trip_id": "TF1", "ts": "2026-03-01T08:00:00Z", "pickup": ROUTE[0],
            "dropoff": ROUTE[-1], "route": ROUTE}
PAST_FINDINGS: dict[str, Finding] = {
    # issue #27: report periods (0001Q1: b3abe29, found by this fuzz on PostgreSQL)
    "period 0001-01": Finding("#27", (Role.SUPERVISOR,), "GET", "/api/v1/reports/kpis", 422,
                              {"params": {"period": "0001-01"}}),
    "period 9999W52": Finding("#27", (Role.SUPERVISOR,), "GET", "/api/v1/reports/kpis", 422,
                              {"params": {"period": "9999W52"}}),
    "period 0001Q1": Finding("b3abe29", (Role.SUPERVISOR,), "GET", "/api/v1/reports/kpis/sos.ack_p90_s/records", 422,
                             {"params": {"period": "0001Q1"}}),
    "signed callback, deep JSON": Finding("#27", (), "POST", "/api/v1/screening/callbacks", 422,
                                          _signed(b"[" * 100_000 + b"]" * 100_000), kind="public"),
    "quiz answer -1": Finding("#27", (Role.COURIER,), "POST", "/api/v1/me/training/any/attempts", 422,
                              {"json": {"answers": [-1]}}, kind="subject"),
    "quiz answer 2**70": Finding("#27", (Role.COURIER,), "POST", "/api/v1/me/training/any/attempts", 422,
                                 {"json": {"answers": [2**70]}}, kind="subject"),
    "inspection 0000Q1": Finding("#27", (Role.SUPERVISOR,), "POST", "/api/v1/inspections", 422,
                                 {"json": {"checklist_id": "monthly", "period": "0000Q1", "results": {}}}),
    "inspection 2026-13": Finding("#27", (Role.SUPERVISOR,), "POST", "/api/v1/inspections", 422,
                                  {"json": {"checklist_id": "monthly", "period": "2026-13", "results": {}}}),
    "empty pool number": Finding("#27", (Role.INTEGRATION,), "POST", "/api/v1/telephony/numbers", 422,
                                 {"json": {"city": "beijing", "numbers": [""]}}, kind="api_key"),
    "event dated 1970": Finding("#27", (Role.INTEGRATION,), "POST", "/api/v1/telematics/events", 200, _ndjson(
        _STARTED, {"type": "ping", "trip_id": "TF1", "ts": "2026-03-01T08:00:15Z", "lon": -8.61, "lat": 41.14},
        {"type": "trip_started", "trip_id": "TF1970", "ts": "1970-01-01T00:00:00Z"}),
        kind="api_key", check=_line_refused(3, "behind")),
    "10,001 events": Finding("7f9dc47", (Role.INTEGRATION,), "POST", "/api/v1/telematics/events", 422,
                             _ndjson(*[_STARTED] * 10_001), kind="api_key"),
    "events nested 100,000 deep": Finding("e4ebeb3", (Role.INTEGRATION,), "POST", "/api/v1/telematics/events", 422,
                                          {"content": b"[" * 100_000 + b"]" * 100_000,
                                           "headers": {"Content-Type": "application/json"}}, kind="api_key"),
    "audit since, offset -23:59": Finding("9999 offsets", (Role.AUDIT_ADMIN,), "GET", "/api/v1/audit/entries", 422,
                                          {"params": {"since": "9999-12-31T23:59:59-23:59"}}),
    "kitchen link, 64-character id": Finding("f98a69c", (Role.SYSTEM_ADMIN,), "PUT",
                                             f"/api/v1/merchants/M1/staff/{'s' * 64}", 404),
    "breach form, one time zoned": Finding("930b76f", (Role.PRIVACY_OFFICER,), "POST", "/console/privacy/breaches", 422,
                                           {"data": {**BREACH_FORM, "occurred_to": "2026-11-02T08:00Z"}}),
}


@pytest.mark.parametrize("name", sorted(PAST_FINDINGS))
def test_every_past_finding_stays_fixed(name: str, app: FastAPI, client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    finding = PAST_FINDINGS[name]
    app.state.settings = app.state.settings.model_copy(update={"screening_callback_secret": SecretStr(CALLBACK_SECRET)})
    if finding.kind != "public":
        act_as(*finding.roles, kind=finding.kind, id=f"{finding.kind}_FINDING")
    answer = client.request(finding.method, finding.path, follow_redirects=False,
                            **_with_fresh_signature(finding.request))
    assert answer.status_code == finding.status, f"{name} ({finding.found}): {answer.status_code} {answer.text[:300]}"
    assert finding.check is None or finding.check(answer), f"{name}: {answer.text[:300]}"
