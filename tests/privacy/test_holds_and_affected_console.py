"""Legal holds placed and lifted from the retention page; affected people added to a breach from its
page; bad input comes back on the page with the input kept."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.privacy.test_breach_form import GOOD
from tests.privacy.test_requests import person  # noqa: F401  (the fixture)
from tests.web.confirming import asks_first, confirmed
from tripguard.audit.models import AuditEntry
from tripguard.console.privacy_pages import LIFT_HOLD
from tripguard.privacy.models import BreachSubject, LegalHold
from tripguard.security.permissions import Role


def test_a_hold_is_placed_and_lifted(client: TestClient, db: Session, act_as, person: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    act_as(Role.PRIVACY_OFFICER)
    placed = client.post("/console/privacy/holds", data={"subject_id": person, "case_ref": "inc_01",
                                                         "reason": "诉讼保全"}, follow_redirects=False)
    assert placed.status_code == 303
    hold = db.scalars(select(LegalHold)).one()
    assert (hold.subject_id, hold.case_ref, hold.released_at) == (person, "inc_01", None)
    page = client.get("/console/privacy/retention").text
    assert f'data-hold="{hold.id}"' in page
    assert 'data-confirm="' in page.split(f'data-hold="{hold.id}"')[1].split("</tr>")[0]  # its Lift asks
    url = f"/console/privacy/holds/{hold.id}/release"
    asks_first(client, url, question="Lift this legal hold?", consequence=LIFT_HOLD.consequence)
    db.expire_all()
    assert db.get(LegalHold, hold.id).released_at is None  # type: ignore[union-attr]  # not without a yes
    assert confirmed(client, url).status_code == 303
    db.expire_all()
    assert db.get(LegalHold, hold.id).released_at is not None  # type: ignore[union-attr]
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "hold.release",
                                              AuditEntry.target_id == person)) is not None


def test_a_hold_on_nobody_comes_back_with_the_input(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    unknown = client.post("/console/privacy/holds", data={"subject_id": "psg_NOBODY", "case_ref": "inc_02",
                                                          "reason": "调查取证"})
    assert unknown.status_code == 404 and 'value="inc_02"' in unknown.text and 'role="alert"' in unknown.text
    bad = client.post("/console/privacy/holds", data={"subject_id": "psg 1\x00", "case_ref": "x", "reason": "r"})
    assert bad.status_code == 422


def test_affected_people_are_added_to_a_breach(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    breach_url = client.post("/console/privacy/breaches", data=GOOD, follow_redirects=False).headers["location"]
    breach_id = breach_url.rsplit("/", 1)[1]
    added = client.post(f"{breach_url}/action", data={"action": "add", "subject_ids": "psg_1, psg_2\npsg_1 psg_3"},
                        follow_redirects=False)
    assert added.status_code == 303
    assert sorted(db.scalars(select(BreachSubject.subject_id).where(BreachSubject.breach_id == breach_id))) == [
        "psg_1", "psg_2", "psg_3"]
    bad = client.post(f"{breach_url}/action", data={"action": "add", "subject_ids": "<script>"})
    assert bad.status_code == 422
    assert "psg_2" in client.get(breach_url).text
