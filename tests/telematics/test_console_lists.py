"""The telematics lists in the console: trips, devices (filtered by the same status the registry
computes, in SQL) and check-ins, with search, sorting and CSV."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.security.permissions import Role
from tripguard.telematics.fleet import registry
from tripguard.telematics.models import Device


@pytest.fixture
def devices(db: Session) -> None:
    now = utcnow()
    rows = [Device(id="DEV_ON", vehicle_id="V1", installed_at=now, last_heartbeat_at=now, camera_ok=True,
                   storage_ok=True),
            Device(id="DEV_OFF", vehicle_id="V2", installed_at=now, last_heartbeat_at=now - timedelta(hours=1)),
            Device(id="DEV_CAM", vehicle_id="V3", installed_at=now, last_heartbeat_at=now, camera_ok=False),
            Device(id="DEV_TAMPER", vehicle_id="V4", installed_at=now, last_heartbeat_at=now, tampered_at=now,
                   tamper_reason="lid_open"),
            Device(id="DEV_SPARE")]
    db.add_all(rows)
    db.flush()


def test_the_sql_status_is_the_registry_status(db: Session, devices: None) -> None:
    now = utcnow()
    for device in db.scalars(select(Device)):
        in_sql = db.scalar(select(registry.status_sql(now)).where(Device.id == device.id))
        assert in_sql == registry.status(device, now), device.id


@pytest.mark.parametrize(("query", "expected"), [
    ("", {"DEV_ON", "DEV_OFF", "DEV_CAM", "DEV_TAMPER", "DEV_SPARE"}),
    ("?state=offline", {"DEV_OFF"}), ("?state=faulty", {"DEV_CAM"}), ("?state=tampered", {"DEV_TAMPER"}),
    ("?state=not_installed", {"DEV_SPARE"}), ("?q=v3", {"DEV_CAM"}),
])
def test_devices_page_filters_by_state(client: TestClient, act_as, devices: None, query: str,  # type: ignore[no-untyped-def]
                                       expected: set[str]) -> None:
    act_as(Role.SAFETY_AGENT)
    page = client.get(f"/console/devices{query}", headers={"accept-language": "en"})
    assert page.status_code == 200
    assert set(re.findall(r'data-device="([^"]+)"', page.text)) == expected
    assert "Install rate" in page.text


def test_trips_and_check_ins_lists(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation("T-LIST-1")))
    post(client, ndjson(trip_with_deviation("T-LIST-2")[:3]))
    act_as(Role.SAFETY_AGENT)
    everything = client.get("/console/trips").text
    assert set(re.findall(r'data-trip="([^"]+)"', everything)) >= {"T-LIST-1", "T-LIST-2"}
    one = client.get("/console/trips?q=list-2").text
    assert re.findall(r'data-trip="([^"]+)"', one) == ["T-LIST-2"]
    exported = client.get("/console/trips?q=T-LIST&format=csv&sort=trip&dir=asc")
    assert exported.text.lstrip("\ufeff").splitlines()[1].startswith("T-LIST-1,")
    assert client.get("/console/check-ins").status_code == 200
