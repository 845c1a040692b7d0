"""An applicant's whole life through the API, with the webhooks the operator's backend receives:
apply → checks → consider → pre-adverse → dispute → decision → active → new record → suspended."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import subject_token
from tests.screening.conftest import apply, callback, id_number, run_agency, sms_templates, webhooks
from tripguard.audit.models import AuditEntry
from tripguard.screening.models import Applicant, Check, DisputeDocument
from tripguard.security.permissions import Role


def test_the_whole_life_of_an_applicant(client: TestClient, screening_app: FastAPI, db: Session,
                                        session_factory: sessionmaker[Session], act_as, gate) -> None:  # type: ignore[no-untyped-def]
    applied = apply(client, act_as, "drv_life", "006")  # the agency finds a record the policy does not name
    assert applied.status_code == 201, applied.text
    assert applied.json()["status"] == "screening"
    assert apply(client, act_as, "drv_life", "006").status_code == 200  # the same PUT again: unchanged
    answer = gate("drv_life")
    assert answer == {"worker_id": "drv_life", "eligible": False,
                    "blockers": [{"code": "screening.pending", "since": answer["blockers"][0]["since"], "ref": None}]}

    assert run_agency(screening_app, session_factory).sent == 1
    detail = client.get("/api/v1/applicants/drv_life").json()
    assert detail["status"] == "review" and detail["outcome"] == "consider"
    assert {c["kind"]: c["result"] for c in detail["checks"]}["criminal_record"] == "consider"
    assert "facts" not in str(detail)
    stored = db.scalars(select(Check).where(Check.applicant_id == "drv_life", Check.kind == "criminal_record")).one()
    assert stored.facts is not None and b"fraud" not in stored.facts  # sealed under the applicant's key

    officer = act_as(Role.SCREENING_OFFICER, id="stf_OFFICER")
    assert [a["id"] for a in client.get("/api/v1/screening/queue").json()] == ["drv_life"]
    assert client.post("/api/v1/applicants/drv_life/take").json()["status"] == "review"
    assert client.post("/api/v1/applicants/drv_life/decision", json={"action": "reject"}).status_code == 409
    noticed = client.post("/api/v1/applicants/drv_life/decision",
                          json={"action": "pre_adverse", "note": "诈骗记录，需申请人说明"})
    assert noticed.status_code == 200 and noticed.json()["status"] == "pre_adverse"
    assert noticed.json()["dispute_due_at"] is not None
    # the window is open: no final decision yet
    assert client.post("/api/v1/applicants/drv_life/decision", json={"action": "reject"}).status_code == 409

    act_as(Role.DRIVER, kind="subject", id="drv_life")
    mine = client.get("/api/v1/me/screening").json()
    assert mine["status"] == "pre_adverse" and mine["reasons"] == ["record.other"]
    paper = base64.b64encode(b"%PDF-1.4 court record: case dismissed").decode()
    disputed = client.post("/api/v1/me/screening/disputes", headers={"Idempotency-Key": "d-1"},
                           json={"text": "该案已撤销，附法院文书", "documents": [{"content_type": "application/pdf",
                                                                        "data": paper}]})
    assert disputed.status_code == 201, disputed.text
    again = client.post("/api/v1/me/screening/disputes", headers={"Idempotency-Key": "d-1"},
                        json={"text": "该案已撤销，附法院文书"})
    assert again.status_code == 200 and again.json()["id"] == disputed.json()["id"]
    document = db.scalars(select(DisputeDocument)).one()
    assert document.content is not None and b"court record" not in document.content

    act_as(Role.SCREENING_OFFICER, id=officer.id)
    cleared = client.post("/api/v1/applicants/drv_life/decision", json={"action": "clear", "note": "文书属实"})
    assert cleared.json()["status"] == "active"
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert gate("drv_life")["eligible"] is True

    # The agency's continuous monitoring finds a disqualifying record: suspended at once.
    found = callback(client, {"id": "evt_77", "type": "record.found", "worker": "drv_life", "records": ["drug_use"]})
    assert found.json() == {"received": "taken"}
    answer = gate("drv_life")
    assert answer["eligible"] is False and [b["code"] for b in answer["blockers"]] == ["worker.suspended"]
    assert webhooks(db, "drv_life") == ["worker.review", "worker.pre_adverse", "worker.disputed", "worker.active",
                                        "worker.suspended"]
    assert sms_templates(db, "drv_life") == ["screening_pre_adverse", "screening_cleared", "screening_pre_adverse"]
    actions = [e.action for e in db.scalars(select(AuditEntry).where(AuditEntry.target_id == "drv_life"))]
    for step in ("screening.apply", "screening.review", "screening.take", "screening.decide.pre_adverse",
                 "screening.disputed", "screening.decide.clear", "screening.active", "screening.suspended"):
        assert step in actions


@pytest.mark.parametrize(("scenario", "role", "status", "reason"), [
    ("001", "driver", "active", None),
    ("001", "courier", "active", None),
    ("002", "driver", "pre_adverse", "record.drug_use"),  # Art. 14: a drug record disqualifies
    ("003", "driver", "pre_adverse", "points.full_in_recent_cycles"),
    ("004", "driver", "pre_adverse", "licence.too_recent"),
    ("004", "courier", "active", None),  # a courier needs no driving licence
    ("005", "driver", "active", None),  # low credit: no threshold in Art. 14 itself
    ("006", "driver", "review", "record.other"),
    ("007", "driver", "review", "identity.name_mismatch"),
    ("010", "driver", "review", "identity.liveness_failed"),  # the selfie sent with the application
])
def test_each_scenario_ends_where_the_policy_says(client: TestClient, screening_app: FastAPI, db: Session,
                                                  session_factory: sessionmaker[Session], act_as, gate,  # type: ignore[no-untyped-def]
                                                  scenario: str, role: str, status: str, reason: str | None) -> None:
    assert apply(client, act_as, "w1", scenario, role=role).status_code == 201
    run_agency(screening_app, session_factory)
    db.expire_all()
    applicant = db.get(Applicant, "w1")
    assert applicant is not None and applicant.status == status
    if reason:
        act_as(Role.DRIVER if role == "driver" else Role.COURIER, kind="subject", id="w1")
        if status == "pre_adverse":
            assert reason in client.get("/api/v1/me/screening").json()["reasons"]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert gate("w1")["eligible"] is (status == "active")


def test_a_city_s_conditions_apply_to_its_applicants(client: TestClient, screening_app: FastAPI, db: Session,
                                                     session_factory: sessionmaker[Session], act_as) -> None:  # type: ignore[no-untyped-def]
    assert apply(client, act_as, "sz1", "005", city="shenzhen").status_code == 201  # credit 480 < 550
    assert apply(client, act_as, "xx1", "001", city="Atlantis!").status_code == 422  # not a city's name
    run_agency(screening_app, session_factory)
    db.expire_all()
    applicant = db.get(Applicant, "sz1")
    assert applicant is not None and applicant.status == "review"
    assert applicant.policy_version == "art14-2016.1+shenzhen-2024.1"


def test_a_city_without_its_own_conditions_is_screened_under_article_14(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session],
        act_as) -> None:
    assert apply(client, act_as, "bj1", "001", city="beijing").status_code == 201
    assert apply(client, act_as, "bj2", "005", city="beijing").status_code == 201  # credit 480: no threshold here
    run_agency(screening_app, session_factory)
    db.expire_all()
    for worker_id in ("bj1", "bj2"):
        applicant = db.get(Applicant, worker_id)
        assert applicant is not None and applicant.status == "active" and applicant.policy_version == "art14-2016.1"


def test_an_operator_adds_a_citys_conditions_as_a_file_in_the_data_folder(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session], act_as,
        tmp_path: Path) -> None:
    screening_app.state.settings = screening_app.state.settings.model_copy(update={"screening_policy_dir": tmp_path})
    (tmp_path / "hangzhou.json").write_text(json.dumps({"version": "hz-2026.1", "roles": {
        "driver": {"credit_score_min": 600}}}), encoding="utf-8")
    assert apply(client, act_as, "hz1", "005", city="hangzhou").status_code == 201  # credit 480 < 600
    (tmp_path / "wuhan.json").write_text('{"version": "wh-1", "roles": {"driver": {"licence_years_min": 1}}}',
                                         encoding="utf-8")  # looser than Art. 14: refused
    refused = apply(client, act_as, "wh1", "001", city="wuhan")
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "city"
    assert "licence_years_min: below the national 3" in refused.json()["errors"][0]["message"]
    assert str(tmp_path) not in refused.text  # the file's place on the server is the operator's log's business
    assert db.get(Applicant, "wh1") is None
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    invited = client.post("/api/v1/invitations", json={"worker_id": "wh2", "role": "driver", "notice_version": "scr-1",
                                                       "city": "wuhan"})
    assert invited.status_code == 422 and invited.json()["errors"][0]["field"] == "city"
    run_agency(screening_app, session_factory)
    db.expire_all()
    applicant = db.get(Applicant, "hz1")
    assert applicant is not None and applicant.status == "review"
    assert applicant.policy_version == "art14-2016.1+hz-2026.1"


def test_an_overlay_broken_after_the_application_clears_nobody_without_a_person(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session], act_as,
        tmp_path: Path) -> None:
    screening_app.state.settings = screening_app.state.settings.model_copy(update={"screening_policy_dir": tmp_path})
    overlay = tmp_path / "hangzhou.json"
    overlay.write_text('{"version": "hz-1", "roles": {"driver": {"age_max": 60}}}', encoding="utf-8")
    assert apply(client, act_as, "hz2", "001", city="hangzhou").status_code == 201
    overlay.write_text('{"version": "hz-2", "roles": {"driver": {"age_max": "sixty"}}}', encoding="utf-8")
    run_agency(screening_app, session_factory)  # never a crash: Art. 14 alone, and a person decides
    db.expire_all()
    applicant = db.get(Applicant, "hz2")
    assert applicant is not None and applicant.status == "review" and applicant.outcome == "consider"
    assert applicant.policy_version == "art14-2016.1"


@pytest.mark.parametrize(("number", "problem"), [
    ("44030619900101001", "identity.format"),  # 17 digits
    ("44030619900101001Y", "identity.format"),
    (id_number("001")[:-1] + ("0" if id_number("001")[-1] != "0" else "1"), "identity.check_digit"),
    ("990306" + id_number("001")[6:], "identity.check_digit"),  # changes the check digit too
    ("440306" + "20991231" + "0011", "identity.check_digit"),
])
def test_an_id_number_that_cannot_be_real_is_refused_before_anything_is_stored(
        client: TestClient, screening_app: FastAPI, db: Session, act_as, number: str, problem: str) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    response = client.put("/api/v1/applicants/bad1", json={"role": "driver", "name": "张三", "id_number": number,
                                                           "notice_version": "scr-1"})
    assert response.status_code == 422
    assert problem in response.text
    assert db.get(Applicant, "bad1") is None


def test_region_and_birth_date_are_read(client: TestClient, screening_app: FastAPI, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    from tests.screening.test_identity import with_check

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for number, problem in ((with_check("99030619900101001"), "identity.region"),
                            (with_check("44030619900231001"), "identity.birth_date"),
                            (with_check("44030621000101001"), "identity.birth_date")):
        response = client.put("/api/v1/applicants/bad2", json={"role": "driver", "name": "张三", "id_number": number,
                                                               "notice_version": "scr-1"})
        assert response.status_code == 422 and problem in response.text, (number, response.text)


def test_who_may_do_what(client: TestClient, screening_app: FastAPI, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    assert apply(client, act_as, "drv_p", "001").status_code == 201
    act_as(Role.SAFETY_AGENT)
    assert client.get("/api/v1/screening/queue").status_code == 403
    assert client.get("/api/v1/workers/drv_p/eligibility").status_code == 401  # the gate takes API keys only
    act_as(Role.PASSENGER, kind="subject", id="drv_p")  # a passenger token with the driver's id
    assert client.get("/api/v1/me/screening").status_code == 403
    act_as(Role.COURIER, kind="subject", id="drv_p")  # the wrong role for this applicant
    assert client.get("/api/v1/me/screening").status_code == 403
    act_as(Role.DRIVER, kind="subject", id="drv_p")
    assert client.post("/api/v1/me/screening/disputes", json={"text": "x"}).status_code == 409  # no notice
    client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    token = subject_token("drv_p", "driver")
    assert client.get("/api/v1/me/screening", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_the_gate_takes_the_operators_api_key_and_nothing_else(client: TestClient, screening_app: FastAPI,
                                                                db: Session, gate) -> None:  # type: ignore[no-untyped-def]
    from tests.builders import TEST_ACTOR
    from tripguard.security import service as security
    from tripguard.security.permissions import Permission

    assert gate("nobody") == {"worker_id": "nobody", "eligible": False,
                              "blockers": [{"code": "screening.none", "since": None, "ref": None}]}
    _, ingest_only = security.create_api_key(db, settings=screening_app.state.settings, actor=TEST_ACTOR, name="ingest",
                                             scopes={Permission.TELEMATICS_INGEST})
    revoked_key, revoked = security.create_api_key(db, settings=screening_app.state.settings, actor=TEST_ACTOR,
                                                   name="old", scopes={Permission.ELIGIBILITY_READ})
    security.revoke_api_key(db, actor=TEST_ACTOR, key_id=revoked_key.id)
    db.commit()
    url = "/api/v1/workers/nobody/eligibility"
    assert client.get(url, headers={"Authorization": f"Bearer {ingest_only}"}).status_code == 403
    assert client.get(url, headers={"Authorization": f"Bearer {revoked}"}).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {revoked}x"}).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer tg_\udcff"[:6]}).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {subject_token('drv_p', 'driver')}"}).status_code == 401
    assert client.get(url).status_code == 401
