"""Everyone whose data TripGuard stores is a data subject from the first write (`privacy.subjects`), and
can ask for their data or its erasure without the operator recording them first. None of these tests
registers anyone through `PUT /subjects/{id}`."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import subject_token
from tests.delivery.conftest import place_order
from tests.screening.conftest import SELFIE, apply, id_number
from tests.screening.conftest import screening_app as screening_app_fixture
from tests.telematics.test_ingest_api import ndjson, post
from tripguard.audit.models import AuditEntry
from tripguard.delivery.models import Order
from tripguard.notify.channels import RecordingChannel
from tripguard.notify.service import Notifier, dispatch_due
from tripguard.privacy import access
from tripguard.privacy.models import DataSubject
from tripguard.screening.models import Applicant
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role
from tripguard.vault.service import SubjectErased


def _token(client: TestClient, subject_id: str, role: str = "passenger") -> dict[str, str]:
    """Requests from here on carry the person's own app token (not the principal `act_as` set)."""
    client.app.dependency_overrides.pop(resolve_principal, None)  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {subject_token(subject_id, role=role)}"}


def _code_sent_to(app: FastAPI, session_factory: sessionmaker[Session], phone: str) -> str:
    sms = RecordingChannel(name="sms")
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms}))
    sent = [m for m in sms.sent if m.to == phone]
    assert sent, [m.to for m in sms.sent]
    return re.search(r"\d{6}", sent[-1].body).group()  # type: ignore[union-attr]


def _ask(client: TestClient, app: FastAPI, session_factory: sessionmaker[Session], *, subject_id: str, role: str,
         kind: str, phone: str) -> dict[str, Any]:
    """File a request as the person's app does, verify it with the code their phone got; the request."""
    headers = _token(client, subject_id, role)
    filed = client.post("/api/v1/me/requests", json={"kind": kind},
                        headers=headers | {"Idempotency-Key": f"k-{kind}-1"})
    assert filed.status_code == 202, filed.text  # was 404 "no such data subject"
    code = _code_sent_to(app, session_factory, phone)
    verified = client.post(f"/api/v1/me/requests/{filed.json()['id']}/verify", json={"code": code}, headers=headers)
    assert verified.status_code == 200, verified.text
    return verified.json()  # type: ignore[no-any-return]


def _export(client: TestClient, subject_id: str, role: str, request_id: str) -> dict[str, Any]:
    headers = _token(client, subject_id, role)
    response = client.get(f"/api/v1/me/requests/{request_id}/export", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_delivery_customer_gets_their_data_and_its_erasure_without_being_recorded(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app: FastAPI, session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as, customer_id="cus_only_orders")
    subject = db.get(DataSubject, "cus_only_orders")
    assert subject is not None and (subject.kind, subject.notice_version, subject.source) == ("customer", "ord-1",
                                                                                              "order")
    request = _ask(client, app, session_factory, subject_id="cus_only_orders", role="customer", kind="access",
                   phone="13800001234")  # the order's contact phone: the only one on file
    used = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.use",
                                               AuditEntry.target_type == "delivery_orders")).all()
    assert [(u.purpose, u.target_id) for u in used] == [("subject_request", "O1")]  # opened for the purpose
    bundle = _export(client, "cus_only_orders", "customer", request["id"])
    [order] = bundle["held_with_other_records"]["delivery_orders"]
    assert (order["customer_name"], order["customer_phone"]) == ("王小明", "13800001234")
    assert order["address"].startswith("北京市朝阳区") and "13912345678" in order["notes"]

    erased = _ask(client, app, session_factory, subject_id="cus_only_orders", role="customer", kind="erasure",
                  phone="13800001234")
    assert erased["status"] == "completed"
    db.expire_all()
    assert db.get(DataSubject, "cus_only_orders").erased_at is not None  # type: ignore[union-attr]
    stored = db.get(Order, "O1")
    assert stored is not None
    try:
        access.open_field(app.state.vault, db, stored, "customer_phone")
        raise AssertionError("the order's contact still opens after the erasure")
    except SubjectErased:
        pass


screening_app = screening_app_fixture  # the screening notice published, for the test below


def test_a_driver_known_only_through_screening_gets_their_screening_record_and_its_erasure(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, screening_app: FastAPI,
        session_factory: sessionmaker[Session]) -> None:
    assert apply(client, act_as, "drv_screened").status_code in (200, 201)
    applicant = db.get(Applicant, "drv_screened")
    assert applicant is not None
    access.write_field(screening_app.state.vault, db, applicant, "reasons", json.dumps(["record.drunk_driving"]))
    db.commit()
    subject = db.get(DataSubject, "drv_screened")
    assert subject is not None and (subject.kind, subject.notice_version) == ("driver", "scr-1")

    request = _ask(client, screening_app, session_factory, subject_id="drv_screened", role="driver", kind="access",
                   phone="13800001111")  # the application's phone
    bundle = _export(client, "drv_screened", "driver", request["id"])
    [record] = bundle["held_with_other_records"]["screening_applicants"]
    assert (record["name"], record["id_number"], record["selfie"]) == ("李师傅", id_number("001"), SELFIE)
    assert json.loads(record["reasons"]) == ["record.drunk_driving"]
    export = db.scalars(select(AuditEntry).where(AuditEntry.action == "subject.export")).all()[-1]
    assert export.purpose == "subject_request" and export.target_id == "drv_screened"
    assert {"screening_applicants.id_number", "screening_applicants.selfie",
            "screening_applicants.reasons"} <= set(json.loads(export.details)["fields"].split(","))

    erased = _ask(client, screening_app, session_factory, subject_id="drv_screened", role="driver", kind="erasure",
                  phone="13800001111")
    assert erased["status"] == "completed"
    with session_factory() as fresh:  # `db` keeps the key it opened above in its cache
        try:
            access.open_field(screening_app.state.vault, fresh, fresh.get(Applicant, "drv_screened"), "id_number")  # type: ignore[arg-type]
            raise AssertionError("the screening record still opens after the erasure")
        except SubjectErased:
            pass


