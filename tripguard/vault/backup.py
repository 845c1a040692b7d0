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

Each column's value is written by its type's codec (codec.py). The data header carries every table's row
count, taken in the same snapshot: a restore and `backup verify` check them. Both files are written
under `.partial` names and moved into place only when both are complete: a backup that fails (a value
no codec can carry, a full disk) leaves no file, no key-backup key and no register entry behind, and
its error names the table and column.

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
import contextlib
import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, Table, func, insert, inspect, select, text
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.core.db import NOT_BACKED_UP, READ_ONLY, Base
from tripguard.core.ids import new_id
from tripguard.core.types import visible_reason
from tripguard.vault import crypto
from tripguard.vault.codec import FORMAT, LEGACY_FORMAT, CodecError, RowCodec
from tripguard.vault.crypto import Suite
from tripguard.vault.journal import Erasure, Head, JournalError
from tripguard.vault.keybackup import BackupRecord, KeyBackupExpired
from tripguard.vault.service import Vault

MAGIC = b"TGBK1\n"
MAX_HEADER_BYTES = 1 << 20
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
    # Rows the restore itself added or removed after loading (erasures re-applied, indexes rebuilt, each audited).
    changed_by_restore: dict[str, int] = field(default_factory=dict)


def keys_file_for(path: Path) -> Path:
    return path.with_name(path.name + ".keys")


# Every table the process's models declare on `core.db.Base`: each package's models are imported at start-up
# (`tripguard.wiring`), so a new domain's tables are backed up without this module naming them.
metadata = Base.metadata


def _data_tables() -> list[Table]:
    """Every table a data backup holds: all but the data keys and the tables marked `NOT_BACKED_UP`."""
    return [t for t in metadata.sorted_tables if t.name != KEY_TABLE and NOT_BACKED_UP not in t.info]


def _left_out() -> frozenset[str]:
    return frozenset(t.name for t in metadata.sorted_tables if NOT_BACKED_UP in t.info)


@dataclass(frozen=True)
class RestoreSteps:
    """What a restore does beyond loading rows, given by the packages that own the data (privacy: the erasures
    re-applied to its records, the blind indexes rebuilt), registered at start-up (`tripguard.wiring`)."""

    after_erasures: Callable[[Session, list[Erasure]], None]
    rebuild_blind_indexes: Callable[[Session, Vault], object]


_restore_steps: list[RestoreSteps] = []


def register_restore_steps(steps: RestoreSteps) -> None:
    _restore_steps[:] = [steps]


def restore_steps() -> RestoreSteps:
    """The registered steps; a restore without them would bring back people erased since the backup."""
    if not _restore_steps:
        raise BackupError("no restore steps are registered (tripguard.wiring.wire): a restore would not "
                          "re-apply the erasures to the privacy records")
    return _restore_steps[0]


