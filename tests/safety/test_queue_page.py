"""Triage on the SOS queue (the console's list component): live cases by default, filters by state,
source and assignee, search, sorting, pages, overdue and escalated rows marked, CSV export audited."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.safety.models import Incident
from tripguard.security.permissions import Role


def case(db: Session, id: str, *, status: str = "open", source: str = "sos", severity: str = "critical",
         minutes_ago: int = 1, trip: str | None = None, assigned: str | None = None, escalated: bool = False,
         due_in: int = 60) -> None:
    raised = utcnow() - timedelta(minutes=minutes_ago)
    db.add(Incident(id=id, source=source, severity=severity, status=status, silent=False, created_at=raised,
                    ack_due_at=utcnow() + timedelta(seconds=due_in), trip_id=trip, assigned_to=assigned,
                    escalated_at=raised if escalated else None))
    db.flush()


def shown(page: str) -> list[str]:
    return re.findall(r'<tr data-incident="([^"]+)"', page)


@pytest.fixture
def queue(db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    case(db, "inc_A", minutes_ago=1, trip="T-ALPHA")
    case(db, "inc_B", minutes_ago=2, source="alert", severity="high", status="acknowledged", assigned="stf_TEST")
    case(db, "inc_C", minutes_ago=3, source="check_in", severity="medium", status="resolved")
    case(db, "inc_D", minutes_ago=4, status="closed")
    case(db, "inc_E", minutes_ago=5, due_in=-30, escalated=True)
    act_as(Role.SAFETY_AGENT)


def test_live_cases_by_default_newest_first_resolved_hidden(client: TestClient, queue: None) -> None:
    page = client.get("/console/incidents", headers={"accept-language": "en"}).text
    assert shown(page) == ["inc_A", "inc_B", "inc_E"]
    assert "Times in UTC+08:00." in page  # the operator's zone (Asia/Shanghai), labelled
    row_e = page[page.index('data-incident="inc_E"'):].split("</tr>")[0]
    assert "overdue" in row_e and "escalated" in row_e  # they stand out


@pytest.mark.parametrize(("query", "expected"), [
    ("?state=all", ["inc_A", "inc_B", "inc_C", "inc_D", "inc_E"]),
    ("?state=resolved", ["inc_C"]),
    ("?source=alert", ["inc_B"]),
    ("?state=all&source=check_in", ["inc_C"]),
    ("?assignee=me", ["inc_B"]),
    ("?assignee=none", ["inc_A", "inc_E"]),
    ("?q=alpha", ["inc_A"]),
    ("?q=INC_E", ["inc_E"]),
    ("?q=%25", []),  # a LIKE wildcard is searched for, not obeyed
    ("?state=all&sort=severity&dir=asc", ["inc_C", "inc_B", "inc_A", "inc_D", "inc_E"]),
    ("?state=all&sort=raised&dir=asc", ["inc_E", "inc_D", "inc_C", "inc_B", "inc_A"]),
    ("?state=nonsense&sort=evil&dir=sideways&page=-3&size=7", ["inc_A", "inc_B", "inc_E"]),  # defaults, no error
    ("?page=" + "9" * 5000 + "&size=" + "9" * 5000 + "&q=%00%00", ["inc_A", "inc_B", "inc_E"]),
])
def test_filters_search_and_sorting(client: TestClient, queue: None, query: str, expected: list[str]) -> None:
    answer = client.get(f"/console/incidents{query}")
    assert answer.status_code == 200
    assert shown(answer.text) == expected


def test_pages_do_not_overlap(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    for n in range(30):
        case(db, f"inc_P{n:02d}", minutes_ago=n // 3)  # equal times: the id breaks ties
    act_as(Role.SAFETY_AGENT)
    first = shown(client.get("/console/incidents?size=25").text)
    second = shown(client.get("/console/incidents?size=25&page=2").text)
    beyond = shown(client.get("/console/incidents?size=25&page=99").text)
    assert len(first) == 25 and len(second) == 5 and not set(first) & set(second)
    assert beyond == second  # past the end: the last page


def test_csv_export_is_the_filtered_list_audited_and_safe_in_a_spreadsheet(
        client: TestClient, db: Session, queue: None) -> None:
    case(db, "inc_F", trip="=HYPERLINK(\"http://x\")")
    answer = client.get("/console/incidents?state=all&format=csv", headers={"accept-language": "en"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["Case", "Source", "Severity", "State"] and len(rows) == 7
    assert next(r for r in rows if r[0] == "inc_F")[4].startswith("'=")  # never run as a formula
    export = db.scalars(select(AuditEntry).where(AuditEntry.action == "console.export")).one()
    assert export.target_id == "cases" and '"rows":6' in export.details.replace(" ", "")


def test_the_queue_is_for_case_handlers_only(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.TRAINER)
    assert client.get("/console/incidents").status_code == 403
    assert client.get("/console/incidents?format=csv").status_code == 403


def test_times_are_the_operators(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    db.add(Incident(id="inc_T", source="sos", severity="critical", status="open", silent=False,
                    created_at=datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC),
                    ack_due_at=datetime(2026, 11, 30, 1, 3, 3, tzinfo=UTC)))
    db.flush()
    act_as(Role.SAFETY_AGENT)
    page = client.get("/console/incidents").text
    assert "11-30 09:02:03" in page  # 01:02:03 UTC is 09:02:03 in Asia/Shanghai


def test_a_feed_item_says_who_holds_the_case_and_whether_it_still_counts_down() -> None:
    """Every queue and case page updates from these: the assignee, the acknowledgement that stops the
    countdown, the escalation that sounds the alarm again."""
    from tripguard.safety.service import feed_item

    now = utcnow()
    held = Incident(id="inc_X", source="sos", severity="critical", status="acknowledged", silent=False,
                    created_at=now, ack_due_at=now, acknowledged_at=now, assigned_to="stf_B")
    item = feed_item(held)
    assert (item["status"], item["assigned_to"], item["acknowledged_at"]) == ("acknowledged", "stf_B", now.isoformat())
    assert item["escalated_at"] is None and item["escalated"] is False
    late = Incident(id="inc_Y", source="sos", severity="critical", status="open", silent=False, created_at=now,
                    ack_due_at=now, escalated_at=now)
    assert feed_item(late)["escalated_at"] == now.isoformat() and feed_item(late)["escalated"] is True
    assert feed_item(late)["assigned_to"] is None and feed_item(late)["acknowledged_at"] is None


def test_every_change_of_a_case_raises_the_version_its_row_and_feed_items_carry(
        client: TestClient, db: Session, session_factory, queue: None) -> None:  # type: ignore[no-untyped-def]
    """A console drops a case's item older than what it shows (console.js): the version must rise with each
    change, whoever makes it (an agent's action, the escalation job), and the page must say what it shows."""
    from tripguard.safety.service import escalate_overdue, feed_item

    def row_version() -> str:
        page = client.get("/console/incidents").text
        return re.search(r'<tr data-incident="inc_L" data-version="(\d+)"', page).group(1)  # type: ignore[union-attr]

    case(db, "inc_L", due_in=-1)
    assert row_version() == "1"
    escalated = escalate_overdue(session_factory, webhook_url=None)
    assert [(i["id"], i["version"]) for i in escalated] == [("inc_L", 2)]
    assert client.post("/console/incidents/inc_L/action", data={"action": "acknowledge"},
                       follow_redirects=False).status_code == 303
    assert row_version() == "3"
    case_page = client.get("/console/incidents/inc_L").text
    assert 'data-widget="case" data-incident="inc_L" data-version="3"' in case_page
    db.expire_all()
    incident = db.get(Incident, "inc_L")
    assert incident is not None and feed_item(incident)["version"] == 3