def test_every_first_write_about_a_person_registers_them(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """Couriers (bound to an order), merchants (their phone on it), drivers and passengers (a trip), whoever
    files a complaint, whoever adds an emergency contact: each a data subject, of their kind, from then on."""
    place_order(client, db, act_as, customer_id="cus_1", merchant_phone="010-88880000")
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    client.post("/api/v1/telephony/numbers", json={"city": "beijing", "numbers": ["17000000001"]})
    client.post("/api/v1/orders/O1/assign", json={"courier_id": "cou_1", "courier_phone": "13700009999"})
    post(client, ndjson([{"type": "trip_started", "trip_id": "T-REG", "ts": "2026-03-01T09:00:00Z",
                          "driver_id": "drv_trip", "passenger_id": "psg_trip"}]))
    complaint = client.post("/api/v1/complaints", json={"category": "service", "rating": 1, "trip_id": "T-REG"},
                            headers=_token(client, "psg_trip"))
    assert complaint.status_code == 201, complaint.text
    contact = client.post("/api/v1/me/contacts", json={"name": "李雷", "phone": "13800008888"},
                          headers=_token(client, "psg_contacts"))
    assert contact.status_code == 201, contact.text
    db.expire_all()
    kinds = {s.id: s.kind for s in db.scalars(select(DataSubject))}
    assert {k: kinds.get(k, "missing") for k in ("cus_1", "M1", "drv_trip", "psg_trip", "psg_contacts")} == {
        "cus_1": "customer", "M1": "merchant", "drv_trip": "driver", "psg_trip": "passenger",
        "psg_contacts": None}
    if db.scalars(select(Order.courier_id).where(Order.id == "O1")).one() == "cou_1":  # assignment may be refused
        assert kinds.get("cou_1") == "courier"


def test_a_breach_notice_reaches_a_customer_known_only_through_their_order(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app: FastAPI, session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as, customer_id="cus_breached")
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    now = "2026-12-01T08:00:00+00:00"
    opened = client.post("/api/v1/privacy/breaches", json={
        "title": "Labels left on a bench", "serious": False, "occurred_from": now, "occurred_to": now,
        "categories": ["user.contact.phone_number"], "cause": "printed labels lost", "harm": "unwanted calls",
        "measures": "labels recovered", "advice": "ignore unknown callers", "contact": "privacy@example.com"}).json()
    client.post(f"/api/v1/privacy/breaches/{opened['id']}/subjects", json={"subject_ids": ["cus_breached"]})
    assert client.post(f"/api/v1/privacy/breaches/{opened['id']}/notify").json() == {"notified": 1}  # was 0
    sms = RecordingChannel(name="sms")
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms}))
    assert [m.to for m in sms.sent] == ["13800001234"]  # the notice went to the order's phone
    used = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.use")).all()
    assert [(u.purpose, u.target_id, u.actor_id) for u in used] == [("breach_response", "O1", "stf_DPO")]


def test_a_passenger_with_nothing_to_send_a_code_to_is_verified_in_person(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, app: FastAPI, session_factory: sessionmaker[Session]) -> None:
    """Found by the review of #27: a passenger known only through a trip and a complaint (no phone or e-mail
    anywhere) got 422 and no request, so not even the privacy officer could verify them in person."""
    from tripguard.audit.actor import Actor
    from tripguard.core.db import unit_of_work
    from tripguard.privacy import requests

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson([{"type": "trip_started", "trip_id": "T-C", "ts": "2026-03-01T09:00:00Z",
                          "driver_id": "drv_x", "passenger_id": "psg_c"}]))
    headers = _token(client, "psg_c")
    complaint = client.post("/api/v1/complaints", json={"category": "conduct", "trip_id": "T-C",
                                                        "text": "司机态度很差"}, headers=headers)
    assert complaint.status_code == 201, complaint.text
    filed = client.post("/api/v1/me/requests", json={"kind": "access"},
                        headers=headers | {"Idempotency-Key": "in-person-1"})
    assert filed.status_code == 202 and filed.json()["verify_by"] == "in_person", filed.text
    request_id = filed.json()["id"]
    assert client.get(f"/api/v1/me/requests/{request_id}/export", headers=headers).status_code == 403
    with unit_of_work(session_factory) as session:
        requests.verify_in_person(session, vault=app.state.vault, actor=Actor("staff", "stf_DPO"),
                                  request_id=request_id, how="ID card shown at the service desk")
    export = client.get(f"/api/v1/me/requests/{request_id}/export", headers=headers)
    assert export.status_code == 200 and "司机态度很差" in export.text, export.text
