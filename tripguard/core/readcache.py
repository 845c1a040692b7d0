"""A per-process cache of hot reads by key (the dispatch gate's: each worker's and each vehicle's rows),
dropped at once on any change, in this process and in every other.

What is kept is the rows each read returned, not the answer computed from them: the caller computes its
answer again from the kept rows at every look-up, at the time of that look-up, so an answer that changes
with time alone (a re-screening overdue, a refresher run out, a device gone quiet, a suspension ended) is
never served stale. A read is served only for the same SQL with the same parameters; any other read goes
to the database (and is kept).

Invalidation: the tables each cached source reads are `watch`ed with the column that names the entry
(a worker, a vehicle). Every ORM flush (and every bulk statement) on a watched table, in any session of
any process, collects the keys it touches and publishes them inside its own transaction: PostgreSQL
`pg_notify` (delivered on commit only), SQLite a row of `core_read_changes`. The writing process drops
them at once (at the flush and again after the commit). The other processes: on PostgreSQL a LISTEN
connection per process (`core.readfeed.PgListener`); on SQLite each look-up first asks the reader's
connection `PRAGMA data_version` (changed only when another connection committed) and then reads the
change rows after the last one it applied (`core.readfeed.SqliteChanges`).

Fail closed: until the process's feed is connected (and after it lost anything) the cache is bypassed;
on a reconnection everything is dropped. An entry read while anything was invalidated is not kept (the
generation counter), so a read that raced a commit never outlives its notification.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from tripguard.core.fastread import FastReader, Row

Key = tuple[str, str]  # (scope, id): ("worker", "wrk_1"), ("vehicle", "veh_1"); id "*": the whole scope
EVERYTHING: Key = ("*", "*")
CHANNEL = "tripguard_reads"
CHANGES_TABLE = "core_read_changes"
_PENDING = "tripguard_read_changes"
NOTIFY_BYTES = 7000  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
KEPT_CHANGES = 10_000  # SQLite's change log: a process further behind than this empties its cache
ReadKey = tuple[str, str, tuple[tuple[str, Any], ...]]


@dataclass(frozen=True)
class Watch:
    table: str
    scope: str
    column: str | None  # the attribute naming the entry; None: any change drops the whole scope


WATCHES: dict[str, list[Watch]] = {}


def watch(table: str, *, scope: str, column: str | None) -> None:
    """A cached source reads `table`: a change to one of its rows drops the entry named by `column`
    (before and after the change), or with no column every entry of the scope. Registering again changes
    nothing."""
    entry = Watch(table, scope, column)
    if entry not in WATCHES.setdefault(table, []):
        WATCHES[table].append(entry)


class ReadCache:
    """The kept reads, per scope an LRU of at most `entries` keys. `live` only while the process's feed
    of changes is connected (always, for a cache with no other process to hear from)."""

    def __init__(self, entries: int, *, cross_process: bool) -> None:
        self.entries = entries
        self.scopes: dict[str, OrderedDict[str, dict[ReadKey, Any]]] = {}
        self.generation = 0
        self.live = not cross_process
        self.lock = threading.Lock()  # the LISTEN thread drops entries while the loop reads them
        CACHES.add(self)

    def get(self, key: Key) -> dict[ReadKey, Any] | None:
        if not self.live:
            return None
        with self.lock:
            scope = self.scopes.get(key[0])
            reads = scope.get(key[1]) if scope is not None else None
            if reads is not None:
                scope.move_to_end(key[1])  # type: ignore[union-attr]
            return reads

    def put(self, key: Key, reads: dict[ReadKey, Any], generation: int) -> None:
        """Keep the reads, unless anything was invalidated since `generation` was taken (they may predate it)."""
        with self.lock:
            if not self.live or generation != self.generation:
                return
            scope = self.scopes.setdefault(key[0], OrderedDict())
            scope[key[1]] = reads
            scope.move_to_end(key[1])
            while len(scope) > self.entries:
                scope.popitem(last=False)

    def invalidate(self, keys: Iterable[Key]) -> None:
        with self.lock:
            self.generation += 1
            for scope_name, name in keys:
                if scope_name == "*":
                    self.scopes.clear()
                elif name == "*":
                    self.scopes.pop(scope_name, None)
                elif (scope := self.scopes.get(scope_name)) is not None:
                    scope.pop(name, None)

    def connected(self, live: bool) -> None:
        """The feed of changes (re)connected or lost: either way what is kept may have missed a change."""
        with self.lock:
            self.generation += 1
            self.scopes.clear()
            self.live = live

    def __len__(self) -> int:
        return sum(len(scope) for scope in self.scopes.values())


CACHES: weakref.WeakSet[ReadCache] = weakref.WeakSet()  # every cache of this process, dropped from by its writes


class CachedReader:
    """A `FastReader` over one entry: the reads kept under `key` are answered from it, the others read
    and recorded; `keep()` stores what was read once the caller's answer is made."""

    def __init__(self, cache: ReadCache, base: FastReader, key: Key) -> None:
        self.cache, self.base, self.key = cache, base, key
        self.generation = cache.generation  # taken before the look-up: see `ReadCache.put`
        self.held = cache.get(key)
        self.recorded: dict[ReadKey, Any] = {}

    async def first(self, sql: str, **params: object) -> Row | None:
        read: ReadKey = ("first", sql, tuple(sorted(params.items())))
        if self.held is not None and read in self.held:
            return self.held[read]  # type: ignore[no-any-return]
        row = self.recorded[read] = await self.base.first(sql, **params)
        return row

    async def all(self, sql: str, **params: object) -> list[Row]:
        read: ReadKey = ("all", sql, tuple(sorted(params.items())))
        if self.held is not None and read in self.held:
            return self.held[read]  # type: ignore[no-any-return]
        rows = self.recorded[read] = await self.base.all(sql, **params)
        return rows

    async def close(self) -> None:
        return None

    def keep(self) -> None:
        if self.recorded:
            self.cache.put(self.key, {**(self.held or {}), **self.recorded}, self.generation)


