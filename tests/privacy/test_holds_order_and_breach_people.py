"""Open legal holds: oldest first in the API, newest first on the page, released ones gone; a breach page lists
only the people that breach touched."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tests.privacy.test_breach_form import GOOD
from tripguard.core.clock import utcnow
from tripguard.privacy import retention
from tripguard.privacy import service as privacy
from tripguard.security.permissions import Role


def test_open_holds_oldest_first_in_the_api_newest_first_on_the_page(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                                      app: FastAPI) -> None:
    for n in (1, 2):
        privacy.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id=f"P-H{n}", kind="passenger",
                               notice_version=None, values={"name": f"人{n}"})
        hold = retention.place_hold(db, actor=TEST_ACTOR, subject_id=f"P-H{n}", case_ref=f"CASE-{n}", reason="r")
        hold.created_at = utcnow() + timedelta(seconds=n)
    db.commit()
    act_as(Role.PRIVACY_OFFICER)
    assert [h["case_ref"] for h in client.get("/api/v1/privacy/holds").json()] == ["CASE-1", "CASE-2"]
    page = client.get("/console/privacy/retention").text
    assert page.index("CASE-2") < page.index("CASE-1")
    retention.release_hold(db, actor=TEST_ACTOR, hold_id=hold.id)  # the last placed: CASE-2
    db.commit()
    assert [h["case_ref"] for h in client.get("/api/v1/privacy/holds").json()] == ["CASE-1"]
    assert "CASE-2" not in client.get("/console/privacy/retention").text


def test_a_breach_page_lists_only_the_people_that_breach_touched(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    first, second = (client.post("/console/privacy/breaches", data=GOOD, follow_redirects=False).headers["location"]
                     for _ in range(2))
    assert client.post(f"{first}/action", data={"action": "add", "subject_ids": "psg_only_first"},
                       follow_redirects=False).status_code == 303
    assert "psg_only_first" in client.get(first).text
    assert "psg_only_first" not in client.get(second).text
