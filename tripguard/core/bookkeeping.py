"""Bookkeeping writes (a session's last seen, an API key's last use, a share link's views): never inside a
request's transaction, never waiting on a lock.

An UPDATE in a request's transaction holds that row's lock until the request commits. Parallel requests of
one principal then queue on one row, each holding a thread and a connection, until the server has none left
(issue #25: 100 parallel requests on one staff session stopped the whole server, SOS included). So such a
write runs in its own short transaction, at most once per interval per key and process (`OncePer`), and it
skips a row that another transaction holds instead of waiting for it: its statement takes the row with
`FOR UPDATE SKIP LOCKED` (`free_row`), PostgreSQL's `lock_timeout` bounds anything else, and on SQLite it
starts only if the writer is free (`core.db.BOOKKEEPING`). A skipped write is done by a later request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.db import BOOKKEEPING, WriterBusy

logger = logging.getLogger("tripguard.bookkeeping")
LOCK_TIMEOUT_MS = 50
RETRY_SECONDS = 5.0  # after a skipped write, the next try is this far off (not on every request)


class OncePer:
    """Which keys are due for their write: the first caller per interval and process gets True."""

    def __init__(self, interval_seconds: float, *, max_keys: int = 100_000) -> None:
        self.interval = interval_seconds
        self.max_keys = max_keys
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._next.get(key, 0.0) > now:
                return False
            if len(self._next) >= self.max_keys:  # bound memory: forget keys that are due anyway
                self._next = {k: due for k, due in self._next.items() if due > now}
            self._next[key] = now + self.interval
            return True

    def retry_soon(self, key: str) -> None:
        """The write was skipped: a request after RETRY_SECONDS tries again."""
        with self._lock:
            self._next[key] = time.monotonic() + min(RETRY_SECONDS, self.interval)


def free_row(statement: Select[Any]) -> Select[Any]:
    """`statement` (selecting the row's key) taking only a row no other transaction holds."""
    return statement.with_for_update(skip_locked=True)


def write_bookkeeping(factory: sessionmaker[Session], *, write: Callable[[Session], bool]) -> bool:
    """Run `write` in its own short transaction that never waits on a lock. False when nothing was written:
    the writer or the row was taken (`write` returns whether it wrote), or it failed (logged, never the
    request's failure)."""
    session = factory()
    try:
        connection = session.connection(execution_options={BOOKKEEPING: True})
        if connection.dialect.name == "postgresql":
            session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
        written = write(session)
        session.commit()
        return written
    except (WriterBusy, OperationalError):
        session.rollback()
        return False
    except Exception:
        session.rollback()
        logger.exception("bookkeeping write failed")
        return False
    finally:
        session.close()


class Tally:
    """Counts kept in the process between their writes (a share link's views): what a skipped write did not
    store is given back and goes with the next one. What is pending when the process ends is not stored."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, key: str, count: int = 1) -> None:
        with self._lock:
            if key in self._counts or len(self._counts) < self.max_keys:
                self._counts[key] = self._counts.get(key, 0) + count

    def take(self, key: str) -> int:
        with self._lock:
            return self._counts.pop(key, 0)
