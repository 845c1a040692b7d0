"""Checks that bind (issue #27, review): the access gate that shuts a courier out of an order's data also
shuts them out of everything else the order gives them. A courier the gate refuses is put through to no
one by the order's virtual number (nor anyone to them), and proves neither pickup nor hand-over (so the
customer is not sent a hand-over code for them). An order given to a courier over the gate, with a
reason, lets them past only the blockers the operator overrode (never the agreement or a suspension),
as their read of it does: a blocker found later refuses as on any order."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import cleared_worker, picture_b64
from tests.delivery.conftest import place_order
from tests.workforce.conftest import put_course
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.delivery.models import Interaction, Order
from tripguard.notify.models import OutboxMessage
from tripguard.screening.models import Applicant
from tripguard.security.permissions import Role
from tripguard.workforce.models import Sanction

CUSTOMER, COURIER = "13800001234", "13700009999"


def _route(client: TestClient, act_as, caller: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    answer = client.post("/api/v1/telephony/route", json={"number": "17000000001", "caller": caller})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _set_status(factory: sessionmaker[Session], worker_id: str, status: str) -> None:
    with factory() as session:
        session.execute(update(Applicant).where(Applicant.id == worker_id).values(status=status))
        session.commit()


def _suspend(factory: sessionmaker[Session], worker_id: str) -> None:
    now = utcnow()
    with factory() as session:
        session.add(Sanction(id=new_id("san"), violation_id="vio_1", offender_id=worker_id, kind="suspension",
                             starts_at=now - timedelta(minutes=1), ends_at=None, status="active",
                             decided_by="stf_HR", decided_at=now))
        session.commit()


def _override(client: TestClient, act_as, courier_id: str):  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    client.post("/api/v1/telephony/numbers", json={"city": "beijing", "numbers": ["17000000001"]})
    return client.post("/api/v1/orders/O1/assign", json={"courier_id": courier_id, "courier_phone": COURIER,
                                                         "override_reason": "暴雨，唯一在附近的骑手，培训明天补"})


def _pickup_code(db: Session) -> str:
    db.expire_all()
    return db.get(Order, "O1").pickup_code  # type: ignore[union-attr]


def test_a_call_is_not_bridged_while_the_gate_refuses_the_courier(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as, courier_id="R1")
    assert _route(client, act_as, COURIER) == {"action": "bridge", "to": CUSTOMER, "reason": None}  # cleared
    # the agency finds a drug record: the gate refuses R1 their order, and now every call on its number
    _set_status(session_factory, "R1", "pre_adverse")
    act_as(Role.COURIER, kind="subject", id="R1")
    assert client.get("/api/v1/orders/O1").status_code == 403
    refused = {"action": "refuse", "to": None, "reason": "courier_not_cleared"}
    assert _route(client, act_as, COURIER) == refused
    assert _route(client, act_as, CUSTOMER) == refused  # nor is the customer put through to them
    # recorded like any refused call; no real number was opened to answer
    db.expire_all()
    calls = db.scalars(select(Interaction).order_by(Interaction.at)).all()
    assert [(c.outcome, c.reason) for c in calls][-2:] == [("refused", "courier_not_cleared")] * 2
    uses = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.use")).all()
    assert len(uses) == 2  # the one bridged call: the order's phone and the binding's, not the refused ones
    # cleared again: bridged again
    _set_status(session_factory, "R1", "active")
    assert _route(client, act_as, COURIER)["action"] == "bridge"


def test_a_call_for_an_order_given_over_the_gate_asks_the_agreement_a_suspension_and_what_was_not_overridden(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as)
    cleared_worker(session_factory, "cou_late")
    put_course(client, act_as)  # cou_late untrained: the gate refuses them
    assert _override(client, act_as, "cou_late").status_code == 200
    assert _route(client, act_as, COURIER) == {"action": "bridge", "to": CUSTOMER, "reason": None}
    _suspend(session_factory, "cou_late")  # the override lifts training, not a suspension
    assert _route(client, act_as, COURIER)["reason"] == "courier_not_cleared"


def test_a_courier_the_gate_refuses_proves_no_pickup_and_the_customer_is_sent_no_code(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as, courier_id="R1")
    put_course(client, act_as)  # R1 untrained now
    act_as(Role.COURIER, kind="subject", id="R1")
    assert client.get("/api/v1/orders/O1").status_code == 403
    picked = client.post("/api/v1/orders/O1/pickup", json={"code": _pickup_code(db)})
    assert picked.status_code == 403, picked.text
    assert picked.json()["type"] == "/problems/not-cleared-to-work"
    assert [b["code"] for b in picked.json()["blockers"]] == ["training.missing"]
    db.expire_all()
    order = db.get(Order, "O1")
    assert order is not None and order.status == "accepted" and order.handover_code_hash is None
    assert order.pickup_attempts == 0  # the code was not even tried
    assert db.scalars(select(OutboxMessage)).all() == []  # no hand-over code went to the customer
    # another courier's order is still none of theirs (404 before the gate is asked)
    act_as(Role.COURIER, kind="subject", id="R9")
    assert client.post("/api/v1/orders/O1/pickup", json={"code": _pickup_code(db)}).status_code == 404


def test_a_courier_refused_after_pickup_neither_hands_over_nor_proves_it_by_photo(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as, courier_id="R1")
    act_as(Role.COURIER, kind="subject", id="R1")
    assert client.post("/api/v1/orders/O1/pickup", json={"code": _pickup_code(db)}).status_code == 200
    _suspend(session_factory, "R1")
    handed = client.post("/api/v1/orders/O1/handover", json={"code": "1234"})
    assert handed.status_code == 403 and handed.json()["type"] == "/problems/access-suspended", handed.text
    db.execute(update(Order).where(Order.id == "O1").values(handover_expires_at=utcnow() - timedelta(minutes=1)))
    db.commit()  # the code expired: photo proof would be the way
    photo = client.post("/api/v1/orders/O1/handover/photo", json={"photo": picture_b64(7)})
    assert photo.status_code == 403 and photo.json()["type"] == "/problems/access-suspended", photo.text
    db.expire_all()
    order = db.get(Order, "O1")
    assert order is not None and order.status == "picked_up" and order.proof_photo is None
    assert order.handover_attempts == 0


def test_a_courier_given_the_order_over_the_gate_picks_it_up_until_suspended(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as)
    cleared_worker(session_factory, "cou_late")
    put_course(client, act_as)
    assert _override(client, act_as, "cou_late").status_code == 200
    act_as(Role.COURIER, kind="subject", id="cou_late")
    picked = client.post("/api/v1/orders/O1/pickup", json={"code": _pickup_code(db)})
    assert picked.status_code == 200 and picked.json()["status"] == "picked_up", picked.text
    _suspend(session_factory, "cou_late")
    handed = client.post("/api/v1/orders/O1/handover", json={"code": "1234"})
    assert handed.status_code == 403 and handed.json()["type"] == "/problems/access-suspended"


def test_an_override_for_training_does_not_cover_a_drug_record_found_later(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:
    """(review27b) The operator overrode `training.missing`; afterwards the agency reports a drug record
    (pre_adverse): on the overridden order the courier neither reads the address, nor is bridged to the
    customer, nor picks the order up."""
    place_order(client, db, act_as)
    cleared_worker(session_factory, "cou_late")
    put_course(client, act_as)
    assert _override(client, act_as, "cou_late").status_code == 200
    db.expire_all()
    assert db.get(Order, "O1").courier_override_blockers == ["training.missing"]  # type: ignore[union-attr]
    _set_status(session_factory, "cou_late", "pre_adverse")
    route = _route(client, act_as, COURIER)
    act_as(Role.COURIER, kind="subject", id="cou_late")
    read = client.get("/api/v1/orders/O1")
    picked = client.post("/api/v1/orders/O1/pickup", json={"code": _pickup_code(db)})
    assert (read.status_code, route["reason"], picked.status_code) == (403, "courier_not_cleared", 403), \
        (read.status_code, route, picked.text)
    assert [b["code"] for b in read.json()["blockers"]] == ["screening.adverse"]  # what is in force, not training
    # cleared of the record again: the override still lifts the training it was given for
    _set_status(session_factory, "cou_late", "active")
    assert client.get("/api/v1/orders/O1").status_code == 200


def test_an_override_whose_blockers_are_unknown_lifts_none(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:
    """An order overridden before the codes were stored (and whose audit entry was not found by the
    migration): the override's scope is unknown, so the whole gate is asked."""
    place_order(client, db, act_as)
    cleared_worker(session_factory, "cou_late")
    put_course(client, act_as)
    assert _override(client, act_as, "cou_late").status_code == 200
    with session_factory() as session:
        session.execute(update(Order).where(Order.id == "O1").values(courier_override_blockers=None))
        session.commit()
    assert _route(client, act_as, COURIER)["reason"] == "courier_not_cleared"
    act_as(Role.COURIER, kind="subject", id="cou_late")
    assert client.get("/api/v1/orders/O1").status_code == 403
