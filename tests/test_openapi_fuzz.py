"""schemathesis against the OpenAPI spec: no 5xx, and every response matches its documented schema.

It runs once as each kind of principal: staff holding every role, the operator's API key, and a
subject token of each role (passenger, customer, driver, courier), since each reaches other code
(token claims, own-record checks, per-subject writes). Access control itself is
tests/security/test_permissions.py's, route by route.
"""

from __future__ import annotations

import zlib

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tripguard.security.permissions import STAFF_ROLES, Permission, Role

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
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_spec(case: schemathesis.Case) -> None:
    # positive_data_acceptance is left out: a schema-valid request may still break a business rule
    # the schema cannot state (a tree size beyond the log, a password of one repeated character),
    # and a 422 naming the rule is the right answer there.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
