"""A car on the live map can be clicked while its positions arrive (test_steady_browser.py has the why).

A module of its own: its server holds this one trip, so the car is never drawn inside another's cluster.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import LiveServer
from tests.web.test_live_map_browser import ROUTE
from tests.web.test_steady_browser import PRESS_MS, agent_page, post_events

pytestmark = pytest.mark.browser


def test_a_moving_car_on_the_live_map_can_be_clicked(browser: Any, live_server: LiveServer) -> None:
    """A position re-adds the car's marker to the cluster (a new element, even standing still): positions
    arriving under the press are drawn after the click."""
    page = agent_page(browser, live_server, "steady_marker")
    page.goto("/console/live")
    page.locator("body[data-live='connected']").wait_for()
    page.click("#trip-search")
    expect(page.locator("#sound-banner")).to_be_hidden()

    def ping(second: int, lat: float) -> dict[str, object]:
        return {"type": "ping", "trip_id": "MOVING", "lon": ROUTE[0][0], "lat": lat,
                "ts": f"2026-03-01T09:00:{second:02d}Z"}

    post_events(live_server, [{"type": "trip_started", "trip_id": "MOVING", "ts": "2026-03-01T09:00:00Z"},
                              ping(1, ROUTE[0][1])])
    page.locator("tr[data-trip='MOVING']").wait_for()
    car = page.locator("#map path.leaflet-interactive[stroke='#1d2330']")
    car.wait_for()
    page.wait_for_timeout(1000)  # the map has fitted the trip and stands still
    box = car.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    post_events(live_server, [ping(2, ROUTE[0][1] + 0.002)])  # about 200 m north
    page.wait_for_timeout(PRESS_MS)
    page.mouse.up()
    expect(page.locator("tr[data-trip='MOVING']")).to_have_class(re.compile(r"\bfocused\b"))
