"""How a process hears of the other processes' changes to what its `ReadCache` keeps (`core.readcache`).

PostgreSQL: one LISTEN connection per process, in a thread of its own (it drops entries even while the
event loop is busy). Until it listens the cache is bypassed; when it loses its connection (or a liveness
probe fails) the cache is bypassed again, and it is emptied when the listener is back.

SQLite (embedded; the other processes are the `tripguard` command or a second server on the same file):
no server to push anything. Each look-up first asks the reader's own connection `PRAGMA data_version`,
which changes only when another connection committed (a few microseconds, no table read); only then it
reads `core_read_changes` after the last change applied. A gap in the change ids (pruned before it was
read) or any error empties the cache and, for that look-up, reads the database.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time

import psycopg

from tripguard.core.fastread import FastReader
from tripguard.core.readcache import CHANGES_TABLE, CHANNEL, EVERYTHING, Key, ReadCache
from tripguard.core.settings import Settings

log = logging.getLogger(__name__)


def parse_payload(payload: str) -> list[Key]:
    keys: list[Key] = []
    for line in payload.splitlines():
        scope, _, name = line.partition("\t")
        keys.append((scope, name) if name else EVERYTHING)
    return keys or [EVERYTHING]


class PgListener:
    """LISTEN on `CHANNEL` in a daemon thread; `probe_seconds`: how often a quiet connection is checked."""

    def __init__(self, cache: ReadCache, url: str, *, probe_seconds: float = 0.25, connect_seconds: float = 5.0,
                 trusted_seconds: float = 1.0) -> None:
        self.cache = cache
        # The feed is trusted only this long after its last round trip: a connection gone quiet (a peer lost
        # without a reset, the thread stalled) reports no error, and its notifications stop all the same.
        self.trusted_seconds = trusted_seconds
        self.confirmed_at = -math.inf
        self.conninfo = re.sub(r"^postgresql(\+psycopg)?://", "postgresql://", url)
        self.probe_seconds = probe_seconds
        self.connect_seconds = connect_seconds
        self.stopping = threading.Event()
        self.backend_pid: int | None = None  # the listening connection's server process (tests end it)
        self.thread = threading.Thread(target=self._run, name="read-cache-listener", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=self.probe_seconds + 2)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._listen()
            except psycopg.Error as error:
                log.warning("read cache: the change listener lost its connection (%s); reading the database",
                            type(error).__name__)
            except Exception:  # anything else: a notification may be lost; start again, emptied
                log.exception("read cache: the change listener failed; reading the database")
            finally:
                self.cache.connected(False)
                self.backend_pid, self.confirmed_at = None, -math.inf
            self.stopping.wait(0.2)

    def _listen(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=max(1, round(self.connect_seconds))) \
                as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self.backend_pid = connection.info.backend_pid
            self.confirmed_at = time.monotonic()
            self.cache.connected(True)  # empties the cache: what it held may predate the LISTEN
            while not self.stopping.is_set():
                for notice in connection.notifies(timeout=self.probe_seconds):
                    self.cache.invalidate(parse_payload(notice.payload))
                connection.execute("SELECT 1")  # a connection ended quietly raises here
                self.confirmed_at = time.monotonic()

    def trusted(self) -> bool:
        """Connected, and heard from the server lately (else the cache is bypassed until it is)."""
        return self.backend_pid is not None and time.monotonic() - self.confirmed_at < self.trusted_seconds


class SqliteChanges:
    """The change rows, read through the fast reader's own connection before each look-up."""

    def __init__(self, cache: ReadCache) -> None:
        self.cache = cache
        self.version: object = None
        self.seen: int | None = None

    async def check(self, reader: FastReader) -> bool:
        """Apply the changes committed by the other connections; False: bypass the cache this time."""
        try:
            row = await reader.first("PRAGMA data_version")
            version = row[0] if row else None
            if self.seen is not None and version == self.version:
                return True
            if self.seen is None:
                last = await reader.first(f"SELECT MAX(id) FROM {CHANGES_TABLE}")  # noqa: S608 - our table
                self.version, self.seen = version, int(last[0] or 0) if last else 0
                self.cache.connected(True)
                return True
            rows = await reader.all(f"SELECT id, scope, key FROM {CHANGES_TABLE} WHERE id > :seen "  # noqa: S608
                                    "ORDER BY id", seen=self.seen)
            self.version = version
            # Ids are contiguous as committed (AUTOINCREMENT, one writer at a time, a rollback takes its ids
            # back): any hole, first or in the middle, is a change pruned before this process read it.
            if rows and (rows[0][0] != self.seen + 1 or rows[-1][0] - self.seen != len(rows)):
                self.cache.connected(True)
            elif rows:
                self.cache.invalidate((str(scope), str(key)) for _, scope, key in rows)
            if rows:
                self.seen = int(rows[-1][0])
            return True
        except Exception:
            log.exception("read cache: the change log could not be read; reading the database")
            self.seen = None
            self.cache.connected(False)
            return False


class ReadCacheFeed:
    """A process's read cache with the feed that keeps it true (`make_read_cache`)."""

    def __init__(self, cache: ReadCache, *, listener: PgListener | None = None,
                 changes: SqliteChanges | None = None) -> None:
        self.cache, self.listener, self.changes = cache, listener, changes

    async def ready(self, reader: FastReader) -> ReadCache | None:
        """The cache, if it may be used for this look-up (its feed connected, the others' changes applied)."""
        if self.changes is not None and not await self.changes.check(reader):
            return None
        if self.listener is not None and not self.listener.trusted():
            return None
        return self.cache if self.cache.live else None

    def start(self) -> None:
        if self.listener is not None:
            self.listener.start()

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()


def make_read_cache(settings: Settings, *, bound_to_session: bool) -> ReadCacheFeed | None:
    """None when turned off (`read_cache`). `bound_to_session`: the app reads through a
    test's session factory (one process, in that session's transaction): its own writes are all it hears."""
    if not settings.read_cache:
        return None
    if bound_to_session:
        return ReadCacheFeed(ReadCache(settings.read_cache_entries, cross_process=False))
    cache = ReadCache(settings.read_cache_entries, cross_process=True)
    if settings.is_sqlite:
        return ReadCacheFeed(cache, changes=SqliteChanges(cache))
    return ReadCacheFeed(cache, listener=PgListener(cache, settings.database_url,
                                                    connect_seconds=settings.db_connect_timeout_seconds))
