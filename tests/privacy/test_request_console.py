"""The privacy officer's request page: verify a person confirmed another way (an erasure then runs),
decide a correction, and see the request's history; wrong states and roles are refused."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.privacy.test_requests import as_person, file, person  # noqa: F401  (the fixture)
from tests.web.confirming import asks_first, confirmed
from tripguard.audit.models import AuditEntry
from tripguard.console.privacy_pages import APPLY_CORRECTION, ERASE_ON_VERIFY
from tripguard.privacy.models import DataSubject, SubjectRequest
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role


def test_an_officer_verifies_in_person_and_the_erasure_runs(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                             person: str) -> None:  # noqa: F811
    filed = client.post("/api/v1/me/requests", json={"kind": "erasure"},
                        headers={**as_person(), "Idempotency-Key": "erase-0001"})
    assert filed.status_code == 202, filed.text
    request_id = next(value for key, value in filed.json().items() if key in ("id", "request_id"))
    act_as(Role.PRIVACY_OFFICER)
    page = client.get(f"/console/privacy/requests/{request_id}", headers={"accept-language": "en"})
    assert page.status_code == 200 and "Verify the person" in page.text
    url, form = f"/console/privacy/requests/{request_id}/verify", {"how": "in person, ID card seen"}
    asks_first(client, url, form, question="Erase this person now?",
               consequence=ERASE_ON_VERIFY.consequence)
    db.expire_all()  # nothing done yet: not verified, not erased, nothing audited
    assert db.get(SubjectRequest, request_id).status == "awaiting_verification"  # type: ignore[union-attr]
    assert db.get(DataSubject, person).erased_at is None  # type: ignore[union-attr]
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "request.verify")) is None
    assert confirmed(client, url, form).status_code == 303
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


def test_verifying_an_access_request_does_not_ask(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                   person: str) -> None:  # noqa: F811
    request_id = str(file(client, "access")["id"])
    act_as(Role.PRIVACY_OFFICER)
    page = client.get(f"/console/privacy/requests/{request_id}", headers={"accept-language": "en"}).text
    assert "Mark as verified" in page and "data-confirm" not in page  # nothing irreversible happens
    done = client.post(f"/console/privacy/requests/{request_id}/verify", data={"how": "called back"},
                       follow_redirects=False)
    assert done.status_code == 303
    db.expire_all()
    assert db.get(SubjectRequest, request_id).status == "verified"  # type: ignore[union-attr]


def test_applying_a_correction_asks_first_and_refusing_does_not(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                                 app, session_factory, person: str) -> None:  # noqa: F811
    from tests.privacy.test_requests import delivered_code

    def verified_correction(key: str) -> str:
        app.dependency_overrides.pop(resolve_principal, None)  # the person's own token speaks for them
        filed = file(client, "correction", key, correction={"name": "韩梅"})
        code = delivered_code(app, session_factory)
        verified = client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": code}, headers=as_person())
        assert verified.status_code == 200, verified.text
        return str(filed["id"])

    ids = [verified_correction("fix-0001")]
    act_as(Role.PRIVACY_OFFICER)
    page = client.get(f"/console/privacy/requests/{ids[0]}", headers={"accept-language": "en"}).text
    assert 'data-confirm="Apply this correction?"' in page
    url, form = f"/console/privacy/requests/{ids[0]}/decision", {"apply": "yes", "note": "name confirmed"}
    asks_first(client, url, form, question="Apply this correction?",
               consequence=APPLY_CORRECTION.consequence)
    db.expire_all()
    assert db.get(SubjectRequest, ids[0]).status == "verified"  # type: ignore[union-attr]
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "request.decide")) is None
    assert confirmed(client, url, form).status_code == 303
    db.expire_all()
    assert db.get(SubjectRequest, ids[0]).status == "completed"  # type: ignore[union-attr]
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "request.decide",
                                              AuditEntry.target_id == ids[0])) is not None
    ids.append(verified_correction("fix-0002"))
    act_as(Role.PRIVACY_OFFICER)
    refused = client.post(f"/console/privacy/requests/{ids[1]}/decision", data={"apply": "no", "note": "not them"},
                          follow_redirects=False)
    assert refused.status_code == 303  # refusing changes no data: it does not ask
    db.expire_all()
    assert db.get(SubjectRequest, ids[1]).status == "rejected"  # type: ignore[union-attr]
