"""schemathesis against the OpenAPI spec: no 5xx, and every response matches its documented schema.

The principal holds every staff role (the fuzz is about input handling, not access control, which
tests/security/test_permissions.py covers route by route).
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tripguard.security.permissions import STAFF_ROLES

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def api_schema(app: FastAPI, act_as):  # type: ignore[no-untyped-def]
    act_as(*STAFF_ROLES)
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_spec(case: schemathesis.Case) -> None:
    # positive_data_acceptance is left out: a schema-valid request may still break a business rule
    # the schema cannot state (a tree size beyond the log, a password of one repeated character),
    # and a 422 naming the rule is the right answer there.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
