"""Through the API: a new courier cannot be dispatched until screened, trained and signed, and each step
lifts its own blocker; a driver also needs a vehicle whose monitoring device works; a suspension closes
the gate at once and its end reopens it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.screening.conftest import apply, blockers, run_agency
from tests.workforce.conftest import as_worker, put_course
from tripguard.security.permissions import Role
from tripguard.workforce.models import Attempt


def test_a_new_courier_is_dispatched_only_once_screened_trained_and_signed(
        client: TestClient, screening_app: FastAPI, session_factory: sessionmaker[Session], act_as, gate) -> None:  # type: ignore[no-untyped-def]
    put_course(client, act_as)
    put_course(client, act_as, "drivers-only", audience="driver")  # not for couriers
    put_course(client, act_as, "optional-extra", required=False)
    assert apply(client, act_as, "cou_new", "001", role="courier", signed=False).status_code == 201
    assert blockers(gate("cou_new")) == ["screening.pending", "training.missing", "agreement.unsigned"]
    assert gate("cou_new")["blockers"][1]["ref"] == "privacy-basics"

    run_agency(screening_app, session_factory)  # the agency finds nothing: screening clears
    assert blockers(gate("cou_new")) == ["training.missing", "agreement.unsigned"]

    as_worker(act_as, "cou_new")
    agreement = client.get("/api/v1/me/agreement", headers={"Accept-Language": "zh-CN"}).json()
    assert agreement["signed_at"] is None and "保密" in agreement["title"]
    stale = client.post("/api/v1/me/agreement/signature", json={"sha256": "0" * 64})
    assert stale.status_code == 409  # a text other than the one in force
    signed = client.post("/api/v1/me/agreement/signature", json={"sha256": agreement["sha256"]})
    assert signed.status_code == 201, signed.text
    assert blockers(gate("cou_new")) == ["training.missing"]

    plan = client.get("/api/v1/me/training").json()
    assert [(p["course_id"], p["reason"]) for p in plan] == [("privacy-basics", "onboarding"),
                                                             ("optional-extra", "optional")]
    content = client.get("/api/v1/me/training/privacy-basics", headers={"Accept-Language": "en"}).json()
    assert content["quiz"][0] == {"text": "May you keep the phone after delivery?", "options": ["Yes", "No"]}
    assert "answer" not in str(content)
    assert client.get("/api/v1/me/training/drivers-only").status_code == 404
    failed = client.post("/api/v1/me/training/privacy-basics/attempts", json={"answers": [0, 0]}).json()
    assert (failed["passed"], failed["score"], failed["certificate_no"]) == (False, 50, None)
    assert blockers(gate("cou_new")) == ["training.missing"]
    assert client.post("/api/v1/me/training/privacy-basics/attempts", json={"answers": [1]}).status_code == 422
    passed = client.post("/api/v1/me/training/privacy-basics/attempts", json={"answers": [1, 0]},
                         headers={"Idempotency-Key": "try-2"}).json()
    assert passed["passed"] is True and passed["certificate_no"]
    again = client.post("/api/v1/me/training/privacy-basics/attempts", json={"answers": [1, 0]},
                        headers={"Idempotency-Key": "try-2"}).json()
    assert again["id"] == passed["id"]
    assert gate("cou_new") == {"worker_id": "cou_new", "eligible": True, "blockers": []}

    # the pass runs out: a refresher is due, and blocks until passed again
    with session_factory() as session:
        session.execute(update(Attempt).where(Attempt.id == passed["id"])
                        .values(expires_at=datetime.now(UTC) - timedelta(days=1)))
        session.commit()
    assert blockers(gate("cou_new")) == ["training.refresher"]
    as_worker(act_as, "cou_new")
    assert client.get("/api/v1/me/training").json()[0]["reason"] == "refresher"

    # a new version of the agreement must be signed again
    act_as(Role.TRAINER)
    published = client.put("/api/v1/agreements/worker/2026-12", json={
        "title_zh": "骑手保密协议（2026年12月）", "title_en": "Couriers' confidentiality agreement (Dec 2026)",
        "body_zh": "新增：不得拍摄顾客门牌。", "body_en": "New: no photos of the customer's door number."})
    assert published.status_code == 201, published.text
    assert blockers(gate("cou_new")) == ["training.refresher", "agreement.unsigned"]


def test_a_driver_needs_a_vehicle_whose_monitoring_device_works(
        client: TestClient, screening_app: FastAPI, session_factory: sessionmaker[Session], act_as, gate) -> None:  # type: ignore[no-untyped-def]
    assert apply(client, act_as, "drv_car", "001").status_code == 201
    run_agency(screening_app, session_factory)
    assert blockers(gate("drv_car", vehicle_id=None)) == ["vehicle.unknown"]
    assert blockers(gate("drv_car", vehicle_id="veh_1")) == ["vehicle.unknown"]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert client.put("/api/v1/telematics/vehicles/veh_1", json={"plate": "粤B12345", "colour": "white",
                                                      "model": "BYD Qin"}).status_code in (200, 201)
    assert blockers(gate("drv_car", vehicle_id="veh_1")) == ["device.missing"]
    now = datetime.now(UTC)
    assert client.put("/api/v1/telematics/devices/dev_1", json={"vehicle_id": "veh_1",
                                                     "installed_at": now.isoformat()}).status_code in (200, 201)
    assert blockers(gate("drv_car", vehicle_id="veh_1")) == ["device.offline"]  # installed, never heard
    def beat(at: datetime, **extra: object) -> dict[str, object]:
        return {"type": "device_heartbeat", "device_id": "dev_1", "vehicle_id": "veh_1",
                "ts": at.isoformat().replace("+00:00", "Z"), "camera_ok": True, "storage_ok": True} | extra

    assert client.post("/api/v1/telematics/events", json=[beat(now)]).status_code in (200, 202)
    assert gate("drv_car", vehicle_id="veh_1")["eligible"] is True
    assert client.post("/api/v1/telematics/events",
                       json=[beat(now + timedelta(seconds=1), camera_ok=False)]).status_code in (200, 202)
    assert blockers(gate("drv_car", vehicle_id="veh_1")) == ["device.faulty"]
    assert gate("drv_car", vehicle_id="veh_1")["blockers"][0]["ref"] == "dev_1"
