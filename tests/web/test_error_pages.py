"""Every console error renders inside the shell (navigation and sign-out for whoever is signed in), in
the page's language, with no English on a zh page; signed out, the sign-in page returns to what was
asked for; a dead share link stands alone, with no way into the console."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.builders import PASSWORD, sign_in_with_enrolment, staff
from tests.web.untranslated import english_words
from tripguard.safety.models import Incident
from tripguard.security.permissions import Role

SAME_ORIGIN = {"origin": "http://testserver"}
# (method, path, form, status): the ways a console request goes wrong
ERRORS = [
    ("GET", "/console/no-such-page", None, 404),
    ("GET", "/console/incidents/inc_NOT_THERE", None, 404),
    ("GET", "/console/audit", None, 403),
    ("POST", "/console/incidents/inc_NOT_THERE/action", {"action": "explode"}, 422),
    ("GET", "/console/sign-out", None, 405),
    ("GET", "/console/trips/" + "x" * 300, None, 422),
]


@pytest.fixture
def agent(client: TestClient, db: Session) -> TestClient:
    staff(db, "agent.ma", Role.SAFETY_AGENT)
    sign_in_with_enrolment(client, "agent.ma")
    return client


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize(("method", "path", "form", "status"), ERRORS)
def test_an_error_page_sits_inside_the_shell_in_the_page_language(
        agent: TestClient, language: str, method: str, path: str, form: dict[str, str] | None, status: int) -> None:
    answer = agent.request(method, path, data=form, headers={"accept-language": language, **SAME_ORIGIN})
    assert answer.status_code == status and answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert 'data-testid="error"' in page and f'data-status="{status}"' in page
    assert 'id="main-nav"' in page and 'href="/console/incidents"' in page  # navigation for their roles
    assert 'action="/console/sign-out"' in page and 'data-testid="who"' in page
    assert "<Role." not in page and "Traceback" not in page
    if language == "zh-CN":
        assert english_words(page) == [], english_words(page)
    else:
        assert 'lang="en"' in page


def test_a_conflict_reads_in_chinese(agent: TestClient, db: Session) -> None:
    raised = datetime(2026, 11, 1, tzinfo=UTC)
    db.add(Incident(id="inc_CLOSED", source="sos", severity="critical", status="closed", silent=False,
                    created_at=raised, ack_due_at=raised))
    db.flush()
    answer = agent.post("/console/incidents/inc_CLOSED/action", data={"action": "acknowledge"},
                        headers={"accept-language": "zh-CN", **SAME_ORIGIN})
    assert answer.status_code == 409
    assert english_words(answer.text) == [], english_words(answer.text)


def test_signed_out_a_console_page_leads_to_sign_in_and_back(client: TestClient, db: Session) -> None:
    staff(db, "trainer.lu", Role.TRAINER)
    asked = client.get("/console/incidents?state=open", follow_redirects=False)
    assert asked.status_code == 303
    assert asked.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fincidents%3Fstate%3Dopen"
    form = client.get(asked.headers["location"])
    assert 'name="next" value="/console/incidents?state=open"' in form.text
    signed = client.post("/console/sign-in", data={"username": "trainer.lu", "password": PASSWORD,
                                                   "next": "/console/incidents?state=open"},
                         headers=SAME_ORIGIN, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/console/incidents?state=open"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console", "/console\\\\evil",
                                    "/api/v1/me", "/console/\u202e", "javascript:alert(1)"])
def test_sign_in_never_returns_to_a_page_not_ours(client: TestClient, db: Session, target: str) -> None:
    staff(db, "trainer.lu", Role.TRAINER)
    signed = client.post("/console/sign-in", data={"username": "trainer.lu", "password": PASSWORD, "next": target},
                         headers=SAME_ORIGIN, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/console"


def test_the_root_leads_to_the_console(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console"


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_a_dead_share_link_stands_alone_in_one_language(client: TestClient, language: str) -> None:
    answer = client.get("/s/" + "A" * 43, headers={"accept-language": language})
    assert answer.status_code in (404, 410)
    assert "href=\"/console" not in answer.text and "sign-out" not in answer.text
    if language == "zh-CN":
        assert english_words(answer.text) == [] and "110" in answer.text
    else:
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in answer.text)
