"""Retention: erase on time, keep what a legal hold keeps (and the people with an order in flight or a case open),
dry runs count, runs are idempotent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tripguard.core.clock import utcnow
from tripguard.delivery.models import Order
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
        subject = service.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id=subject_id, kind=kind,
                                         notice_version="n1", values={"name": "测试", "phone": "13800003333"})
        subject.updated_at = utcnow() - age
    old_message = notify.enqueue_to_person(db, vault=app.state.vault, subject_id="psg_recent", channel="sms",
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


def _back_in_time(db: Session, subject_id: str, *, recorded: timedelta) -> None:
    subject = db.get(DataSubject, subject_id)
    assert subject is not None
    subject.updated_at = utcnow() - recorded
    db.commit()


def _complete(db: Session, order_id: str, *, ago: timedelta) -> None:
    db.execute(update(Order).where(Order.id == order_id).values(status="delivered", completed_at=utcnow() - ago))
    db.commit()


def _retention(client: TestClient, act_as, *, dry_run: bool) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    run = client.post("/api/v1/privacy/retention/runs", json={"dry_run": dry_run})
    assert run.status_code == 201, run.text
    return run.json()["report"]  # type: ignore[no-any-return]


def test_a_returning_customer_is_not_erased_while_their_new_order_is_in_flight(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app) -> None:
    """#26: the 72 h rule erased a returning customer whose new order was on its way; the courier then saw
    `[erased]` instead of the address."""
    from tests.delivery.conftest import ADDRESS, place_order

    place_order(client, db, act_as, "O_OLD", "C1")
    service.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id="C1", kind="customer",
                           notice_version="ord-1", values={"name": "王小明", "phone": "13800001234"})
    _complete(db, "O_OLD", ago=timedelta(hours=80))
    _back_in_time(db, "C1", recorded=timedelta(hours=80))
    place_order(client, db, act_as, "O_NEW", "C1", courier_id="R1")  # they come back: on its way

    dry = _retention(client, act_as, dry_run=True)
    assert dry["delivery_contacts"]["would_erase"] == 0 and dry["delivery_contacts"]["held"] == 1
    assert dry["delivery_orders"]["would_erase"] == 0 and dry["delivery_orders"]["held"] == 1
    run = _retention(client, act_as, dry_run=False)
    assert run["delivery_contacts"]["erased"] == 0 and run["delivery_orders"]["erased"] == 0
    assert erased(db) == set()
    act_as(Role.COURIER, kind="subject", id="R1")
    assert client.get("/api/v1/orders/O_NEW").json()["fields"]["address"]["value"] == ADDRESS

    _complete(db, "O_NEW", ago=timedelta(hours=1))  # delivered: still inside its 72 h; the old order's go
    run = _retention(client, act_as, dry_run=False)
    assert run["delivery_contacts"]["erased"] == 0 and run["delivery_orders"]["erased"] == 1
    assert erased(db) == set()
    _complete(db, "O_NEW", ago=timedelta(hours=73))
    run = _retention(client, act_as, dry_run=False)
    assert run["delivery_contacts"]["erased"] == 1 and run["delivery_orders"]["erased"] == 1
    assert erased(db) == {"C1"}


def test_a_person_with_a_safety_case_open_is_not_erased(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    from tests.delivery.conftest import publish_notice

    publish_notice(db)
    service.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id="C2", kind="customer",
                           notice_version="ord-1", values={"name": "韩梅梅", "phone": "13800007777"})
    _back_in_time(db, "C2", recorded=timedelta(hours=80))
    act_as(Role.CUSTOMER, kind="subject", id="C2")
    case = client.post("/api/v1/sos", json={"lon": 116.4, "lat": 39.9}).json()["incident_id"]

    dry = _retention(client, act_as, dry_run=True)
    assert dry["delivery_contacts"]["would_erase"] == 0 and dry["delivery_contacts"]["held"] == 1
    _retention(client, act_as, dry_run=False)
    assert erased(db) == set()

    act_as(Role.SAFETY_AGENT)
    assert client.post(f"/api/v1/incidents/{case}/actions", json={"action": "resolve", "outcome": "genuine"}
                       ).status_code == 200
    assert _retention(client, act_as, dry_run=False)["delivery_contacts"]["erased"] == 1
    assert erased(db) == {"C2"}
