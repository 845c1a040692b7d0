"""Every KPI of a known quarter (the current one), seeded through the API, checked exactly; the records
behind a figure; who may read them."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR
from tests.screening.conftest import apply, run_agency
from tests.telematics.test_ingest_api import ROUTE, ndjson, post
from tests.workforce.conftest import as_worker, put_course
from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.privacy import breaches
from tripguard.privacy.models import RetentionRun, SubjectRequest
from tripguard.reporting import periods
from tripguard.safety.models import EmergencyContact, Incident
from tripguard.security.permissions import Role
from tripguard.telematics.ingest.events import format_ts


def deviating_trip(trip_id: str, start: float) -> list[dict[str, object]]:
    """A trip that leaves its route (one route_deviation alert), at `start` (epoch seconds)."""
    events: list[dict[str, object]] = [{"type": "trip_started", "trip_id": trip_id, "ts": format_ts(start),
                                        "vehicle_id": "V1", "pickup": ROUTE[0], "dropoff": ROUTE[-1], "route": ROUTE}]
    for n in range(12):
        events.append({"type": "ping", "trip_id": trip_id, "ts": format_ts(start + n * 15), "lon": ROUTE[n][0],
                       "lat": 41.14 + (0.006 if n >= 4 else 0.0)})
    return events


def seed_quarter(client: TestClient, db: Session, screening_app: FastAPI,
                 session_factory: sessionmaker[Session], act_as) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    # screening: two workers cleared
    for worker_id, role in (("drv_k", "driver"), ("cou_k", "courier")):
        assert apply(client, act_as, worker_id, "001", role=role).status_code == 201
    run_agency(screening_app, session_factory)
    # training: both pass the required course, rating it 5 and 3
    put_course(client, act_as, "basics")
    for worker_id, role, stars in (("drv_k", Role.DRIVER, 5), ("cou_k", Role.COURIER, 3)):
        as_worker(act_as, worker_id, role)
        attempt = client.post("/api/v1/me/training/basics/attempts", json={"answers": [1, 0]}).json()
        client.put(f"/api/v1/me/training/attempts/{attempt['id']}/rating", json={"rating": stars})
    # devices: two vehicles, one with a device heard now
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for vehicle in ("V1", "V2"):
        client.put(f"/api/v1/telematics/vehicles/{vehicle}", json={"plate": "粤B1", "colour": "white", "model": "Qin"})
    client.put("/api/v1/telematics/devices/D1", json={"vehicle_id": "V1", "installed_at": now.isoformat()})
    post(client, ndjson([{"type": "device_heartbeat", "device_id": "D1", "vehicle_id": "V1",
                          "ts": format_ts(now.timestamp()), "camera_ok": True, "storage_ok": True}]))
    # trips: A (a verified contact), B (shared), C (an SOS), D (nothing), E (leaves its route)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    contact_id = client.post("/api/v1/me/contacts", json={"name": "甲", "phone": "13800000001"}).json()["id"]
    db.execute(update(EmergencyContact).where(EmergencyContact.id == contact_id)
               .values(verified_at=now - timedelta(days=400)))
    db.commit()
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    started = now.timestamp() - 1800
    post(client, ndjson([{"type": "trip_started", "trip_id": t, "ts": format_ts(started), "passenger_id": p}
                         for t, p in (("A", "P1"), ("B", "P2"), ("C", "P3"), ("D", "P4"))]))
    post(client, ndjson(deviating_trip("E", started)))
    act_as(Role.PASSENGER, kind="subject", id="P2")
    client.post("/api/v1/trips/B/shares")
    act_as(Role.PASSENGER, kind="subject", id="P3")
    client.post("/api/v1/sos", json={"trip_id": "C"})
    sos = db.scalars(select(Incident).where(Incident.source == "sos")).one()
    db.execute(update(Incident).where(Incident.id == sos.id)
               .values(acknowledged_at=sos.created_at + timedelta(seconds=40)))
    # complaints: two about trips, one answered in time
    filed = []
    for passenger, trip in (("P1", "A"), ("P2", "B")):
        act_as(Role.PASSENGER, kind="subject", id=passenger)
        filed.append(client.post("/api/v1/complaints", json={"category": "service", "trip_id": trip,
                                                             "text": "司机绕路"}).json()["id"])
    act_as(Role.SUPPORT_AGENT)
    assert client.post(f"/api/v1/complaints/{filed[0]}/answer", json={"text": "已核实并退款"}).status_code == 200
    # subject requests due this quarter: one answered by its deadline, one not yet
    for key, completed in (("on-time", now - timedelta(hours=1)), ("late", None)):
        db.add(SubjectRequest(id=new_id("req"), idempotency_key=key, subject_id="P1", kind="access",
                              status="completed" if completed else "verified", received_at=now - timedelta(days=1),
                              due_at=now, hard_due_at=now + timedelta(days=15), code_attempts=0,
                              completed_at=completed))
    # one retention run today; one breach
    db.add(RetentionRun(id=new_id("ret"), started_at=now, finished_at=now, dry_run=False, actor="system:tests",
                        report={}))
    breaches.open_breach(db, actor=TEST_ACTOR, title="误发短信", serious=False, occurred_from=now - timedelta(days=1),
                         occurred_to=now, categories=["user.name"], cause="c", harm="h", measures="m", advice="a",
                         contact="dpo")
    db.commit()
    # discipline: a warning and a fine for the courier
    act_as(Role.SUPERVISOR)
    violation = client.post("/api/v1/violations", json={"offender_type": "worker", "offender_id": "cou_k",
                                                        "kind": "service", "summary": "态度差",
                                                        "evidence": {"complaints": [filed[1]]}}).json()
    act_as(Role.HR_OFFICER)
    for sanction in ({"kind": "warning"}, {"kind": "fine", "amount_fen": 5000}):
        assert client.post(f"/api/v1/violations/{violation['id']}/sanctions", json=sanction).status_code == 201


def test_every_kpi_of_a_known_quarter(client: TestClient, db: Session, screening_app: FastAPI,
                                      session_factory: sessionmaker[Session], act_as) -> None:  # type: ignore[no-untyped-def]
    seed_quarter(client, db, screening_app, session_factory, act_as)
    settings = screening_app.state.settings
    quarter = periods.current_quarter(utcnow(), settings.timezone)
    act_as(Role.SUPERVISOR)
    report = client.get("/api/v1/reports/kpis", params={"period": quarter})
    assert report.status_code == 200, report.text
    got = {k["key"]: k for k in report.json()["kpis"]}
    values = {key: (k["value"], k["numerator"], k["denominator"], k["status"]) for key, k in got.items()}
    assert values == {
        "screening.pass_rate": (1.0, 2, 2, "green"),
        "screening.coverage": (1.0, 2, 2, "green"),
        "devices.install_rate": (0.5, 1, 2, "red"),
        "devices.operating_rate": (1.0, 1, 1, "green"),
        "safety.use_rate": (0.6, 3, 5, "red"),
        "safety.share_rate": (0.4, 2, 5, "info"),  # B, and C's SOS shares the trip
        "safety.contact_rate": (0.2, 1, 5, "info"),
        "sos.count": (1.0, None, None, "info"),
        "sos.ack_p50_s": (40.0, None, None, "green"),
        "sos.ack_p90_s": (40.0, None, None, "green"),
        "alerts.per_1000_trips": (200.0, 1, 5, "info"),
        "training.coverage": (1.0, 2, 2, "green"),
        "training.satisfaction": (4.0, None, 2, "green"),
        "privacy.requests_on_time": (0.5, 1, 2, "red"),
        "privacy.deletions_on_schedule": (1.0, 1, 1, "green"),  # the install began today, and ran today
        "privacy.breaches": (1.0, 0, 0, "red"),
        "complaints.answered_in_time": (1.0, 1, 1, "green"),  # the other is open and not yet due
        "discipline.sanctions": (2.0, None, None, "info"),
    }
    assert got["alerts.per_1000_trips"]["detail"] == {"route_deviation": 200.0}
    assert got["discipline.sanctions"]["detail"] == {"fine": 1, "warning": 1}
    assert got["sos.count"]["detail"] == {"genuine": 0}
    assert got["devices.install_rate"]["point_in_time"] is True
    assert got["screening.pass_rate"]["target"] == {"at_least": 0.95, "at_most": None}

    sos = client.get("/api/v1/reports/kpis/sos.ack_p90_s/records", params={"period": quarter}).json()
    assert [r["ack_s"] for r in sos["records"]] == [40.0]
    late = client.get("/api/v1/reports/kpis/complaints.answered_in_time/records", params={"period": quarter}).json()
    assert late["records"] == []  # the open complaint is not due yet: not late
    requests_late = client.get("/api/v1/reports/kpis/privacy.requests_on_time/records",
                               params={"period": quarter}).json()["records"]
    assert len(requests_late) == 1 and requests_late[0]["completed_at"] is None
    assert client.get("/api/v1/reports/kpis/discipline.sanctions/records",
                      params={"period": quarter}).status_code == 404  # no records behind a count of sanctions
    previous = client.get("/api/v1/reports/kpis", params={"period": periods.parse(quarter, settings.timezone)
                                                          .previous(settings.timezone).label}).json()
    assert {k["key"]: k["value"] for k in previous["kpis"]}["safety.use_rate"] is None  # nothing back then
    assert client.get("/api/v1/reports/kpis", params={"period": "2026Q5"}).status_code == 422
    act_as(Role.SAFETY_AGENT)
    assert client.get("/api/v1/reports/kpis", params={"period": quarter}).status_code == 403
