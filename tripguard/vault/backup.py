"""Encrypted, authenticated backups of the whole database, on SQLite and PostgreSQL alike.

`backup create FILE` writes two files from one consistent snapshot (a single read-only transaction):
- FILE, the data backup: every table **except** `vault_data_keys`, sealed under a backup key wrapped
  by the current KEK. It holds no data key, so with the keyring alone it opens only what is not
  personal (ids, times, the audit log); people's sealed fields stay noise. Blind indexes (columns
  marked `BLIND_INDEX_INFO`) are written empty: keyed by the keyring, they would confirm a guess.
- FILE.keys, the key backup: the rows of `vault_data_keys`, sealed under a key that lives only in
  the key folder and is destroyed when the key-backup window passes (keybackup.py).

File format (both): `TGBK1\n`, a 4-byte header length, the JSON header, then chunks of `[4-byte
length][AEAD ciphertext]`. Each chunk's associated data is the header's SHA-256, the chunk index and
a final flag: a changed header, a reordered, altered or missing chunk, or a cut-off file all fail to
restore, and nothing is written.

A restore goes into an empty database at the same schema revision, in one transaction: the data,
then the keys of a key backup made no earlier than the data backup, then the erasure journal
(authenticated; a changed one stops the restore), so that nobody erased since comes back.

Both headers record the erasure-journal head the backup was made under (`journal`: count and last
MAC), and the key backup's key is bound to the journal's latest head (keybackup.py). Before loading
anything, `check_journal_for_restore` refuses a journal that is missing, damaged, emptied, shorter
than any of those heads or not leading to them, unless the operator accepts the loss (audited).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, LargeBinary, Table, func, insert, select, text
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.core.db import READ_ONLY, UTCDateTime
from tripguard.models import metadata
from tripguard.vault import crypto
from tripguard.vault.crypto import Suite
from tripguard.vault.journal import Erasure, Head, JournalError
from tripguard.vault.keybackup import BackupRecord, KeyBackupExpired
from tripguard.vault.service import BLIND_INDEX_INFO, Vault

MAGIC = b"TGBK1\n"
CHUNK_BYTES = 1 << 20
INSERT_BATCH = 1000


class BackupError(RuntimeError):
    pass


KEY_TABLE = "vault_data_keys"


@dataclass(frozen=True)
class JournalOverride:
    """A restore that went on, at the operator's word, without a journal that holds its heads."""

    reason: str
    problem: str
    heads: dict[str, int]  # erasure counts recorded by the backup, its key backup, and bound to that one's key
    journal_count: int | None  # erasures in the journal as found; None when it could not be read
    reapplied: int


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    schema_revision: str | None
    rows: dict[str, int]
    keys_path: Path | None = None
    erasures: int = 0
    journal_override: JournalOverride | None = None


def keys_file_for(path: Path) -> Path:
    return path.with_name(path.name + ".keys")


def _data_tables() -> list[Table]:
    return [t for t in metadata.sorted_tables if t.name != KEY_TABLE]


def _key_table() -> Table:
    return metadata.tables[KEY_TABLE]


def _written(column: Column[Any]) -> bool:
    """Whether a column's values go into a data backup: not a blind index (keyed by the keyring, it would
    confirm an erased person's guessed value forever; the restore rebuilds it from what still opens)."""
    return BLIND_INDEX_INFO not in column.info


