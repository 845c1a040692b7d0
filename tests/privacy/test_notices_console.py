"""Publishing a notice version from the privacy office's console page: the form is checked by field (the
input kept, never a 500), publishing asks first, is audited, and a version once published never changes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.web.confirming import asks_first, confirmed
from tripguard.audit.models import AuditEntry
from tripguard.console.privacy_notices_pages import PUBLISH_NOTICE
from tripguard.privacy.models import PrivacyNotice
from tripguard.security.permissions import Role

URL = "/console/privacy/notices"
FORM = {"version": "2026-12", "purposes": ["emergency", "support"],
        "categories": ["user.name", "user.contact.phone_number"],
        "retention_zh": "行程结束后两年", "retention_en": "two years after the trip",
        "text_zh": "我们为紧急救助和客户服务收集您的姓名和电话。",
        "text_en": "We collect your name and phone for help and support."}


def _published(db: Session) -> list[PrivacyNotice]:
    db.expire_all()
    return list(db.scalars(select(PrivacyNotice)))


def test_a_notice_is_published_from_the_console_once_confirmed(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    page = client.get(URL, headers={"accept-language": "zh-CN"})
    assert page.status_code == 200 and "发布新版本" in page.text and 'href="/console/privacy/notices"' in page.text
    assert ">紧急救助</option>" in page.text and ">联系本人的电话号码</option>" in page.text  # readable choices
    asks_first(client, URL, FORM, question=PUBLISH_NOTICE.question, consequence=PUBLISH_NOTICE.consequence)
    assert _published(db) == [] and db.scalar(select(AuditEntry).where(AuditEntry.action == "notice.publish")) is None
    done = confirmed(client, URL, FORM)
    assert done.status_code == 303 and done.headers["location"] == f"{URL}#v-2026-12"
    [notice] = _published(db)
    assert (notice.version, notice.purposes, notice.categories) == ("2026-12", FORM["purposes"], FORM["categories"])
    assert notice.text_zh == FORM["text_zh"] and notice.retention_en == FORM["retention_en"]
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "notice.publish")).one()
    assert (entry.actor_id, entry.target_id) == ("stf_TEST", "2026-12")
    listed = client.get(URL, headers={"accept-language": "en"}).text
    assert 'data-notice="2026-12"' in listed and "Emergency help" in listed and FORM["text_en"] in listed
    assert client.get("/api/v1/privacy/notices/2026-12").json()["purposes"] == FORM["purposes"]

    again = confirmed(client, URL, FORM)  # the same form sent twice (a retry): nothing new
    assert again.status_code == 303 and len(_published(db)) == 1
    changed = client.post(URL, data={**FORM, "text_en": "Something else.", "confirm": "yes"},
                          headers={"accept-language": "en"})
    assert changed.status_code == 409 and 'aria-invalid="true" aria-describedby="n-version-error"' in changed.text
    assert "published already and never changes" in changed.text and "Something else." in changed.text
    [kept] = _published(db)
    assert kept.text_en == FORM["text_en"]


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"version": ""}, "version", "Required."),
    ({"version": "v 1/2"}, "version", "Not in the expected form."),
    ({"version": "v" * 40}, "version", "Not in the expected form."),
    ({"purposes": []}, "purposes", "Choose at least one."),
    ({"purposes": ["gossip"]}, "purposes", "Not one of the choices."),
    ({"categories": ["user.shoe_size"]}, "categories", "Not one of the choices."),
    ({"text_zh": "   "}, "text_zh", "Required."),
    ({"retention_en": "x" * 2001}, "retention_en", "At most 2000 characters."),
    ({"text_en": "bell\x07"}, "text_en", "Not valid."),
])
def test_a_mistake_comes_back_on_the_form(client: TestClient, db: Session, act_as, change: dict[str, object],  # type: ignore[no-untyped-def]
                                          field: str, problem: str) -> None:
    act_as(Role.PRIVACY_OFFICER)
    answer = client.post(URL, data={**FORM, **change, "confirm": "yes"}, headers={"accept-language": "en"})
    assert answer.status_code == 422
    assert f'id="n-{field}-error">{problem}</span>' in answer.text
    assert 'data-testid="form-error"' in answer.text
    kept = "v 1/2" if change.get("version") == "v 1/2" else FORM["retention_zh"]
    assert kept in answer.text  # what was typed comes back
    assert _published(db) == []


def test_a_mistake_is_said_in_chinese_on_a_chinese_page(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    answer = client.post(URL, data={**FORM, "purposes": []}, headers={"accept-language": "zh-CN"})
    assert answer.status_code == 422 and "请至少选择一项。" in answer.text


def test_only_the_privacy_office_publishes(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    for role in (Role.SUPERVISOR, Role.SAFETY_AGENT, Role.SYSTEM_ADMIN):
        act_as(role)
        assert client.get(URL).status_code == 403
        assert client.post(URL, data={**FORM, "confirm": "yes"}).status_code == 403
        assert 'href="/console/privacy/notices"' not in client.get("/console").text
