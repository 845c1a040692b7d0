"""Invitation links: the operator asks for one; the person reads the notice in their language, applies
and consents on a public page; the link then works no more."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.screening.conftest import id_number
from tripguard.core.clock import utcnow
from tripguard.screening.models import Applicant, Consent, Invitation
from tripguard.security.permissions import Role


def _link(client: TestClient, act_as, **body: object) -> str:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    response = client.post("/api/v1/invitations",
                           json={"worker_id": "cou_inv", "role": "courier", "notice_version": "scr-1"} | body)
    assert response.status_code == 201, response.text
    url = response.json()["url"]
    assert re.fullmatch(r"http://\S+/apply/[A-Za-z0-9_-]{32}", url)
    client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    return "/apply/" + url.rsplit("/", 1)[1]


def test_a_person_applies_through_the_link_once(client: TestClient, screening_app: FastAPI, db: Session,  # type: ignore[no-untyped-def]
                                                act_as) -> None:
    path = _link(client, act_as)
    assert db.scalars(select(Invitation)).one().token_hash not in path  # only a keyed hash is kept
    page = client.get(path, headers={"accept-language": "zh-CN"})
    assert page.status_code == 200 and "背景审查告知" in page.text and "同意" in page.text
    english = client.get(path, headers={"accept-language": "en"})
    assert "screening notice" in english.text and "I have read the notice above" in english.text

    unconsented = client.post(path, data={"name": "赵六", "id_number": id_number("001"), "phone": "13800003333"})
    assert unconsented.status_code == 422 and 'data-testid="error"' in unconsented.text
    assert 'value="赵六"' in unconsented.text  # what was typed comes back
    wrong = client.post(path, data={"name": "赵六", "id_number": "110105194912310021", "consent": "yes"})
    assert wrong.status_code == 422 and db.get(Applicant, "cou_inv") is None
    assert 'name="sensitive" value="user.criminal_history" required' in page.text
    assert 'name="sensitive" value="user.financial.credit" required' in page.text
    assert "user.biometric.face" not in page.text  # no selfie is sent from the page
    one_short = client.post(path, data={"name": "赵六", "id_number": id_number("001"), "phone": "13800003333",
                                        "consent": "yes", "sensitive": ["user.criminal_history"]})
    assert one_short.status_code == 422 and db.get(Applicant, "cou_inv") is None
    assert 'value="user.criminal_history" required checked' in one_short.text  # what was ticked stays ticked
    done = client.post(path, data={"name": "赵六", "id_number": id_number("001").lower(), "phone": "13800003333",
                                   "consent": "yes", "sensitive": ["user.criminal_history", "user.financial.credit"]})
    assert done.status_code == 200 and 'data-testid="applied"' in done.text
    db.expire_all()
    applicant = db.get(Applicant, "cou_inv")
    assert applicant is not None and applicant.role == "courier" and applicant.status == "screening"
    assert applicant.notice_version == "scr-1"
    again = client.get(path)
    assert again.status_code == 410 and 'data-testid="gone"' in again.text
    assert client.post(path, data={"name": "x", "id_number": id_number("001"), "consent": "yes"}).status_code == 410
    assert sorted(c.category for c in db.scalars(select(Consent).where(Consent.applicant_id == "cou_inv"))) == [
        "user.criminal_history", "user.financial.credit"]


def test_a_link_that_is_wrong_or_old_does_nothing(client: TestClient, screening_app: FastAPI, db: Session,
                                                  act_as) -> None:  # type: ignore[no-untyped-def]
    path = _link(client, act_as, locale="en")
    db.execute(update(Invitation).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert client.get(path).status_code == 410
    assert client.get("/apply/" + "A" * 32).status_code == 404
    assert client.get("/apply/short").status_code == 404
    assert client.get("/apply/%F0%9F%92%A9" * 4).status_code == 404
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for bad in ({"worker_id": "x", "role": "pilot", "notice_version": "scr-1"},
                {"worker_id": "x", "role": "driver", "notice_version": "nope"},
                {"worker_id": "x", "role": "driver", "notice_version": "scr-1", "city": "Atlantis"}):
        assert client.post("/api/v1/invitations", json=bad).status_code in (404, 422), bad
