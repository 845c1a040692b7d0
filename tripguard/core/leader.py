"""Leader election: two schedulers never run the same job; two monitor workers never run the same shard.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own; PostgreSQL
releases it when that connection or its process dies, and another scheduler takes over at its next
try. A leader checks its connection before every job, so one cut off from the database stops
running jobs before another can start them. On SQLite TripGuard is one process by design (the
embedded default): that process is always the leader.
"""

from __future__ import annotations

import threading
import zlib

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

LOCK_KEY = zlib.crc32(b"tripguard.scheduler")  # one advisory lock key for the whole deployment


class Leadership:
    def __init__(self, engine: Engine, key: int = LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self._connection: Connection | None = None

    @property
    def exclusive(self) -> bool:
        """Whether leadership is contested at all (PostgreSQL); SQLite's single process always leads."""
        return self.engine.dialect.name == "postgresql"

    def lead(self) -> bool:
        """True while this process leads: it holds the lock on a live connection, or has just taken it."""
        if not self.exclusive:
            return True
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                return True
            except SQLAlchemyError:
                self.release()  # the connection is gone, and the lock with it
                return False
        try:
            connection = self.engine.connect()
        except SQLAlchemyError:
            return False
        try:
            taken = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())
            connection.commit()  # keep no transaction open: the lock is the session's
        except SQLAlchemyError:
            connection.close()
            return False
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            connection.commit()
        except SQLAlchemyError:
            pass  # a dead connection: PostgreSQL has dropped the lock already
        finally:
            connection.invalidate()  # never back to the pool holding the session's lock


class Locks:
    """Many advisory locks on one connection of their own (a monitor worker's shards), safe across threads.

    As with `Leadership`, PostgreSQL drops them all when the connection or the process dies; SQLite's
    single process holds every lock it asks for.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.held: set[int] = set()
        self._connection: Connection | None = None
        self._mutex = threading.Lock()

    def take(self, key: int) -> bool:
        with self._mutex:
            if self.engine.dialect.name != "postgresql":
                self.held.add(key)
                return True
            try:
                if self._connection is None:
                    self._connection = self.engine.connect()
                taken = bool(self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
                self._connection.commit()
            except SQLAlchemyError:
                self._drop()
                return False
            if taken:
                self.held.add(key)
            return taken

    def holds(self, key: int) -> bool:
        """True while the lock is held on a live connection (checked with a round trip)."""
        with self._mutex:
            if key not in self.held:
                return False
            if self._connection is None:
                return self.engine.dialect.name != "postgresql"
            try:
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
                return True
            except SQLAlchemyError:
                self._drop()
                return False

    def release(self, key: int) -> None:
        with self._mutex:
            if key not in self.held:
                return
            self.held.discard(key)
            if self._connection is None:
                return
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                self._connection.commit()
            except SQLAlchemyError:
                self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        self.held.clear()  # the connection's locks went with it
        if connection is not None:
            connection.invalidate()
