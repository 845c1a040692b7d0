"""Blind indexes: a keyed hash of a sealed value, for finding a person by it (their phone number).

The key is the keyring's index key, which outlives every person: with the keyring and a copy of an
index, a guess can be confirmed (485 k guesses/s on one core: every Chinese mobile number in a few
core-hours). So an index is never backed up. A column declared with `blind_index_column` is blanked
by the data backup's encoder, and `rebuild` recomputes every such column after a restore, inside its
transaction, from the sealed fields that still open: a person erased (their key shredded, by the
journal re-applied before) gets no index back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import MetaData, Table, bindparam, select, update
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.db import Base
from tripguard.privacy.catalogue import PersonalField, catalogue
from tripguard.privacy.service import normalise_phone
from tripguard.vault.crypto import DecryptionFailed
from tripguard.vault.service import BLIND_INDEX_INFO, SubjectErased, Vault

BATCH = 1000
RESTORE_ACTOR = Actor("system", "restore")


# How each kind of value is normalised before it is indexed (a marked column names its kind), as the
# service that writes the index normalises it (`privacy.service.upsert_subject`, `find_by_phone`).
NORMALISE: dict[str, Callable[[str], str]] = {"phone": normalise_phone}


@dataclass(frozen=True)
class BlindIndex:
    table: str
    column: str
    kind: str
    source: PersonalField  # the sealed column it indexes


def blind_indexes(metadata: MetaData) -> list[BlindIndex]:
    """Every column declared a blind index, with the sealed column it is computed from."""
    sealed = {(f.table, f.column): f for f in catalogue(metadata)}
    found = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            spec = column.info.get(BLIND_INDEX_INFO)
            if spec:
                found.append(BlindIndex(table=table.name, column=column.name, kind=spec["kind"],
                                        source=sealed[(table.name, spec["source"])]))
    return found


def index_of(vault: Vault, kind: str, value: str | None) -> str | None:
    """The blind index of `value` (None for none)."""
    return None if value is None else vault.blind_index(kind, NORMALISE[kind](value))


def _recomputed(session: Session, vault: Vault, index: BlindIndex, rows: list[tuple[str, str, bytes | None]]
                ) -> tuple[list[dict[str, str | None]], int]:
    values, built = [], 0
    vault.prefetch(session, sorted({subject_id for _, subject_id, _ in rows}))
    for row_id, subject_id, blob in rows:
        value = None
        if blob is not None:
            try:
                value = index_of(vault, index.kind, vault.open(
                    session, subject_id=subject_id, table=index.table, column=index.source.column, row_id=row_id,
                    blob=blob))
            except (SubjectErased, DecryptionFailed):
                value = None  # erased (or unreadable): no index says "this value was here"
        built += value is not None
        values.append({"row_id": row_id, "value": value})
    vault.forget(session, [subject_id for _, subject_id, _ in rows])
    return values, built


def _rebuild_one(session: Session, vault: Vault, index: BlindIndex) -> tuple[int, int]:
    table: Table = Base.metadata.tables[index.table]
    key, subject, source, target = (table.c.id, table.c[index.source.subject_column], table.c[index.source.column],
                                    table.c[index.column])
    change = update(table).where(key == bindparam("row_id")).values({target.name: bindparam("value")})
    last, built, cleared = None, 0, 0
    while True:
        query = select(key, subject, source).order_by(key).limit(BATCH)
        rows = [(str(k), str(s), b) for k, s, b in session.execute(query if last is None else query.where(key > last))]
        if not rows:
            return built, cleared
        values, count = _recomputed(session, vault, index, rows)
        session.execute(change, values)
        built, cleared, last = built + count, cleared + len(rows) - count, rows[-1][0]


def rebuild(session: Session, vault: Vault) -> dict[str, int]:
    """After a restore (the `rebuild_blind_indexes` hook of `vault.backup.restore_backup`, run after the
    erasure journal is re-applied): recompute every blind index from the sealed value it indexes. A row
    whose value does not open (its person erased) is left without one. Returns {table.column: built}."""
    session.flush()
    report: dict[str, int] = {}
    for index in blind_indexes(Base.metadata):
        built, cleared = _rebuild_one(session, vault, index)
        report[f"{index.table}.{index.column}"] = built
        audit.record(session, actor=RESTORE_ACTOR, action="privacy.blind_index_rebuild", target_type=index.table,
                     target_id=index.column, details={"built": built, "without": cleared})
    session.expire_all()  # rows already loaded hold the blanked values
    return report
