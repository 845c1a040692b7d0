"""The privacy officer's request page: verify a person confirmed another way (an erasure then runs),
decide a correction, and see the request's history; wrong states and roles are refused."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.privacy.test_requests import as_person, person  # noqa: F401  (the fixture)
from tripguard.audit.models import AuditEntry
from tripguard.privacy.models import DataSubject, SubjectRequest
from tripguard.security.permissions import Role


def test_an_officer_verifies_in_person_and_the_erasure_runs(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                             person: str) -> None:  # noqa: F811
    filed = client.post("/api/v1/me/requests", json={"kind": "erasure"}, headers={**as_person(), "Idempotency-Key": "erase-0001"})
    assert filed.status_code == 202, filed.text
    request_id = next(value for key, value in filed.json().items() if key in ("id", "request_id"))
    act_as(Role.PRIVACY_OFFICER)
    page = client.get(f"/console/privacy/requests/{request_id}", headers={"accept-language": "en"})
    assert page.status_code == 200 and "Verify the person" in page.text
    done = client.post(f"/console/privacy/requests/{request_id}/verify", data={"how": "in person, ID card seen"},
                       follow_redirects=False)
    assert done.status_code == 303
    db.expire_all()
    assert db.get(SubjectRequest, request_id).status == "completed"  # type: ignore[union-attr]
    assert db.get(DataSubject, person).erased_at is not None  # type: ignore[union-attr]
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "request.verify",
                                                AuditEntry.actor_id == "stf_TEST")).one()
    assert json.loads(entry.details) == {"how": "in person, ID card seen"}
    again = client.post(f"/console/privacy/requests/{request_id}/verify", data={"how": "again"},
                        headers={"accept-language": "en"})
    assert again.status_code == 409 and "not waiting for verification" in again.text
    history = client.get(f"/console/privacy/requests/{request_id}").text
    assert 'data-action="request.file"' in history and 'data-action="request.verify"' in history
    assert "提交个人信息请求" in history and "核验请求人身份" in history  # named, not keyed


def test_only_request_handlers_open_the_pages(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SAFETY_AGENT)
    assert client.get("/console/privacy/requests").status_code == 403
    assert client.post("/console/privacy/requests/req_X/verify", data={"how": "xyz"}).status_code == 403
    act_as(Role.PRIVACY_OFFICER)
    assert client.get("/console/privacy/requests/req_NOPE").status_code == 404
