"""The restore drill: back up, erase a subject, restore: the subject stays unreadable, others intact."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.builders import TEST_ACTOR
from tests.conftest import fresh_database
from tripguard.audit.models import AuditEntry
from tripguard.cli import app as cli
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings, get_settings
from tripguard.privacy import access, service
from tripguard.privacy.models import DataSubject, DeletionRecord
from tripguard.vault import backup, keybackup
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
            service.upsert_subject(session, vault=vault, actor=TEST_ACTOR, subject_id=subject_id, kind="passenger",
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


def assert_fully_erased(settings: Settings, subject_id: str) -> None:
    """Key shredded, sealed columns and the blind index gone, erased_at set, the deletion record kept."""
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            subject = session.get(DataSubject, subject_id)
            assert subject is not None and subject.erased_at is not None
            assert subject.name is None and subject.phone is None and subject.phone_index is None
            assert build_vault(settings).is_erased(session, subject_id)
            assert session.scalar(select(func.count()).select_from(DeletionRecord).where(
                DeletionRecord.subject_id == subject_id)) == 1
            with pytest.raises(SubjectErased):
                build_vault(settings).open(session, subject_id=subject_id, table="privacy_subjects", column="name",
                                           row_id=subject_id, blob=b"\x01\x01" + b"\x00" * 40)
    finally:
        engine.dispose()


def test_restore_drill(site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "site.tgbk"
    assert "backup written" in cli_ok("backup", "create", str(file))
    assert b"13800001111" not in file.read_bytes() and "王小明".encode() not in file.read_bytes()

    engine = make_engine(site.database_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        service.erase_subject(session, vault=build_vault(site), actor=TEST_ACTOR, subject_id="psg_erase",
                              reason="subject_request")
    engine.dispose()

    restored, output = restore_into_fresh(site, tmp_path / "r", file, monkeypatch)
    assert "restored" in output and "1 erasures re-applied" in output
    assert read(restored, "psg_keep", "name") == "李雷"
    assert read(restored, "psg_keep", "phone") == "13800002222"
    assert_fully_erased(restored, "psg_erase")
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


def erase(settings: Settings, subject_id: str) -> bytes:
    """Erase through the privacy service; returns the person's data key as it was (for the offline search)."""
    engine = make_engine(settings.database_url)
    vault = build_vault(settings)
    with unit_of_work(make_sessionmaker(engine)) as session:
        key = vault.data_key(session, subject_id, create=False)
        assert key is not None
        service.erase_subject(session, vault=vault, actor=TEST_ACTOR, subject_id=subject_id, reason="subject_request")
    engine.dispose()
    return key


def offline_plaintext(settings: Settings, file: Path) -> bytes:
    """What someone holding the file and every key file reads from a data backup without TripGuard's rules."""
    import base64
    import hashlib

    vault = build_vault(settings)
    with file.open("rb") as handle:
        header, header_bytes = backup._read_header(handle)
        key = vault.unwrap_backup_key(int(header["kek_version"]), base64.b64decode(header["wrapped_key"]))
        return b"\n".join(backup._plaintext_lines(handle, key, hashlib.sha256(header_bytes).digest()))