def check_metadata_complete(connection: Any) -> None:
    """Every table of the database is known to this process's metadata: a table whose models were not
    loaded would otherwise be left out of a backup (or of a restore's emptiness check) without a word."""
    if connection.dialect.name == "postgresql":  # a partition is its parent table's (telematics.partitions)
        names = set(connection.execute(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition")).scalars())
    else:
        names = set(inspect(connection).get_table_names())
    unknown = sorted(names - set(metadata.tables) - {"alembic_version"})
    if unknown:
        raise BackupError(f"the database holds tables this process has no models for ({', '.join(unknown)}): "
                          "their package's models are not loaded (tripguard.wiring.wire)")


def _key_table() -> Table:
    return metadata.tables[KEY_TABLE]


def _row_codecs(tables: list[Table]) -> dict[str, RowCodec]:
    """Every table's codec, before anything is written: a column no codec can carry fails here."""
    try:
        return {table.name: RowCodec(table) for table in tables}
    except CodecError as exc:
        raise BackupError(str(exc)) from exc


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


def _snapshot_connection(engine: Engine) -> Connection:
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        return connection.execution_options(isolation_level="SERIALIZABLE", postgresql_readonly=True,
                                            postgresql_deferrable=True)
    return connection.execution_options(**{READ_ONLY: True})


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _count_rows(connection: Any, tables: list[Table]) -> dict[str, int]:
    return {t.name: int(connection.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables}


def _table_lines(connection: Any, codec: RowCodec) -> Iterator[bytes]:
    """The table's rows as JSON lines; a value that cannot be read or written stops the backup, naming
    its table and column (never the value: an error message may end up in a log)."""
    try:
        for row in connection.execution_options(yield_per=2000).execute(codec.select()):
            yield codec.dumps(row)
    except CodecError as exc:
        raise BackupError(f"backup stopped: {exc}") from exc
    except Exception as exc:  # the driver or a column type could not read a stored value
        columns = _unreadable_columns(connection, codec.table)
        where = f"column {', '.join(columns)}" if columns else "a column that could not be told apart"
        raise BackupError(f"backup stopped: table {codec.table.name}, {where}: the database holds a value that "
                          f"cannot be read as the column's type ({type(exc).__name__}); fix or remove it and back "
                          "up again") from exc


def _unreadable_columns(connection: Any, table: Table) -> list[str]:
    """The columns whose values cannot be read, read one by one; none when every one fails alike (the
    transaction itself broke: no column is to blame)."""
    failing = []
    for column in table.columns:
        try:
            for _ in connection.execution_options(yield_per=2000).execute(select(column)):
                pass
        except Exception:  # noqa: BLE001 (any failure marks the column)
            failing.append(column.name)
    return [] if len(failing) == len(table.columns) else failing


def _write_file(connection: Any, path: Path, header: dict[str, Any], key: bytes, suite: Suite,
                tables: list[Table]) -> dict[str, int]:
    """Seal `tables` as read through `connection` into `path` (a `.partial` name, which the caller moves
    into place or removes)."""
    codecs = _row_codecs(tables)
    rows: dict[str, int] = {}
    header_bytes = json.dumps(header, sort_keys=True).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes)
        writer = _ChunkWriter(handle, suite, key, hashlib.sha256(header_bytes).digest())
        for table in tables:
            writer.write(json.dumps({"table": table.name}).encode() + b"\n")
            count = 0
            for line in _table_lines(connection, codecs[table.name]):
                writer.write(line + b"\n")
                count += 1
            rows[table.name] = count
        writer.close()
        handle.flush()
        os.fsync(handle.fileno())
    expected = header.get("rows", rows)
    for name, written in rows.items():  # a snapshot cannot change under us; if it did, it is not one
        if written != expected.get(name):
            raise BackupError(f"backup stopped: table {name}: {expected.get(name)} rows counted, {written} "
                              "written in the same snapshot")
    return rows


@contextlib.contextmanager
def _nothing_left_on_failure(vault: Vault, finals: list[Path]) -> Iterator[list[str]]:
    """Write each of `finals` under its `.partial` name; on success move them all into place, on any
    failure remove them and destroy the key-backup keys appended to the yielded list."""
    key_ids: list[str] = []
    placed: list[Path] = []
    try:
        yield key_ids
        for final in finals:
            _partial(final).replace(final)
            placed.append(final)
    except BaseException:
        for final in finals:
            _partial(final).unlink(missing_ok=True)
        for final in placed:
            final.unlink(missing_ok=True)
        for key_id in key_ids:
            vault.backup_keys.forget(key_id)
        raise


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


def _write_key_backup(connection: Any, vault: Vault, path: Path, key_ids: list[str], *, revision: str | None,
                      now: datetime, data_backup: dict[str, Any] | None, journal: dict[str, object]
                      ) -> tuple[int, BackupRecord]:
    """The key backup to `path`'s `.partial`; returns its rows and the register record to add once it is placed."""
    key_id, key = vault.new_key_backup_key()
    key_ids.append(key_id)
    header = {"format": FORMAT, "kind": "keys", "created_at": now.isoformat(), "schema_revision": revision,
              "key_backup_id": key_id, "suite": vault.suite.value, "tables": [KEY_TABLE],
              "data_backup": data_backup["name"] if data_backup else None,
              "data_backup_id": data_backup["backup_id"] if data_backup else None,
              "rows": _count_rows(connection, [_key_table()]), "journal": journal}
    rows = _write_file(connection, _partial(path), header, key, vault.suite, [_key_table()])
    versions = tuple(sorted(set(_key_versions(connection)) | {vault.keys.current_version()}))
    record = BackupRecord(name=str(path), kind="keys", created_at=now, keep_until=now + vault.backup_keys.window,
                          kek_versions=versions)
    return rows[KEY_TABLE], record


def _may_write(*paths: Path) -> None:
    """A backup replaces an older backup of the same name, never anything else (a folder, a device, a pipe)."""
    for path in paths:
        if not path.name or (path.exists() and not path.is_file()) or path.is_symlink():
            raise BackupError(f"{path} is not a file TripGuard may write a backup to: give the path of a new file "
                              "or of an older backup")


def create_backup(engine: Engine, vault: Vault, path: Path, *, retention_days: int = 90) -> BackupSummary:
    """Write the data backup to `path` and its key backup to `path.keys`, from one snapshot; all or nothing."""
    _may_write(path)
    keys_path = keys_file_for(path)
    _may_write(keys_path)
    backup_key = crypto.new_key(vault.suite)
    version, wrapped = vault.wrap_backup_key(backup_key)
    with (_nothing_left_on_failure(vault, [keys_path, path]) as key_ids, _snapshot_connection(engine) as connection,
          connection.begin()):
        revision = MigrationContext.configure(connection).get_current_revision()
        now = utcnow()
        journal = _journal_head(vault)
        check_metadata_complete(connection)
        tables = _data_tables()
        _row_codecs([*tables, _key_table()])  # an unknown column type stops it before any file exists
        header = {"format": FORMAT, "kind": "data", "created_at": now.isoformat(), "schema_revision": revision,
                  "backup_id": new_id("bkp"), "source_dialect": engine.dialect.name, "suite": vault.suite.value,
                  "kek_version": version, "wrapped_key": base64.b64encode(wrapped).decode(),
                  "tables": [t.name for t in tables], "rows": _count_rows(connection, tables),
                  "journal": journal}
        rows = _write_file(connection, _partial(path), header, backup_key, vault.suite, tables)
        rows[KEY_TABLE], keys_record = _write_key_backup(
            connection, vault, keys_path, key_ids, revision=revision, now=now,
            data_backup={"name": path.name, "backup_id": header["backup_id"]}, journal=journal)
    vault.register.add(keys_record)
    vault.register.add(BackupRecord(name=str(path), kind="data", created_at=now,
                                    keep_until=now + timedelta(days=retention_days), kek_versions=(version,)))
    return BackupSummary(path=path, schema_revision=revision, rows=rows, keys_path=keys_path)


def create_key_backup(engine: Engine, vault: Vault, path: Path) -> int:
    """A key backup alone (`tripguard keys backup`): today's keys, for restoring an older data backup."""
    _may_write(path)
    with (_nothing_left_on_failure(vault, [path]) as key_ids, _snapshot_connection(engine) as connection,
          connection.begin()):
        revision = MigrationContext.configure(connection).get_current_revision()
        rows, record = _write_key_backup(connection, vault, path, key_ids, revision=revision, now=utcnow(),
                                         data_backup=None,
                                         journal=_journal_head(vault))
    vault.register.add(record)
    return rows


def _read_header(handle: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    if handle.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a TripGuard backup")
    prefix = handle.read(4)
    (length,) = struct.unpack(">I", prefix) if len(prefix) == 4 else (-1,)
    header_bytes = handle.read(length) if 0 < length <= MAX_HEADER_BYTES else b""
    if len(header_bytes) != length:
        raise BackupError("the backup header is damaged or cut off")
    try:
        header = json.loads(header_bytes)
    except ValueError as exc:
        raise BackupError("the backup header is damaged") from exc
    if not isinstance(header, dict):
        raise BackupError("the backup header is damaged")
    if header.get("format", LEGACY_FORMAT) not in (LEGACY_FORMAT, FORMAT):
        raise BackupError(f"the backup is of format {header.get('format')}, made by a newer TripGuard: "
                          "restore it with that version")
    return header, header_bytes


def _plaintext_lines(handle: IO[bytes], key: bytes, digest: bytes) -> Iterator[bytes]:
    index, pending = 0, b""
    while True:
        prefix = handle.read(4)
        if len(prefix) < 4:
            raise BackupError("the backup is cut off: its final chunk is missing")
        (length,) = struct.unpack(">I", prefix)
        sealed = handle.read(length)
        if len(sealed) < length:
            raise BackupError(f"the backup is cut off inside chunk {index}")
        plaintext = None
        for final in (False, True):
            try:
                plaintext = crypto.decrypt(key, sealed, _aad(digest, index, final))
                break
            except crypto.DecryptionFailed:
                continue
        if plaintext is None:
            raise BackupError(f"chunk {index} of the backup was altered, moved or belongs elsewhere"
                              + (" (or the header it is bound to was changed)" if index == 0 else ""))
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
    missing = {"created_at", "schema_revision", "kek_version", "wrapped_key", "tables"} - set(header)
    if missing:
        raise BackupError(f"the backup header is damaged: it has no {min(missing)}")
    try:
        key = vault.unwrap_backup_key(int(header["kek_version"]), base64.b64decode(header["wrapped_key"]))
    except Exception as exc:  # any failure here means these keys cannot open this backup
        raise BackupError(f"this key source cannot open the backup: {exc}") from exc
    return header, header_bytes, key


def _made_at(header: dict[str, Any], what: str) -> datetime:
    """A header's `created_at`, which must be an ISO 8601 time with its zone."""
    try:
        made = datetime.fromisoformat(header["created_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"the {what}'s header is damaged: its creation time is not a time") from exc
    if made.tzinfo is None:
        raise BackupError(f"the {what}'s header is damaged: its creation time has no time zone")
    return made


def _open_keys_header(handle: IO[bytes], vault: Vault, data_header: dict[str, Any], *,
                      beside: bool) -> tuple[dict[str, Any], bytes, bytes]:
    """The key backup's header and key. `beside`: the `.keys` file found beside the data backup, which must
    be the one made with it (a key backup given with --keys may be any made since)."""
    header, header_bytes = _read_header(handle)
    if header.get("kind") != "keys" or "created_at" not in header or "key_backup_id" not in header:
        raise BackupError("the --keys file is not a key backup")
    if _made_at(header, "key backup") < _made_at(data_header, "backup"):
        raise BackupError("the key backup is older than the data backup: people added in between would have "
                          "no keys; use the key backup made with it, or a newer one (`tripguard keys backup`)")
    made_with, backup_id = header.get("data_backup_id"), data_header.get("backup_id")
    if beside and made_with is not None and made_with != backup_id:
        raise BackupError(f"the key backup beside it belongs to another data backup ({header.get('data_backup')}, "
                          f"made {header['created_at']}): put the .keys file made with this backup beside it, or "
                          "give a newer key backup with --keys")
    try:
        key = vault.open_key_backup_key(str(header["key_backup_id"]))
    except KeyBackupExpired as exc:
        raise BackupError(str(exc)) from exc
    return header, header_bytes, key


def _records(lines: Iterator[bytes], codecs: dict[str, RowCodec], header: dict[str, Any],
             rows: dict[str, int]) -> Iterator[tuple[Table, dict[str, Any]]]:
    """The decoded rows of a backup's content, table by table, counted into `rows`."""
    fmt = int(header.get("format", LEGACY_FORMAT))
    current: RowCodec | None = None
    name, skipping = "", False
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise BackupError("the backup's content is damaged: a line is not JSON") from exc
        if not isinstance(record, dict):
            raise BackupError("the backup's content is damaged: a line is not a row")
        if set(record) == {"table"}:
            name = record["table"]
            if name in rows or (name not in codecs and name not in _left_out()):
                raise BackupError(f"the backup holds table {name!r}, which does not belong there")
            current = codecs.get(name)
            rows[name] = 0
            skipping = current is None  # a table backups now leave out, in a backup made before they did
            continue
        if skipping:
            rows[name] += 1
            continue
        if current is None:
            raise BackupError("the backup's content does not start with a table")
        try:
            values = current.decode(record, format=fmt)
        except CodecError as exc:
            raise BackupError(str(exc)) from exc
        rows[current.table.name] += 1
        yield current.table, values


def check_counts(header: dict[str, Any], rows: dict[str, int]) -> None:
    """The rows read match the counts the header took in the backup's snapshot (format 1 has none)."""
    expected = header.get("rows")
    if expected is None:
        return
    for name in sorted(set(expected) | set(rows)):
        if name not in rows:
            raise BackupError(f"table {name} is missing from the backup's content")
        if expected.get(name) != rows[name]:
            raise BackupError(f"table {name}: the header counts {expected.get(name)} rows, the backup holds "
                              f"{rows[name]}")


def _load(connection: Any, records: Iterator[tuple[Table, dict[str, Any]]]) -> None:
    current: Table | None = None
    batch: list[dict[str, Any]] = []
    for table, values in records:
        if (table is not current or len(batch) >= INSERT_BATCH) and batch:
            connection.execute(insert(current), batch)  # type: ignore[arg-type]
            batch = []
        current = table
        batch.append(values)
    if batch:
        connection.execute(insert(current), batch)  # type: ignore[arg-type]


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
    try:
        reason = visible_reason(accept_journal_loss or "")
    except ValueError as exc:
        raise BackupError(
            f"restore stopped: {problem}. Put erasure-journal.jsonl and erasure-journal.head back from a copy of "
            "the key folder taken after the last erasure. Only if the journal is lost for good: run again with "
            "--accept-journal-loss REASON (at least 5 letters or digits); people erased after this backup was "
            "made may then be readable again (it is recorded in the audit log)") from exc
    entries = chain.entries if chain is not None else vault.journal.salvage()
    return entries, JournalOverride(reason=reason, problem=problem,
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
    beside, keys_path = keys_path is None, keys_path or keys_file_for(path)
    rows: dict[str, int] = {}
    key_rows: dict[str, int] = {}
    with path.open("rb") as handle, keys_path.open("rb") as keys_handle:
        header, header_bytes, key = _open_data_header(handle, vault)
        keys_header, keys_header_bytes, keys_key = _open_keys_header(keys_handle, vault, header, beside=beside)
        salvaged, override = check_journal_for_restore(vault, header, keys_header,
                                                       accept_journal_loss=accept_journal_loss)
        with Session(engine) as session, session.begin():
            connection = session.connection()
            revision = MigrationContext.configure(connection).get_current_revision()
            if revision != header["schema_revision"]:
                raise BackupError(f"the database is at schema {revision}, the backup at "
                                  f"{header['schema_revision']}: run "
                                  f"`tripguard db upgrade {header['schema_revision']}`")
            check_metadata_complete(connection)
            for table in metadata.sorted_tables:
                if connection.execute(select(func.count()).select_from(table)).scalar():
                    raise BackupError(f"the target database is not empty (table {table.name}); restore "
                                      "into a freshly migrated database")
            _load(connection, _records(_plaintext_lines(handle, key, hashlib.sha256(header_bytes).digest()),
                                       _row_codecs(_data_tables()), header, rows))
            check_counts(header, rows)
            for name in _left_out():  # counted, not restored (a backup made before they were left out)
                rows.pop(name, None)
            _load(connection, _records(_plaintext_lines(keys_handle, keys_key,
                                                        hashlib.sha256(keys_header_bytes).digest()),
                                       _row_codecs([_key_table()]), keys_header, key_rows))
            check_counts(keys_header, key_rows)
            rows.update(key_rows)
            if engine.dialect.name == "postgresql":
                _reset_identity_sequences(connection)
            if override is None:
                _check_keys_against_journal(session, vault)
            try:
                erasures = vault.reapply_journal(session, salvaged)
            except JournalError as exc:
                raise BackupError(f"restore stopped: {exc}") from exc
            if after_erasures is not None:
                after_erasures(session, erasures)
            if rebuild_blind_indexes is not None:
                rebuild_blind_indexes(session, vault)
            session.flush()
            changed = _changed_since_loaded(connection, rows)
    return BackupSummary(path=path, schema_revision=header["schema_revision"], rows=rows, keys_path=keys_path,
                         erasures=len({e.subject_id for e in erasures}), journal_override=override,
                         changed_by_restore=changed)


def _changed_since_loaded(connection: Any, loaded: dict[str, int]) -> dict[str, int]:
    """Per table, rows now minus rows loaded from the backup, where they differ."""
    changed = {}
    for table in metadata.sorted_tables:
        counted = int(connection.execute(select(func.count()).select_from(table)).scalar_one())
        delta = counted - loaded.get(table.name, 0)
        if delta:
            changed[table.name] = delta
    return changed


def _check_keys_against_journal(session: Session, vault: Vault) -> None:
    """The key backup's shredded keys are all in the journal; if not, the journal (and with it the key
    folder's record of its use) was wiped and restarted: nothing from this restore is kept."""
    try:
        journaled = {entry.subject_id for entry in vault.journal.entries()}
    except JournalError as exc:
        raise BackupError(f"restore stopped: {exc}") from exc
    missing = vault.shredded_not_journaled(session, journaled)
    if missing:
        raise BackupError(f"restore stopped: the key backup shows keys shredded that the erasure journal does not "
                          f"hold (e.g. {missing[0]}): the journal was reset. Put erasure-journal.jsonl and its head "
                          "back from a copy of the key folder; only if they are lost for good, run again with "
                          "--accept-journal-loss REASON (audited)")


def _reset_identity_sequences(connection: Any) -> None:
    # The next value after the largest restored one (`is_called` true), without ever asking for one past the
    # sequence's end (a restored id may be the column's largest); 1 when no positive id was restored.
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True:
                top = f"(SELECT max({column.name}) FROM {table.name})"  # noqa: S608 - names from our metadata
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"GREATEST(COALESCE({top}, 1), 1), COALESCE({top}, 0) >= 1)"))



