"""A trip with no vehicle opens in the API and the console; the trip list's state filter holds."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tripguard.security.permissions import Role


def test_a_trip_without_a_vehicle_opens_in_the_api_and_the_console(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    events = trip_with_deviation("T7")
    del events[0]["vehicle_id"]
    assert post(client, ndjson(events)).status_code == 200
    act_as(Role.SAFETY_AGENT)
    detail = client.get("/api/v1/telematics/trips/T7")
    assert detail.status_code == 200 and detail.json()["vehicle"] is None
    assert client.get("/console/trips/T7").status_code == 200
    assert [t["id"] for t in client.get("/api/v1/telematics/trips?status=ended").json()] == []
