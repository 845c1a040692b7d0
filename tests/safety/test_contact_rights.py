"""An emergency contact is a data subject from the moment they are named (issue #27): one per phone number,
with a random id; they can ask for their data and its erasure without an app account, by a code sent to the
phone they were named with (`safety.contact_rights`)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR, subject_token
from tests.conftest import fresh_database, make_settings
from tests.privacy.backups import backup_plaintext, cli_ok, restore_into_fresh, site_session
from tests.web.conftest import serve_in_thread
from tripguard.app import create_app
from tripguard.audit.models import AuditEntry
from tripguard.core.db import unit_of_work
from tripguard.core.settings import Settings
from tripguard.notify.channels import RecordingChannel
from tripguard.notify.models import OutboxMessage
from tripguard.notify.service import Notifier, dispatch_due
from tripguard.privacy import service
from tripguard.privacy.models import DataSubject, DeletionRecord
from tripguard.safety import contact_rights, contacts
from tripguard.safety.models import EmergencyContact
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal

PHONE = "13800005678"
OWNERS = {"P1": ("韩梅梅", "13800001001"), "P2": ("李雷", "13800001002")}


def _add(client: TestClient, act_as, owner: str, name: str, phone: str) -> str:  # type: ignore[no-untyped-def]
    act_as(Role.PASSENGER, kind="subject", id=owner)
    response = client.post("/api/v1/me/contacts", json={"name": name, "phone": phone})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _subject_of(db: Session, contact_id: str) -> str:
    db.expire_all()
    contact = db.get(EmergencyContact, contact_id)
    assert contact is not None and contact.contact_subject_id
    return contact.contact_subject_id


def _owners(db: Session, app: FastAPI) -> None:
    service.publish_notice(db, actor=TEST_ACTOR, version="n1", purposes=["emergency"], categories=["user.name"],
                           retention_zh="两年", retention_en="two years", text_zh="说明", text_en="notice")
    for owner, (name, phone) in OWNERS.items():
        service.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id=owner, kind="passenger",
                               notice_version="n1", values={"name": name, "phone": phone})
    db.commit()


def _sent(app: FastAPI, factory: sessionmaker[Session]) -> list[Any]:
    sms = RecordingChannel(name="sms")
    dispatch_due(factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms}))
    return list(sms.sent)


def _code(sent: list[Any], phone: str, template_word: str) -> str:
    bodies = [m.body for m in sent if m.to == phone and template_word in m.body]
    assert bodies, [(m.to, m.body) for m in sent]
    return re.search(r"\d{6}", bodies[-1]).group()  # type: ignore[union-attr]


def test_a_contact_added_is_a_data_subject_with_a_random_id(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                             app: FastAPI) -> None:
    contact_id = _add(client, act_as, "P1", "王芳", PHONE)
    subject_id = _subject_of(db, contact_id)
    subject = db.get(DataSubject, subject_id)
    assert subject is not None and (subject.kind, subject.source) == ("contact", "contact")
    assert subject.erased_at is None and subject.phone is None  # nothing of theirs beside the owner's row
    assert "5678" not in subject_id and subject_id != contact_rights.phone_index(app.state.vault, PHONE)
    contact = db.get(EmergencyContact, contact_id)
    assert contact is not None and contact.phone_index == contact_rights.phone_index(app.state.vault, PHONE)


def test_two_owners_naming_one_phone_make_one_subject(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    first = _subject_of(db, _add(client, act_as, "P1", "王芳", PHONE))
    second = _subject_of(db, _add(client, act_as, "P2", "芳姐", "+86 138-0000-5678"))  # the same number, written so
    other = _subject_of(db, _add(client, act_as, "P2", "张伟", "13800009999"))
    assert first == second and other != first
    assert set(db.scalars(select(DataSubject.id).where(DataSubject.kind == "contact"))) == {first, other}


def test_contacts_stored_before_are_registered_at_start_up(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app: FastAPI, session_factory: sessionmaker[Session]) -> None:
    ids = [_add(client, act_as, "P1", "王芳", PHONE), _add(client, act_as, "P2", "芳姐", PHONE)]
    for contact_id in ids:  # as migration 0042 leaves the contacts it finds
        contact = db.get(EmergencyContact, contact_id)
        assert contact is not None
        contact.contact_subject_id = contact.phone_index = None
    db.commit()
    assert contact_rights.link_existing(session_factory, vault=app.state.vault) == 2
    assert _subject_of(db, ids[0]) == _subject_of(db, ids[1])
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "contact.register_existing")).one()
    assert json.loads(entry.details)["linked"] == 2
    assert contact_rights.link_existing(session_factory, vault=app.state.vault) == 0


def test_a_contacts_access_request_end_to_end(client: TestClient, db: Session, act_as, app: FastAPI,  # type: ignore[no-untyped-def]
                                              session_factory: sessionmaker[Session]) -> None:
    """The contact gives the phone they were named with; the code goes to it; with the code they get their
    name and phone as each owner holds them, how many named them and when, never who."""
    _owners(db, app)
    _add(client, act_as, "P1", "王芳", PHONE)
    _add(client, act_as, "P2", "芳姐", "+86 138-0000-5678")
    app.dependency_overrides.clear()  # the contact has no account: no principal at all
    asked = client.post("/api/v1/contact-requests", json={"phone": PHONE, "kind": "access"})
    assert asked.status_code == 202, asked.text
    code = _code(_sent(app, session_factory), "+86 138-0000-5678", "验证码")  # the number as the newest owner holds it
    done = client.post("/api/v1/contact-requests/verify", json={"phone": PHONE, "kind": "access", "code": code})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["request"]["status"] == "completed" and body["request"]["kind"] == "access"
    named = body["export"]["named_as_emergency_contact"]
    assert named["named_by"] == 2
    assert [(e["name"], e["phone"]) for e in named["entries"]] == [("王芳", PHONE), ("芳姐", "+86 138-0000-5678")]
    assert all(e["named_at"] and e["confirmed_at"] is None for e in named["entries"])
    text = json.dumps(body["export"], ensure_ascii=False)
    # An owner's id as a word of its own (a random id may hold "P1" inside it), name or phone: none is there.
    assert not any(re.search(rf"(?<![A-Za-z0-9]){owner}(?![A-Za-z0-9])", text) or name in text or phone in text
                   for owner, (name, phone) in OWNERS.items()), text
    # Each owner's row was opened for the subject-request purpose, and the export is audited.
    db.expire_all()
    uses = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.use",
                                               AuditEntry.target_type == "safety_contacts")).all()
    opened = [u for u in uses if json.loads(u.details)["use"] == "the contact's access request"]
    assert len(opened) == 2 and {u.purpose for u in opened} == {"subject_request"}
    export = db.scalars(select(AuditEntry).where(AuditEntry.action == "subject.export")).all()[-1]
    assert export.target_id == body["request"]["subject_id"] and export.purpose == "subject_request"
    assert "safety_contacts.phone" in json.loads(export.details)["fields"]


def test_a_contacts_erasure_end_to_end(client: TestClient, db: Session, act_as, app: FastAPI,  # type: ignore[no-untyped-def]
                                       session_factory: sessionmaker[Session]) -> None:
    """Their rows leave every owner's list, a message still waiting to them never goes, the erasure is
    journaled and recorded, and each owner is told by SMS (not who)."""
    _owners(db, app)
    _add(client, act_as, "P1", "王芳", PHONE)
    kept = _add(client, act_as, "P1", "张伟", "13800009999")
    _add(client, act_as, "P2", "芳姐", PHONE)
    app.dependency_overrides.clear()
    assert client.post("/api/v1/contact-requests", json={"phone": PHONE, "kind": "erasure"}).status_code == 202
    code = _code(_sent(app, session_factory), PHONE, "验证码")
    late = _add(client, act_as, "P2", "芳姐", PHONE)  # named again: its confirmation code still waits to go
    subject_id = _subject_of(db, late)
    app.dependency_overrides.clear()
    done = client.post("/api/v1/contact-requests/verify", json={"phone": PHONE, "kind": "erasure", "code": code})
    assert done.status_code == 200, done.text
    assert done.json()["request"]["status"] == "completed" and done.json()["export"] is None
    db.expire_all()
    left = db.scalars(select(EmergencyContact)).all()
    assert [c.id for c in left] == [kept]  # gone from both owners' lists; P1's other contact stays
    for owner in OWNERS:
        act_as(Role.PASSENGER, kind="subject", id=owner)
        assert [c["id"] for c in client.get("/api/v1/me/contacts").json()] == ([kept] if owner == "P1" else [])
    waiting = db.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == f"contact-code:{late}")).one()
    assert waiting.status == "dead"
    subject = db.get(DataSubject, subject_id)
    assert subject is not None and subject.erased_at is not None
    record = db.scalars(select(DeletionRecord).where(DeletionRecord.subject_id == subject_id)).one()
    assert record.reason == "subject_request" and record.request_id == done.json()["request"]["id"]
    assert subject_id in app.state.vault.journal.subject_ids()
    sent = _sent(app, session_factory)
    told = sorted(m.to for m in sent if "紧急联系人已" in m.body or "已从您的紧急联系人中移除" in m.body)
    assert told == [*sorted(phone for _, phone in OWNERS.values()), OWNERS["P2"][1]]  # P2 named them twice
    assert not any(m.to == PHONE for m in sent)
    assert not any("王芳" in m.body or "芳姐" in m.body for m in sent)
    # Named again later, they are a new data subject (the erased id is never reused).
    assert _subject_of(db, _add(client, act_as, "P1", "王芳", PHONE)) != subject_id


@pytest.fixture
def limited_app(database_url: str, tmp_path_factory: pytest.TempPathFactory,
                session_factory: sessionmaker[Session]) -> FastAPI:
    settings: Settings = make_settings(database_url, tmp_path_factory.getbasetemp() / "keys",
                                       contact_request_rate_per_hour=3)
    return create_app(settings, session_factory=session_factory)


def _client(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, base_url="http://testserver", client=(address, 50000))


def _problem(response: httpx.Response) -> dict[str, Any]:
    return {k: v for k, v in response.json().items() if k not in ("instance", "request_id", "trace_id")}


def test_the_public_route_answers_the_same_for_any_number_and_is_rate_limited(  # type: ignore[no-untyped-def]
        limited_app: FastAPI, db: Session, session_factory: sessionmaker[Session]) -> None:
    with _client(limited_app, "10.0.0.1") as owner:
        owner.headers["authorization"] = f"Bearer {subject_token('P1', 'passenger')}"
        assert owner.post("/api/v1/me/contacts", json={"name": "王芳", "phone": PHONE}).status_code == 201
    with _client(limited_app, "10.0.0.2") as known, _client(limited_app, "10.0.0.3") as unknown:
        answers = [c.post("/api/v1/contact-requests", json={"phone": p, "kind": "access"})
                   for c, p in ((known, PHONE), (unknown, "13900000000"))]
        assert [a.status_code for a in answers] == [202, 202] and answers[0].json() == answers[1].json()
        tries = [c.post("/api/v1/contact-requests/verify", json={"phone": p, "kind": "access", "code": "000000"})
                 for c, p in ((known, PHONE), (unknown, "13900000000"))]
        assert [t.status_code for t in tries] == [422, 422] and _problem(tries[0]) == _problem(tries[1])
        assert any(m.to == PHONE for m in _sent(limited_app, session_factory))  # the known one got a code
        # Three an hour from an address: the fourth is refused, known number or not.
        for c, p in ((known, PHONE), (unknown, "13900000000")):
            assert c.post("/api/v1/contact-requests", json={"phone": p, "kind": "access"}).status_code == 202
            refused = c.post("/api/v1/contact-requests", json={"phone": p, "kind": "access"})
            assert refused.status_code == 429 and refused.headers["retry-after"]
    # And three an hour for a number, from any address (each try counted for both).
    with _client(limited_app, "10.0.0.4") as elsewhere:
        refused = elsewhere.post("/api/v1/contact-requests/verify",
                                 json={"phone": "+86 139 0000 0000", "kind": "access", "code": "123456"})
        assert refused.status_code == 429


def test_parallel_owners_naming_one_new_number_make_one_subject(tmp_path: Path) -> None:
    """Twelve people name the same new number at once, each their own request and connection (PostgreSQL
    in its pass): one data subject."""
    url = fresh_database("tg_contact_subject_race", tmp_path)
    settings = make_settings(url, tmp_path / "keys", admission_principal_requests=64, admission_running_requests=32,
                             admission_busy_requests=64, admission_bulk_requests=64)
    site = create_app(settings)
    answers: list[int] = []
    with serve_in_thread(site) as base:
        barrier = threading.Barrier(12)

        def add(n: int) -> None:
            headers = {"authorization": f"Bearer {subject_token(f'P{n}', 'passenger')}"}
            barrier.wait()
            answers.append(httpx.post(f"{base}/api/v1/me/contacts", json={"name": f"联系人{n}", "phone": PHONE},
                                      headers=headers, timeout=60).status_code)

        threads = [threading.Thread(target=add, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == [201] * 12
    with unit_of_work(site.state.sessionmaker) as session:
        linked = set(session.scalars(select(EmergencyContact.contact_subject_id)))
        registered = set(session.scalars(select(DataSubject.id).where(DataSubject.kind == "contact")))
    assert len(linked) == 1 and linked == registered
    site.state.engine.dispose()


def test_a_backup_holds_no_contact_index_and_a_restore_erases_the_contact_again(
        cli_site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows' blind index is written empty into a data backup and rebuilt on restore; a contact erased
    after the backup was made is taken off the owners' lists again by the restore (the erasure journal)."""
    secret = cli_site.secret_key.get_secret_value()
    with site_session(cli_site) as (session, vault):
        owner = Principal.for_roles("subject", "P1", frozenset({Role.PASSENGER}))
        erased_row = contacts.add(session, vault=vault, secret_key=secret, owner=owner, name="王芳", phone=PHONE).id
        kept_row = contacts.add(session, vault=vault, secret_key=secret, owner=owner, name="张伟",
                                phone="13800009999").id
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    with site_session(cli_site) as (session, vault):
        contact = session.get(EmergencyContact, erased_row)
        assert contact is not None and contact.contact_subject_id
        erased_subject = contact.contact_subject_id
        service.erase_subject(session, vault=vault, actor=TEST_ACTOR, subject_id=erased_subject,
                              reason="subject_request")
    rows = [r for r in backup_plaintext(cli_site, file) if r["table"] == "safety_contacts"]
    assert {r["id"] for r in rows} == {erased_row, kept_row} and all(r["phone_index"] is None for r in rows)

    restored = restore_into_fresh(cli_site, tmp_path / "r", file, monkeypatch)
    with site_session(restored) as (session, vault):
        assert [c.id for c in session.scalars(select(EmergencyContact))] == [kept_row]
        kept = session.get(EmergencyContact, kept_row)
        assert kept is not None and kept.phone_index == contact_rights.phone_index(vault, "13800009999")
        assert contact_rights.subject_for_phone(session, vault=vault, phone=PHONE) is None
        subject = session.get(DataSubject, erased_subject)
        assert subject is not None and subject.erased_at is not None


