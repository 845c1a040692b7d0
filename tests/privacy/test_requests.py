"""Subject requests end to end: file, verify by a code to the contact on file, answer; the officer's queue."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR, subject_token
from tripguard.audit.models import AuditEntry
from tripguard.notify.channels import RecordingChannel
from tripguard.notify.models import OutboxMessage
from tripguard.notify.service import Notifier, dispatch_due
from tripguard.privacy import access, service
from tripguard.privacy.models import DataSubject, DeletionRecord
from tripguard.security.permissions import Role


@pytest.fixture
def person(db: Session, app) -> str:  # type: ignore[no-untyped-def]
    service.publish_notice(db, actor=TEST_ACTOR, version="n1", purposes=["emergency"], categories=["user.name"],
                           retention_zh="两年", retention_en="two years", text_zh="说明", text_en="notice")
    service.upsert_subject(db, app.state.vault, actor=TEST_ACTOR, subject_id="psg_77", kind="passenger",
                           notice_version="n1", values={"name": "韩梅梅", "phone": "13800007777"})
    db.commit()
    return "psg_77"


def as_person(subject_id: str = "psg_77") -> dict[str, str]:
    return {"Authorization": f"Bearer {subject_token(subject_id)}"}


def delivered_code(app, session_factory: sessionmaker[Session]) -> str:  # type: ignore[no-untyped-def]
    sms = RecordingChannel(name="sms")
    dispatch_due(session_factory, app.state.vault, Notifier(channels={"sms": sms}))
    assert sms.sent and sms.sent[-1].to == "13800007777"
    return re.search(r"\d{6}", sms.sent[-1].body).group()  # type: ignore[union-attr]


def file(client: TestClient, kind: str, key: str = "idem-0001", **body: object) -> dict[str, object]:
    response = client.post("/api/v1/me/requests", json={"kind": kind, **body},
                           headers=as_person() | {"Idempotency-Key": key})
    assert response.status_code == 202, response.text
    return response.json()


def test_access_request(client: TestClient, db: Session, app, session_factory, person) -> None:  # type: ignore[no-untyped-def]
    filed = file(client, "access")
    assert filed["status"] == "awaiting_verification"
    assert file(client, "access")["id"] == filed["id"]  # a retry is the same request
    assert len(db.scalars(select(OutboxMessage)).all()) == 1  # and one code
    due = (filed["due_at"], filed["received_at"])
    assert due[0] > due[1]
    code = delivered_code(app, session_factory)

    blocked = client.get(f"/api/v1/me/requests/{filed['id']}/export", headers=as_person())
    assert blocked.status_code == 403  # not before verification
    wrong = client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": "000000" if code != "000000" else "111111"},
                        headers=as_person())
    assert wrong.status_code == 422 and wrong.json()["type"] == "/problems/verification-failed"
    ok = client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": code}, headers=as_person())
    assert ok.json()["status"] == "verified"
    bundle = client.get(f"/api/v1/me/requests/{filed['id']}/export", headers=as_person()).json()
    assert bundle["personal_data"] == {"name": "韩梅梅", "phone": "13800007777", "email": None}
    assert client.get(f"/api/v1/me/requests/{filed['id']}", headers=as_person()).json()["status"] == "completed"


def test_the_export_holds_what_other_records_keep_about_the_person(client: TestClient, db: Session, app,  # type: ignore[no-untyped-def]
                                                                     person) -> None:
    assert client.post("/api/v1/me/contacts", json={"name": "李雷", "phone": "13800008888"},
                       headers=as_person()).status_code == 201
    assert client.post("/api/v1/sos", json={"lon": 116.4, "lat": 39.9}, headers=as_person()).status_code == 201
    assert client.post("/api/v1/complaints", json={"category": "safety", "text": "车里有烟味"},
                       headers=as_person()).status_code == 201
    bundle = service.export_subject(db, app.state.vault, actor=TEST_ACTOR, subject_id=person)
    held = bundle["held_with_other_records"]
    assert [(c["name"], c["phone"]) for c in held["safety_contacts"]] == [("李雷", "13800008888")]
    assert [i["position"] for i in held["safety_incidents"]] == ["116.400000,39.900000"]
    assert [c["text"] for c in held["feedback_complaints"]] == ["车里有烟味"]
    assert bundle["trips"] == []


def test_erasure_request(client: TestClient, db: Session, app, session_factory, person) -> None:  # type: ignore[no-untyped-def]
    filed = file(client, "erasure")
    code = delivered_code(app, session_factory)
    done = client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": code}, headers=as_person()).json()
    assert done["status"] == "completed" and done["outcome_note"].startswith("deletion record del_")
    record = db.scalars(select(DeletionRecord).where(DeletionRecord.subject_id == "psg_77")).one()
    assert record.request_id == filed["id"] and record.reason == "subject_request"
    assert db.get(DataSubject, "psg_77").erased_at is not None  # type: ignore[union-attr]


def test_correction_waits_for_the_privacy_officer(client: TestClient, db: Session, app, session_factory, act_as,
                                                  person) -> None:  # type: ignore[no-untyped-def]
    filed = file(client, "correction", correction={"name": "韩梅"})
    code = delivered_code(app, session_factory)
    verified = client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": code}, headers=as_person())
    assert verified.json()["status"] == "verified"
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    queue = client.get("/api/v1/privacy/requests", params={"status": "verified"}).json()
    assert [r["id"] for r in queue] == [filed["id"]]
    decided = client.post(f"/api/v1/privacy/requests/{filed['id']}/decision",
                          json={"apply": True, "note": "name corrected as asked"}).json()
    assert decided["status"] == "completed" and decided["handled_by"] == "staff:stf_DPO"
    db.expire_all()
    assert access.open_field(app.state.vault, db, db.get(DataSubject, "psg_77"), "name") == "韩梅"


def test_someone_elses_request_is_not_found(client: TestClient, person) -> None:  # type: ignore[no-untyped-def]
    filed = file(client, "access")
    other = client.get(f"/api/v1/me/requests/{filed['id']}", headers=as_person("psg_other"))
    assert other.status_code == 404


def test_too_many_wrong_codes_end_the_code(client: TestClient, app, session_factory, person) -> None:  # type: ignore[no-untyped-def]
    filed = file(client, "access")
    code = delivered_code(app, session_factory)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": wrong}, headers=as_person())
    late = client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": code}, headers=as_person())
    assert late.status_code == 422 and "ask for a new one" in late.json()["detail"]
    assert client.post(f"/api/v1/me/requests/{filed['id']}/code", headers=as_person()).status_code == 200
    fresh = delivered_code(app, session_factory)
    assert client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": fresh},
                       headers=as_person()).json()["status"] == "verified"


def test_correction_needs_content(client: TestClient, person) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/me/requests", json={"kind": "correction"}, headers=as_person())
    assert response.status_code == 422


def test_wrong_codes_count_even_though_their_requests_fail(client: TestClient, db: Session, app,  # type: ignore[no-untyped-def]
                                                           session_factory, person) -> None:
    filed = file(client, "access")
    code = delivered_code(app, session_factory)
    wrong = "000000" if code != "000000" else "111111"
    url = f"/api/v1/me/requests/{filed['id']}/verify"
    assert [client.post(url, json={"code": wrong}, headers=as_person()).status_code for _ in range(8)] == [422] * 8
    assert client.post(url, json={"code": code}, headers=as_person()).status_code == 422  # exhausted
    failures = db.scalars(select(AuditEntry).where(AuditEntry.action == "request.verify",
                                                   AuditEntry.outcome == "failure")).all()
    assert len(failures) == 9  # each try's audit entry was committed with its count
