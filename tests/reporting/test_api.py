"""The reports' period parameters at their bounds: a label outside 1970-2199, or one that names no period, is a
422 on every route that takes one (`0001-01` and `9999W52` were 500s); the first and last periods answer."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tripguard.security.permissions import Role

BAD = ["0001-01", "9999W52", "0001Q1", "9999-12", "0000Q1", "2026-13", "2027W53", "2199W53", "1969Q4", "2200Q1"]
ROUTES = ["/api/v1/reports/kpis", "/api/v1/reports/kpis/sos.ack_p90_s/records", "/console/reports"]


@pytest.mark.parametrize("label", BAD)
def test_a_period_out_of_bounds_is_a_422_everywhere(client: TestClient, act_as, label: str) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR)
    for route in ROUTES:
        assert client.get(route, params={"period": label}).status_code == 422, (route, label)
    if "Q" in label:
        answer = client.get("/console/reports/quarterly", params={"quarter": label, "format": "csv"})
        assert answer.status_code == 422, label


def test_the_first_and_last_periods_answer(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR)
    for label in ("1970Q1", "1970-01", "1970W01", "2199Q4", "2199-12", "2199W52"):
        for route in ROUTES:
            assert client.get(route, params={"period": label}).status_code == 200, (route, label)
    # The quarterly report's trend of 1970Q1 once asked for 1969's quarters and refused the report.
    answer = client.get("/console/reports/quarterly", params={"quarter": "1970Q1", "format": "csv"})
    assert answer.status_code == 200, answer.text[:300]
    parameter = next(p for p in client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/reports/kpis"]["get"]
                     ["parameters"] if p["name"] == "period")
    assert parameter["schema"]["pattern"].startswith("^(19[7-9]")  # the bounds are in the published schema
