"""Subject requests end to end: file, verify by a code to the contact on file, answer; the officer's queue."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR, subject_token
from tests.conftest import fresh_database, make_settings
from tripguard.app import create_app
from tripguard.audit.models import AuditEntry
from tripguard.core.db import unit_of_work
from tripguard.notify.channels import RecordingChannel
from tripguard.notify.models import OutboxMessage
from tripguard.notify.service import Notifier, dispatch_due
from tripguard.privacy import access, requests, service
from tripguard.privacy.models import DataSubject, DeletionRecord, SubjectRequest
from tripguard.security.permissions import Role

PARALLEL = 8


@pytest.fixture
def person(db: Session, app) -> str:  # type: ignore[no-untyped-def]
    service.publish_notice(db, actor=TEST_ACTOR, version="n1", purposes=["emergency"], categories=["user.name"],
                           retention_zh="两年", retention_en="two years", text_zh="说明", text_en="notice")
    service.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id="psg_77", kind="passenger",
                           notice_version="n1", values={"name": "韩梅梅", "phone": "13800007777"})
    db.commit()
    return "psg_77"


def as_person(subject_id: str = "psg_77") -> dict[str, str]:
    return {"Authorization": f"Bearer {subject_token(subject_id)}"}


def delivered_code(app, session_factory: sessionmaker[Session]) -> str:  # type: ignore[no-untyped-def]
    sms = RecordingChannel(name="sms")
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms}))
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
    wrong = client.post(f"/api/v1/me/requests/{filed['id']}/verify",
                        json={"code": "000000" if code != "000000" else "111111"}, headers=as_person())
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
    bundle = service.export_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id=person)
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


def test_wrong_codes_count_across_resends_and_then_only_the_privacy_officer_verifies(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, app, session_factory, person) -> None:
    """A new code does not reset the count (review27b): 8 rounds of 5 wrong codes and a resend were 40
    guesses; now the 10th wrong code of the request's life ends it, and neither a new code nor the right one
    will do: the request waits for the privacy officer (verify_by: in_person)."""
    filed = file(client, "erasure")
    rid = filed["id"]
    answers = []
    for round_ in range(8):
        for guess in range(5):
            answers.append(client.post(f"/api/v1/me/requests/{rid}/verify", json={"code": f"{round_ * 5 + guess:06d}"},
                                       headers=as_person()).status_code)
        answers.append(client.post(f"/api/v1/me/requests/{rid}/code", headers=as_person()).status_code)
    guesses_refused_as_wrong = [a for a in answers if a == 422]
    assert len(guesses_refused_as_wrong) <= 9, answers  # (a lucky guess among them would have verified it)
    assert answers[:11] == [422] * 5 + [200] + [422] * 4 + [409], answers
    assert set(answers[11:]) == {409}, answers
    code = delivered_code(app, session_factory)
    right = client.post(f"/api/v1/me/requests/{rid}/verify", json={"code": code}, headers=as_person())
    assert right.status_code == 409 and right.json()["type"] == "/problems/verify-in-person", right.text
    seen = client.get(f"/api/v1/me/requests/{rid}", headers=as_person()).json()
    assert (seen["status"], seen["verify_by"]) == ("awaiting_verification", "in_person"), seen
    db.expire_all()
    assert db.get(DataSubject, "psg_77").erased_at is None  # type: ignore[union-attr]


def test_a_new_code_works_while_tries_are_left(client: TestClient, app, session_factory, person,  # type: ignore[no-untyped-def]
                                               monkeypatch) -> None:
    monkeypatch.setattr(requests, "RESEND_AFTER", timedelta(0))  # (a minute between codes otherwise)
    filed = file(client, "access")
    code = delivered_code(app, session_factory)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": wrong}, headers=as_person())
    assert client.post(f"/api/v1/me/requests/{filed['id']}/code", headers=as_person()).status_code == 200
    fresh = delivered_code(app, session_factory)
    stale = client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": code}, headers=as_person())
    assert stale.status_code == 422 or code == fresh, stale.text  # the old code went with the resend
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
    assert [client.post(url, json={"code": wrong}, headers=as_person()).status_code for _ in range(10)] == \
        [422] * 9 + [409]
    assert client.post(url, json={"code": code}, headers=as_person()).status_code == 409  # spent
    failures = db.scalars(select(AuditEntry).where(AuditEntry.action == "request.verify",
                                                   AuditEntry.outcome == "failure")).all()
    assert len(failures) == 10  # each try's audit entry was committed with its count


def test_one_open_request_per_kind_so_the_queue_cannot_be_flooded(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, app, act_as) -> None:
    """No Idempotency-Key (review27b): 31 POSTs were 31 requests in the privacy officer's queue, each with
    a 15-day deadline. Filing a kind already open answers with the open one and sends nothing."""
    service.publish_notice(db, actor=TEST_ACTOR, version="n1", purposes=["emergency"], categories=["user.name"],
                           retention_zh="两年", retention_en="两年", text_zh="说明", text_en="notice")
    service.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id="psg_spam", kind="passenger",
                           notice_version="n1", values={"name": "张三"})  # nothing to send a code to
    db.commit()
    act_as(Role.PASSENGER, kind="subject", id="psg_spam")
    first = client.post("/api/v1/me/requests", json={"kind": "access"})
    assert first.status_code == 202 and first.json()["verify_by"] == "in_person", first.text
    again = [client.post("/api/v1/me/requests", json={"kind": "access"}) for _ in range(30)]
    assert {(a.status_code, a.json()["id"]) for a in again} == {(202, first.json()["id"])}
    other_kind = client.post("/api/v1/me/requests", json={"kind": "erasure"})
    assert other_kind.status_code == 202 and other_kind.json()["id"] != first.json()["id"]
    db.expire_all()
    filed = db.scalars(select(SubjectRequest.kind).where(SubjectRequest.subject_id == "psg_spam")).all()
    assert sorted(filed) == ["access", "erasure"]


def test_a_request_filed_again_after_the_first_is_answered(client: TestClient, app, session_factory,  # type: ignore[no-untyped-def]
                                                           person) -> None:
    first = file(client, "access", key="idem-first")
    client.post(f"/api/v1/me/requests/{first['id']}/verify", json={"code": delivered_code(app, session_factory)},
                headers=as_person())
    assert client.get(f"/api/v1/me/requests/{first['id']}/export", headers=as_person()).status_code == 200
    second = file(client, "access", key="idem-second")
    assert second["id"] != first["id"] and second["status"] == "awaiting_verification"


def test_parallel_filings_of_one_kind_make_one_request(tmp_path: Path) -> None:
    """Eight filings at once on real connections (PostgreSQL in its pass), without Idempotency-Keys: the
    person's row is locked before the check, so one request is filed and one code sent; all get that one."""
    url = fresh_database("tg_request_race", tmp_path)
    site = create_app(make_settings(url, tmp_path / "keys"))
    factory, vault = site.state.sessionmaker, site.state.vault
    secret = site.state.settings.secret_key.get_secret_value()
    with unit_of_work(factory) as session:
        service.publish_notice(session, actor=TEST_ACTOR, version="n1", purposes=["emergency"],
                               categories=["user.name"], retention_zh="两年", retention_en="two years",
                               text_zh="说明", text_en="notice")
        service.upsert_subject(session, vault=vault, actor=TEST_ACTOR, subject_id="psg_race", kind="passenger",
                               notice_version="n1", values={"name": "张三", "phone": "13800007777"})
    barrier = threading.Barrier(PARALLEL)
    filed: list[str] = []
    failures: list[str] = []

    def file_one(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            with unit_of_work(factory) as session:
                filed.append(requests.file_request(session, vault=vault, secret_key=secret, subject_id="psg_race",
                                                   kind="erasure", correction=None, locale="zh_CN",
                                                   idempotency_key=f"race-{n}").id)
        except Exception as exc:  # noqa: BLE001  any failure is what this test exists to catch
            failures.append(repr(exc))

    threads = [threading.Thread(target=file_one, args=(n,)) for n in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with unit_of_work(factory) as session:
        ids = session.scalars(select(SubjectRequest.id).where(SubjectRequest.subject_id == "psg_race")).all()
        codes = session.scalar(select(func.count()).select_from(OutboxMessage))
    assert len(ids) == 1 and set(filed) == set(ids) and codes == 1, (ids, filed, codes)


def test_a_new_code_at_most_once_a_minute(client: TestClient, app, session_factory, person) -> None:  # type: ignore[no-untyped-def]
    """/code sent a text on every call: nobody may flood a person's phone with codes."""
    filed = file(client, "access")
    first = delivered_code(app, session_factory)
    for _ in range(5):
        assert client.post(f"/api/v1/me/requests/{filed['id']}/code", headers=as_person()).status_code == 200
    sms = RecordingChannel(name="sms")
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms}))
    assert not sms.sent  # no new text: the code of a moment ago stands
    assert client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": first},
                       headers=as_person()).json()["status"] == "verified"
