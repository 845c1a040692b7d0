"""Retention: erase on time, keep what a legal hold keeps, dry runs count, runs are idempotent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tripguard.core.clock import utcnow
from tripguard.notify import service as notify
from tripguard.notify.models import OutboxMessage
from tripguard.privacy import service
from tripguard.privacy.models import DataSubject, DeletionRecord
from tripguard.security.permissions import Role

AGES = {  # subject id: (kind, age)
    "cus_old": ("customer", timedelta(hours=80)),
    "cus_new": ("customer", timedelta(hours=10)),
    "psg_recent": ("passenger", timedelta(days=100)),
    "psg_old": ("passenger", timedelta(days=800)),
    "psg_held": ("passenger", timedelta(days=900)),
}


@pytest.fixture
def people(db: Session, app) -> None:  # type: ignore[no-untyped-def]
    service.publish_notice(db, actor=TEST_ACTOR, version="n1", purposes=["delivery"], categories=["user.name"],
                           retention_zh="订单完成后72小时", retention_en="72 hours after the order", text_zh="说明",
                           text_en="notice")
    for subject_id, (kind, age) in AGES.items():
        subject = service.upsert_subject(db, app.state.vault, actor=TEST_ACTOR, subject_id=subject_id, kind=kind,
                                         notice_version="n1", values={"name": "测试", "phone": "13800003333"})
        subject.updated_at = utcnow() - age
    old_message = notify.enqueue_to_person(db, app.state.vault, subject_id="psg_recent", channel="sms",
                                           to="13800003333", template="verification_code", locale="en",
                                           params={"code": "123456", "minutes": 10}, idempotency_key="old-msg")
    old_message.status, old_message.created_at = "sent", utcnow() - timedelta(days=40)
    db.commit()


def erased(db: Session) -> set[str]:
    db.expire_all()
    return {s.id for s in db.scalars(select(DataSubject).where(DataSubject.erased_at.is_not(None)))}


def test_retention_run(client: TestClient, db: Session, act_as, people) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    hold = client.post("/api/v1/privacy/holds", json={"subject_id": "psg_held", "case_ref": "inc_0042",
                                                      "reason": "open incident"})
    assert hold.status_code == 201

    dry = client.post("/api/v1/privacy/retention/runs", json={"dry_run": True}).json()
    assert dry["report"]["delivery_contacts"]["would_erase"] == 1
    assert dry["report"]["ride_subjects"] == {"would_erase": 1, "held": 1, "keep_days": 730.0}
    assert erased(db) == set()

    run = client.post("/api/v1/privacy/retention/runs", json={"dry_run": False}).json()
    assert run["report"]["delivery_contacts"]["erased"] == 1 and run["report"]["sent_messages"]["erased"] == 1
    assert erased(db) == {"cus_old", "psg_old"}
    reasons = {r.subject_id: r.reason for r in db.scalars(select(DeletionRecord))}
    assert reasons == {"cus_old": "retention", "psg_old": "retention"}
    assert db.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == "old-msg")).first() is None

    again = client.post("/api/v1/privacy/retention/runs", json={"dry_run": False}).json()
    assert again["report"]["delivery_contacts"]["erased"] == 0 and again["report"]["ride_subjects"]["erased"] == 0

    client.post(f"/api/v1/privacy/holds/{hold.json()['id']}/release")
    client.post("/api/v1/privacy/retention/runs", json={"dry_run": False})
    assert "psg_held" in erased(db)
    runs = client.get("/api/v1/privacy/retention/runs").json()
    assert len(runs) == 4 and runs[0]["actor"] == "staff:stf_DPO"


@pytest.mark.parametrize("flag", [0, "false", "no", None])
def test_a_loose_flag_never_starts_a_destructive_run(client: TestClient, act_as, flag: object) -> None:  # type: ignore[no-untyped-def]
    # Found by the fuzz: {"dry_run": 0} used to mean "erase for real".
    act_as(Role.PRIVACY_OFFICER)
    response = client.post("/api/v1/privacy/retention/runs", json={"dry_run": flag})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "dry_run"


def test_every_rule_is_described_in_chinese_on_the_console() -> None:
    from tripguard.core.i18n import translations_for
    from tripguard.core.settings import Settings
    from tripguard.privacy.retention import rules

    chinese = translations_for("zh_CN")
    for rule in rules(Settings()):
        assert chinese.gettext(rule.description) != rule.description, rule.name


def test_held_people_filling_a_batch_never_stall_retention(client: TestClient, db: Session, act_as, people,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The oldest expired passenger is held and a batch holds one: the next one is still erased, and counted."""
    from tripguard.privacy import retention

    monkeypatch.setattr(retention, "BATCH", 1)
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    client.post("/api/v1/privacy/holds", json={"subject_id": "psg_held", "case_ref": "inc_1", "reason": "case"})
    dry = client.post("/api/v1/privacy/retention/runs", json={"dry_run": True}).json()
    assert dry["report"]["ride_subjects"]["would_erase"] == 1 and dry["report"]["ride_subjects"]["held"] == 1
    client.post("/api/v1/privacy/retention/runs", json={"dry_run": False})
    assert "psg_old" in erased(db) and "psg_held" not in erased(db)
