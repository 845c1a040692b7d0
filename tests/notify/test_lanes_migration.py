"""Messages queued before the outbox had lanes get the lane and destination a new one would."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from tests.conftest import empty_database
from tripguard.core.migrations import alembic_config, upgrade

LANES = "0032"



def test_queued_messages_are_put_in_their_lanes(tmp_path: Path) -> None:
    url = empty_database("tg_lanes_migration", tmp_path)
    before = ScriptDirectory.from_config(alembic_config(url)).get_revision(LANES).down_revision
    upgrade(url, str(before))
    rows = [("m1", "emergency", "emergency_dispatch", "pending", None),
            ("m2", "sms", "sos_contact", "pending", None),
            ("m3", "sms", "verification_code", "pending", None),
            ("m4", "webhook", "alert", "pending", {"url": "HTTPS://Hooks.Example.com:8443/tg", "event": "alert"}),
            ("m5", "webhook", "alert", "sent", {"url": "https://other.example.com/tg", "event": "alert"})]
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for message_id, channel, template, status, content in rows:
                connection.execute(text(
                    "INSERT INTO notify_outbox (id, idempotency_key, channel, template, locale, status, attempts, "
                    "next_attempt_at, created_at, content) VALUES (:id, :id, :channel, :template, 'en', :status, 0, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :content)"),
                    {"id": message_id, "channel": channel, "template": template, "status": status,
                     "content": None if content is None else json.dumps(content)})
        upgrade(url, LANES)
        with engine.connect() as connection:
            lanes = {row[0]: (row[1], row[2]) for row in connection.execute(
                text("SELECT id, priority, destination FROM notify_outbox"))}
    finally:
        engine.dispose()
    assert lanes == {"m1": (0, "emergency"), "m2": (0, "sms"), "m3": (1, "sms"),
                     "m4": (2, "webhook https://hooks.example.com:8443"), "m5": (2, "webhook")}
