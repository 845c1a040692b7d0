"""Leader election for the scheduler: two processes never run the same job.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own; PostgreSQL
releases it when that connection or its process dies, and another scheduler takes over at its next
try. A leader checks its connection before every job, so one cut off from the database stops
running jobs before another can start them. On SQLite TripGuard is one process by design (the
embedded default): that process is always the leader.
"""

from __future__ import annotations

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
