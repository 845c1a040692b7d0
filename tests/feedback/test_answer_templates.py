"""The feedback desk's answer templates: supervisors write them in Chinese and English (checked by field,
the input kept, each change audited), retire them and offer them again; a support agent picks one on a
complaint's page to fill the answer, and the answer's audit entry names it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.safety.test_sos_api import on_a_trip
from tripguard.audit.models import AuditEntry
from tripguard.feedback.models import AnswerTemplate, Complaint
from tripguard.security.permissions import Role

PAGE = "/console/complaints/templates"
LATE = {"title_zh": "司机迟到致歉", "title_en": "Driver late: apology",
        "body_zh": "您好，很抱歉司机迟到给您带来不便，我们已提醒司机准时接驾。",
        "body_en": "Hello, we are sorry the driver was late; we have reminded them to be on time."}


def _templates(db: Session) -> list[AnswerTemplate]:
    db.expire_all()
    return list(db.scalars(select(AnswerTemplate)))


def _actions(db: Session, target: str) -> list[str]:
    return list(db.scalars(select(AuditEntry.action).where(AuditEntry.target_id == target).order_by(AuditEntry.id)))


def _write(client: TestClient, form: dict[str, str] = LATE) -> Any:
    return client.post(PAGE, data=form, headers={"accept-language": "en"}, follow_redirects=False)


def test_a_supervisor_writes_changes_and_retires_a_template(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR)
    page = client.get(PAGE, headers={"accept-language": "zh-CN"})
    assert page.status_code == 200 and "新建答复模板" in page.text and f'href="{PAGE}"' in page.text  # in the menu
    written = _write(client)
    assert written.status_code == 303
    [row] = _templates(db)
    assert (row.title_zh, row.body_en, row.retired_at) == (LATE["title_zh"], LATE["body_en"], None)
    assert written.headers["location"] == f"{PAGE}#t-{row.id}"
    assert _write(client).status_code == 303 and len(_templates(db)) == 1  # the same form again: no second one

    changed = client.post(f"{PAGE}/{row.id}", data={**LATE, "body_en": "Sorry for the wait; the driver was told."},
                          follow_redirects=False)
    assert changed.status_code == 303
    [row] = _templates(db)
    assert row.body_en == "Sorry for the wait; the driver was told." and row.body_zh == LATE["body_zh"]
    update = db.scalars(select(AuditEntry).where(AuditEntry.action == "answer_template.update")).one()
    assert json.loads(update.details) == {"changed": "body_en"} and update.actor_id == "stf_TEST"

    for offered, state in (("no", "retired"), ("yes", "offered")):
        assert client.post(f"{PAGE}/{row.id}/offer", data={"offered": offered},
                           follow_redirects=False).status_code == 303
        assert state in client.get(PAGE, headers={"accept-language": "en"}).text.split(f'data-template="{row.id}"')[1]
    assert _actions(db, row.id) == ["answer_template.create", "answer_template.update", "answer_template.retire",
                                    "answer_template.restore"]


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"title_zh": "  "}, "title_zh", "Required."),
    ({"title_en": "Two\nlines"}, "title_en", "Not valid."),
    ({"title_en": "x" * 101}, "title_en", "At most 100 characters."),
    ({"body_zh": "好"}, "body_zh", "At least 2 characters."),
    ({"body_en": "y" * 2001}, "body_en", "At most 2000 characters."),
    ({"body_en": "bell\x07"}, "body_en", "Not valid."),
])
def test_a_mistake_comes_back_on_the_form(client: TestClient, db: Session, act_as, change: dict[str, str],  # type: ignore[no-untyped-def]
                                          field: str, problem: str) -> None:
    act_as(Role.SUPERVISOR)
    answer = _write(client, {**LATE, **change})
    assert answer.status_code == 422 and f'id="t-{field}-error">{problem}</span>' in answer.text
    assert LATE["body_zh"] in answer.text or field == "body_zh"  # what was typed comes back
    assert _templates(db) == []


def test_two_templates_never_share_a_title(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR)
    assert _write(client).status_code == 303
    other = {**LATE, "title_en": "Late pickup", "body_en": "Another text."}
    clash = _write(client, other)  # its Chinese title is taken
    assert clash.status_code == 409 and 'aria-invalid="true" aria-describedby="t-title_zh-error"' in clash.text
    assert "Another template has this title" in clash.text and 'value="Late pickup"' in clash.text
    second = _write(client, {**other, "title_zh": "接驾迟到"})
    assert second.status_code == 303 and len(_templates(db)) == 2
    first = next(t for t in _templates(db) if t.title_en == LATE["title_en"])
    renamed = client.post(f"{PAGE}/{first.id}", data={**LATE, "title_en": "Late pickup"},
                          headers={"accept-language": "en"})
    assert renamed.status_code == 409 and 'id="t-title_en-error"' in renamed.text
    assert {t.title_en for t in _templates(db)} == {LATE["title_en"], "Late pickup"}


def test_an_agent_fills_the_answer_from_a_template(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR)
    _write(client)
    retired = _write(client, {"title_zh": "旧模板", "title_en": "Old one", "body_zh": "旧的答复",
                              "body_en": "old text"})
    assert retired.status_code == 303
    old, late = (sorted(_templates(db), key=lambda t: t.title_en != "Old one"))
    client.post(f"{PAGE}/{old.id}/offer", data={"offered": "no"})
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    filed = client.post("/api/v1/complaints", json={"trip_id": "T1", "category": "service", "text": "司机迟到二十分钟"},
                        headers={"Idempotency-Key": "c-tpl-1"}).json()
    url = f"/console/complaints/{filed['id']}"

    act_as(Role.SUPPORT_AGENT)
    plain = client.get(url, headers={"accept-language": "zh-CN"}).text
    assert f'<option value="{late.id}"' in plain and old.id not in plain  # a retired one is not offered
    assert LATE["title_zh"] in plain \
        and '<textarea id="answer-text" name="text" rows="4" maxlength="2000" required></textarea>' in plain
    filled = client.get(url, params={"template": late.id, "lang": "en"}).text
    assert f'required>{LATE["body_en"]}</textarea>' in filled and f'name="template_id" value="{late.id}"' in filled
    in_chinese = client.get(url, params={"template": late.id, "lang": "zh_CN"}).text
    assert f'required>{LATE["body_zh"]}</textarea>' in in_chinese
    assert 'required></textarea>' in client.get(url, params={"template": old.id}).text  # retired: nothing filled
    assert client.get(url, params={"template": late.id, "lang": "fr"}).status_code == 422  # never a 500

    text = LATE["body_en"] + " Your trip T1 was refunded."
    bad = client.post(f"{url}/desk", data={"action": "answer", "text": text, "template_id": "atp_NOPE"},
                      headers={"accept-language": "en"})
    assert bad.status_code == 404 and text in bad.text  # the answer typed is kept
    sent = client.post(f"{url}/desk", data={"action": "answer", "text": text, "template_id": late.id},
                       follow_redirects=False)
    assert sent.status_code == 303
    db.expire_all()
    assert db.get(Complaint, filed["id"]).status == "answered"  # type: ignore[union-attr]
    answered = db.scalars(select(AuditEntry).where(AuditEntry.action == "complaint.answer")).one()
    assert json.loads(answered.details)["template"] == late.id


def test_templates_are_managed_only_with_their_permission(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    for role in (Role.SUPPORT_AGENT, Role.PRIVACY_OFFICER, Role.TRAINER):
        act_as(role)
        assert client.get(PAGE).status_code == 403
        assert _write(client).status_code == 403
        assert f'href="{PAGE}"' not in client.get("/console").text
    assert _templates(db) == []
    act_as(Role.SUPERVISOR)
    assert client.get(f"{PAGE}/atp_NOPE").status_code == 404
    assert client.post(f"{PAGE}/atp_NOPE/offer", data={"offered": "no"}).status_code == 404
