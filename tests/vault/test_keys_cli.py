"""The operator's key and retention commands, run as an operator would."""

from __future__ import annotations

from typer.testing import CliRunner

from tests.builders import TEST_ACTOR
from tripguard.cli import app as cli
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.privacy import access, service
from tripguard.privacy.models import DataSubject
from tripguard.vault.keys import build_vault


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_rotate_status_retire_and_retention(cli_site: Settings) -> None:
    engine = make_engine(cli_site.database_url)
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as session:
        service.publish_notice(session, actor=TEST_ACTOR, version="n1", purposes=["emergency"],
                               categories=["user.name"], retention_zh="两年", retention_en="two years",
                               text_zh="说明", text_en="notice")
        for i in range(3):
            service.upsert_subject(session, vault=build_vault(cli_site), actor=TEST_ACTOR, subject_id=f"psg_{i}",
                                   kind="passenger", notice_version="n1", values={"name": f"乘客{i}"})

    code, output = run("keys", "rotate")
    assert code == 0 and "added key-encryption key version 2" in output and "rewrapped 3 data keys" in output
    code, output = run("keys", "retire", "1")
    assert code == 0 and "retired version 1" in output
    code, output = run("keys", "retire", "2")
    assert code == 2 and "current" in output
    code, output = run("keys", "status")
    assert code == 0 and "2 (current)" in output

    with factory() as session:
        subject = session.get(DataSubject, "psg_1")
        assert access.open_field(build_vault(cli_site), session, subject, "name") == "乘客1"  # type: ignore[arg-type]

    code, output = run("retention", "run", "--dry-run")
    assert code == 0 and "ride_subjects" in output and "(dry run)" in output
    engine.dispose()


def test_retire_refuses_cleanly_while_the_backup_register_is_damaged(cli_site: Settings) -> None:
    code, output = run("keys", "rotate")
    assert code == 0
    register = cli_site.key_dir / "backups.jsonl"
    register.write_text('{"name": "site.tgbk", "kind": "data", "created_at": "2026-12-01T00:00:00+00:00",\n')
    code, output = run("keys", "retire", "1")
    assert code == 2 and "backups.jsonl" in output and "line 1" in output and "Traceback" not in output
    assert [k.retired_at for k in build_vault(cli_site).keys.versions() if k.version == 1] == [None]  # not retired
    register.write_text("")
    code, output = run("keys", "retire", "1")
    assert code == 0 and "retired version 1" in output
