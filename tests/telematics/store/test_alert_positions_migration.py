"""Alerts stored before positions were sealed: the migration seals each one under its trip's key, drops the
plain columns, and takes the position out of alert webhooks still in the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.orm import Session

from tests.conftest import empty_database
from tripguard.core.migrations import alembic_config, upgrade
from tripguard.core.settings import get_settings
from tripguard.telematics.models import TripAlert
from tripguard.telematics.store import trips
from tripguard.vault.keys import build_vault

SEALED = "0035"



@pytest.fixture
def key_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TripGuard's settings point at a key folder, as `tripguard db upgrade` finds them."""
    folder = tmp_path / "keys"
    for name, value in {"TRIPGUARD_KEY_DIR": str(folder), "TRIPGUARD_ENV": "test"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def test_stored_alert_positions_are_sealed_and_the_plain_columns_go(tmp_path: Path, key_folder: Path) -> None:
    url = empty_database("tg_alert_positions_migration", tmp_path)
    before = ScriptDirectory.from_config(alembic_config(url)).get_revision(SEALED).down_revision
    upgrade(url, str(before))
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for alert_id, trip_id, kind, lon, lat in (("alt_1", "T1", "long_stop", -8.604, 41.146),
                                                      ("alt_2", "T2", "possible_crash", 116.397, 39.909),
                                                      ("alt_3", "T1", "device_offline", None, None)):
                connection.execute(text(
                    "INSERT INTO telematics_alerts (id, trip_id, kind, severity, ts, lon, lat, evidence, received_at) "
                    "VALUES (:id, :trip, :kind, 'medium', CURRENT_TIMESTAMP, :lon, :lat, '{}', CURRENT_TIMESTAMP)"),
                    {"id": alert_id, "trip": trip_id, "kind": kind, "lon": lon, "lat": lat})
            webhook = {"url": "https://hooks.example.com/tg", "event": "alert",
                       "payload": {"trip_id": "T1", "kind": "long_stop", "lon": -8.604, "lat": 41.146}}
            connection.execute(text(
                "INSERT INTO notify_outbox (id, idempotency_key, channel, template, locale, status, attempts, "
                "next_attempt_at, created_at, content, priority, destination) VALUES ('m1', 'm1', 'webhook', 'alert', "
                "'en', 'pending', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :content, 2, 'webhook')"),
                {"content": json.dumps(webhook)})
        upgrade(url, SEALED)
        columns = {c["name"] for c in inspect(engine).get_columns("telematics_alerts")}
        assert "position" in columns and not {"lon", "lat"} & columns
        vault = build_vault(get_settings())
        with Session(engine) as session:
            alerts = {alert_id: TripAlert(id=alert_id, trip_id=trip_id, position=position)
                      for alert_id, trip_id, position
                      in session.execute(text("SELECT id, trip_id, position FROM telematics_alerts"))}
            opened = {alert_id: trips.open_alert_position(session, vault=vault,
                                                          alert=alert) for alert_id, alert in alerts.items()}
            content = session.execute(text("SELECT content FROM notify_outbox WHERE id = 'm1'")).scalar_one()
    finally:
        engine.dispose()
    assert opened == {"alt_1": (-8.604, 41.146), "alt_2": (116.397, 39.909), "alt_3": None}
    assert all(b"41.14" not in (a.position or b"") for a in alerts.values())
    payload = (json.loads(content) if isinstance(content, str) else content)["payload"]
    assert payload == {"trip_id": "T1", "kind": "long_stop"}
