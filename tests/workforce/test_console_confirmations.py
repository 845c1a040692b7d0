"""HR's sanctions and appeal decisions, and a new agreement version, ask first in the console: posted
without `confirm=yes` they do nothing and answer with the confirmation page; confirmed, they are done
and audited. Lifting a sanction does not ask."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR, staff
from tests.web.confirming import asks_first, confirmed
from tripguard.audit.models import AuditEntry
from tripguard.security.models import StaffAccount
from tripguard.security.permissions import Role
from tripguard.workforce import discipline
from tripguard.workforce.console import APPEAL_QUESTIONS, PUBLISH_AGREEMENT, SANCTION_QUESTIONS
from tripguard.workforce.models import Agreement, Sanction, Violation


def _violation(db: Session, app, offender_id: str) -> Violation:  # type: ignore[no-untyped-def]
    violation = discipline.raise_violation(db, vault=app.state.vault, actor=TEST_ACTOR, offender_type="staff",
                                           offender_id=offender_id, kind="privacy", summary="查看了无关顾客资料",
                                           evidence={"audit": ["1"]})
    db.commit()
    return violation


def _audited(db: Session, action: str, target: str) -> list[AuditEntry]:
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action, AuditEntry.target_id == target)))


@pytest.mark.parametrize(("kind", "extra"), [("suspension", {"days": "14"}), ("dismissal", {}),
                                             ("fine", {"amount_yuan": "200"}), ("warning", {})])
def test_a_sanction_asks_first_by_its_kind(client: TestClient, db: Session, app, act_as, kind: str,  # type: ignore[no-untyped-def]
                                           extra: dict[str, str]) -> None:
    person = staff(db, "curious.reader", Role.SUPPORT_AGENT)
    violation = _violation(db, app, person.id)
    act_as(Role.HR_OFFICER)
    page = client.get(f"/console/discipline/{violation.id}", headers={"accept-language": "en"}).text
    question = SANCTION_QUESTIONS[kind]
    assert f'<option value="{kind}" data-confirm="{question.question}"' in page  # the dialog asks by the kind
    url, form = f"/console/discipline/{violation.id}", {"action": "sanction", "kind": kind, **extra}
    asks_first(client, url, form, question=question.question, consequence=question.consequence)
    db.expire_all()
    assert db.scalars(select(Sanction)).all() == [] and _audited(db, "sanction.decide", violation.id) == []
    assert db.get(StaffAccount, person.id).disabled_at is None  # type: ignore[union-attr]
    assert confirmed(client, url, form).status_code == 303
    db.expire_all()
    sanction = db.scalars(select(Sanction)).one()
    assert (sanction.kind, sanction.status, sanction.offender_id) == (kind, "active", person.id)
    assert len(_audited(db, "sanction.decide", violation.id)) == 1
    if kind == "dismissal":  # dismissing a staff member disables their account, audited too
        assert db.get(StaffAccount, person.id).disabled_at is not None  # type: ignore[union-attr]
        assert len(_audited(db, "staff.disable", person.id)) == 1


@pytest.mark.parametrize("outcome", ["upheld", "overturned"])
def test_an_appeal_decision_asks_first_and_lifting_does_not(client: TestClient, db: Session, app, act_as,  # type: ignore[no-untyped-def]
                                                            outcome: str) -> None:
    person = staff(db, "appealing.one", Role.SUPPORT_AGENT)
    violation = _violation(db, app, person.id)
    act_as(Role.HR_OFFICER)
    url = f"/console/discipline/{violation.id}"
    assert confirmed(client, url, {"action": "sanction", "kind": "suspension"}).status_code == 303
    sanction = db.scalars(select(Sanction)).one()
    act_as(Role.SUPPORT_AGENT, id=person.id)
    assert client.post(f"/api/v1/me/sanctions/{sanction.id}/appeal", json={"text": "我在处理工单"}).status_code == 200
    act_as(Role.HR_OFFICER)
    question = APPEAL_QUESTIONS[outcome]
    page = client.get(url, headers={"accept-language": "en"}).text
    assert f'value="{outcome}" type="submit" class="danger" data-confirm="{question.question}"' in page
    form = {"action": outcome, "sanction_id": sanction.id}
    asks_first(client, url, form, question=question.question, consequence=question.consequence)
    db.expire_all()
    assert db.get(Sanction, sanction.id).appeal_status == "pending"  # type: ignore[union-attr]
    assert _audited(db, "sanction.appeal_decide", violation.id) == []
    assert confirmed(client, url, form).status_code == 303
    db.expire_all()
    decided = db.get(Sanction, sanction.id)
    assert decided is not None and decided.appeal_status == outcome
    assert decided.status == ("overturned" if outcome == "overturned" else "active")
    assert len(_audited(db, "sanction.appeal_decide", violation.id)) == 1
    if outcome == "upheld":  # lifting an upheld sanction early takes nothing from anyone: it does not ask
        lifted = client.post(url, data={"action": "lift", "sanction_id": sanction.id}, follow_redirects=False)
        assert lifted.status_code == 303
        db.expire_all()
        assert db.get(Sanction, sanction.id).status == "lifted"  # type: ignore[union-attr]


def test_publishing_an_agreement_version_asks_first(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.TRAINER)
    page = client.get("/console/training", headers={"accept-language": "en"}).text
    assert f'data-confirm="{PUBLISH_AGREEMENT.question}"' in page
    url = "/console/training/agreements"
    form = {"audience": "staff", "version": "2026-12", "title_zh": "员工保密承诺书（第二版）",
            "title_en": "Staff commitment, v2", "body_zh": "第二版：不得拍摄屏幕。",
            "body_en": "v2: no photos of screens."}
    asks_first(client, url, form, question=PUBLISH_AGREEMENT.question, consequence=PUBLISH_AGREEMENT.consequence)
    assert db.scalars(select(Agreement)).all() == [] and _audited(db, "agreement.publish", "staff/2026-12") == []
    assert confirmed(client, url, form).status_code == 303
    published = db.scalars(select(Agreement)).one()
    assert (published.audience, published.version, published.body_en) == ("staff", "2026-12", form["body_en"])
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "agreement.publish")) is not None
