"""The live map in a real browser: a trip appears, moves, and an alert arrives while the agent watches."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import LiveServer
from tests.web.test_console_browser import new_page, sign_in_and_enrol

pytestmark = pytest.mark.browser
ROUTE = [[-8.61 + i * 0.001, 41.14] for i in range(30)]


def post_events(server: LiveServer, events: list[dict[str, object]]) -> dict[str, object]:
    response = httpx.post(f"{server.url}/api/v1/telematics/events",
                          content="".join(json.dumps(e) + "\n" for e in events),
                          headers={"Authorization": f"Bearer {server.api_key}",
                                   "Content-Type": "application/x-ndjson"}, timeout=10)
    assert response.status_code == 200, response.text
    server.applied()
    return response.json()


def ping(second: int, lon: float, lat: float) -> dict[str, object]:
    return {"type": "ping", "trip_id": "LIVE1", "ts": f"2026-03-01T08:{second // 60:02d}:{second % 60:02d}Z",
            "lon": lon, "lat": lat}


def test_agent_sees_a_trip_move_and_an_alert_arrive(browser: Any, live_server: LiveServer) -> None:
    page = new_page(browser, live_server, "en-US")
    sign_in_and_enrol(page, "agent")
    page.click("nav.main >> text=Live map")
    page.wait_for_url("**/console/live")
    page.locator("body[data-live='connected']").wait_for()

    post_events(live_server, [
        {"type": "trip_started", "trip_id": "LIVE1", "ts": "2026-03-01T08:00:00Z", "vehicle_id": "V9",
         "pickup": ROUTE[0], "dropoff": ROUTE[-1], "route": ROUTE},
        *(ping(15 * n, ROUTE[n][0], 41.14) for n in range(3)),
    ])
    row = page.locator("tr[data-trip='LIVE1']")
    row.wait_for()
    page.locator("tr[data-trip='LIVE1'] .pos", has_text="-8.60800").wait_for()
    assert page.locator("path.leaflet-interactive").count() >= 2  # the route and the vehicle

    report = post_events(live_server, [ping(15 * n, ROUTE[n][0], 41.146) for n in range(3, 9)])
    assert report["accepted"] == 6  # the alert is the monitor's, on the page below
    alert = page.locator("li[data-alert-kind='route_deviation']")
    alert.wait_for()
    assert "LIVE1" in alert.inner_text() and "Route deviation" in alert.inner_text()
    page.locator("tr[data-trip='LIVE1'] .pos", has_text="41.14600").wait_for()  # the panel redraws every 250 ms

    # A busy city: 600 more trips cluster; their routes are no longer drawn; the panel finds one and a
    # click focuses it (its route drawn, the map taken there).
    busy = []
    for n in range(600):
        lon, lat = -8.70 + (n % 30) * 0.004, 41.10 + (n // 30) * 0.004
        busy.append({"type": "trip_started", "trip_id": f"BUSY{n:03d}", "ts": "2026-03-01T08:00:00Z",
                     "route": [[lon, lat], [lon + 0.01, lat]]})
        busy.append({"type": "ping", "trip_id": f"BUSY{n:03d}", "ts": "2026-03-01T08:00:05Z", "lon": lon, "lat": lat})
    post_events(live_server, busy)
    page.locator("#trip-count", has_text="601").wait_for()
    page.locator(".marker-cluster").first.wait_for()
    assert page.locator("#trips tr").count() == 200 and page.locator("#trip-more").is_visible()
    assert page.locator("path.leaflet-interactive").count() < 500  # 601 trips: clustered, routes not drawn for all
    page.fill("#trip-search", "busy123")
    expect(page.locator("#trips tr")).to_have_count(1)
    page.locator("tr[data-trip='BUSY123'] .pos").click()
    page.locator("tr[data-trip='BUSY123'].focused").wait_for()

    # The trip page: its alert, and the trajectory once a reason is given.
    page.fill("#trip-search", "LIVE1")
    expect(page.locator("#trips tr")).to_have_count(1)
    row.locator("a").click()
    page.wait_for_url("**/console/trips/LIVE1")
    page.locator("[data-testid=trip-alerts] li[data-alert-kind='route_deviation']").wait_for()
    page.fill("#reason", "alert on the live map")
    page.click("#evidence button[type=submit]")
    page.locator("body[data-trajectory='shown']").wait_for()
    assert page.locator("#evidence-status").inner_text() == "9 positions"
    assert page.locator("path.leaflet-interactive").count() >= 2  # driven line and planned route
