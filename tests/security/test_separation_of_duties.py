"""Separation of duties: nobody decides about themselves. One test per kind of decision (a sanction and its
lifting, an appeal, a screening case, a data request or erasure): the staff member it is about is refused
with 403 `/problems/own-decision`, and a colleague holding the same role decides."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR, subject_token
from tests.screening.conftest import apply, run_agency, screening_app  # noqa: F401 (a fixture)
from tripguard.audit.actor import Actor
from tripguard.core.errors import OwnDecision
from tripguard.notify.channels import RecordingChannel
from tripguard.notify.service import Notifier, dispatch_due
from tripguard.privacy import requests
from tripguard.privacy import service as privacy
from tripguard.security.permissions import Decision, Role, decides_own
from tripguard.security.principal import refuse_own
from tripguard.workforce.models import Finding

OWN = "/problems/own-decision"


@pytest.mark.no_database
def test_the_rule() -> None:
    assert decides_own("staff", "stf_A", ["stf_A"])
    assert decides_own("staff", "stf_A", [None, "cus_1", "stf_A"])
    assert not decides_own("staff", "stf_A", ["stf_B", None])
    assert not decides_own("subject", "psg_1", ["psg_1"])  # a person's own request, carried out for them
    assert not decides_own("system", "tripguard", ["tripguard"])
    with pytest.raises(OwnDecision):
        refuse_own(Actor("staff", "stf_A"), Decision.APPEAL, "stf_A")
    refuse_own(Actor("staff", "stf_A"), Decision.APPEAL, "stf_B")


def _violation_against(client: TestClient, act_as, offender: str) -> str:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR, id="stf_SUPERVISOR")
    raised = client.post("/api/v1/violations", json={
        "offender_type": "staff", "offender_id": offender, "kind": "privacy", "summary": "查看了无关顾客的资料",
        "evidence": {"audit": ["1"]}})
    assert raised.status_code == 201, raised.text
    return str(raised.json()["id"])


def test_nobody_decides_or_lifts_a_sanction_on_themselves(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    violation = _violation_against(client, act_as, "stf_HR")
    act_as(Role.HR_OFFICER, id="stf_HR")
    own = client.post(f"/api/v1/violations/{violation}/sanctions", json={"kind": "warning"})
    assert own.status_code == 403 and own.json()["type"] == OWN, own.text
    act_as(Role.HR_OFFICER, id="stf_HR2")
    sanction = client.post(f"/api/v1/violations/{violation}/sanctions", json={"kind": "suspension", "days": 3})
    assert sanction.status_code == 201, sanction.text
    act_as(Role.HR_OFFICER, id="stf_HR")
    lifted = client.post(f"/api/v1/sanctions/{sanction.json()['id']}/lift")
    assert lifted.status_code == 403 and lifted.json()["type"] == OWN
    act_as(Role.HR_OFFICER, id="stf_HR2")
    assert client.post(f"/api/v1/sanctions/{sanction.json()['id']}/lift").json()["status"] == "lifted"


def test_nobody_decides_their_own_appeal(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    violation = _violation_against(client, act_as, "stf_HR")
    act_as(Role.HR_OFFICER, id="stf_HR2")
    sanction = client.post(f"/api/v1/violations/{violation}/sanctions", json={"kind": "fine", "amount_fen": 5000})
    sanction_id = sanction.json()["id"]
    act_as(Role.HR_OFFICER, id="stf_HR")
    appealed = client.post(f"/api/v1/me/sanctions/{sanction_id}/appeal", json={"text": "我是在处理工单"})
    assert appealed.json()["appeal_status"] == "pending"
    own = client.post(f"/api/v1/sanctions/{sanction_id}/appeal-decision", json={"outcome": "overturned"})
    assert own.status_code == 403 and own.json()["type"] == OWN
    act_as(Role.HR_OFFICER, id="stf_HR2")
    decided = client.post(f"/api/v1/sanctions/{sanction_id}/appeal-decision", json={"outcome": "upheld"})
    assert decided.json()["appeal_status"] == "upheld" and decided.json()["status"] == "active"


@pytest.mark.usefixtures("screening_app")
def test_nobody_handles_their_own_screening(client: TestClient, app: FastAPI, act_as,  # type: ignore[no-untyped-def]
                                            session_factory: sessionmaker[Session]) -> None:
    # A screening officer who also drives, under the same id, with a record the policy leaves to a person.
    assert apply(client, act_as, "stf_SCREENER", "006").status_code == 201
    run_agency(app, session_factory)
    act_as(Role.SCREENING_OFFICER, id="stf_SCREENER")
    for call in (lambda: client.post("/api/v1/applicants/stf_SCREENER/take"),
                 lambda: client.post("/api/v1/applicants/stf_SCREENER/decision", json={"action": "clear"})):
        refused = call()
        assert refused.status_code == 403 and refused.json()["type"] == OWN, refused.text
    act_as(Role.SCREENING_OFFICER, id="stf_OTHER")
    assert client.post("/api/v1/applicants/stf_SCREENER/take").status_code == 200
    cleared = client.post("/api/v1/applicants/stf_SCREENER/decision", json={"action": "clear"})
    assert cleared.status_code == 200 and cleared.json()["status"] == "active", cleared.text


def test_nobody_handles_their_own_data_request_or_erasure(client: TestClient, db: Session, app: FastAPI,  # type: ignore[no-untyped-def]
                                                          session_factory: sessionmaker[Session], act_as) -> None:
    privacy.publish_notice(db, actor=TEST_ACTOR, version="n1", purposes=["emergency"], categories=["user.name"],
                           retention_zh="两年", retention_en="two years", text_zh="说明", text_en="notice")
    for person in ("stf_DPO", "stf_DPO_B"):  # privacy officers who are also passengers, under the same ids
        privacy.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id=person, kind="passenger",
                               notice_version="n1", values={"name": "韩梅梅", "phone": "13800007777"})
    db.commit()
    mine = {"Authorization": f"Bearer {subject_token('stf_DPO')}"}
    filed = client.post("/api/v1/me/requests", json={"kind": "correction", "correction": {"name": "韩梅"}},
                        headers=mine | {"Idempotency-Key": "idem-0001"})
    assert filed.status_code == 202, filed.text
    filed = filed.json()
    sms = RecordingChannel(name="sms")
    dispatch_due(session_factory, vault=app.state.vault, notifier=Notifier(channels={"sms": sms}))
    code = re.search(r"\d{6}", sms.sent[-1].body).group()  # type: ignore[union-attr]
    assert client.post(f"/api/v1/me/requests/{filed['id']}/verify", json={"code": code},
                       headers=mine).json()["status"] == "verified"
    erasure = client.post("/api/v1/me/requests", json={"kind": "erasure"},
                          headers={"Authorization": f"Bearer {subject_token('stf_DPO_B')}",
                                   "Idempotency-Key": "idem-0002"})
    assert erasure.status_code == 202, erasure.text

    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    own = client.post(f"/api/v1/privacy/requests/{filed['id']}/decision", json={"apply": True, "note": "ok"})
    assert own.status_code == 403 and own.json()["type"] == OWN
    erased = client.post("/api/v1/subjects/stf_DPO/erase", json={"reason": "subject_request"})
    assert erased.status_code == 403 and erased.json()["type"] == OWN
    with pytest.raises(OwnDecision):  # confirming who asked, in person: carries the erasure out
        requests.verify_in_person(db, vault=app.state.vault, actor=Actor("staff", "stf_DPO_B"),
                                  request_id=erasure.json()["id"], how="ID card shown")
    db.rollback()

    act_as(Role.PRIVACY_OFFICER, id="stf_DPO_B")
    decided = client.post(f"/api/v1/privacy/requests/{filed['id']}/decision", json={"apply": True, "note": "ok"})
    assert decided.status_code == 200 and decided.json()["handled_by"] == "staff:stf_DPO_B"
    assert client.post("/api/v1/subjects/stf_DPO/erase", json={"reason": "subject_request"}).status_code == 200


def test_nobody_reviews_a_finding_about_their_own_reads(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """Found by the review of #27: an HR officer closed a finding about their own reads as "justified", so it
    never became a violation."""
    from tripguard.core.clock import utcnow

    now = utcnow()
    for finding_id, actor_id in (("fnd_own", "stf_HR"), ("fnd_other", "stf_OTHER")):
        db.add(Finding(id=finding_id, rule="many_people", record=None, actor_type="staff", actor_id=actor_id,
                       window_start=now, window_end=now, count=250, evidence=[], status="open", created_at=now))
    db.commit()
    act_as(Role.HR_OFFICER, id="stf_HR")
    own = client.post("/api/v1/supervision/findings/fnd_own/review", json={"outcome": "justified"})
    assert own.status_code == 403 and own.json()["type"] == "/problems/own-decision", own.text
    other = client.post("/api/v1/supervision/findings/fnd_other/review", json={"outcome": "justified"})
    assert other.status_code == 200, other.text
