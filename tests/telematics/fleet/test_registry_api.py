"""Vehicles and devices: registration, heartbeats from ingest, status, install and operating rates."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from fastapi.testclient import TestClient

from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tripguard.core.clock import utcnow
from tripguard.security.permissions import Role


def heartbeat(device: str, vehicle: str, minutes_ago: float, camera_ok: bool = True) -> str:
    ts = (utcnow() - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": "device_heartbeat", "device_id": device, "vehicle_id": vehicle, "ts": ts,
                       "camera_ok": camera_ok, "storage_ok": True})


def test_registry_status_and_rates(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for vehicle, plate in (("V1", "粤B·12345"), ("V2", "粤B·23456"), ("V3", "粤B·34567")):
        response = client.put(f"/api/v1/telematics/vehicles/{vehicle}",
                              json={"plate": plate, "colour": "white", "model": "BYD Qin"})
        assert response.status_code == 200
    installed = (utcnow() - timedelta(days=30)).isoformat()
    for device, vehicle in (("DEV1", "V1"), ("DEV2", "V2")):
        assert client.put(f"/api/v1/telematics/devices/{device}",
                          json={"vehicle_id": vehicle, "installed_at": installed}).status_code == 200
    bad = client.put("/api/v1/telematics/devices/DEV9", json={"vehicle_id": "V404", "installed_at": installed})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "vehicle_id"

    # DEV2 last heard 30 hours ago: sent in its time (30 hours behind the stream now, it would be refused).
    for body in (heartbeat("DEV2", "V2", 60 * 30), "\n".join([heartbeat("DEV1", "V1", 3), heartbeat("DEV1", "V1", 1)])):
        report = client.post("/api/v1/telematics/events", content=body.encode(),
                             headers={"content-type": "application/x-ndjson"}).json()
        assert report["rejected"] == []

    act_as(Role.SAFETY_AGENT)
    devices = {d["id"]: d for d in client.get("/api/v1/telematics/devices").json()}
    assert devices["DEV1"]["status"] == "online" and devices["DEV2"]["status"] == "offline"
    kpi = client.get("/api/v1/telematics/kpi/devices", params={"hours": 24}).json()
    assert (kpi["vehicles"], kpi["vehicles_with_device"], kpi["devices_installed"],
            kpi["devices_heard"]) == (3, 2, 2, 1)
    assert abs(kpi["install_rate"] - 2 / 3) < 1e-9 and kpi["operating_rate"] == 0.5


def test_a_faulty_camera_and_an_unknown_device(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    client.post("/api/v1/telematics/events", content=heartbeat("DEV7", "V7", 0.5, camera_ok=False).encode(),
                headers={"content-type": "application/x-ndjson"})
    act_as(Role.SAFETY_AGENT)
    devices = {d["id"]: d for d in client.get("/api/v1/telematics/devices").json()}
    assert devices["DEV7"]["status"] == "faulty" and devices["DEV7"]["vehicle_id"] == "V7"


def test_a_device_that_reports_tampering_or_moves_vehicle_is_tampered(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    installed = (utcnow() - timedelta(days=30)).isoformat()
    for vehicle in ("V1", "V2"):
        client.put(f"/api/v1/telematics/vehicles/{vehicle}", json={"plate": "粤B·1", "colour": "white", "model": "Qin"})
    for device, vehicle in (("DEV1", "V1"), ("DEV2", "V2")):
        client.put(f"/api/v1/telematics/devices/{device}", json={"vehicle_id": vehicle, "installed_at": installed})
    switch = json.loads(heartbeat("DEV1", "V1", 1))
    switch["tampered"] = True
    body = "\n".join([json.dumps(switch), heartbeat("DEV2", "V1", 1)])  # DEV2 now speaks from V1
    client.post("/api/v1/telematics/events", content=body.encode(), headers={"content-type": "application/x-ndjson"})
    act_as(Role.SAFETY_AGENT)
    devices = {d["id"]: d["status"] for d in client.get("/api/v1/telematics/devices").json()}
    assert devices == {"DEV1": "tampered", "DEV2": "tampered"}
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    client.put("/api/v1/telematics/devices/DEV1", json={"vehicle_id": "V1", "installed_at": installed})  # refitted
    client.post("/api/v1/telematics/events", content=heartbeat("DEV1", "V1", 0).encode(),
                headers={"content-type": "application/x-ndjson"})
    act_as(Role.SAFETY_AGENT)
    assert {d["id"]: d["status"] for d in client.get("/api/v1/telematics/devices").json()}["DEV1"] == "online"


def test_the_trip_page_lists_only_the_devices_in_the_trips_vehicle(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    installed = (utcnow() - timedelta(days=30)).isoformat()
    for vehicle, plate, device in (("V1", "粤B·12345", "DEV1"), ("V2", "粤B·23456", "DEV2")):
        assert client.put(f"/api/v1/telematics/vehicles/{vehicle}",
                          json={"plate": plate, "colour": "white", "model": "BYD Qin"}).status_code == 200
        assert client.put(f"/api/v1/telematics/devices/{device}",
                          json={"vehicle_id": vehicle, "installed_at": installed}).status_code == 200
    assert post(client, ndjson(trip_with_deviation("T-V1")[:2])).json()["rejected"] == []  # a trip in V1
    act_as(Role.SAFETY_AGENT)
    page = client.get("/console/trips/T-V1", headers={"accept-language": "en"})
    assert page.status_code == 200, page.text
    devices = page.text.split("<dt>Device</dt><dd>")[1].split("</dd>")[0]
    assert re.findall(r'<code class="ref" translate="no">([^<]+)</code>', devices) == ["DEV1"]
