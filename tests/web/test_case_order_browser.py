"""A case's items reach a console out of order: a hello read just before an agent's change, a job that
publishes its older state after the agent's newer one (the escalation meeting an acknowledgement). The
console applies none older than what it shows: an acknowledged case never waits again, nor sounds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import expect

from tests.builders import PASSWORD, TEST_ACTOR, sign_as_staff
from tests.conftest import fresh_database, make_settings
from tests.web.conftest import serve_in_thread, watch_errors
from tests.web.test_alarm_browser import context_for, press
from tests.web.test_console_browser import sign_in_and_enrol
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.safety.models import Incident
from tripguard.safety.service import feed_item
from tripguard.security import service
from tripguard.security.permissions import Role

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FastAPI]]:
    tmp = tmp_path_factory.mktemp("order")
    database_url = fresh_database(f"tg_order_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", tmp)
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        account = service.create_staff(session, actor=TEST_ACTOR, username="orderly", display_name="Orderly Ou",
                                       password=PASSWORD, roles={Role.SAFETY_AGENT})
        sign_as_staff(session, account)
        session.commit()
    engine.dispose()
    app = create_app(make_settings(database_url, Path(tmp) / "keys"))
    with serve_in_thread(app) as url:
        yield url, app


def test_an_item_older_than_what_the_console_shows_is_not_applied(browser: Any, served: tuple[str, FastAPI]) -> None:
    base, app = served
    context = context_for(browser, base)
    queue = watch_errors(context.new_page())
    try:
        sign_in_and_enrol(queue, "orderly")
        incident_id = press(base, "psg_ORDER")
        case = watch_errors(context.new_page())  # a second tab: it hears the stream through the first
        case.goto(f"/console/incidents/{incident_id}")
        case.click("button[value=acknowledge]")
        expect(case.locator("[data-testid=incident-status]")).to_have_text("Acknowledged")
        queue.click("nav.main >> text=SOS queue")
        row = queue.locator(f"tr[data-incident='{incident_id}']")
        expect(row.locator(".status")).to_contain_text("Acknowledged")

        with app.state.sessionmaker() as session:
            acknowledged = feed_item(session.get(Incident, incident_id))  # type: ignore[arg-type]
        before = {**acknowledged, "status": "open", "acknowledged_at": None, "assigned_to": None,
                  "version": int(acknowledged["version"]) - 1}  # type: ignore[call-overload]
        # The older state arrives late, then a new case: once the new case is shown, the old item was heard.
        feed = app.state.live_monitor.feed
        feed.publish(before)
        feed.publish({**before, "id": "inc_LATER", "version": 1, "escalated_at": None, "escalated": False})
        for page in (queue, case):
            page.locator("#sos-badge[data-count='1']").wait_for(timeout=5_000)  # the new case waits, alone
        queue.locator("tr[data-incident='inc_LATER']").wait_for()
        expect(row.locator(".status")).to_contain_text("Acknowledged")
        assert row.locator("[data-countdown]").count() == 0
        expect(case.locator("[data-testid=incident-status]")).to_have_text("Acknowledged")
        expect(case.locator("[data-testid=case-changed]")).to_be_hidden()
    finally:
        context.close()