# -- the writing side: every session of every process ------------------------------------------------------

def _table_of(obj: object) -> str | None:
    table = getattr(type(obj), "__table__", None)
    return getattr(table, "name", None)


def _changed_keys(session: Session) -> set[Key]:
    keys: set[Key] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        watches = WATCHES.get(_table_of(obj) or "")
        if not watches:
            continue
        state = inspect(obj)
        for entry in watches:
            if entry.column is None:
                keys.add((entry.scope, "*"))
                continue
            history = state.attrs[entry.column].history
            values = [*history.added, *history.unchanged, *history.deleted]
            if not values and entry.column not in state.dict:
                keys.add((entry.scope, "*"))  # not loaded (expired): which entry it named is not known here
            keys.update((entry.scope, str(value)) for value in values if value is not None)
    return keys


def publish(session: Session, *, keys: set[Key]) -> None:
    """Tell every process, inside the session's transaction (heard only if it commits), and drop here now."""
    if not keys:
        return
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        payload = "\n".join(f"{scope}\t{name}" for scope, name in sorted(keys))
        if len(payload.encode()) > NOTIFY_BYTES:  # bytes, not characters: a longer payload fails the write
            payload = "\n".join(f"{scope}\t*" for scope in sorted({scope for scope, _ in keys}))
        connection.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})
    elif dialect == "sqlite":
        connection.execute(text(f"INSERT INTO {CHANGES_TABLE} (scope, key) VALUES (:scope, :key)"),  # noqa: S608
                           [{"scope": scope, "key": name} for scope, name in sorted(keys)])
        # Keep the last KEPT_CHANGES changes, the oldest first out and none in between (a `random()` here
        # would be drawn per row and leave holes a reader far behind cannot tell from nothing): a process
        # that missed more sees the gap and drops everything. A range of the rowid: cheap at every write.
        connection.execute(text(f"DELETE FROM {CHANGES_TABLE} WHERE id <= (SELECT MAX(id) - :kept "  # noqa: S608
                                f"FROM {CHANGES_TABLE})"), {"kept": KEPT_CHANGES})
    session.info.setdefault(_PENDING, set()).update(keys)
    drop_here(keys)


def drop_here(keys: Iterable[Key]) -> None:
    keys = list(keys)
    for cache in list(CACHES):
        cache.invalidate(keys)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _: UOWTransaction) -> None:
    if WATCHES:
        publish(session, keys=_changed_keys(session))


@event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state: ORMExecuteState) -> None:
    """An UPDATE, DELETE or INSERT statement bypasses the flush: it drops the whole scope of its table."""
    if not (state.is_update or state.is_delete or state.is_insert) or not WATCHES:
        return
    table = getattr(getattr(state.statement, "table", None), "name", None)
    watches = WATCHES.get(table or "")
    if watches:
        publish(state.session, keys={(entry.scope, "*") for entry in watches})


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    keys = session.info.pop(_PENDING, None)
    if keys:
        drop_here(keys)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # a savepoint's rollback leaves what the transaction published before it
        session.info.pop(_PENDING, None)
