"""A committed site with people in it, its backups read as an attacker reads them, and restores."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import TEST_ACTOR
from tests.conftest import fresh_database
from tripguard.cli import app as cli
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings, get_settings
from tripguard.privacy import service
from tripguard.vault import backup
from tripguard.vault.keys import build_vault
from tripguard.vault.service import Vault

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
PEOPLE = {"psg_erase": ("王小明", "13800001111"), "psg_keep": ("李雷", "13800002222")}


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@contextmanager
def site_session(settings: Settings) -> Iterator[tuple[Session, Vault]]:
    """A committed unit of work on the site's database, with its vault."""
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            yield session, build_vault(settings)
    finally:
        engine.dispose()


def add_people(settings: Settings) -> None:
    with site_session(settings) as (session, vault):
        service.publish_notice(session, actor=TEST_ACTOR, version="n1", purposes=["emergency"],
                               categories=["user.name"], retention_zh="两年", retention_en="two years",
                               text_zh="说明", text_en="notice")
        for subject_id, (name, phone) in PEOPLE.items():
            service.upsert_subject(session, vault=vault, actor=TEST_ACTOR, subject_id=subject_id, kind="passenger",
                                   notice_version="n1", values={"name": name, "phone": phone})


def erase(settings: Settings, subject_id: str) -> bytes:
    """Erase through the privacy service; returns the person's data key as it was."""
    with site_session(settings) as (session, vault):
        key = vault.data_key(session, subject_id, create=False)
        assert key is not None
        service.erase_subject(session, vault=vault, actor=TEST_ACTOR, subject_id=subject_id, reason="subject_request")
    return key


def backup_plaintext(settings: Settings, file: Path) -> list[dict[str, Any]]:
    """What someone holding a data backup and the keyring reads from it, with the backup code's own
    reader and none of TripGuard's rules: every row, as {"table": …, **columns}."""
    vault = build_vault(settings)
    rows: list[dict[str, Any]] = []
    table = None
    with file.open("rb") as handle:
        header, header_bytes = backup._read_header(handle)
        key = vault.unwrap_backup_key(int(header["kek_version"]), base64.b64decode(header["wrapped_key"]))
        for line in backup._plaintext_lines(handle, key, hashlib.sha256(header_bytes).digest()):
            record = json.loads(line)
            if set(record) == {"table"}:
                table = record["table"]
            else:
                rows.append({"table": table, **record})
    return rows


def restore_into_fresh(settings: Settings, where: Path, file: Path, monkeypatch: pytest.MonkeyPatch,
                       *extra: str) -> Settings:
    """`tripguard backup restore FILE` into a fresh database; the settings that reach it."""
    where.mkdir(parents=True, exist_ok=True)
    url = fresh_database(f"tg_ix_{WORKER}", where)
    monkeypatch.setenv("TRIPGUARD_DATABASE_URL", url)
    get_settings.cache_clear()
    cli_ok("backup", "restore", str(file), *extra)
    monkeypatch.setenv("TRIPGUARD_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    return settings.model_copy(update={"database_url": url})
