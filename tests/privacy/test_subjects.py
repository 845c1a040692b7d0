"""Data subjects through the API: minimal collection with notice, purpose-bound reads, erasure."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tripguard.audit.models import AuditEntry
from tripguard.privacy import service
from tripguard.privacy.models import DataSubject, DeletionRecord
from tripguard.security.permissions import Role

NOTICE = "2026-11"
PERSON = {"kind": "passenger", "notice_version": NOTICE, "name": "王小明", "phone": "138-0000-1234",
          "email": "xiaoming@example.com"}


@pytest.fixture
def notice(db: Session) -> str:
    service.publish_notice(db, actor=TEST_ACTOR, version=NOTICE, purposes=["emergency"], categories=["user.name"],
                           retention_zh="行程结束后保存两年", retention_en="two years after the trip",
                           text_zh="我们为安全目的收集您的姓名和手机号。",
                           text_en="We collect your name and phone for safety.")
    db.commit()
    return NOTICE


def put_subject(client: TestClient, act_as, subject_id: str = "psg_1001", **changes: object):  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    return client.put(f"/api/v1/subjects/{subject_id}", json=PERSON | changes)


def last_audit(db: Session) -> AuditEntry:
    return db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()


def test_stored_sealed_with_notice_and_receipt_has_no_values(client: TestClient, db: Session, act_as, notice) -> None:  # type: ignore[no-untyped-def]
    response = put_subject(client, act_as)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": "psg_1001", "kind": "passenger", "notice_version": NOTICE,
                               "fields_held": ["name", "phone", "email"]}
    row = db.get(DataSubject, "psg_1001")
    assert row is not None and row.notice_version == NOTICE
    for blob in (row.name, row.phone, row.email):
        assert blob and "王小明".encode() not in blob and b"1234" not in blob and b"xiaoming" not in blob


def test_put_twice_is_one_subject(client: TestClient, db: Session, act_as, notice) -> None:  # type: ignore[no-untyped-def]
    assert put_subject(client, act_as).status_code == 200
    assert put_subject(client, act_as).status_code == 200
    assert len(db.scalars(select(DataSubject).where(DataSubject.id == "psg_1001")).all()) == 1


@pytest.mark.parametrize(("changes", "field"), [
    ({"id_number": "11010519491231002X"}, "id_number"),  # not declared: minimal collection
    ({"notice_version": "never-published"}, "notice_version"),
    ({"phone": "call me"}, "phone"),
    ({"kind": "celebrity"}, "kind"),
])
def test_undeclared_or_bad_input_is_refused(client: TestClient, act_as, notice, changes, field) -> None:  # type: ignore[no-untyped-def]
    response = put_subject(client, act_as, **changes)
    assert response.status_code == 422
    assert any(e["field"] == field for e in response.json()["errors"])


def test_plaintext_for_a_held_purpose_with_an_audit_entry(client: TestClient, db: Session, act_as, notice) -> None:  # type: ignore[no-untyped-def]
    put_subject(client, act_as)
    act_as(Role.SAFETY_AGENT, id="stf_AGENT")
    body = client.get("/api/v1/subjects/psg_1001", params={"purpose": "emergency"}).json()
    assert body["fields"]["name"] == {"value": "王小明", "plaintext": True}
    assert body["fields"]["phone"] == {"value": "138-0000-1234", "plaintext": True}
    # E-mail is not needed for an emergency: masked even for the safety agent.
    assert body["fields"]["email"] == {"value": "x***@example.com", "plaintext": False}
    entry = last_audit(db)
    assert (entry.action, entry.actor_id, entry.purpose, entry.outcome) == (
        "personal.read", "stf_AGENT", "emergency", "success")
    assert "王小明" not in entry.details and "name,phone" in entry.details


def test_without_a_held_purpose_the_mask_and_an_audit_entry(client: TestClient, db: Session, act_as, notice) -> None:  # type: ignore[no-untyped-def]
    put_subject(client, act_as)
    act_as(Role.SAFETY_AGENT, id="stf_AGENT")
    body = client.get("/api/v1/subjects/psg_1001", params={"purpose": "investigation"}).json()
    assert body["fields"]["name"] == {"value": "王**", "plaintext": False}
    assert body["fields"]["phone"] == {"value": "*******1234", "plaintext": False}
    entry = last_audit(db)
    assert (entry.purpose, entry.outcome) == ("investigation", "denied")


def test_find_by_phone_in_any_format(client: TestClient, act_as, notice) -> None:  # type: ignore[no-untyped-def]
    put_subject(client, act_as)
    act_as(Role.INVESTIGATOR)
    found = client.get("/api/v1/subjects", params={"phone": "+86 138 0000 1234", "purpose": "investigation"}).json()
    assert [s["id"] for s in found] == ["psg_1001"]
    assert client.get("/api/v1/subjects", params={"phone": "13800009999", "purpose": "investigation"}).json() == []


def test_erasure_leaves_a_record_without_the_data(client: TestClient, db: Session, act_as, notice) -> None:  # type: ignore[no-untyped-def]
    put_subject(client, act_as)
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    record = client.post("/api/v1/subjects/psg_1001/erase", json={"reason": "subject_request"}).json()
    assert record["categories"] == ["user.contact.email", "user.contact.phone_number", "user.name"]
    assert record["actor"] == "staff:stf_DPO"
    stored = db.get(DeletionRecord, record["id"])
    assert stored is not None and "王" not in str(stored.__dict__)
    view = client.get("/api/v1/subjects/psg_1001", params={"purpose": "subject_request"}).json()
    assert view["erased"] is True and all(f["value"] in (None, "[erased]") for f in view["fields"].values())
    again = put_subject(client, act_as)
    assert again.status_code == 410


def test_catalogue_lists_every_personal_field(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    entries = {(e["table"], e["column"]): e for e in client.get("/api/v1/privacy/catalogue").json()}
    assert entries[("privacy_subjects", "phone")]["mask_example"] == "*******1234"
    assert "screening" not in entries[("privacy_subjects", "phone")]["purposes"]


def test_notice_is_public_and_immutable(client: TestClient, act_as, notice) -> None:  # type: ignore[no-untyped-def]
    assert client.get(f"/api/v1/privacy/notices/{NOTICE}").json()["text_zh"].startswith("我们")
    act_as(Role.PRIVACY_OFFICER)
    republished = client.post("/api/v1/privacy/notices", json={
        "version": NOTICE, "purposes": ["delivery"], "categories": ["user.name"], "retention_zh": "x",
        "retention_en": "x", "text_zh": "changed", "text_en": "changed"})
    assert republished.json()["text_en"] == "We collect your name and phone for safety."
