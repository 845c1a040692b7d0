"""One SMS signature per deployment (`TRIPGUARD_SMS_SIGNATURE`): every text begins with it, in Chinese and English
alike; no template carries a brand of its own."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tests.conftest import make_settings
from tripguard.core.settings import Settings
from tripguard.notify import service as notify
from tripguard.notify import templates
from tripguard.notify.models import OutboxMessage
from tripguard.notify.setup import build_notifier
from tripguard.privacy import service as privacy


@pytest.mark.no_database
def test_every_template_begins_its_text_with_the_deployments_signature_and_no_other_brand() -> None:
    files = sorted(templates.TEMPLATE_DIR.glob("*.txt"))
    assert len(files) == 2 * len(templates.available())
    for path in files:
        text = path.read_text()
        subject, body = text.split("\n", 1)
        # a text message: its body begins with the signature (after a template's own set-up); the digest, an
        # e-mail, carries it in its subject
        signed = subject if path.name.startswith("digest.") else body.split("%}")[-1] if body.startswith("{%") \
            else body
        assert signed.startswith("【{{ signature }}】"), path.name
        assert text.count("{{ signature }}") == 1 and "行安卫士" not in text and "TripGuard]" not in text, path.name


def test_the_signature_set_in_the_settings_signs_every_text(db: Session, app: FastAPI, settings: Settings) -> None:
    vault = app.state.vault
    privacy.upsert_subject(db, vault=vault, actor=TEST_ACTOR, subject_id="P-SIG", kind="passenger", notice_version=None,
                           values={"phone": "13800005555"})
    try:
        build_notifier(settings.model_copy(update={"sms_signature": "安心出行"}))
        for locale in ("zh_CN", "en"):
            message = notify.enqueue_to_person(db, vault=vault, subject_id="P-SIG", channel="sms", to="13800005555",
                                               template="verification_code", locale=locale,
                                               params={"code": "123456", "minutes": 10},
                                               idempotency_key=f"sig:{locale}")
            db.flush()
            shown = notify.opened(db, vault=vault, message=db.get(OutboxMessage, message.id))  # type: ignore[arg-type]
            assert shown is not None and shown.body.startswith("【安心出行】"), shown
    finally:
        templates.use_signature(templates.DEFAULT_SIGNATURE)
    assert json.dumps(templates.signature(), ensure_ascii=False) == '"行安卫士"'


@pytest.mark.no_database
def test_a_signature_is_a_short_name_without_brackets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert make_settings("sqlite://", tmp_path).sms_signature == "行安卫士"
    for bad in ("【行安】", "[x]", "a", "一二三四五六七八九十一二三", "two words"):
        with pytest.raises(ValidationError):
            make_settings("sqlite://", tmp_path, sms_signature=bad)
