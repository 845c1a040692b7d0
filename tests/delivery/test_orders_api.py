"""Orders through the API: intake takes only what an order needs; for every party, before and after
hand-over, exactly which fields it sees in plaintext, masked, or not at all, matched to the catalogue;
pickup and hand-over codes; support's reveal."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import picture, picture_b64
from tests.delivery.conftest import ADDRESS, place_order
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.delivery.models import MerchantStaff, Order
from tripguard.delivery.views import FIELDS, VIEWS
from tripguard.models import metadata
from tripguard.notify.channels import RecordingChannel
from tripguard.notify.service import Notifier, dispatch_due
from tripguard.privacy.catalogue import catalogue
from tripguard.security.models import StaffAccount
from tripguard.security.permissions import Role

MASKED_NAME, MASKED_PHONE, MASKED_NOTES = "王**", "*******1234", "到了打电话 *******5678，别按门铃"
PLAIN = {"customer_name": "王小明", "customer_phone": "13800001234", "address": ADDRESS,
         "notes": "到了打电话 13912345678，别按门铃"}
MASKED = {"customer_name": MASKED_NAME, "customer_phone": MASKED_PHONE, "address": "北京市朝阳区****",
          "notes": MASKED_NOTES}


def test_intake_takes_only_what_an_order_needs(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    placed = place_order(client, db, act_as)
    assert placed["status"] == "accepted"
    again = client.post("/api/v1/orders", json={"id": "O1", "customer_id": "C1", "merchant_id": "M1", "city": "beijing",
                                               "notice_version": "ord-1", "customer": {"name": "王小明",
                                                                                       "phone": "13800001234"},
                                               "address": ADDRESS, "items": [{"name": "宫保鸡丁", "quantity": 1}]})
    assert again.status_code == 200  # the same order id: the same order
    base = {"id": "O2", "customer_id": "C1", "merchant_id": "M1", "city": "beijing", "notice_version": "ord-1",
            "customer": {"name": "王小明", "phone": "13800001234"}, "address": ADDRESS,
            "items": [{"name": "米饭", "quantity": 1}]}
    for extra, field in (({"id_number": "110105194912310020"}, "id_number"),
                         ({"customer": {"name": "王", "phone": "13800001234", "birthday": "1990-01-01"}}, "birthday"),
                         ({"items": [{"name": "米饭", "quantity": 1, "allergy": "peanut"}]}, "allergy")):
        refused = client.post("/api/v1/orders", json=base | extra)
        assert refused.status_code == 422 and field in refused.text, refused.text
    assert client.post("/api/v1/orders", json=base | {"notice_version": "never"}).status_code == 422
    stored = db.get(Order, "O1")
    assert stored is not None and stored.address is not None and "建国路".encode() not in stored.address
    # every personal field the intake stores is declared in the catalogue, and the views use no other
    declared = {f.column for f in catalogue(metadata) if f.table == "delivery_orders"}
    assert set(FIELDS) <= declared
    assert {c for before, after in VIEWS.values() for c in (*before, *after)} <= declared


def kitchen(client: TestClient, db: Session, act_as, merchant_id: str = "M1") -> str:  # type: ignore[no-untyped-def]
    """A console account of the merchant's kitchen, linked through the API; its id."""
    from tests.builders import staff

    username = f"kitchen.{merchant_id.lower()}"
    account = db.scalar(select(StaffAccount).where(StaffAccount.username == username)) or \
        staff(db, username, Role.MERCHANT)
    db.commit()
    if db.get(MerchantStaff, account.id) is None:
        act_as(Role.SYSTEM_ADMIN)
        assert client.put(f"/api/v1/merchants/{merchant_id}/staff/{account.id}").status_code == 204
    return account.id


def _as(client: TestClient, act_as, db: Session, party: str) -> None:  # type: ignore[no-untyped-def]
    if party == "customer":
        act_as(Role.CUSTOMER, kind="subject", id="C1")
    elif party == "courier":
        act_as(Role.COURIER, kind="subject", id="R1")
    elif party == "merchant":
        act_as(Role.MERCHANT, id=kitchen(client, db, act_as))
    elif party == "support":
        act_as(Role.SUPPORT_AGENT, id="stf_SUPPORT")
    else:
        act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")


def _code(app: FastAPI, session_factory: sessionmaker[Session]) -> str:
    sms = RecordingChannel(name="sms")
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms}))
    assert sms.sent and sms.sent[-1].to == "13800001234"
    return re.search(r"\b\d{4}\b", sms.sent[-1].body).group()  # type: ignore[union-attr]


