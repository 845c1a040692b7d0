"""A press naming a trip TripGuard cannot link to the caller reaches the live queue marked unverified."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.builders import subject_token
from tests.web.conftest import LiveServer
from tests.web.test_console_browser import new_page, sign_in_and_enrol

pytestmark = pytest.mark.browser


def test_a_claimed_trip_arrives_in_the_live_queue_marked_unverified(browser: Any, live_server: LiveServer) -> None:
    page = new_page(browser, live_server, "zh-CN")
    sign_in_and_enrol(page, "agent")
    page.goto("/console/incidents")
    page.locator("body[data-live='connected']").wait_for()
    press = httpx.post(f"{live_server.url}/api/v1/sos", json={"trip_id": "T_NOT_YET"},
                       headers={"Authorization": f"Bearer {subject_token('psg_CLAIM')}"}, timeout=10)
    assert press.status_code == 201, press.text
    row = page.locator(f"tr[data-incident='{press.json()['incident_id']}']")
    row.wait_for(timeout=3000)
    assert "T_NOT_YET 未核实" in row.inner_text()