def _encode(table: Table, row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.columns:
        value = row._mapping[column] if _written(column) else None
        if value is None:
            out[column.name] = None
        elif isinstance(column.type, LargeBinary):
            out[column.name] = base64.b64encode(value).decode()
        elif isinstance(column.type, UTCDateTime):
            out[column.name] = value.isoformat()
        else:
            out[column.name] = value
    return out


def _decode(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.columns:
        value = values.get(column.name)
        if value is not None and isinstance(column.type, LargeBinary):
            value = base64.b64decode(value)
        elif value is not None and isinstance(column.type, UTCDateTime):
            value = datetime.fromisoformat(value)
        out[column.name] = value
    return out


def _aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return header_digest + struct.pack(">QB", index, 1 if final else 0)


class _ChunkWriter:
    def __init__(self, handle: IO[bytes], suite: Suite, key: bytes, header_digest: bytes) -> None:
        self.handle, self.suite, self.key, self.digest = handle, suite, key, header_digest
        self.buffer = bytearray()
        self.index = 0

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) > CHUNK_BYTES:
            self._emit(bytes(self.buffer[:CHUNK_BYTES]), final=False)
            del self.buffer[:CHUNK_BYTES]

    def close(self) -> None:
        self._emit(bytes(self.buffer), final=True)

    def _emit(self, plaintext: bytes, *, final: bool) -> None:
        sealed = crypto.encrypt(self.suite, self.key, plaintext, _aad(self.digest, self.index, final))
        self.handle.write(struct.pack(">I", len(sealed)) + sealed)
        self.index += 1


def _snapshot_connection(engine: Engine):  # type: ignore[no-untyped-def]
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        return connection.execution_options(isolation_level="SERIALIZABLE", postgresql_readonly=True,
                                            postgresql_deferrable=True)
    return connection.execution_options(**{READ_ONLY: True})


def _write_file(connection: Any, path: Path, header: dict[str, Any], key: bytes, suite: Suite,
                tables: list[Table]) -> dict[str, int]:
    """Seal `tables` as read through `connection` into `path` (written to a temporary name, then moved)."""
    rows: dict[str, int] = {}
    header_bytes = json.dumps(header, sort_keys=True).encode()
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes)
        writer = _ChunkWriter(handle, suite, key, hashlib.sha256(header_bytes).digest())
        for table in tables:
            writer.write(json.dumps({"table": table.name}).encode() + b"\n")
            count = 0
            result = connection.execution_options(yield_per=2000).execute(select(table))
            for row in result:
                writer.write(json.dumps(_encode(table, row), ensure_ascii=False).encode() + b"\n")
                count += 1
            rows[table.name] = count
        writer.close()
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return rows


def _key_versions(connection: Any) -> tuple[int, ...]:
    table = _key_table()
    return tuple(sorted(connection.execute(select(table.c.kek_version).where(
        table.c.wrapped_key.is_not(None)).distinct()).scalars()))


def _journal_head(vault: Vault) -> dict[str, object]:
    """The erasure-journal head a backup is made under (read once the snapshot has begun: every erasure
    committed before it was journaled before it committed)."""
    try:
        return vault.journal.chain().head.as_dict()
    except JournalError as exc:
        raise BackupError(f"{exc}. A backup made now could not say which erasures a restore must re-apply: put "
                          "the journal back from a copy of the key folder, or accept its loss "
                          "(`tripguard keys init --accept-journal-loss REASON`)") from exc


def _write_key_backup(connection: Any, vault: Vault, path: Path, *, revision: str | None, now: datetime,
                      data_backup: str | None, journal: dict[str, object]) -> int:
    key_id, key = vault.new_key_backup_key()
    header = {"format": 1, "kind": "keys", "created_at": now.isoformat(), "schema_revision": revision,
              "key_backup_id": key_id, "suite": vault.suite.value, "data_backup": data_backup,
              "tables": [KEY_TABLE], "journal": journal}
    rows = _write_file(connection, path, header, key, vault.suite, [_key_table()])
    versions = tuple(sorted(set(_key_versions(connection)) | {vault.keys.current_version()}))
    vault.register.add(BackupRecord(name=str(path), kind="keys", created_at=now,
                                    keep_until=now + vault.backup_keys.window, kek_versions=versions))
    return rows[KEY_TABLE]


def create_backup(engine: Engine, vault: Vault, path: Path, *, retention_days: int = 90) -> BackupSummary:
    """Write the data backup to `path` and its key backup to `path.keys`, from one snapshot."""
    backup_key = crypto.new_key(vault.suite)
    version, wrapped = vault.wrap_backup_key(backup_key)
    keys_path = keys_file_for(path)
    with _snapshot_connection(engine) as connection, connection.begin():
        revision = MigrationContext.configure(connection).get_current_revision()
        now = utcnow()
        journal = _journal_head(vault)
        header = {"format": 1, "kind": "data", "created_at": now.isoformat(), "schema_revision": revision,
                  "source_dialect": engine.dialect.name, "suite": vault.suite.value, "kek_version": version,
                  "wrapped_key": base64.b64encode(wrapped).decode(),
                  "tables": [t.name for t in _data_tables()], "journal": journal}
        rows = _write_file(connection, path, header, backup_key, vault.suite, _data_tables())
        rows[KEY_TABLE] = _write_key_backup(connection, vault, keys_path, revision=revision, now=now,
                                            data_backup=path.name, journal=journal)
    vault.register.add(BackupRecord(name=str(path), kind="data", created_at=now,
                                    keep_until=now + timedelta(days=retention_days), kek_versions=(version,)))
    return BackupSummary(path=path, schema_revision=revision, rows=rows, keys_path=keys_path)


