"""Screening through the API: a notice to consent to, applicants by scenario, the agency's round."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR, picture_b64
from tests.conftest import sign_agreement
from tests.screening.test_identity import with_check
from tests.web.conftest import browser, no_script_errors  # noqa: F401 (the browser tests' fixtures)
from tripguard.core.clock import utcnow
from tripguard.notify.models import OutboxMessage
from tripguard.privacy import service as privacy
from tripguard.screening import agency
from tripguard.screening.providers import sign
from tripguard.screening.service import rules_from as screening_rules
from tripguard.security import service as security
from tripguard.security.permissions import Permission, Role
from tripguard.security.principal import Principal
from tripguard.telematics.models import Device, Vehicle

CALLBACK_SECRET = "agency-callback-secret-0123456789"
# What a screening notice declares, and what an applicant consents to one by one (a face with a selfie).
SENSITIVE = ["user.criminal_history", "user.financial.credit", "user.biometric.face"]
SELFIE = picture_b64(1)  # the reference photo of the applicant
OTHER_FACE = picture_b64(2)  # a different person entirely
NOT_A_PICTURE = base64.b64encode(b"\x89PNG reference photo of the applicant").decode()  # looks like one, is not


def id_number(scenario: str, born: str = "19900101") -> str:
    """A valid test ID number whose sequence digits choose the simulated agency's scenario."""
    return with_check(f"440306{born}{scenario}")


@pytest.fixture
def screening_app(app: FastAPI, db: Session) -> FastAPI:
    privacy.publish_notice(db, actor=TEST_ACTOR, version="scr-1", purposes=["screening"],
                           categories=["user.name", "user.government_id", *SENSITIVE],
                           retention_zh="在职期间及离职后三年", retention_en="while working and 3 years after",
                           text_zh="背景审查告知", text_en="screening notice")
    db.commit()
    app.state.settings = app.state.settings.model_copy(update={
        "webhook_url": "http://127.0.0.1:9/hooks", "screening_callback_secret": SecretStr(CALLBACK_SECRET)})
    return app


def apply(client: TestClient, act_as, worker_id: str, scenario: str = "001", role: str = "driver",  # type: ignore[no-untyped-def]
          *, signed: bool = True, **extra: object):
    """The operator's backend posts an applicant; `signed`: the worker has also signed the confidentiality
    agreement in their app (what the dispatch gate asks besides screening)."""
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    body = {"role": role, "name": "李师傅", "id_number": id_number(scenario), "phone": "13800001111",
            "notice_version": "scr-1", "selfie": SELFIE} | extra
    body.setdefault("consents", SENSITIVE if body["selfie"] else SENSITIVE[:2])
    response = client.put(f"/api/v1/applicants/{worker_id}", json=body)
    if signed:
        worker = Principal.for_roles("subject", worker_id, frozenset({Role(role)}))
        sign_agreement(client.app.state.sessionmaker, worker)  # type: ignore[attr-defined]
    return response


GATE_VEHICLE = "veh_gate"  # a vehicle whose monitoring device works, for drivers asking the gate


@pytest.fixture
def gate(client: TestClient, db: Session, screening_app: FastAPI):  # type: ignore[no-untyped-def]
    """Ask the dispatch gate as the operator's dispatch does: with a real API key (it takes nothing else)."""
    _, secret = security.create_api_key(db, settings=screening_app.state.settings, actor=TEST_ACTOR, name="dispatch",
                                        scopes={Permission.ELIGIBILITY_READ})
    now = utcnow()
    db.add(Vehicle(id=GATE_VEHICLE, plate="粤B00001", colour="white", model="BYD Qin", created_at=now, updated_at=now))
    db.add(Device(id="dev_gate", vehicle_id=GATE_VEHICLE, installed_at=now, last_heartbeat_at=now + timedelta(hours=1),
                  camera_ok=True, storage_ok=True))
    db.commit()

    def ask(worker_id: str, vehicle_id: str | None = GATE_VEHICLE) -> dict[str, object]:
        response = client.get(f"/api/v1/workers/{worker_id}/eligibility",
                              params={"vehicle_id": vehicle_id} if vehicle_id else None,
                              headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    return ask


def blockers(answer: dict[str, object]) -> list[str]:
    return [b["code"] for b in answer["blockers"]]  # type: ignore[attr-defined, index]


def run_agency(app: FastAPI, session_factory: sessionmaker[Session]) -> agency.DispatchResult:
    settings = app.state.settings
    return agency.dispatch_reports(session_factory, vault=app.state.vault, agency=app.state.screening_agency,
                                   rules=screening_rules(settings), max_attempts=settings.screening_max_attempts)


def callback(client: TestClient, event: dict[str, object], *, secret: str = CALLBACK_SECRET,
             at: int | None = None):  # type: ignore[no-untyped-def]
    raw = json.dumps(event).encode()
    header = sign(secret.encode(), raw, at if at is not None else int(time.time()))
    return client.post("/api/v1/screening/callbacks", content=raw,
                       headers={"X-Screening-Signature": header, "Content-Type": "application/json"})


def webhooks(db: Session, worker_id: str) -> list[str]:
    db.expire_all()
    messages = db.scalars(select(OutboxMessage).where(OutboxMessage.channel == "webhook")
                          .order_by(OutboxMessage.created_at)).all()
    return [m.template for m in messages if (m.content or {}).get("payload", {}).get("worker_id") == worker_id]


def sms_templates(db: Session, worker_id: str) -> list[str]:
    db.expire_all()
    return [m.template for m in db.scalars(select(OutboxMessage).where(OutboxMessage.subject_id == worker_id,
                                                                       OutboxMessage.channel == "sms")
                                           .order_by(OutboxMessage.created_at))]


def deliver_messages(app: FastAPI, session_factory: sessionmaker[Session], *, failing: bool = False) -> None:
    """The outbox sends what is due (SMS and webhooks, recorded); `failing`: every SMS fails for good."""
    from tripguard.notify.channels import PermanentError, RecordingChannel, Rendered
    from tripguard.notify.service import Notifier, dispatch_backlog

    class Refused(RecordingChannel):
        def send(self, message: Rendered) -> None:
            raise PermanentError("the number does not exist")

    sms = Refused(name="sms") if failing else RecordingChannel(name="sms")
    dispatch_backlog(session_factory, vault=app.state.vault,
                     notifier=Notifier(channels={"sms": sms, "webhook": RecordingChannel(name="webhook")}))
