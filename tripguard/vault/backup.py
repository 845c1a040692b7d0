"""Encrypted, authenticated backups of the whole database, on SQLite and PostgreSQL alike.

File: `TGBK1\\n`, a 4-byte header length, the JSON header (schema revision, suite, KEK version,
the backup key wrapped by that KEK), then chunks of `[4-byte length][AEAD ciphertext]`. Each chunk's
associated data is the header's SHA-256, the chunk index and a final flag: a changed header, a
reordered, altered or missing chunk, or a cut-off file all fail to restore, and nothing is written.

The content is one consistent snapshot (a single read-only transaction), as JSON lines per table.
A restore goes into an empty database at the same schema revision, in one transaction, and then
re-applies the erasure journal so that nobody erased since the backup comes back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from alembic.migration import MigrationContext
from sqlalchemy import Engine, LargeBinary, Table, func, insert, select, text
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.core.db import READ_ONLY, UTCDateTime
from tripguard.models import metadata
from tripguard.vault import crypto
from tripguard.vault.crypto import Suite
from tripguard.vault.service import Vault

MAGIC = b"TGBK1\n"
CHUNK_BYTES = 1 << 20
INSERT_BATCH = 1000


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    schema_revision: str | None
    rows: dict[str, int]


def _encode(table: Table, row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.columns:
        value = row._mapping[column]
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


def create_backup(engine: Engine, vault: Vault, path: Path) -> BackupSummary:
    """Write an encrypted snapshot of every table to `path` (written to a temporary name, then moved)."""
    backup_key = crypto.new_key(vault.suite)
    version, wrapped = vault.wrap_backup_key(backup_key)
    rows: dict[str, int] = {}
    tmp = path.with_name(path.name + ".partial")
    with _snapshot_connection(engine) as connection, connection.begin():
        revision = MigrationContext.configure(connection).get_current_revision()
        header = {"format": 1, "created_at": utcnow().isoformat(), "schema_revision": revision,
                  "source_dialect": engine.dialect.name, "suite": vault.suite.value, "kek_version": version,
                  "wrapped_key": base64.b64encode(wrapped).decode(),
                  "tables": [t.name for t in metadata.sorted_tables]}
        header_bytes = json.dumps(header, sort_keys=True).encode()
        with tmp.open("wb") as handle:
            handle.write(MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes)
            writer = _ChunkWriter(handle, vault.suite, backup_key, hashlib.sha256(header_bytes).digest())
            for table in metadata.sorted_tables:
                writer.write(json.dumps({"table": table.name}).encode() + b"\n")
                count = 0
                result = connection.execution_options(yield_per=2000).execute(select(table))
                for row in result:
                    writer.write(json.dumps(_encode(table, row), ensure_ascii=False).encode() + b"\n")
                    count += 1
                rows[table.name] = count
            writer.close()
            handle.flush()
    tmp.replace(path)
    return BackupSummary(path=path, schema_revision=revision, rows=rows)


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


def restore_backup(engine: Engine, vault: Vault, path: Path) -> BackupSummary:
    """Load a backup into an empty database at the same revision; all or nothing."""
    tables = {t.name: t for t in metadata.sorted_tables}
    rows: dict[str, int] = {}
    with path.open("rb") as handle:
        header, header_bytes = _read_header(handle)
        try:
            key = vault.unwrap_backup_key(int(header["kek_version"]), base64.b64decode(header["wrapped_key"]))
        except Exception as exc:  # any failure here means these keys cannot open this backup
            raise BackupError(f"this key source cannot open the backup: {exc}") from exc
        with Session(engine) as session, session.begin():
            connection = session.connection()
            revision = MigrationContext.configure(connection).get_current_revision()
            if revision != header["schema_revision"]:
                raise BackupError(f"the database is at schema {revision}, the backup at "
                                  f"{header['schema_revision']}: run `tripguard db upgrade {header['schema_revision']}`")
            for table in tables.values():
                if connection.execute(select(func.count()).select_from(table)).scalar():
                    raise BackupError(f"the target database is not empty (table {table.name}); restore "
                                      "into a freshly migrated database")
            current: Table | None = None
            batch: list[dict[str, Any]] = []

            def flush() -> None:
                if current is not None and batch:
                    connection.execute(insert(current), batch)
                    batch.clear()

            for line in _plaintext_lines(handle, key, hashlib.sha256(header_bytes).digest()):
                record = json.loads(line)
                if set(record) == {"table"}:
                    flush()
                    current = tables[record["table"]]
                    rows[current.name] = 0
                    continue
                assert current is not None
                batch.append(_decode(current, record))
                rows[current.name] += 1
                if len(batch) >= INSERT_BATCH:
                    flush()
            flush()
            if engine.dialect.name == "postgresql":
                _reset_identity_sequences(connection)
            vault.reapply_journal(session)
    return BackupSummary(path=path, schema_revision=header["schema_revision"], rows=rows)


def _reset_identity_sequences(connection: Any) -> None:
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True:
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"COALESCE((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"))



