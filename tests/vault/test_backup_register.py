"""`backups.jsonl`, the register of backups made: read back field by field, and which kept backups a
key-encryption key version is still needed by (what `tripguard keys retire` refuses over)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tripguard.vault import keybackup
from tripguard.vault.keybackup import BackupRecord, BackupRegister

pytestmark = pytest.mark.no_database

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def record(name: str, kind: str, keep_until: datetime, versions: tuple[int, ...]) -> BackupRecord:
    return BackupRecord(name=name, kind=kind, created_at=NOW - timedelta(days=3), keep_until=keep_until,
                        kek_versions=versions)


def test_the_register_reads_back_each_backup_as_it_was_added(tmp_path: Path) -> None:
    register = BackupRegister(tmp_path)
    assert register.records() == []
    made = [record("site.tgbk", "data", NOW + timedelta(days=30), (1, 2)),
            record("site.tgbk.keys", "keys", NOW + timedelta(days=7), (2,))]
    register.add(made[0])
    with register.path.open("a") as handle:
        handle.write("\n   \n")  # blank lines (a hand edit, an interrupted write) are skipped
    register.add(made[1])
    records = register.records()
    assert records == made
    assert register.path.stat().st_mode & 0o777 == 0o600
    assert [(r.name, r.kind, r.created_at, r.keep_until, r.kek_versions) for r in records] == [
        ("site.tgbk", "data", NOW - timedelta(days=3), NOW + timedelta(days=30), (1, 2)),
        ("site.tgbk.keys", "keys", NOW - timedelta(days=3), NOW + timedelta(days=7), (2,))]


def test_the_register_reads_a_line_written_by_hand(tmp_path: Path) -> None:
    (tmp_path / keybackup.REGISTER_FILE).write_text(
        '{"name": "old.tgbk", "kind": "data", "created_at": "2026-10-01T00:00:00+00:00",'
        ' "keep_until": "2027-01-01T08:00:00+08:00", "kek_versions": [3]}\n')
    assert BackupRegister(tmp_path).records() == [BackupRecord(
        name="old.tgbk", kind="data", created_at=datetime(2026, 10, 1, tzinfo=UTC),
        keep_until=datetime(2027, 1, 1, tzinfo=UTC), kek_versions=(3,))]


def test_a_version_is_needed_by_the_backups_kept_past_now_that_it_opens(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keybackup, "utcnow", lambda: NOW)
    register = BackupRegister(tmp_path)
    assert register.needing(1) == []
    kept = record("kept.tgbk", "data", NOW + timedelta(microseconds=1), (1, 2))
    other = record("other.tgbk", "keys", NOW + timedelta(days=5), (2,))
    for made in (kept, other, record("ends-now.tgbk", "data", NOW, (1,)),
                 record("ended.tgbk", "data", NOW - timedelta(days=1), (1, 2))):
        register.add(made)
    assert register.needing(1) == [kept]
    assert register.needing(2) == [kept, other]
    assert register.needing(3) == []


@pytest.mark.parametrize("line", [
    "{not json",
    '{"name": "x", "kind": "data"}',
    ('{"name": "x", "kind": "data", "created_at": "yesterday", "keep_until": "2027-01-01T00:00:00+00:00",'
    ' "kek_versions": [1]}'),
    ('{"name": "x", "kind": "data", "created_at": "2026-10-01T00:00:00+00:00", "keep_until": "2027-01-01T00:00:00",'
    ' "kek_versions": [1]}'),
    ('{"name": "x", "kind": "data", "created_at": "2026-10-01T00:00:00+00:00",'
    ' "keep_until": "2027-01-01T00:00:00+00:00", "kek_versions": ["one"]}'),
    '["a list"]',
])
def test_a_damaged_line_is_named_and_stops_the_reader(tmp_path: Path, line: str) -> None:
    register = BackupRegister(tmp_path)
    register.add(record("good.tgbk", "data", NOW + timedelta(days=30), (1,)))
    with register.path.open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(keybackup.BackupKeysDamaged, match="line 2"):
        register.needing(1)
