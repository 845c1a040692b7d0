"""The restore drill: back up, erase a subject, restore: the subject stays unreadable, others intact."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.builders import TEST_ACTOR
from tests.conftest import fresh_database
from tripguard.audit.models import AuditEntry
from tripguard.cli import app as cli
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings, get_settings
from tripguard.privacy import access, service
from tripguard.privacy.models import DataSubject
from tripguard.vault.keys import build_vault
from tripguard.vault.service import SubjectErased

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture
def site(cli_site: Settings) -> Settings:
    """A committed database with two subjects, and the CLI pointed at it."""
    settings = cli_site
    engine = make_engine(settings.database_url)
    vault = build_vault(settings)
    with unit_of_work(make_sessionmaker(engine)) as session:
        service.publish_notice(session, actor=TEST_ACTOR, version="n1", purposes=["emergency"],
                               categories=["user.name"], retention_zh="两年", retention_en="two years",
                               text_zh="说明", text_en="notice")
        for subject_id, name, phone in (("psg_erase", "王小明", "13800001111"), ("psg_keep", "李雷", "13800002222")):
            service.upsert_subject(session, vault, actor=TEST_ACTOR, subject_id=subject_id, kind="passenger",
                                   notice_version="n1", values={"name": name, "phone": phone})
    engine.dispose()
    return settings


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def read(settings: Settings, subject_id: str, column: str) -> str | None:
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            subject = session.get(DataSubject, subject_id)
            assert subject is not None
            return access.open_field(build_vault(settings), session, subject, column)
    finally:
        engine.dispose()


def restore_into_fresh(settings: Settings, tmp_path: Path, file: Path, monkeypatch: pytest.MonkeyPatch,
                       expect_ok: bool = True) -> tuple[Settings, str]:
    url = fresh_database(f"tg_rs_{WORKER}", tmp_path)
    monkeypatch.setenv("TRIPGUARD_DATABASE_URL", url)
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["backup", "restore", str(file)])
    assert (result.exit_code == 0) is expect_ok, result.output
    return settings.model_copy(update={"database_url": url}), result.output


def test_restore_drill(site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "site.tgbk"
    assert "backup written" in cli_ok("backup", "create", str(file))
    assert b"13800001111" not in file.read_bytes() and "王小明".encode() not in file.read_bytes()

    engine = make_engine(site.database_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        service.erase_subject(session, build_vault(site), actor=TEST_ACTOR, subject_id="psg_erase",
                              reason="subject_request")
    engine.dispose()

    restored, output = restore_into_fresh(site, tmp_path / "r", file, monkeypatch)
    assert "restored" in output
    assert read(restored, "psg_keep", "name") == "李雷"
    assert read(restored, "psg_keep", "phone") == "13800002222"
    with pytest.raises(SubjectErased):
        read(restored, "psg_erase", "name")
    # The restored audit log still verifies, with the restore itself recorded after it.
    engine = make_engine(restored.database_url)
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "backup.restore")) == 1
    engine.dispose()


@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
def test_damaged_backup_restores_nothing(site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         damage: str) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    data = bytearray(file.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        del data[-40:]
    else:
        data += b"\x00\x00\x00\x05extra"
    file.write_bytes(bytes(data))
    restored, output = restore_into_fresh(site, tmp_path / "r", file, monkeypatch, expect_ok=False)
    assert "error" in output
    engine = make_engine(restored.database_url)
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(DataSubject)) == 0  # nothing half-written
    engine.dispose()


def test_backup_needs_the_keys_and_an_empty_target(site: Settings, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    # Into the same, non-empty database: refused.
    result = CliRunner().invoke(cli, ["backup", "restore", str(file)])
    assert result.exit_code == 2 and "not empty" in result.output
    # With another keyring: refused.
    monkeypatch.setenv("TRIPGUARD_KEY_DIR", str(tmp_path / "other-keys"))
    _, output = restore_into_fresh(site, tmp_path / "r", file, monkeypatch, expect_ok=False)
    assert "cannot open the backup" in output
