"""The erasure journal cannot be silently reset (issue #26, finding 4).

Each restore case has a real erased person whose name comes back in plain text when the restore is
let through (`--accept-journal-loss`, which is what the flag risks), so a guard that let it through
silently would show.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import TEST_ACTOR
from tests.conftest import fresh_database
from tests.vault.test_backup import assert_fully_erased, cli_ok, erase, read, site  # noqa: F401 (site: a fixture)
from tripguard.audit.models import AuditEntry
from tripguard.cli import app as cli
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings, get_settings
from tripguard.privacy import service
from tripguard.privacy.models import DataSubject
from tripguard.vault import backup, crypto, keybackup
from tripguard.vault.journal import HEAD_FILE, JOURNAL_FILE, ErasureJournal, JournalError
from tripguard.vault.keys import build_vault, journal_key, vault_in
from tripguard.vault.keysource import KeyringFile
from tripguard.vault.service import ErasureJournalUnavailable, Vault

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
OVERRIDE = "--accept-journal-loss"


def journal_files(folder: Path) -> dict[str, bytes | None]:
    return {name: (folder / name).read_bytes() if (folder / name).exists() else None
            for name in (JOURNAL_FILE, HEAD_FILE)}


def put_journal(folder: Path, files: dict[str, bytes | None]) -> None:
    for name, content in files.items():
        (folder / name).unlink(missing_ok=True)
        if content is not None:
            (folder / name).write_bytes(content)


def restore(settings: Settings, tmp_path: Path, file: Path, monkeypatch: pytest.MonkeyPatch,
            *args: str) -> tuple[int, str, Settings]:
    """`tripguard backup restore FILE ARGS` into a fresh database: (exit code, output, its settings)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    url = fresh_database(f"tg_jr_{WORKER}", tmp_path)
    monkeypatch.setenv("TRIPGUARD_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["backup", "restore", str(file), *args])
    finally:
        monkeypatch.setenv("TRIPGUARD_DATABASE_URL", settings.database_url)
        get_settings.cache_clear()
    return result.exit_code, result.output, settings.model_copy(update={"database_url": url})


def subjects_in(settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return session.scalar(select(func.count()).select_from(DataSubject)) or 0
    finally:
        engine.dispose()


def audit_details(settings: Settings, action: str) -> list[dict[str, object]]:
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return [json.loads(e.details or "{}") for e in session.scalars(
                select(AuditEntry).where(AuditEntry.action == action))]
    finally:
        engine.dispose()


def add_subject(settings: Settings, subject_id: str, name: str) -> None:
    engine = make_engine(settings.database_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        service.upsert_subject(session, vault=build_vault(settings), actor=TEST_ACTOR, subject_id=subject_id,
                               kind="passenger", notice_version="n1", values={"name": name})
    engine.dispose()


def another_valid_journal(settings: Settings, tmp_path: Path, erasures: int) -> dict[str, bytes | None]:
    """A journal as valid as the real one (same keyring: MACs hold) but of other erasures: what a keyring
    holder, or another site sharing the keyring, could put in its place."""
    folder = tmp_path / "other-journal"
    journal = ErasureJournal(folder, key=lambda: journal_key(build_vault(settings).keys))
    journal.prepare(may_start=True)
    for number in range(erasures):
        journal.append(f"psg_someone_else_{number}", "subject_request")
    return journal_files(folder)


def a_fresh_journal(settings: Settings, tmp_path: Path) -> dict[str, bytes | None]:
    """An empty journal with a valid head: what `ensure()` silently made of a deleted journal before."""
    return another_valid_journal(settings, tmp_path, 0)


# -- 2. A restore refuses a journal that does not hold the backup's heads -----------------------------

CASES: dict[str, Callable[[Settings, Path, dict[str, bytes | None]], dict[str, bytes | None]]] = {
    "both files deleted": lambda s, t, before: {JOURNAL_FILE: None, HEAD_FILE: None},
    "emptied, head deleted": lambda s, t, before: {JOURNAL_FILE: b"", HEAD_FILE: None},
    "emptied": lambda s, t, before: {JOURNAL_FILE: b"", HEAD_FILE: journal_files(s.key_dir)[HEAD_FILE]},
    "the copy from before the erasure": lambda s, t, before: before,
    "started afresh": lambda s, t, before: a_fresh_journal(s, t),  # the same bytes as the copy, made anew
    "another journal as long": lambda s, t, before: another_valid_journal(s, t, 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_lost_emptied_older_or_other_journal_stops_the_restore(
        site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:  # noqa: F811
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    before = journal_files(site.key_dir)
    erase(site, "psg_erase")
    lost = CASES[case](site, tmp_path, before)
    put_journal(site.key_dir, lost)

    code, output, restored = restore(site, tmp_path / "refused", file, monkeypatch)
    assert code == 2 and "restore stopped" in output and OVERRIDE in output, output
    assert subjects_in(restored) == 0  # nothing loaded
    assert journal_files(site.key_dir) == lost  # and no journal made, changed or adopted on the way
    code, output, restored = restore(site, tmp_path / "blank", file, monkeypatch, OVERRIDE, "  .  .  ")
    assert code == 2 and "at least 5 letters or digits" in output and subjects_in(restored) == 0, output

    # What the refusal prevents: let through, the erased person reads back in plain text.
    code, output, restored = restore(site, tmp_path / "let-through", file, monkeypatch, OVERRIDE, "drill: " + case)
    assert code == 0 and "may be readable again" in output, output
    assert read(restored, "psg_erase", "name") == "王小明"
    [override] = audit_details(restored, "backup.restore.journal_override")
    assert override["reason"] == "drill: " + case and override["head_key"] == 1 and override["head_backup"] == 0
    assert override["erasures_reapplied"] == (1 if case == "another journal as long" else 0)
    assert journal_files(site.key_dir) == lost  # the override makes no journal either


def test_the_intact_journal_restores_with_the_erasure_applied(site: Settings, tmp_path: Path,  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    erase(site, "psg_erase")
    code, output, restored = restore(site, tmp_path / "r", file, monkeypatch, OVERRIDE, "not needed")
    assert code == 0 and "1 erasures re-applied" in output and "readable again" not in output, output
    assert_fully_erased(restored, "psg_erase")
    assert audit_details(restored, "backup.restore.journal_override") == []  # nothing was overridden


def header_of(file: Path) -> dict[str, Any]:
    with file.open("rb") as handle:
        return backup._read_header(handle)[0]


def unbind_key_backup_key(settings: Settings, key_id: str) -> None:
    """Rewrap a key-backup key as keys were before they were bound to the journal (a key backup made by an
    earlier release, still inside its window)."""
    vault = build_vault(settings)
    entries = json.loads(vault.backup_keys.path.read_text())
    entry = vault.backup_keys.sealed(key_id)
    key = vault.open_key_backup_key(key_id)
    wrap = vault._key_backup_wrap(entry.kek_version, crypto.suite_of(entry.sealed))
    legacy = crypto.encrypt(crypto.suite_of(entry.sealed), wrap, key, f"tripguard/key-backup/{key_id}".encode())
    entries[key_id] |= {"wrapped": base64.b64encode(legacy).decode()}
    del entries[key_id]["journal"]
    vault.backup_keys.path.write_text(json.dumps(entries))


@pytest.mark.parametrize("bound", [True, False], ids=["key-bound", "key-from-before-binding"])
@pytest.mark.parametrize("case", ["shorter than the backup's head", "not leading to it"])
def test_a_journal_shorter_than_the_backups_head_or_not_leading_to_it(
        site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, bound: bool) -> None:  # noqa: F811
    """The backup is made after one erasure (its header says 1); a second person is erased after it."""
    add_subject(site, "psg_first", "韩梅梅")
    before_any = journal_files(site.key_dir)
    erase(site, "psg_first")
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    header, keys_header = header_of(file), header_of(tmp_path / "site.tgbk.keys")
    assert header["journal"]["count"] == keys_header["journal"]["count"] == 1
    erase(site, "psg_erase")
    lost = before_any if case.startswith("shorter") else another_valid_journal(site, tmp_path, 2)
    if not bound:  # a key backup made by an earlier release, its key not yet bound (the restore binds none)
        unbind_key_backup_key(site, str(keys_header["key_backup_id"]))
    put_journal(site.key_dir, lost)

    code, output, restored = restore(site, tmp_path / "refused", file, monkeypatch)
    assert code == 2 and "restore stopped" in output, output
    expected = "fewer than the 1" if case.startswith("shorter") else "does not lead to the one"
    assert expected in output and "this backup was made under" in output, output
    code, output, restored = restore(site, tmp_path / "let-through", file, monkeypatch, OVERRIDE, "drill")
    assert code == 0 and read(restored, "psg_erase", "name") == "王小明"


# -- 3. Erase, delete the journal, restore a backup made before: the key's binding refuses it ----------

def test_erase_then_delete_the_journal_then_restore_an_older_backup_is_refused(
        site: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))  # before any erasure: its headers say 0 erasures
    erase(site, "psg_erase")
    for name in (JOURNAL_FILE, HEAD_FILE):
        (site.key_dir / name).unlink()

    # Nothing recreates it: not building the vault (the service, any command), not a restore.
    build_vault(site)
    code, output, _ = restore(site, tmp_path / "r1", file, monkeypatch)
    assert code == 2 and "is missing" in output, output
    assert journal_files(site.key_dir) == {JOURNAL_FILE: None, HEAD_FILE: None}

    # No backup is made that could not say which erasures a restore must re-apply.
    for command in (["backup", "create", str(tmp_path / "later.tgbk")],
                    ["keys", "backup", str(tmp_path / "later.keys")]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2 and "could not say which erasures" in result.output, result.output
    # `keys init` will not start a new one quietly either ...
    result = CliRunner().invoke(cli, ["keys", "init"])
    assert result.exit_code == 2 and OVERRIDE in result.output, result.output
    for no_reason in ("     ", "\u3000" * 5, "....."):  # nor for a reason with no words (review #27)
        result = CliRunner().invoke(cli, ["keys", "init", OVERRIDE, no_reason])
        assert result.exit_code == 2 and "at least 5 letters or digits" in result.output, result.output
    assert journal_files(site.key_dir) == {JOURNAL_FILE: None, HEAD_FILE: None}
    # ... only at the operator's word, audited.
    result = CliRunner().invoke(cli, ["keys", "init", OVERRIDE, "disk lost, no copy"])
    assert result.exit_code == 0 and "new, empty erasure journal" in result.output, result.output
    # It starts with what the database shows shredded: the people erased before stay erased in what is
    # backed up from now on.
    assert [(e.subject_id, e.reason) for e in build_vault(site).journal.entries()] == [
        ("psg_erase", "journal restart: shredded in the database")]
    [restart] = audit_details(site, "keys.journal.restart")
    assert restart["reason"] == "disk lost, no copy"

    # A fresh journal agrees with every head of the old backup (0 erasures) ...
    assert header_of(file)["journal"]["count"] == header_of(tmp_path / "site.tgbk.keys")["journal"]["count"] == 0
    # ... but its key backup's key was bound to the erasure when it happened: refused.
    code, output, _ = restore(site, tmp_path / "r2", file, monkeypatch)
    assert code == 2 and "its key backup's key is bound to" in output, output  # (a new journal: not that one)
    # A later erasure on the new journal does not move the key onto it.
    add_subject(site, "psg_later", "李四")
    erase(site, "psg_later")
    code, output, _ = restore(site, tmp_path / "r3", file, monkeypatch)
    assert code == 2 and "its key backup's key is bound to" in output, output


def test_the_key_backup_keys_binding_cannot_be_changed_or_removed(site: Settings, tmp_path: Path,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    vault = build_vault(site)
    key_id = str(header_of(tmp_path / "site.tgbk.keys")["key_backup_id"])
    key = vault.open_key_backup_key(key_id)
    assert vault.key_backup_journal_head(key_id).count == 0  # type: ignore[union-attr]
    erase(site, "psg_erase")
    assert vault.key_backup_journal_head(key_id).count == 1  # type: ignore[union-attr]
    assert vault.open_key_backup_key(key_id) == key
    original = vault.backup_keys.path.read_text()
    for change in ({"journal": {"count": 0, "last": json.loads(original)[key_id]["journal"]["last"]}},
                   {"journal": {"count": 0, "last": "fb" * 32}}):
        entries = json.loads(original)
        entries[key_id] |= change
        vault.backup_keys.path.write_text(json.dumps(entries))
        with pytest.raises(keybackup.KeyBackupKeyChanged):
            vault.open_key_backup_key(key_id)
    entries = json.loads(original)
    del entries[key_id]["journal"]  # passed off as a key from before the binding
    vault.backup_keys.path.write_text(json.dumps(entries))
    with pytest.raises(keybackup.KeyBackupKeyChanged):
        vault.open_key_backup_key(key_id)
    code, output, _ = restore(site, tmp_path / "r", file, monkeypatch)
    assert code == 2 and "backup-keys.json was changed" in output, output


# -- 4. When a journal may be started -------------------------------------------------------------------

@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> KeyringFile:
    return KeyringFile(tmp_path_factory.mktemp("ring") / "keyring.json", "correct horse battery")


def test_a_journal_is_started_only_in_a_key_folder_never_used(keyring: KeyringFile, tmp_path: Path, db: Session,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    new = tmp_path / "new"
    assert vault_in(new, keyring, crypto.Suite.AES).journal.entries() == []
    assert (new / HEAD_FILE).exists() and (new / JOURNAL_FILE).exists()
    # A restore never starts one, even in a new folder.
    vault_in(tmp_path / "restore", keyring, crypto.Suite.AES, journal_may_start=False)
    assert journal_files(tmp_path / "restore") == {JOURNAL_FILE: None, HEAD_FILE: None}

    logger = logging.getLogger("tripguard")
    logger.addHandler(caplog.handler)  # once an app has configured logging, ours does not propagate to the root
    try:
        for trace in (keybackup.REGISTER_FILE, keybackup.KEYS_FILE, JOURNAL_FILE):
            _a_used_folder_without_a_journal_is_reported_not_restarted(tmp_path, trace, keyring, db, caplog)
    finally:
        logger.removeHandler(caplog.handler)


def _a_used_folder_without_a_journal_is_reported_not_restarted(tmp_path: Path, trace: str, keyring: KeyringFile,
                                                                db: Session, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / trace
    folder.mkdir()
    (folder / trace).write_text("{}" if trace == keybackup.KEYS_FILE else "")
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        vault = vault_in(folder, keyring, crypto.Suite.AES)  # builds: nothing else stops
    assert "erasure journal" in caplog.text and "missing" in caplog.text, trace
    assert not (folder / HEAD_FILE).exists(), trace
    with pytest.raises(JournalError):
        vault.journal.entries()
    with pytest.raises(ErasureJournalUnavailable):  # nobody is erased where no restore could keep them erased
        vault.shred(db, subject_id="psg_x", reason="subject_request")


def test_only_a_journal_with_erasures_is_adopted_as_one_from_before_authentication(keyring: KeyringFile,
                                                                                   tmp_path: Path) -> None:
    v1 = b'{"subject_id": "psg_old", "at": "2026-11-01T00:00:00+00:00", "reason": "subject_request"}\n'
    for name, content in (("empty", b""), ("blank lines", b"\n \n"), ("not json", b"psg_old\n"),
                          ("no subject", b'{"at": "2026-11-01"}\n')):
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        (folder / JOURNAL_FILE).write_bytes(content)
        vault = vault_in(folder, keyring, crypto.Suite.AES)
        assert not (folder / HEAD_FILE).exists(), name
        with pytest.raises(JournalError):
            vault.journal.entries()
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / JOURNAL_FILE).write_bytes(v1)
    assert vault_in(folder, keyring, crypto.Suite.AES).journal.subject_ids() == ["psg_old"]
    # Where keys were bound to an authenticated journal, a head-less one is a replacement, not an old journal.
    folder = tmp_path / "bound"
    vault = vault_in(folder, keyring, crypto.Suite.AES)
    vault.new_key_backup_key()
    (folder / HEAD_FILE).unlink()
    (folder / JOURNAL_FILE).write_bytes(v1)
    with pytest.raises(JournalError):
        vault_in(folder, keyring, crypto.Suite.AES).journal.entries()


def test_keys_bound_to_another_journal_stay_bound_to_it(keyring: KeyringFile, tmp_path: Path, db: Session) -> None:
    vault: Vault = vault_in(tmp_path, keyring, crypto.Suite.AES)
    key_id, _ = vault.new_key_backup_key()
    vault.shred(db, subject_id="psg_1", reason="subject_request")
    bound = vault.key_backup_journal_head(key_id)
    assert bound is not None and bound.count == 1
    assert len(vault.journal.start_after_loss()) == 2  # the old files kept beside, renamed
    vault.shred(db, subject_id="psg_2", reason="subject_request")
    vault.shred(db, subject_id="psg_3", reason="subject_request")
    assert vault.key_backup_journal_head(key_id) == bound


def test_a_restore_starts_no_journal_even_where_it_fails(site: Settings, tmp_path: Path,  # noqa: F811
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "site.tgbk"
    cli_ok("backup", "create", str(file))
    monkeypatch.setenv("TRIPGUARD_KEY_DIR", str(tmp_path / "new-keys"))
    code, output, _ = restore(site, tmp_path / "r", file, monkeypatch)
    assert code == 2 and "cannot open the backup" in output, output
    assert journal_files(tmp_path / "new-keys") == {JOURNAL_FILE: None, HEAD_FILE: None}


def test_keys_from_before_the_binding_are_bound_once_to_the_journal_as_it_is(site: Settings) -> None:  # noqa: F811
    vault = build_vault(site)
    key_id, _ = vault.new_key_backup_key()
    erase(site, "psg_erase")
    unbind_key_backup_key(site, key_id)
    assert build_vault(site, journal_may_start=False).key_backup_journal_head(key_id) is None  # not by a restore
    assert build_vault(site).key_backup_journal_head(key_id).count == 1  # type: ignore[union-attr]


def test_a_journal_cut_short_with_a_head_rewritten_to_match_is_refused(tmp_path: Path) -> None:
    """Lines carry their own MACs, so anyone who can read the folder can name the last MAC of a shorter
    journal: only the head's own MAC keeps the journal from being cut back to before an erasure."""
    journal = ErasureJournal(tmp_path, key=lambda: b"k" * 32)
    journal.prepare(may_start=True)
    for number in range(3):
        journal.append(f"psg_{number}", "subject_request")
    shorter = journal.chain().macs[1]
    lines = (tmp_path / JOURNAL_FILE).read_bytes().splitlines(keepends=True)
    (tmp_path / JOURNAL_FILE).write_bytes(b"".join(lines[:2]))  # psg_2's erasure taken out
    head = json.loads((tmp_path / HEAD_FILE).read_bytes())
    (tmp_path / HEAD_FILE).write_text(json.dumps(head | {"count": 2, "last": shorter.hex()}))
    with pytest.raises(JournalError, match="was changed or made with other keys"):
        journal.entries()
    (tmp_path / HEAD_FILE).write_text(json.dumps(head | {"mac": "00" * 32}))  # the whole journal, a forged MAC
    (tmp_path / JOURNAL_FILE).write_bytes(b"".join(lines))
    with pytest.raises(JournalError, match="was changed or made with other keys"):
        journal.entries()
    (tmp_path / HEAD_FILE).write_text(json.dumps(head))
    assert journal.subject_ids() == ["psg_0", "psg_1", "psg_2"]