def _deliver(client: TestClient, db: Session, act_as, app: FastAPI, session_factory: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    _as(client, act_as, db, "merchant")
    pickup_code = client.get("/api/v1/orders/O1").json()["pickup_code"]
    _as(client, act_as, db, "courier")
    assert client.post("/api/v1/orders/O1/pickup", json={"code": pickup_code}).status_code == 200
    assert client.post("/api/v1/orders/O1/handover", json={"code": _code(app, session_factory)}).status_code == 200


@pytest.mark.parametrize("phase", ["before", "after"])
@pytest.mark.parametrize("party", ["customer", "courier", "merchant", "support", "operator"])
def test_who_sees_what_before_and_after_hand_over(client: TestClient, db: Session, act_as, app: FastAPI,  # type: ignore[no-untyped-def]
                                                  session_factory: sessionmaker[Session], party: str,
                                                  phase: str) -> None:
    place_order(client, db, act_as, courier_id="R1")
    if phase == "after":
        _deliver(client, db, act_as, app, session_factory)
    _as(client, act_as, db, party)
    answer = client.get("/api/v1/orders/O1")
    assert answer.status_code == 200, answer.text
    seen: dict[str, Any] = answer.json()
    expected = VIEWS[party][0 if phase == "before" else 1]
    assert set(seen["fields"]) == set(expected)  # not at all: absent
    for column, shown in expected.items():
        value = {"plain": PLAIN, "masked": MASKED}[shown][column]
        assert seen["fields"][column] == {"value": value, "shown": shown}, (party, column)
    assert (seen["pickup_code"] is not None) is (party in ("merchant", "operator"))
    assert seen["items"] == [{"name": "宫保鸡丁", "quantity": 1, "category": None},
                             {"name": "米饭", "quantity": 2, "category": None}]
    if expected and party != "customer":
        read = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read",
                                                   AuditEntry.target_id == "O1").order_by(AuditEntry.id)).all()[-1]
        assert read.purpose == ("delivery" if party == "courier" else "support")


def test_strangers_see_no_order(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, courier_id="R1")
    for role, subject in ((Role.CUSTOMER, "C2"), (Role.COURIER, "R2"), (Role.PASSENGER, "C1")):
        act_as(role, kind="subject", id=subject)
        assert client.get("/api/v1/orders/O1").status_code in (403, 404)
    act_as(Role.MERCHANT, id="stf_OTHER")  # a kitchen of another merchant
    assert client.get("/api/v1/orders/O1").status_code == 404
    act_as(Role.SAFETY_AGENT)
    assert client.get("/api/v1/orders/O1").status_code == 403


def test_masked_notes_never_carry_a_door_code_and_unmasked_notes_say_so(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as) -> None:
    place_order(client, db, act_as, courier_id="R1", notes="门禁码 4711#，密码是 abcd，到了打电话 13912345678")
    place_order(client, db, act_as, order_id="O2", courier_id="R1", notes="放门口，别按门铃")
    _as(client, act_as, db, "courier")
    notes = client.get("/api/v1/orders/O1").json()["fields"]["notes"]
    assert notes["shown"] == "masked"
    assert "4711" not in notes["value"] and "abcd" not in notes["value"] and "13912345678" not in notes["value"]
    assert notes["value"].startswith("门禁码 ****")
    plain = client.get("/api/v1/orders/O2").json()["fields"]["notes"]
    assert plain == {"value": "放门口，别按门铃", "shown": "plain"}  # nothing hidden: it says it is shown whole
    read = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read", AuditEntry.target_id == "O2")
                      .order_by(AuditEntry.id.desc())).first()
    assert read is not None and "notes" in json.loads(read.details)["plaintext"]


def test_codes_count_and_lock_then_photo_proof(client: TestClient, db: Session, act_as, app: FastAPI,  # type: ignore[no-untyped-def]
                                              session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as, courier_id="R1")
    _as(client, act_as, db, "merchant")
    pickup_code = client.get("/api/v1/orders/O1").json()["pickup_code"]
    act_as(Role.COURIER, kind="subject", id="R2")  # another courier cannot take it
    assert client.post("/api/v1/orders/O1/pickup", json={"code": pickup_code}).status_code == 404
    _as(client, act_as, db, "courier")
    wrong = "0000" if pickup_code != "0000" else "1111"
    assert client.post("/api/v1/orders/O1/pickup", json={"code": wrong}).status_code == 422
    assert client.post("/api/v1/orders/O1/handover", json={"code": "1234"}).status_code == 409  # not picked up
    assert client.post("/api/v1/orders/O1/pickup", json={"code": pickup_code}).status_code == 200
    code = _code(app, session_factory)
    other = f"{(int(code) + 1) % 10000:04d}"
    answers = [client.post("/api/v1/orders/O1/handover", json={"code": other}).status_code for _ in range(6)]
    assert answers == [422, 422, 422, 422, 422, 423]  # five tries, then locked
    assert client.post("/api/v1/orders/O1/handover", json={"code": code}).status_code == 423  # even the right one
    db.expire_all()
    assert db.get(Order, "O1").handover_attempts == 5  # type: ignore[union-attr]
    photo = picture_b64(7)
    proved = client.post("/api/v1/orders/O1/handover/photo", json={"photo": photo})
    assert proved.status_code == 200 and proved.json()["status"] == "delivered"
    stored = db.get(Order, "O1")
    assert stored is not None and stored.handover_method == "photo" and stored.proof_photo is not None
    failures = [e for e in db.scalars(select(AuditEntry).where(AuditEntry.action == "order.handover_code"))]
    assert len(failures) == 7 and all(e.outcome == "denied" for e in failures)  # 5 wrong, 2 locked


