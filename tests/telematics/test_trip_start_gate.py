"""The safety net (issue #27): a trip that starts with a driver, or in a vehicle, the dispatch gate refuses
raises an `ineligible_driver` alert and a case for the safety centre, in the ingest that brings the
start. The gate is asked once per trip start: a batch sent again changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import cleared_worker
from tripguard.core.clock import utcnow
from tripguard.notify.models import OutboxMessage
from tripguard.safety.models import Incident
from tripguard.screening.models import Applicant
from tripguard.security.permissions import Role
from tripguard.telematics.models import Device, TripAlert, Vehicle


@pytest.fixture
def gated(app: FastAPI, db: Session) -> FastAPI:
    app.state.settings = app.state.settings.model_copy(update={"trip_start_gate": True,
                                                               "webhook_url": "http://127.0.0.1:9/hooks"})
    now = utcnow()
    for vehicle_id, heard in (("veh_ok", now), ("veh_silent", now - timedelta(hours=2))):
        db.add(Vehicle(id=vehicle_id, plate="粤B00001", colour="white", model="BYD Qin", created_at=now,
                       updated_at=now))
        db.add(Device(id=f"dev_{vehicle_id}", vehicle_id=vehicle_id, installed_at=now - timedelta(days=30),
                      last_heartbeat_at=heard, camera_ok=True, storage_ok=True))
    db.commit()
    return app


def _start(client: TestClient, trip_id: str, driver_id: str | None, vehicle_id: str | None = "veh_ok"):  # type: ignore[no-untyped-def]
    event = {"type": "trip_started", "trip_id": trip_id, "ts": utcnow().isoformat().replace("+00:00", "Z"),
             "vehicle_id": vehicle_id, "driver_id": driver_id, "passenger_id": f"pas_{trip_id}",
             "pickup": [-8.61, 41.14], "dropoff": [-8.60, 41.15]}
    return client.post("/api/v1/telematics/events", content=(json.dumps(event) + "\n").encode(),
                       headers={"content-type": "application/x-ndjson"})


def test_a_driver_suspended_after_a_drink_driving_record_raises_an_alert_and_a_case(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, gated: FastAPI, act_as, session_factory: sessionmaker[Session]) -> None:
    cleared_worker(session_factory, "drv_drunk", role="driver")
    # the agency's continuous monitoring found a drink-driving record: screening suspended the driver
    db.execute(update(Applicant).where(Applicant.id == "drv_drunk").values(status="suspended"))
    db.commit()
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    sent = _start(client, "T_drunk", "drv_drunk")
    assert sent.status_code == 200, sent.text
    assert sent.json()["alerts"] == 0  # stored by the monitor moments later (below)
    alert = db.scalars(select(TripAlert)).one()
    assert (alert.trip_id, alert.kind, alert.severity) == ("T_drunk", "ineligible_driver", "high")
    assert alert.evidence["blockers"] == ["worker.suspended"] and alert.evidence["driver_id"] == "drv_drunk"
    case = db.scalars(select(Incident)).one()
    assert (case.trip_id, case.driver_id, case.source, case.status) == ("T_drunk", "drv_drunk", "alert", "open")
    webhook = db.scalars(select(OutboxMessage).where(OutboxMessage.channel == "webhook")).one()
    assert webhook.content["payload"]["kind"] == "ineligible_driver"  # type: ignore[index]
    assert any(a.get("kind") == "ineligible_driver" for a in gated.state.live_monitor.feed.snapshot()["alerts"])
    # sent again: the start is not a start, nothing more is raised
    assert _start(client, "T_drunk", "drv_drunk").json()["alerts"] == 0
    assert len(db.scalars(select(TripAlert)).all()) == 1 and len(db.scalars(select(Incident)).all()) == 1


def test_an_eligible_driver_in_a_working_vehicle_raises_nothing(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, gated: FastAPI, act_as, session_factory: sessionmaker[Session]) -> None:
    cleared_worker(session_factory, "drv_ok", role="driver")
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert _start(client, "T_ok", "drv_ok").json()["alerts"] == 0
    assert _start(client, "T_anon", None, None).json()["alerts"] == 0  # a trip naming no one: nothing to ask
    assert db.scalars(select(TripAlert)).all() == [] and db.scalars(select(Incident)).all() == []


def test_an_unscreened_driver_or_a_silent_vehicle_is_refused(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, gated: FastAPI, act_as, session_factory: sessionmaker[Session]) -> None:
    cleared_worker(session_factory, "drv_ok", role="driver")
    cleared_worker(session_factory, "cou_x", role="courier")
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    _start(client, "T_new", "drv_never")
    _start(client, "T_silent", "drv_ok", "veh_silent")
    _start(client, "T_courier", "cou_x")
    _start(client, "T_unknown_car", "drv_ok", "veh_nowhere")
    found = {a.trip_id: a.evidence["blockers"] for a in db.scalars(select(TripAlert))}
    assert found == {"T_new": ["screening.none"], "T_silent": ["device.offline"], "T_courier": ["screening.role"],
                     "T_unknown_car": ["vehicle.unknown"]}
    assert {i.trip_id for i in db.scalars(select(Incident))} == set(found)


def test_off_when_the_operator_does_not_screen_here(client: TestClient, db: Session, app: FastAPI, act_as) -> None:  # type: ignore[no-untyped-def]
    app.state.settings = app.state.settings.model_copy(update={"trip_start_gate": False})
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert _start(client, "T_off", "drv_never", None).json()["alerts"] == 0
