"""The SOS queue in a real browser: a press through the API is on the agent's screen within a second."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from tests.builders import subject_token
from tests.web.conftest import LiveServer
from tests.web.test_console_browser import new_page, sign_in_and_enrol

pytestmark = pytest.mark.browser


def test_a_press_appears_in_the_queue_within_a_second(browser: Any, live_server: LiveServer) -> None:
    page = new_page(browser, live_server, "zh-CN")
    sign_in_and_enrol(page, "agent")
    page.goto("/console/incidents")
    page.locator("body[data-live='connected']").wait_for()
    press = httpx.post(f"{live_server.url}/api/v1/sos", json={"silent": True, "lon": 116.397, "lat": 39.909},
                       headers={"Authorization": f"Bearer {subject_token('psg_SOS1')}",
                                "Idempotency-Key": "tap-1"}, timeout=10)
    assert press.status_code == 201, press.text
    incident_id = press.json()["incident_id"]
    row = page.locator(f"tr[data-incident='{incident_id}']")
    row.wait_for(timeout=1000)  # the bound: on the agent's screen within one second
    assert "等待受理" in row.inner_text()
    again = httpx.post(f"{live_server.url}/api/v1/sos", json={},
                       headers={"Authorization": f"Bearer {subject_token('psg_SOS1')}", "Idempotency-Key": "tap-1"},
                       timeout=10)
    assert again.status_code == 200 and again.json()["incident_id"] == incident_id
    assert page.locator("tr[data-incident]").count() == 1

    row.locator("a").click()
    page.wait_for_url(f"**/console/incidents/{incident_id}")
    assert page.locator("[data-testid=position]").inner_text().startswith("116.397000,39.909000")
    page.click("button[value=acknowledge]")  # a boosted form: the page is swapped, not reloaded
    expect(page.locator("[data-testid=incident-status]")).to_have_text("已受理")

    # A passenger TripGuard knows presses: the case page shows their name and phone, opened through the
    # gate for the emergency purpose (an audit entry), and the call button goes through the adapter.
    known = httpx.post(f"{live_server.url}/api/v1/sos", json={"lon": 116.40, "lat": 39.91},
                       headers={"Authorization": f"Bearer {subject_token('psg_live')}", "Idempotency-Key": "tap-2"},
                       timeout=10).json()["incident_id"]
    page.goto(f"/console/incidents/{known}")
    assert page.locator("[data-testid=caller-name]").inner_text() == "韩梅梅"
    assert page.locator("[data-testid=caller-phone]").inner_text() == "13800005555"
    engine = create_engine(live_server.database_url)
    with engine.connect() as connection:
        reads = connection.execute(text(
            "SELECT purpose, details FROM audit_entries WHERE action = 'personal.read' AND target_id = 'psg_live' "
            "AND actor_type = 'staff'")).all()
    engine.dispose()
    assert reads and all(purpose == "emergency" for purpose, _ in reads)
    assert any('"plaintext":"name,phone"' in details.replace(" ", "") for _, details in reads)
    page.click("[data-testid=call-caller]")
    assert "内置电话模块不会拨号" in page.locator("[data-testid=call-result]").inner_text()
    assert "呼叫" in page.locator("[data-testid=timeline]").inner_text()

    # The home dashboard: live figures, and the cases chart drawn by the vendored uPlot.
    page.goto("/console")
    page.locator("[data-testid=chart-cases] canvas").wait_for()
    assert int(page.locator("[data-figure=live] .value").inner_text()) >= 1
    assert page.evaluate("typeof uPlot") == "function"