def create_key_backup(engine: Engine, vault: Vault, path: Path) -> int:
    """A key backup alone (`tripguard keys backup`): today's keys, for restoring an older data backup."""
    with _snapshot_connection(engine) as connection, connection.begin():
        revision = MigrationContext.configure(connection).get_current_revision()
        return _write_key_backup(connection, vault, path, revision=revision, now=utcnow(), data_backup=None,
                                 journal=_journal_head(vault))


def _read_header(handle: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    if handle.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a TripGuard backup")
    (length,) = struct.unpack(">I", handle.read(4))
    header_bytes = handle.read(length)
    try:
        return json.loads(header_bytes), header_bytes
    except ValueError as exc:
        raise BackupError("the backup header is damaged") from exc


def _plaintext_lines(handle: IO[bytes], key: bytes, digest: bytes) -> Iterator[bytes]:
    index, pending = 0, b""
    while True:
        prefix = handle.read(4)
        if len(prefix) < 4:
            raise BackupError("the backup is cut off: its final chunk is missing")
        (length,) = struct.unpack(">I", prefix)
        sealed = handle.read(length)
        plaintext = None
        for final in (False, True):
            try:
                plaintext = crypto.decrypt(key, sealed, _aad(digest, index, final))
                break
            except crypto.DecryptionFailed:
                continue
        if plaintext is None:
            raise BackupError(f"chunk {index} of the backup was altered, moved or belongs elsewhere")
        pending += plaintext
        *lines, pending = pending.split(b"\n")
        yield from lines
        index += 1
        if final:
            if handle.read(1):
                raise BackupError("data follows the final chunk")
            if pending:
                yield pending
            return


def _open_data_header(handle: IO[bytes], vault: Vault) -> tuple[dict[str, Any], bytes, bytes]:
    header, header_bytes = _read_header(handle)
    if header.get("kind", "data") != "data":
        raise BackupError("this is a key backup; give the data backup (its .keys file is found beside it)")
    try:
        key = vault.unwrap_backup_key(int(header["kek_version"]), base64.b64decode(header["wrapped_key"]))
    except Exception as exc:  # any failure here means these keys cannot open this backup
        raise BackupError(f"this key source cannot open the backup: {exc}") from exc
    return header, header_bytes, key


def _open_keys_header(handle: IO[bytes], vault: Vault, data_header: dict[str, Any]) -> tuple[bytes, bytes]:
    header, header_bytes = _read_header(handle)
    if header.get("kind") != "keys":
        raise BackupError("the --keys file is not a key backup")
    if datetime.fromisoformat(header["created_at"]) < datetime.fromisoformat(data_header["created_at"]):
        raise BackupError("the key backup is older than the data backup: people added in between would have "
                          "no keys; use the key backup made with it, or a newer one (`tripguard keys backup`)")
    try:
        key = vault.open_key_backup_key(str(header["key_backup_id"]))
    except KeyBackupExpired as exc:
        raise BackupError(str(exc)) from exc
    return header_bytes, key


def _load(connection: Any, tables: dict[str, Table], lines: Iterator[bytes], rows: dict[str, int]) -> None:
    current: Table | None = None
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if current is not None and batch:
            connection.execute(insert(current), batch)
            batch.clear()

    for line in lines:
        record = json.loads(line)
        if set(record) == {"table"}:
            flush()
            if record["table"] not in tables:
                raise BackupError(f"the backup holds table {record['table']!r}, which does not belong there")
            current = tables[record["table"]]
            rows[current.name] = 0
            continue
        if current is None:
            raise BackupError("the backup's content does not start with a table")
        batch.append(_decode(current, record))
        rows[current.name] += 1
        if len(batch) >= INSERT_BATCH:
            flush()
    flush()


_HEAD_OF = {"backup": "this backup was made under", "key_backup": "its key backup was made under",
            "key": "its key backup's key is bound to"}


def _recorded_heads(vault: Vault, data_header: dict[str, Any], keys_header: dict[str, Any]) -> dict[str, Head]:
    """The journal heads a restore must find (backups and keys made before heads have none)."""
    try:
        recorded = {"backup": Head.parse(data_header.get("journal")),
                    "key_backup": Head.parse(keys_header.get("journal")),
                    "key": vault.key_backup_journal_head(str(keys_header["key_backup_id"]))}
    except KeyBackupExpired as exc:
        raise BackupError(str(exc)) from exc
    return {name: head for name, head in recorded.items() if head is not None}


def check_journal_for_restore(vault: Vault, data_header: dict[str, Any], keys_header: dict[str, Any], *,
                              accept_journal_loss: str | None = None
                              ) -> tuple[list[Erasure] | None, JournalOverride | None]:
    """The erasure journal must be there, verify end to end, and contain (and lead to) every head the
    backup, its key backup and that one's key recorded: otherwise people erased since could come back.

    Returns (None, None) when it does. Otherwise the restore stops, unless the operator accepts the
    loss with a reason: then (what can still be re-applied, the override to audit)."""
    heads = _recorded_heads(vault, data_header, keys_header)
    chain = None
    try:
        chain = vault.journal.chain()
        problem = next((p for name, head in heads.items() if (p := chain.problem(head, _HEAD_OF[name])) is not None),
                       None)
    except JournalError as exc:
        problem = str(exc)
    if problem is None:
        return None, None
    if not (accept_journal_loss or "").strip():
        raise BackupError(
            f"restore stopped: {problem}. Put erasure-journal.jsonl and erasure-journal.head back from a copy of "
            "the key folder taken after the last erasure. Only if the journal is lost for good: run again with "
            "--accept-journal-loss REASON; people erased after this backup was made may then be readable again "
            "(it is recorded in the audit log)")
    entries = chain.entries if chain is not None else vault.journal.salvage()
    return entries, JournalOverride(reason=str(accept_journal_loss).strip(), problem=problem,
                                    heads={name: head.count for name, head in heads.items()},
                                    journal_count=None if chain is None else len(chain.entries),
                                    reapplied=len(entries))


def restore_backup(engine: Engine, vault: Vault, path: Path, *, keys_path: Path | None = None,
                   after_erasures: Callable[[Session, list[Erasure]], None] | None = None,
                   rebuild_blind_indexes: Callable[[Session, Vault], object] | None = None,
                   accept_journal_loss: str | None = None) -> BackupSummary:
    """Load a backup and its key backup into an empty database at the same revision; all or nothing.

    `after_erasures` runs inside the restore's transaction with the journal's erasures (the privacy
    domain clears blind indexes, marks people erased and keeps their deletion records); then
    `rebuild_blind_indexes` recomputes the blind indexes the backup left out, from what still opens.
    `accept_journal_loss` (the operator's reason) lets it go on without a journal that holds the
    backup's heads (see check_journal_for_restore)."""
    keys_path = keys_path or keys_file_for(path)
    rows: dict[str, int] = {}
    with path.open("rb") as handle, keys_path.open("rb") as keys_handle:
        header, header_bytes, key = _open_data_header(handle, vault)
        keys_header_bytes, keys_key = _open_keys_header(keys_handle, vault, header)
        salvaged, override = check_journal_for_restore(vault, header, json.loads(keys_header_bytes),
                                                       accept_journal_loss=accept_journal_loss)
        with Session(engine) as session, session.begin():
            connection = session.connection()
            revision = MigrationContext.configure(connection).get_current_revision()
            if revision != header["schema_revision"]:
                raise BackupError(f"the database is at schema {revision}, the backup at "
                                  f"{header['schema_revision']}: run `tripguard db upgrade {header['schema_revision']}`")
            for table in metadata.sorted_tables:
                if connection.execute(select(func.count()).select_from(table)).scalar():
                    raise BackupError(f"the target database is not empty (table {table.name}); restore "
                                      "into a freshly migrated database")
            _load(connection, {t.name: t for t in _data_tables()},
                  _plaintext_lines(handle, key, hashlib.sha256(header_bytes).digest()), rows)
            _load(connection, {KEY_TABLE: _key_table()},
                  _plaintext_lines(keys_handle, keys_key, hashlib.sha256(keys_header_bytes).digest()), rows)
            if engine.dialect.name == "postgresql":
                _reset_identity_sequences(connection)
            try:
                erasures = vault.reapply_journal(session, salvaged)
            except JournalError as exc:
                raise BackupError(f"restore stopped: {exc}") from exc
            if after_erasures is not None:
                after_erasures(session, erasures)
            if rebuild_blind_indexes is not None:
                rebuild_blind_indexes(session, vault)
    return BackupSummary(path=path, schema_revision=header["schema_revision"], rows=rows, keys_path=keys_path,
                         erasures=len({e.subject_id for e in erasures}), journal_override=override)


def _reset_identity_sequences(connection: Any) -> None:
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True:
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"COALESCE((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"))



