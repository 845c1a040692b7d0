"""Messages sent (development only): the recording channels' messages, so whoever tries the demo reads the codes
texted to its people; for the system administrator only, audited, and nowhere outside development."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tests.web.untranslated import english_words
from tripguard.audit.models import AuditEntry
from tripguard.notify import service as notify
from tripguard.privacy import service as privacy
from tripguard.security.permissions import ROLE_PERMISSIONS, Permission, Role


def texted(app: FastAPI, db: Session) -> str:
    """A verification code texted to a person, sent by the outbox through the recording SMS channel."""
    privacy.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id="P-MSG", kind="passenger",
                           notice_version=None, values={"name": "韩梅梅", "phone": "13800005555"})
    notify.enqueue_to_person(db, vault=app.state.vault, subject_id="P-MSG", channel="sms", to="13800005555",
                             template="verification_code", locale="zh_CN", params={"code": "482913", "minutes": 10},
                             idempotency_key="test:code")
    db.commit()
    notify.dispatch_due(lambda: db, vault=app.state.vault,
                        notifier=app.state.notifier)  # type: ignore[arg-type, return-value]
    return "482913"


def in_development(app: FastAPI) -> None:
    app.state.settings = app.state.settings.model_copy(update={"env": "development"})


def test_the_administrator_reads_the_codes_texted_to_the_demos_people(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                                       app: FastAPI) -> None:
    code = texted(app, db)
    in_development(app)
    act_as(Role.SYSTEM_ADMIN)
    page = client.get("/console/messages", headers={"accept-language": "zh-CN"})
    assert page.status_code == 200, page.text
    assert code in page.text and "13800005555" in page.text and "已发消息" in page.text
    assert "个人信息请求验证码" in page.text and "verification_code" not in page.text  # what it is, in words
    assert english_words(page.text) == []
    assert 'href="/console/messages"' in page.text  # in the menu, in development
    assert client.get("/console/messages?channel=emergency").text.count("data-message=") == 0
    assert client.get("/console/messages?channel=sms").text.count("data-message=") == 1
    read = [json.loads(e.details)["count"] for e in db.scalars(
        select(AuditEntry).where(AuditEntry.action == "messages.recorded_read").order_by(AuditEntry.id))]
    assert read == [1, 0, 1]  # each page view names what it opened
    export = client.get("/console/messages?format=csv")
    assert export.status_code == 200 and code in export.text


def test_only_the_roles_holding_its_permission_open_it(client: TestClient, act_as, app: FastAPI) -> None:  # type: ignore[no-untyped-def]
    in_development(app)
    holders = {role for role, granted in ROLE_PERMISSIONS.items() if Permission.MESSAGES_RECORDED in granted}
    assert holders == {Role.SYSTEM_ADMIN}
    for role in (Role.SAFETY_AGENT, Role.PRIVACY_OFFICER, Role.SUPPORT_AGENT, Role.AUDIT_ADMIN):
        act_as(role)
        assert client.get("/console/messages").status_code == 403, role
        assert 'href="/console/messages"' not in client.get("/console").text


def test_outside_development_the_page_does_not_exist(client: TestClient, db: Session, act_as, app: FastAPI) -> None:  # type: ignore[no-untyped-def]
    texted(app, db)
    act_as(Role.SYSTEM_ADMIN)
    for env in ("test", "production"):
        app.state.settings = app.state.settings.model_copy(update={"env": env})
        assert client.get("/console/messages").status_code == 404
        assert client.get("/console/messages?format=csv").status_code == 404
    app.state.settings = app.state.settings.model_copy(update={"env": "test"})
    assert 'href="/console/messages"' not in client.get("/console").text


@pytest.mark.no_database
def test_every_message_kind_is_named_in_words() -> None:
    from tripguard.console.notify_pages import TEMPLATE_LABELS
    from tripguard.notify.templates import available

    assert set(TEMPLATE_LABELS) == available() | {"emergency_dispatch"}
