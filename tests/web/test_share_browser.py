"""The share page in a real browser: who shared it, the ETA refreshed, a failed refresh retried with
back-off (and said so), a dead link said so; a 110 button."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2 as httpx
import pytest

from tests.builders import subject_token
from tests.web.conftest import STEP_TIMEOUT_MS, LiveServer, watch_errors
from tests.web.test_live_map_browser import post_events
from tripguard.core.clock import utcnow

pytestmark = pytest.mark.browser
ROUTE = [[116.30 + i * 0.002, 39.90] for i in range(30)]


def at(seconds: int) -> str:
    """Event times now (a share link dies 24 h after the trip's arrival, by event time)."""
    return (utcnow() - timedelta(minutes=5) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_share_page_keeps_itself_up_to_date(browser: Any, live_server: LiveServer) -> None:
    post_events(live_server, [
        {"type": "trip_started", "trip_id": "SHARE1", "ts": at(0), "passenger_id": "psg_live",
         "pickup": ROUTE[0], "dropoff": ROUTE[-1], "route": ROUTE},
        {"type": "ping", "trip_id": "SHARE1", "ts": at(10), "lon": ROUTE[2][0], "lat": 39.90}])
    created = httpx.post(f"{live_server.url}/api/v1/trips/SHARE1/shares", timeout=10,
                         headers={"Authorization": f"Bearer {subject_token('psg_live')}"})
    assert created.status_code == 201, created.text
    path = created.json()["url"].split("/s/", 1)[1]
    context = browser.new_context(locale="zh-CN", base_url=live_server.url)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = watch_errors(context.new_page())
    try:
        page.goto(f"/s/{path}")
        assert page.locator("[data-testid=shared-by]").inner_text() == "韩** 与您分享了本次行程。"
        assert page.locator("[data-testid=call-110]").get_attribute("href") == "tel:110"
        page.locator("[data-testid=updated]", has_text="秒前更新").wait_for()
        page.route("**/position", lambda route: route.abort())  # the network drops
        page.locator("[data-testid=updated]", has_text="连接中断").wait_for()
        page.unroute("**/position")
        post_events(live_server, [{"type": "ping", "trip_id": "SHARE1", "ts": at(20),
                                   "lon": ROUTE[25][0], "lat": 39.90}])
        page.locator("[data-testid=updated]", has_text="秒前更新").wait_for()  # back by itself
        page.locator("[data-testid=state]", has_text="分钟").wait_for()  # the ETA refreshed
        post_events(live_server, [{"type": "trip_ended", "trip_id": "SHARE1", "ts": at(60),
                                   "lon": ROUTE[-1][0], "lat": 39.90}])
        page.locator("[data-testid=state]", has_text="已到达").wait_for()
    finally:
        context.close()
