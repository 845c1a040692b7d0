"""The recorded-messages page lists only what the recording channels hold (notify's service narrows the list),
never a webhook's payload."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tripguard.notify import service as notify
from tripguard.privacy import service as privacy
from tripguard.security.permissions import Role


def test_the_recorded_messages_page_lists_only_the_recording_channels(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                                       app: FastAPI) -> None:
    privacy.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id="P-MSG", kind="passenger",
                           notice_version=None, values={"name": "韩梅梅", "phone": "13800005555"})
    notify.enqueue_to_person(db, vault=app.state.vault, subject_id="P-MSG", channel="sms", to="13800005555",
                             template="verification_code", locale="zh_CN", params={"code": "482913", "minutes": 10},
                             idempotency_key="rev:code")
    notify.enqueue_webhook(db, url="http://127.0.0.1:9/h", event="trip.alert", payload={"trip_id": "T9"},
                           idempotency_key="rev:hook")
    db.commit()
    app.state.settings = app.state.settings.model_copy(update={"env": "development"})
    act_as(Role.SYSTEM_ADMIN)
    page = client.get("/console/messages")
    assert page.status_code == 200 and page.text.count("data-message=") == 1
    assert "T9" not in client.get("/console/messages?format=csv").text
