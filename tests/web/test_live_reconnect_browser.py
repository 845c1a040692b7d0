"""A console never goes silent: across a server restart the page shows it is reconnecting, comes back
by itself, and a case opened while it was away appears (caught up from its last event id). New cases
are announced on every page: badge, aria-live text."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.builders import staff, subject_token
from tests.processes import TRIPGUARD, free_port, process_env, wait_healthy
from tests.web.conftest import STEP_TIMEOUT_MS, watch_errors
from tests.web.test_console_browser import sign_in_and_enrol
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.settings import Settings
from tripguard.security.permissions import Role

pytestmark = pytest.mark.browser


def serve(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([TRIPGUARD, "serve", "--port", str(port)], env=process_env(settings),
                              stdout=subprocess.DEVNULL, stderr=log.open("a"))
    # 90 s: a bound, not a target: imports are slow on a busy machine
    wait_healthy(f"http://127.0.0.1:{port}", server, log, 90)
    return server


def press(base: str, caller: str) -> str:
    answer = httpx.post(f"{base}/api/v1/sos", json={"lon": 116.397, "lat": 39.909},
                        headers={"Authorization": f"Bearer {subject_token(caller)}", "Idempotency-Key": caller},
                        timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["incident_id"])


def test_a_case_opened_while_the_server_restarts_appears_after_the_reconnection(
        browser: Any, cli_site: Settings, tmp_path: Path) -> None:
    create_app(cli_site)  # the keys
    with make_sessionmaker(make_engine(cli_site.database_url))() as session:
        staff(session, "agent", Role.SAFETY_AGENT)
    port, log = free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    server = serve(cli_site, port, log)
    context = browser.new_context(locale="zh-CN", base_url=base)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = watch_errors(context.new_page())
    try:
        sign_in_and_enrol(page, "agent")
        page.goto("/console/incidents")
        page.locator("body[data-live='connected']").wait_for()
        assert page.locator("#live-state").inner_text() == "实时"

        server.send_signal(signal.SIGTERM)  # the server says `closing`; the page starts reconnecting
        assert server.wait(10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
        page.locator("#live-state[data-state='reconnecting']").wait_for()
        assert page.locator("#live-state").inner_text() == "正在重新连接…"
        # Lost for more than a few seconds: a banner across the page says so.
        page.locator("#connection-banner").wait_for(state="visible", timeout=10_000)
        assert "连接已断开" in page.locator("#connection-banner").inner_text()

        # While the page is away (its reconnections refused), a passenger presses SOS on the new process.
        page.route("**/console/incidents/stream**", lambda route: route.abort())
        server = serve(cli_site, port, log)
        during_gap = press(base, "psg_GAP")
        page.unroute("**/console/incidents/stream**")

        row = page.locator(f"tr[data-incident='{during_gap}']")
        row.wait_for(timeout=20_000)  # back by itself, and caught up from its last event id
        assert "等待受理" in row.inner_text()
        page.locator("body[data-live='connected']").wait_for()
        page.locator("#connection-banner").wait_for(state="hidden")
        assert page.locator("#sos-badge").get_attribute("data-count") == "1"
        assert "新的 SOS 求助" in page.locator("#announce").inner_text()
        assert page.locator("#announce").get_attribute("aria-live") == "assertive"

        # On any other page (here: home), a new case is announced too.
        page.goto("/console")
        page.locator("body[data-live='connected']").wait_for()
        assert page.locator("#sos-badge").get_attribute("data-count") == "1"  # the one still waiting
        second = press(base, "psg_HOME")
        page.locator("#sos-badge[data-count='2']").wait_for(timeout=5_000)
        assert page.locator("#sos-badge").is_visible()
        assert page.locator("#announce").inner_text() == f"新的 SOS 求助: {second}"
    finally:
        context.close()
        if server.poll() is None:
            server.kill()
            server.wait()