def offline_data_key(folder: Path, settings: Settings, keys_file: Path, subject_id: str) -> bytes | None:
    """What someone holding `folder` (a key folder, or a copy of one) and the keyring reads from a key backup
    without TripGuard or its clock: the subject's data key, or None when the folder no longer has the key."""
    import base64
    import hashlib

    from tripguard.vault import crypto
    from tripguard.vault.journal import Head
    from tripguard.vault.models import DataKey

    vault = build_vault(settings.model_copy(update={"key_dir": folder}))
    with keys_file.open("rb") as handle:
        header, header_bytes = backup._read_header(handle)
        entry = json.loads((folder / keybackup.KEYS_FILE).read_text()).get(header["key_backup_id"])
        if entry is None:
            return None
        sealed = base64.b64decode(entry["wrapped"])
        # The wrapping's associated data names the key and the erasure-journal head it is bound to.
        context = keybackup._wrap_context(header["key_backup_id"], Head.parse(entry.get("journal")),
                                          str(entry.get("expires_at")))
        key = crypto.decrypt(vault._key_backup_wrap(int(entry["kek_version"]), crypto.suite_of(sealed)), sealed,
                             context)
        for line in backup._plaintext_lines(handle, key, hashlib.sha256(header_bytes).digest()):
            row = json.loads(line)
            if row.get("subject_id") == subject_id:
                return vault._unwrap(DataKey(subject_id=subject_id, suite=row["suite"], kek_version=row["kek_version"],
                                             wrapped_key=base64.b64decode(row["wrapped_key"])))
    return None


def offline_name(settings: Settings, plain: bytes, subject_id: str, dek: bytes) -> str:
    import base64

    from tripguard.vault import crypto
    from tripguard.vault.service import field_context

    for line in plain.split(b"\n"):
        row = json.loads(line)
        if row.get("id") == subject_id and "phone_index" in row:
            context = field_context(subject_id=subject_id, table="privacy_subjects", column="name", row_id=subject_id)
            return crypto.decrypt(dek, base64.b64decode(row["name"]), context).decode()
    raise AssertionError(f"{subject_id} is not in the backup")


