"""Consent to screening binds (PIPL Art. 29-30): only under a notice that declares the screening purpose
and the sensitive data it processes, with a separate consent to each kind, recorded one by one."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tests.screening.conftest import SENSITIVE, apply
from tripguard.audit.models import AuditEntry
from tripguard.privacy import service as privacy
from tripguard.screening.models import Applicant, Consent
from tripguard.security.permissions import Role


def _notice(db: Session, version: str, purposes: list[str], categories: list[str]) -> None:
    privacy.publish_notice(db, actor=TEST_ACTOR, version=version, purposes=purposes, categories=categories,
                           retention_zh="三年", retention_en="3 years", text_zh="告知", text_en="notice")
    db.commit()


def _problems(response) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return [(e["field"], e["message"]) for e in response.json()["errors"]]


def test_a_notice_that_never_mentions_the_screening_or_its_sensitive_data_binds_nothing(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, act_as) -> None:
    _notice(db, "ord-1", ["delivery"], ["user.name", "user.contact.phone_number"])  # a delivery notice
    _notice(db, "scr-bare", ["screening"], ["user.name", "user.government_id"])  # no record, credit or face
    assert ("notice_version", "the notice does not declare the screening purpose") in _problems(
        apply(client, act_as, "drv_c1", notice_version="ord-1", signed=False))
    missing = "the notice does not declare user.biometric.face, user.criminal_history, user.financial.credit"
    assert ("notice_version", missing) in _problems(
        apply(client, act_as, "drv_c2", notice_version="scr-bare", signed=False))
    assert db.scalars(select(Applicant)).first() is None and db.scalars(select(Consent)).first() is None
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    invited = client.post("/api/v1/invitations", json={"worker_id": "cou_c", "role": "courier",
                                                       "notice_version": "scr-bare"})
    assert _problems(invited)[0][0] == "notice_version"


def test_each_sensitive_kind_needs_its_own_consent(client: TestClient, screening_app: FastAPI, db: Session,  # type: ignore[no-untyped-def]
                                                    act_as) -> None:
    assert _problems(apply(client, act_as, "drv_c3", consents=[], signed=False)) == [
        ("consents", f"no separate consent to {kind}") for kind in sorted(SENSITIVE)]
    # a selfie is a face: it needs the consent to it too
    assert _problems(apply(client, act_as, "drv_c4", consents=SENSITIVE[:2], signed=False)) == [
        ("consents", "no separate consent to user.biometric.face")]
    # nobody consents to what the notice did not tell them, nor to data that is not sensitive
    _notice(db, "scr-2", ["screening"], ["user.criminal_history", "user.financial.credit"])
    assert ("consents", "user.biometric.face is not in the notice") in _problems(
        apply(client, act_as, "drv_c5", notice_version="scr-2", selfie=None, consents=SENSITIVE, signed=False))
    assert ("consents", "user.name is not sensitive data needing consent") in _problems(
        apply(client, act_as, "drv_c6", consents=[*SENSITIVE, "user.name"], signed=False))
    assert db.scalars(select(Applicant)).first() is None


def test_the_consents_are_recorded_one_by_one_with_the_notice(client: TestClient, screening_app: FastAPI,  # type: ignore[no-untyped-def]
                                                              db: Session, act_as) -> None:
    assert apply(client, act_as, "drv_c7", signed=False).status_code == 201
    assert apply(client, act_as, "cou_c8", role="courier", selfie=None, signed=False).status_code == 201
    rows = db.scalars(select(Consent).where(Consent.applicant_id == "drv_c7").order_by(Consent.category)).all()
    assert [(r.category, r.notice_version, r.given_by) for r in rows] == [
        (kind, "scr-1", "api_key:key_TEST") for kind in sorted(SENSITIVE)]
    assert client.get("/api/v1/applicants/cou_c8").json()["consents"] == sorted(SENSITIVE[:2])
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "screening.apply",
                                                AuditEntry.target_id == "drv_c7")).one()
    assert "user.biometric.face" in entry.details