def test_photo_proof_only_when_the_code_cannot_be_used(client: TestClient, db: Session, act_as, app: FastAPI,  # type: ignore[no-untyped-def]
                                                      session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as, courier_id="R1")
    _as(client, act_as, db, "merchant")
    pickup_code = client.get("/api/v1/orders/O1").json()["pickup_code"]
    _as(client, act_as, db, "courier")
    client.post("/api/v1/orders/O1/pickup", json={"code": pickup_code})
    photo = picture_b64(7)
    assert client.post("/api/v1/orders/O1/handover/photo", json={"photo": photo}).status_code == 409


def test_a_hand_over_photo_that_is_not_a_picture_is_refused_and_nothing_changes(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app: FastAPI) -> None:
    place_order(client, db, act_as, courier_id="R1")
    _as(client, act_as, db, "merchant")
    pickup_code = client.get("/api/v1/orders/O1").json()["pickup_code"]
    _as(client, act_as, db, "courier")
    assert client.post("/api/v1/orders/O1/pickup", json={"code": pickup_code}).status_code == 200
    db.execute(update(Order).where(Order.id == "O1").values(handover_expires_at=utcnow() - timedelta(minutes=1)))
    db.commit()  # the code expired: photo proof is the way now
    for not_a_picture in (base64.b64encode(b"just some text, not a photo at all").decode(),
                          base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40).decode(),
                          picture_b64(3, size=(4, 4)),
                          base64.b64encode(picture(3, size=(256, 256), kind="JPEG")[:300]).decode()):
        refused = client.post("/api/v1/orders/O1/handover/photo", json={"photo": not_a_picture})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "photo"
    db.expire_all()
    order = db.get(Order, "O1")
    assert order is not None and order.status == "picked_up" and order.proof_photo is None
    assert client.post("/api/v1/orders/O1/handover/photo", json={"photo": picture_b64(3, kind="JPEG")}).json()[
        "status"] == "delivered"


def test_support_reveals_a_field_for_a_reason_but_never_the_address(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                    act_as) -> None:
    place_order(client, db, act_as, courier_id="R1")
    _as(client, act_as, db, "support")
    phone = client.post("/api/v1/orders/O1/reveal", json={"field": "customer_phone", "reason": "顾客来电要求改时间"})
    assert phone.json() == {"value": "13800001234", "shown": "plain"}
    address = client.post("/api/v1/orders/O1/reveal", json={"field": "address", "reason": "核对地址是否正确"})
    assert address.json()["shown"] == "masked"
    reveals = db.scalars(select(AuditEntry).where(AuditEntry.action == "order.reveal")).all()
    assert [e.outcome for e in reveals] == ["success", "denied"]
    assert all("reason_ref" in (e.details or {}) for e in reveals)
    assert client.post("/api/v1/orders/O1/reveal", json={"field": "address", "reason": "x"}).status_code == 422
    _as(client, act_as, db, "courier")
    assert client.post("/api/v1/orders/O1/reveal", json={"field": "customer_phone",
                                                         "reason": "想直接打给顾客"}).status_code == 403


def test_order_states_and_exceptions(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, courier_id="R1")
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert client.post("/api/v1/orders/O1/status", json={"status": "prepared"}).json()["status"] == "prepared"
    assert client.post("/api/v1/orders/O1/status", json={"status": "prepared"}).status_code == 409
    flagged = client.post("/api/v1/orders/O1/status", json={"status": "exception", "exception": "unreachable"})
    assert flagged.json()["status"] == "exception"
    assert client.post("/api/v1/orders/O1/status", json={"status": "cancelled"}).json()["status"] == "cancelled"
    assert client.post("/api/v1/orders/O1/status", json={"status": "exception"}).status_code == 409


def test_an_erased_customer_sees_their_order_without_their_data(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                                 app: FastAPI) -> None:
    place_order(client, db, act_as, courier_id="R1", locale="en")
    assert db.get(Order, "O1").locale == "en"  # type: ignore[union-attr]  # the code's SMS in their language
    app.state.vault.shred(db, subject_id="C1", reason="subject_request")
    db.commit()
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    seen = client.get("/api/v1/orders/O1")
    assert seen.status_code == 200 and all(v["value"] == "[erased]" for v in seen.json()["fields"].values())
    act_as(Role.COURIER, kind="subject", id="R1")
    assert client.get("/api/v1/orders/O1").status_code == 200


def test_a_customers_export_holds_their_order_fields_and_not_the_merchants_phone(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, app, act_as) -> None:
    from tripguard.privacy import service as privacy

    place_order(client, db, act_as, merchant_phone="01065550000")
    held = privacy._held_elsewhere(db, app.state.vault, "C1")  # what an access request's bundle holds
    (order,) = held["delivery_orders"]
    assert order["customer_phone"] == "13800001234" and order["address"]
    assert "merchant_phone" not in order and "01065550000" not in repr(held)  # the merchant's, not the customer's
