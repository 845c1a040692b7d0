"""`tripguard backup verify`: open a data backup and its key backup and check them whole, writing nothing.

Checked: the headers; that this key folder opens both; every chunk of both files (authenticated, in
order, the final one present, nothing after it); that the key backup is the one made with the data
backup (or, given with --keys, one made since); that the backup is at this TripGuard's schema revision
and holds exactly its tables; that every row decodes to its columns' types; and the row counts the
headers took in the backup's snapshot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tripguard.core.migrations import head_revision
from tripguard.vault import backup
from tripguard.vault.backup import KEY_TABLE, BackupError
from tripguard.vault.service import Vault


@dataclass(frozen=True)
class VerifyReport:
    path: Path
    keys_path: Path
    created_at: str
    schema_revision: str | None
    rows: dict[str, int]  # the data backup's tables
    data_keys: int
    counts_recorded: bool  # format 1 backups carry no row counts
    key_backup_opens_until: datetime | None


def _check_schema(header: dict[str, Any]) -> None:
    head = head_revision()
    if header["schema_revision"] != head:
        raise BackupError(f"the backup is at schema {header['schema_revision']}, this TripGuard at {head}: its tables "
                          "cannot be checked here; verify it with the TripGuard version that made it")
    ours = {t.name for t in backup._data_tables()}
    listed = header["tables"]
    if not isinstance(listed, list):
        raise BackupError("the backup header is damaged: its table list is not a list")
    for name in listed:
        if name not in ours:
            raise BackupError(f"the backup holds table {name!r}, which is not part of schema {head}")
    missing = sorted(ours - set(listed))
    if missing:
        raise BackupError(f"the backup lacks table {missing[0]} of schema {head}")


def verify_backup(vault: Vault, path: Path, *, keys_path: Path | None = None) -> VerifyReport:
    """Raises BackupError naming the first damage found."""
    beside, keys_path = keys_path is None, keys_path or backup.keys_file_for(path)
    rows: dict[str, int] = {}
    key_rows: dict[str, int] = {}
    with path.open("rb") as handle, keys_path.open("rb") as keys_handle:
        header, header_bytes, key = backup._open_data_header(handle, vault)
        _check_schema(header)
        codecs = backup._row_codecs([t for t in backup._data_tables() if t.name in header["tables"]])
        for _ in backup._records(backup._plaintext_lines(handle, key, hashlib.sha256(header_bytes).digest()),
                                 codecs, header, rows):
            pass
        backup.check_counts(header, rows)
        missing = [name for name in header["tables"] if name not in rows]
        if missing:
            raise BackupError(f"table {missing[0]} is missing from the backup's content")
        # The data backup is whole (its header authenticated by every chunk): now its key backup.
        keys_header, keys_header_bytes, keys_key = backup._open_keys_header(keys_handle, vault, header, beside=beside)
        if keys_header.get("tables", [KEY_TABLE]) != [KEY_TABLE]:
            raise BackupError("the key backup's header is damaged: it lists other tables")
        for _ in backup._records(backup._plaintext_lines(keys_handle, keys_key,
                                                         hashlib.sha256(keys_header_bytes).digest()),
                                 backup._row_codecs([backup._key_table()]), keys_header, key_rows):
            pass
        backup.check_counts(keys_header, key_rows)
    return VerifyReport(path=path, keys_path=keys_path, created_at=header["created_at"],
                        schema_revision=header["schema_revision"], rows=rows, data_keys=key_rows.get(KEY_TABLE, 0),
                        counts_recorded="rows" in header,
                        key_backup_opens_until=vault.backup_keys.expires_at(str(keys_header["key_backup_id"])))