def test_a_contacts_request_spent_by_wrong_codes_gets_no_new_code_and_the_same_answer(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app: FastAPI, session_factory: sessionmaker[Session]) -> None:
    """After 10 wrong codes (over hours: the public route allows 10 an hour) asking again sends no new
    code and answers as for any number; the right code is refused like a wrong one (the privacy officer
    verifies in person)."""
    _owners(db, app)
    _add(client, act_as, "P1", "王芳", PHONE)
    secret = app.state.settings.secret_key.get_secret_value()
    with unit_of_work(session_factory) as session:
        contact_rights.ask(session, vault=app.state.vault, secret_key=secret, phone=PHONE, kind="access",
                           locale="zh_CN")
    code = _code(_sent(app, session_factory), PHONE, "验证码")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(10):
        with pytest.raises(contact_rights.requests.VerificationFailed) as refused, unit_of_work(session_factory) as s:
            contact_rights.confirm(s, vault=app.state.vault, secret_key=secret, phone=PHONE, kind="access", code=wrong)
        assert refused.value.status == 422 and str(refused.value) == contact_rights.CONFIRM_FAILED
    with unit_of_work(session_factory) as session:  # no error, nothing sent
        contact_rights.ask(session, vault=app.state.vault, secret_key=secret, phone=PHONE, kind="access",
                           locale="zh_CN")
    assert not [m for m in _sent(app, session_factory) if m.to == PHONE]
    with pytest.raises(contact_rights.requests.VerificationFailed) as refused, unit_of_work(session_factory) as s:
        contact_rights.confirm(s, vault=app.state.vault, secret_key=secret, phone=PHONE, kind="access", code=code)
    assert refused.value.status == 422 and str(refused.value) == contact_rights.CONFIRM_FAILED