def test_backup_drill_after_the_key_backup_window(site: Settings, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Back up, erase, let the window pass, then try every path with every backup file and every key file."""
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    old_key_folder = tmp_path / "old-keys"
    shutil.copytree(site.key_dir, old_key_folder)  # an admin's copy of the key folder, before the erasure
    dek = erase(site, "psg_erase")

    # Inside the window a restore with the backup's own key backup re-applies the erasure (tested above).
    # The window passes; the hourly retention run destroys the key backup's key.
    later = utcnow() + timedelta(days=site.key_backup_window_days, minutes=1)
    monkeypatch.setattr(keybackup, "utcnow", lambda: later)
    assert "key_backup_keys" in cli_ok("retention", "run")
    assert json.loads((site.key_dir / keybackup.KEYS_FILE).read_text()) == {}

    # 1. The data backup holds no data key at all: the KEK opens it, and finds only noise for people.
    plain = offline_plaintext(site, file)
    assert b'"table": "vault_data_keys"' not in plain and b"vault_data_keys" not in plain
    assert "王小明".encode() not in plain and "李雷".encode() not in plain
    # 2. Today's key folder no longer opens its key backup: not through TripGuard ...
    keys_file = tmp_path / "site.tgbk.keys"
    _, output = restore_into_fresh(site, tmp_path / "r1", file, monkeypatch, expect_ok=False)
    assert "can no longer be opened" in output
    # ... nor offline: the key backup's key is gone from the folder, and the data key is in no file in the clear.
    assert offline_data_key(site.key_dir, site, keys_file, "psg_erase") is None
    everything = [file.read_bytes(), keys_file.read_bytes(), plain]
    everything += [f.read_bytes() for f in site.key_dir.iterdir() if f.is_file()]
    assert not any(dek in blob for blob in everything)
    # 3. The known limit (docs/operations.md, Backups): a copy of the key folder made inside the window keeps the
    # key backup's key, and with the keyring opens that key backup for as long as the copy is kept. Only
    # TripGuard's clock refuses it (restore says "no longer"); offline, the erased person's data key comes out
    # and opens their name in the data backup.
    monkeypatch.setenv("TRIPGUARD_KEY_DIR", str(old_key_folder))
    _, output = restore_into_fresh(site, tmp_path / "r2", file, monkeypatch, expect_ok=False)
    assert "can no longer be opened" in output
    monkeypatch.setenv("TRIPGUARD_KEY_DIR", str(site.key_dir))
    get_settings.cache_clear()
    assert offline_data_key(old_key_folder, site, keys_file, "psg_erase") == dek
    assert offline_name(site, plain, "psg_erase", dek) == "王小明"
    # 4. Everyone else restores: a key backup made today opens the old data backup, without the erased person.
    fresh_keys = tmp_path / "today.keys"
    monkeypatch.setenv("TRIPGUARD_DATABASE_URL", site.database_url)
    get_settings.cache_clear()
    assert "key backup written" in cli_ok("keys", "backup", str(fresh_keys))
    url = fresh_database(f"tg_rs_{WORKER}", tmp_path / "r3")
    monkeypatch.setenv("TRIPGUARD_DATABASE_URL", url)
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["backup", "restore", str(file), "--keys", str(fresh_keys)])
    assert result.exit_code == 0, result.output
    restored = site.model_copy(update={"database_url": url})
    assert read(restored, "psg_keep", "name") == "李雷"
    assert_fully_erased(restored, "psg_erase")


def test_a_changed_or_cut_journal_stops_the_restore(site: Settings, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    erase(site, "psg_erase")
    journal = site.key_dir / "erasure-journal.jsonl"
    head = site.key_dir / "erasure-journal.head"
    original, original_head = journal.read_bytes(), head.read_bytes()
    # The removed setting does nothing: the journal is always the key folder's.
    monkeypatch.setenv("TRIPGUARD_ERASURE_JOURNAL", str(tmp_path / "empty.jsonl"))
    for name, damage in (
        ("emptied", lambda: journal.write_bytes(b"")),
        ("line changed", lambda: journal.write_bytes(original.replace(b"psg_erase", b"psg_other"))),
        ("head removed", lambda: head.unlink()),
        ("head from before", lambda: head.write_bytes(b'{"count":0,"last":"00","mac":"00"}\n')),
    ):
        journal.write_bytes(original)
        head.write_bytes(original_head)
        damage()
        _, output = restore_into_fresh(site, tmp_path / name.replace(" ", "_"), file, monkeypatch, expect_ok=False)
        assert "restore stopped" in output, name
    journal.write_bytes(original)
    head.write_bytes(original_head)
    restored, _ = restore_into_fresh(site, tmp_path / "ok", file, monkeypatch)
    assert_fully_erased(restored, "psg_erase")


def test_keys_retire_refuses_while_a_kept_backup_needs_the_version(site: Settings, tmp_path: Path) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    cli_ok("keys", "rotate")
    result = CliRunner().invoke(cli, ["keys", "retire", "1"])
    assert result.exit_code == 2 and "site.tgbk" in result.output and "--force" in result.output
    assert build_vault(site).keys.kek(1)  # still there
    result = CliRunner().invoke(cli, ["keys", "retire", "1", "--force"])
    assert result.exit_code == 0 and "no longer opens" in result.output and "site.tgbk" in result.output


def test_backup_files_and_key_files_are_private(site: Settings, tmp_path: Path) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    files = [file, tmp_path / "site.tgbk.keys", *site.key_dir.iterdir()]
    if site.database_url.startswith("sqlite"):
        files.append(Path(site.database_url.split("///", 1)[1]))
    for path in files:
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, path


def test_a_key_backup_of_another_site_is_refused(site: Settings, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    empty = fresh_database(f"tg_other_{WORKER}", tmp_path / "other")
    monkeypatch.setenv("TRIPGUARD_DATABASE_URL", empty)
    get_settings.cache_clear()
    cli_ok("keys", "backup", str(tmp_path / "other.keys"))  # same key folder, another database: no keys
    url = fresh_database(f"tg_rs_{WORKER}", tmp_path / "r")
    monkeypatch.setenv("TRIPGUARD_DATABASE_URL", url)
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["backup", "restore", str(file), "--keys", str(tmp_path / "other.keys")])
    assert result.exit_code == 2 and "have no key in the key backup" in result.output
