"""Workers once screened: the shift-start face match, notices whose window passed, yearly re-screening,
and a callback delivered twice at the same moment (PostgreSQL: two requests racing)."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR, picture, picture_b64
from tests.conftest import fresh_database, make_settings
from tests.screening.conftest import (
    CALLBACK_SECRET,
    NOT_A_PICTURE,
    OTHER_FACE,
    SELFIE,
    SENSITIVE,
    apply,
    deliver_messages,
    id_number,
    run_agency,
    sms_templates,
    webhooks,
)
from tests.web.conftest import serve_in_thread
from tripguard.app import create_app
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.privacy import service as privacy
from tripguard.safety.models import Incident
from tripguard.screening import adjudication, agency, service, workers
from tripguard.screening.models import AgencyEvent, Applicant, IdentityCheck, Report
from tripguard.screening.providers import sign
from tripguard.screening.service import Rules
from tripguard.security import service as security
from tripguard.security.permissions import Permission, Role


def _active(client: TestClient, app: FastAPI, factory: sessionmaker[Session], act_as, worker_id: str) -> None:  # type: ignore[no-untyped-def]
    assert apply(client, act_as, worker_id, "001").status_code == 201
    run_agency(app, factory)


def test_a_stranger_at_shift_start_blocks_dispatch_and_opens_a_case(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session],
        act_as, gate) -> None:
    _active(client, screening_app, session_factory, act_as, "drv_f")
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    same = client.post("/api/v1/workers/drv_f/identity-checks", json={"selfie": SELFIE})
    assert same.status_code == 201 and same.json()["matched"] is True
    stranger = client.post("/api/v1/workers/drv_f/identity-checks", json={"selfie": OTHER_FACE},
                           headers={"Idempotency-Key": "shift-2"})
    assert stranger.status_code == 201 and stranger.json()["matched"] is False
    retry = client.post("/api/v1/workers/drv_f/identity-checks", json={"selfie": OTHER_FACE},
                        headers={"Idempotency-Key": "shift-2"})
    assert retry.json()["id"] == stranger.json()["id"]  # one case, however often the app retries
    incident = db.get(Incident, stranger.json()["incident_id"])
    assert incident is not None and incident.source == "identity" and incident.driver_id == "drv_f"
    answer = gate("drv_f")
    assert [b["code"] for b in answer["blockers"]] == ["identity.mismatch"]
    assert "worker.identity_mismatch" in webhooks(db, "drv_f")
    act_as(Role.SAFETY_AGENT)
    case_page = client.get(f"/console/incidents/{incident.id}", headers={"accept-language": "zh-CN"})
    assert case_page.status_code == 200 and "身份核验不符" in case_page.text and "人脸核验不一致" in case_page.text
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert db.scalars(select(IdentityCheck)).first() is not None
    assert b"PNG" not in b"".join(str(c.score).encode() for c in db.scalars(select(IdentityCheck)))
    # the real driver tries again: the block lifts, the case stays for the safety centre
    assert client.post("/api/v1/workers/drv_f/identity-checks", json={"selfie": SELFIE}).json()["matched"] is True
    assert gate("drv_f")["eligible"] is True
    assert db.scalars(select(Incident).where(Incident.source == "identity")).one().status == "open"
    # bad pictures are clear errors
    assert client.post("/api/v1/workers/drv_f/identity-checks", json={"selfie": "%%%"}).status_code == 422
    assert client.post("/api/v1/workers/nobody/identity-checks", json={"selfie": SELFIE}).status_code == 404


def test_no_reference_photo_means_no_match_is_possible(
        client: TestClient, screening_app: FastAPI, session_factory: sessionmaker[Session], act_as) -> None:  # type: ignore[no-untyped-def]
    assert apply(client, act_as, "drv_n", "001", selfie=None).status_code == 201
    run_agency(screening_app, session_factory)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert client.post("/api/v1/workers/drv_n/identity-checks", json={"selfie": SELFIE}).status_code == 409


def test_a_notice_whose_window_passed_becomes_final(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session],
        act_as) -> None:
    assert apply(client, act_as, "drv_w", "002").status_code == 201  # a drug record: pre-adverse at once
    run_agency(screening_app, session_factory)
    deliver_messages(screening_app, session_factory)  # the notice reached them
    rules = Rules(webhook_url="http://127.0.0.1:9/hooks")
    assert adjudication.expire_notices(session_factory, vault=screening_app.state.vault,
                                       rules=rules) == 0  # window open
    later = utcnow() + timedelta(days=7, minutes=1)
    assert adjudication.expire_notices(session_factory, vault=screening_app.state.vault, rules=rules, now=later) == 1
    db.expire_all()
    assert db.get(Applicant, "drv_w").status == "rejected"  # type: ignore[union-attr]
    assert webhooks(db, "drv_w") == ["worker.pre_adverse", "worker.rejected"]
    assert sms_templates(db, "drv_w") == ["screening_pre_adverse", "screening_final"]
    assert db.scalars(select(Report).where(Report.kind == "unenroll")).one().status == "queued"
    # a dispute after the window is refused
    db.execute(update(Applicant).values(status="pre_adverse", dispute_due_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    act_as(Role.DRIVER, kind="subject", id="drv_w")
    assert client.post("/api/v1/me/screening/disputes", json={"text": "晚了"}).status_code == 409
    # and the officer may now decide without one
    act_as(Role.SCREENING_OFFICER, id="stf_O")
    assert client.post("/api/v1/applicants/drv_w/decision", json={"action": "reject"}).status_code == 200


def test_yearly_rescreening_keeps_a_clear_worker_active_and_suspends_on_a_new_finding(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session],
        act_as, gate) -> None:
    _active(client, screening_app, session_factory, act_as, "drv_y")
    assert workers.schedule_rescreens(session_factory, agency="simulated") == 0  # not due for a year
    db.execute(update(Applicant).values(rescreen_due_at=utcnow() - timedelta(days=31)))
    db.commit()
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    answer = gate("drv_y")
    assert [b["code"] for b in answer["blockers"]] == ["screening.expired"]  # overdue past the grace
    assert workers.schedule_rescreens(session_factory, agency="simulated") == 1
    assert workers.schedule_rescreens(session_factory, agency="simulated") == 0  # one under way is enough
    assert run_agency(screening_app, session_factory).sent == 1
    db.expire_all()
    applicant = db.get(Applicant, "drv_y")
    assert applicant is not None and applicant.status == "active"
    assert applicant.rescreen_due_at is not None and applicant.rescreen_due_at > utcnow() + timedelta(days=360)
    assert gate("drv_y")["eligible"] is True


def ready_to_drive(session: Session, worker_id: str) -> None:
    """Everything but screening a driver needs: the agreement signed, a required course passed (and one
    that runs out, passed), a vehicle whose device is heard."""
    from tests.workforce.conftest import course
    from tripguard.security.permissions import Role
    from tripguard.security.principal import Principal
    from tripguard.telematics.models import Device, Vehicle
    from tripguard.workforce import agreements, training

    driver = Principal.for_roles("subject", worker_id, frozenset({Role.DRIVER}))
    agreements.sign(session, principal=driver, sha256=agreements.in_force_for(session, principal=driver)[0].sha256,
                    ip=None, user_agent=None)
    for course_id, months in (("basics", None), ("refresher", 12)):
        content = course(refresher_months=months)
        content["modules"] = [dict(m) for m in content["modules"]]
        training.put_course(session, actor=TEST_ACTOR, course_id=course_id, content=content)
        session.flush()
        training.submit(session, actor=TEST_ACTOR, worker_id=worker_id, role="driver", course_id=course_id,
                        answers=[1, 0], idempotency_key=None)
    now = utcnow()
    session.add(Vehicle(id="veh_d", plate="粤B1", colour="white", model="Qin", created_at=now, updated_at=now))
    session.add(Device(id="dev_d", vehicle_id="veh_d", installed_at=now, last_heartbeat_at=now + timedelta(hours=1),
                       camera_ok=True, storage_ok=True))


def test_the_same_callback_ten_times_at_once_is_taken_once(tmp_path: Path) -> None:
    """Real requests on real connections (PostgreSQL in its pass): one is taken, the others are told it
    is a duplicate or to retry (409/503), never a 500; one event and one pushed record are stored."""
    url = fresh_database("tg_scr_race", tmp_path)
    settings = make_settings(url, tmp_path / "keys", screening_callback_secret=CALLBACK_SECRET)
    site = create_app(settings)
    factory = site.state.sessionmaker
    with unit_of_work(factory) as session:
        privacy.publish_notice(session, actor=TEST_ACTOR, version="scr-1", purposes=["screening"],
                               categories=["user.name", *SENSITIVE], retention_zh="三年", retention_en="3 years",
                               text_zh="告知", text_en="notice")
        service.apply(session, vault=site.state.vault, actor=TEST_ACTOR, applicant_id="drv_d",
                      application=service.Application(role="driver", name="李", id_number=id_number("001"),
                                                      notice_version="scr-1", consents=tuple(SENSITIVE[:2])),
                      agency="simulated")
        _, api_key = security.create_api_key(session, settings=settings, actor=TEST_ACTOR, name="dispatch",
                                             scopes={Permission.ELIGIBILITY_READ})
        ready_to_drive(session, "drv_d")  # every other blocker's query runs through the real reader too
    agency.dispatch_reports(factory, vault=site.state.vault, agency=site.state.screening_agency,
                            rules=Rules(webhook_url=None))
    raw = json.dumps({"id": "dup-1", "type": "record.found", "worker": "drv_d", "records": ["fraud"]}).encode()
    answers: list[tuple[int, str]] = []
    with serve_in_thread(site) as base:
        barrier = threading.Barrier(10)

        def deliver() -> None:
            barrier.wait()
            header = sign(CALLBACK_SECRET.encode(), raw, int(time.time()))
            response = httpx.post(f"{base}/api/v1/screening/callbacks", content=raw, timeout=30,
                                  headers={"x-screening-signature": header, "content-type": "application/json"})
            answers.append((response.status_code, response.text))

        threads = [threading.Thread(target=deliver) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        def ask() -> dict[str, object]:  # through the real fast reader (SQLite file, or psycopg's async pool)
            response = httpx.get(f"{base}/api/v1/workers/drv_d/eligibility?vehicle_id=veh_d", timeout=10,
                                 headers={"authorization": f"Bearer {api_key}"})
            assert response.status_code == 200, response.text
            return response.json()  # type: ignore[no-any-return]

        # The reader's first use, ten at once (PostgreSQL: they all wait for its one pool to open).
        first_answers: list[dict[str, object]] = []
        askers = [threading.Thread(target=lambda: first_answers.append(ask())) for _ in range(10)]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join()
        assert [a["eligible"] for a in first_answers] == [True] * 10  # fraud alone: flagged, still active
        worse = json.dumps({"id": "dup-2", "type": "record.found", "worker": "drv_d",
                            "records": ["drug_use"]}).encode()
        assert httpx.post(f"{base}/api/v1/screening/callbacks", content=worse, timeout=30, headers={
            "x-screening-signature": sign(CALLBACK_SECRET.encode(), worse, int(time.time()))}).status_code == 200
        assert ask()["blockers"] == [{"code": "worker.suspended", "since": ask()["blockers"][0]["since"],  # type: ignore[index]
                                      "ref": None}]
    codes = [code for code, _ in answers]
    assert set(codes) <= {200, 409, 503}, answers
    assert sum('"taken"' in text for _, text in answers) == 1
    with unit_of_work(factory) as session:
        assert len(session.scalars(select(AgencyEvent)).all()) == 2  # dup-1 once, and dup-2
        assert len(session.scalars(select(Report).where(Report.kind == "monitor")).all()) == 2
    site.state.engine.dispose()


def test_a_selfie_that_is_not_a_picture_opens_no_case_and_is_not_kept(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session],
        act_as) -> None:
    refused = apply(client, act_as, "drv_p", "001", selfie=NOT_A_PICTURE)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "selfie"
    assert db.get(Applicant, "drv_p") is None  # nothing stored
    _active(client, screening_app, session_factory, act_as, "drv_q")
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for not_a_picture in (NOT_A_PICTURE, base64.b64encode(b"GIF89a" + b"\x00" * 40).decode(),
                          picture_b64(9, size=(3000, 3)),
                          base64.b64encode(picture(9, size=(256, 256), kind="JPEG")[:300]).decode()):
        answer = client.post("/api/v1/workers/drv_q/identity-checks", json={"selfie": not_a_picture})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "selfie"
    db.expire_all()
    assert db.scalars(select(IdentityCheck)).first() is None
    assert db.scalars(select(Incident).where(Incident.source == "identity")).first() is None
    assert db.get(Applicant, "drv_q").identity_blocked_at is None  # type: ignore[union-attr]
