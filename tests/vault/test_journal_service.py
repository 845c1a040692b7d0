"""A running service whose key folder lost its erasure journal: erasures stop, loudly; nothing else does."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.safety.test_sos_api import on_a_trip
from tripguard.core.clock import utcnow
from tripguard.core.settings import Settings
from tripguard.reporting.security_check import assess
from tripguard.security.permissions import Role
from tripguard.vault import keybackup
from tripguard.vault.journal import HEAD_FILE, JOURNAL_FILE
from tripguard.vault.keys import build_vault


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """A key folder that was in use (backups were made from it) and has lost its journal."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / keybackup.REGISTER_FILE).write_text("")
    return make_settings(database_url, keys)


def test_a_lost_journal_stops_erasures_not_the_service(settings: Settings, app: FastAPI, client: TestClient,  # type: ignore[no-untyped-def]
                                                       db: Session, act_as, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tripguard.vault.journal")
    logger.addHandler(caplog.handler)  # the app's logging set-up replaced the root's handlers
    try:
        build_vault(settings)  # what the service did as it started (the app above started all the same)
    finally:
        logger.removeHandler(caplog.handler)
    assert "the erasure journal in" in caplog.text and "is missing" in caplog.text
    assert not (settings.key_dir / JOURNAL_FILE).exists() and not (settings.key_dir / HEAD_FILE).exists()
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    pressed = client.post("/api/v1/sos", json={"lon": -8.61, "lat": 41.15})
    assert pressed.status_code == 201, pressed.text  # the SOS path does not need the journal
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    erased = client.post("/api/v1/subjects/P1/erase", json={"reason": "subject_request"})
    assert erased.status_code == 503 and "erasure journal" in erased.json()["detail"], erased.text
    found = {c.key: e for c, e in assess(db, settings=settings, keys=app.state.vault.keys, now=utcnow()).results}
    assert not found["keys.erasure_journal"].passed and "is missing" in found["keys.erasure_journal"].text()
