"""Complaints: a person complains about their trip or order; a trip complained about keeps its recordings 16 days."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tests.delivery.conftest import place_order
from tests.safety.test_recordings import announce
from tests.safety.test_sos_api import on_a_trip
from tripguard.audit.models import AuditEntry
from tripguard.feedback.models import Complaint
from tripguard.safety.models import Recording
from tripguard.security.permissions import Role


def test_a_passenger_complains_about_their_trip_once(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    body = {"trip_id": "T1", "category": "conduct", "text": "司机一路打电话，还绕路了"}
    first = client.post("/api/v1/complaints", json=body, headers={"Idempotency-Key": "c-1"})
    assert first.status_code == 201, first.text
    retry = client.post("/api/v1/complaints", json=body, headers={"Idempotency-Key": "c-1"})
    assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]
    stored = db.scalars(select(Complaint)).one()
    assert stored.text is not None and "打电话".encode() not in stored.text  # sealed under the person's key
    assert "text" not in first.json()
    assert ("complaint.file", first.json()["id"]) in [(e.action, e.target_id) for e in db.scalars(select(AuditEntry))]
    assert [c["id"] for c in client.get("/api/v1/me/complaints").json()] == [first.json()["id"]]


def test_what_cannot_be_filed(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="SOMEONE_ELSE")
    assert client.post("/api/v1/complaints", json={"trip_id": "T1", "category": "service"}).status_code == 404
    assert client.post("/api/v1/complaints", json={"category": "service"}).status_code == 422  # about what?
    assert client.post("/api/v1/complaints", json={"category": "safety", "text": "有人跟踪我"}).status_code == 201


def test_a_complaint_or_rating_names_an_order_the_person_took_part_in(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                      act_as) -> None:
    place_order(client, db, act_as, "O1", "C1", courier_id="R1")
    low = {"order_id": "O1", "category": "low_rating", "rating": 1}
    for role, someone in ((Role.CUSTOMER, "C2"), (Role.COURIER, "R2")):
        act_as(role, kind="subject", id=someone)  # another customer, another courier
        refused = client.post("/api/v1/complaints", json=low)
        assert refused.status_code == 404 and refused.json()["type"] == "/problems/not-found", refused.text
    # C1 under another role: the order registered C1 as a customer, so a passenger token with that id is refused
    act_as(Role.PASSENGER, kind="subject", id="C1")
    refused = client.post("/api/v1/complaints", json=low)
    assert refused.status_code == 403 and refused.json()["type"] == "/problems/permission-denied", refused.text
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    assert client.post("/api/v1/complaints", json={**low, "order_id": "O404"}).status_code == 404  # no such order
    assert client.post("/api/v1/complaints", json={**low, "rating": 4}).status_code == 422  # four stars is not low
    assert client.post("/api/v1/complaints", json={**low, "trip_id": "T404"}).status_code == 404  # both named: both own
    assert client.post("/api/v1/complaints", json=low).status_code == 201
    act_as(Role.COURIER, kind="subject", id="R1")
    assert client.post("/api/v1/complaints", json={"order_id": "O1", "category": "conduct"}).status_code == 201
    assert [c.subject_id for c in db.scalars(select(Complaint).order_by(Complaint.created_at))] == ["C1", "R1"]


def test_a_complaint_keeps_the_trips_recordings_16_days(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    before = db.get(Recording, announce(client, act_as))
    assert before is not None and before.keep_until - before.created_at == timedelta(days=7)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    assert client.post("/api/v1/complaints", json={"trip_id": "T1", "category": "low_rating",
                                                   "rating": 2}).status_code == 201
    db.expire_all()
    held = db.get(Recording, before.id)
    assert held is not None and held.keep_until - held.created_at == timedelta(days=16)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    later = client.post("/api/v1/recordings", json={  # uploaded after the complaint: held as well
        "trip_id": "T1", "device_id": "DEV2", "kind": "video", "content_type": "video/mp4",
        "started_at": "2026-03-01T08:05:00Z", "duration_s": 60, "size": 10, "sha256": "0" * 64}).json()
    after = db.get(Recording, later["id"])
    assert after is not None and after.keep_until - after.created_at == timedelta(days=16)


def test_supervisors_see_the_list_without_the_words(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, "O9", "C9", courier_id="R1")
    act_as(Role.COURIER, kind="subject", id="R1")
    client.post("/api/v1/complaints", json={"order_id": "O9", "category": "privacy", "text": "小票上印了我的全名"})
    act_as(Role.SUPERVISOR)
    listed = client.get("/api/v1/complaints", params={"category": "privacy"}).json()
    assert [(c["order_id"], c["subject_role"]) for c in listed] == [("O9", "courier")]
    assert "text" not in listed[0] and "全名" not in str(listed)
    act_as(Role.SAFETY_AGENT)
    assert client.get("/api/v1/complaints").status_code == 403


def test_complaints_go_after_the_trip_data_period_unless_their_author_is_on_hold(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                                  act_as, app) -> None:
    from tripguard.core.clock import utcnow
    from tripguard.feedback import service
    from tripguard.privacy.retention import held_subjects, place_hold

    for order, person in (("O1", "C1"), ("O2", "C2")):
        place_order(client, db, act_as, order, person)
        act_as(Role.CUSTOMER, kind="subject", id=person)
        assert client.post("/api/v1/complaints", json={"order_id": order, "category": "service"}).status_code == 201
    place_hold(db, actor=TEST_ACTOR, subject_id="C2", case_ref="inc_1", reason="court order")
    rule = service.expired(timedelta(days=730), held_subjects)  # a subquery factory
    now = utcnow()
    assert rule(db, app.state.vault, now, False) == (0, 0)  # not old yet
    assert rule(db, app.state.vault, now + timedelta(days=731), True) == (1, 1)  # a dry run deletes nothing
    assert rule(db, app.state.vault, now + timedelta(days=731), False) == (1, 1)
    assert [c.subject_id for c in db.scalars(select(Complaint))] == ["C2"]
