"""Checks that bind (issue #27): an order is given only to a courier the dispatch gate allows, and a
courier opens order data only while the gate allows them. The operator may override an assignment with a
reason: audited, reported to supervision, and that courier then reads that order."""

from __future__ import annotations

from datetime import time

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import cleared_worker
from tests.delivery.conftest import ADDRESS, place_order
from tests.workforce.conftest import put_course
from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry
from tripguard.delivery.models import Binding, Order
from tripguard.screening.models import Applicant
from tripguard.security.permissions import Role
from tripguard.workforce.models import Finding
from tripguard.workforce.supervision import Thresholds, run_rules

DOOR_CODE_NOTES = "门禁码 4321#，到了打电话 13912345678"
ALL_DAY = Thresholds(working_from=time(0), working_until=time(23, 59, 59, 999999))


def _assign(client: TestClient, act_as, order_id: str, courier_id: str, **extra: object):  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    client.post("/api/v1/telephony/numbers", json={"city": "beijing", "numbers": ["17000000001", "17000000002"]})
    return client.post(f"/api/v1/orders/{order_id}/assign",
                       json={"courier_id": courier_id, "courier_phone": "13700009999"} | extra)


def _set_status(factory: sessionmaker[Session], worker_id: str, status: str) -> None:
    with factory() as session:
        session.execute(update(Applicant).where(Applicant.id == worker_id).values(status=status))
        session.commit()


def test_a_courier_the_gate_refuses_is_not_given_the_order(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                            session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as)
    # never screened
    refused = _assign(client, act_as, "O1", "cou_none")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["type"] == "/problems/worker-ineligible" and body["worker_id"] == "cou_none"
    assert [b["code"] for b in body["blockers"]] == ["screening.none"]
    # a drug record: the agency's finding waits for the pre-adverse window
    cleared_worker(session_factory, "cou_drugs")
    _set_status(session_factory, "cou_drugs", "pre_adverse")
    refused = _assign(client, act_as, "O1", "cou_drugs")
    assert refused.status_code == 409 and [b["code"] for b in refused.json()["blockers"]] == ["screening.adverse"]
    # screened, but the required course not passed
    cleared_worker(session_factory, "cou_untrained")
    put_course(client, act_as)
    refused = _assign(client, act_as, "O1", "cou_untrained")
    assert refused.status_code == 409
    assert [(b["code"], b["ref"]) for b in refused.json()["blockers"]] == [("training.missing", "privacy-basics")]
    # a driver is not screened as a courier
    cleared_worker(session_factory, "drv_only", role="driver")
    refused = _assign(client, act_as, "O1", "drv_only")
    assert "screening.role" in [b["code"] for b in refused.json()["blockers"]]
    # nothing was given: no courier on the order, no number bound, no read possible
    db.expire_all()
    assert db.get(Order, "O1").courier_id is None  # type: ignore[union-attr]
    assert db.scalars(select(Binding)).all() == []
    for courier in ("cou_none", "cou_drugs", "cou_untrained"):
        act_as(Role.COURIER, kind="subject", id=courier)
        assert client.get("/api/v1/orders/O1").status_code == 404


def test_a_courier_who_stops_being_eligible_reads_nothing_of_the_order(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as, courier_id="R1", notes=DOOR_CODE_NOTES)
    act_as(Role.COURIER, kind="subject", id="R1")
    assert client.get("/api/v1/orders/O1").json()["fields"]["address"]["value"] == ADDRESS  # cleared: it is shown

    # a new required course: untrained, the courier reads neither the address nor the door code in the notes
    put_course(client, act_as)
    act_as(Role.COURIER, kind="subject", id="R1")
    refused = client.get("/api/v1/orders/O1")
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == "/problems/not-cleared-to-work"
    assert [b["code"] for b in refused.json()["blockers"]] == ["training.missing"]
    assert ADDRESS not in refused.text and "4321" not in refused.text and "北京" not in refused.text

    # passed: shown again; then a drug record found by the agency closes it again
    passed = client.post("/api/v1/me/training/privacy-basics/attempts", json={"answers": [1, 0]})
    assert passed.status_code == 201 and passed.json()["passed"] is True  # their own training stays open to them
    assert client.get("/api/v1/orders/O1").status_code == 200
    _set_status(session_factory, "R1", "pre_adverse")
    refused = client.get("/api/v1/orders/O1")
    assert refused.status_code == 403 and [b["code"] for b in refused.json()["blockers"]] == ["screening.adverse"]
    assert ADDRESS not in refused.text
    # their own data stays theirs: emergency contacts, the agreement
    assert client.post("/api/v1/me/contacts", json={"name": "王芳", "phone": "13800005678"}).status_code == 201
    assert client.get("/api/v1/me/contacts").status_code == 200
    assert client.get("/api/v1/me/agreement").status_code == 200


def test_an_override_with_a_reason_is_audited_reported_and_opens_that_order(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as)
    place_order(client, db, act_as, "O2", "C2", courier_id="R2")
    cleared_worker(session_factory, "cou_late")
    put_course(client, act_as)  # cou_late has not passed it yet
    assert _assign(client, act_as, "O1", "cou_late", override_reason="x").status_code == 422  # a reason, not a mark
    overridden = _assign(client, act_as, "O1", "cou_late", override_reason="暴雨，唯一在附近的骑手，培训明天补")
    assert overridden.status_code == 200, overridden.text
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "order.assign_override")).one()
    assert (entry.actor_id, entry.target_id) == ("key_TEST", "O1")
    assert "training.missing" in (entry.details or "") and "暴雨" not in (entry.details or "")  # the reason is sealed

    # the courier reads this order (the read says it was by override), not another
    act_as(Role.COURIER, kind="subject", id="cou_late")
    seen = client.get("/api/v1/orders/O1")
    assert seen.status_code == 200 and seen.json()["fields"]["address"]["value"] == ADDRESS
    read = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read", AuditEntry.actor_id == "cou_late")
                      ).one()
    assert '"override": "gate"' in (read.details or "") or '"override":"gate"' in (read.details or "")

    # supervision is told
    audit.sequence_all(db)
    db.commit()
    run_rules(session_factory, limits=ALL_DAY)
    found = db.scalars(select(Finding).where(Finding.rule == "gate_override")).all()
    assert [(f.actor_id, f.record, f.evidence) for f in found] == [("key_TEST", "O1", [entry.id])]
    act_as(Role.SUPERVISOR)
    assert [f["rule"] for f in client.get("/api/v1/supervision/findings").json()] == ["gate_override"]

    # given to a courier the gate allows (R2, once trained), the override is gone with the old courier
    act_as(Role.COURIER, kind="subject", id="R2")
    assert client.post("/api/v1/me/training/privacy-basics/attempts", json={"answers": [1, 0]}).status_code == 201
    assert _assign(client, act_as, "O1", "R2").status_code == 200
    db.expire_all()
    assert db.get(Order, "O1").courier_override_at is None  # type: ignore[union-attr]
