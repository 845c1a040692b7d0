"""After a crypto-shred on SQLite: get the old page images out of the write-ahead log.

`secure_delete` overwrites a destroyed data key in the page that held it, but the page as it was before
(key and all) stays in the `-wal` file, and the database file keeps its old copy of the page, until a
checkpoint copies the new page over it and the log is reset. So after an erasure commits, a TRUNCATE
checkpoint runs on a thread of its own: it copies every logged page into the database file and empties
the log, and then the wrapped key is in none of the database's files.

It never holds up the emergency lane: it runs only after the erasure's transaction has committed, takes
this process's writer queue as a bulk writer (an SOS waiting goes first and waits at most for the
checkpoint in place), and waits for nobody: with readers still on old pages it gives up at once
(`busy_timeout` 0, so it never stalls other writers while pending) and tries again later, backing off.
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
import time
from urllib.parse import quote

from tripguard.core.sqlite_writer import writer_queue_for

logger = logging.getLogger(__name__)

QUEUE_WAIT_S = 2.0  # for the writer queue, behind other bulk writers
FIRST_RETRY_S = 0.05
LONGEST_RETRY_S = 30.0
GIVE_UP_AFTER_S = 3600.0
_AT_EXIT_WAIT_S = 10.0


def checkpoint_truncate(path: str, *, queue_wait: float = QUEUE_WAIT_S) -> bool:
    """One TRUNCATE checkpoint of the database file `path`, waiting for no reader; True when the log is empty."""
    if not os.path.exists(path):
        return True  # the database is gone, and its log with it
    queue = writer_queue_for(path)
    if not queue.acquire(timeout=queue_wait, urgent=False):
        return False
    try:
        # mode=rw: never create a database that was removed in the meantime.
        connection = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=0, isolation_level=None)
        try:
            connection.execute("PRAGMA busy_timeout=0")
            busy, log_frames, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    finally:
        queue.release()
    return bool(busy == 0 and log_frames <= 0)


class WalScrubber:
    """One database file's scrubbing thread, started on demand; requests while it runs are coalesced."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pending = False
        self._running = False
        self._idle = threading.Event()
        self._idle.set()

    def request(self) -> None:
        with self._lock:
            self._pending = True
            self._idle.clear()
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="sqlite-wal-scrub", daemon=True).start()

    def wait(self, timeout: float) -> bool:
        """True once every request so far has been served (or given up)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    self._idle.set()
                    return
                self._pending = False
            self._scrub()

    def _scrub(self) -> None:
        delay, deadline = FIRST_RETRY_S, time.monotonic() + GIVE_UP_AFTER_S
        while not checkpoint_truncate(self.path):
            if time.monotonic() > deadline:
                logger.warning("the write-ahead log could not be checkpointed after an erasure: readers never left; "
                               "it is tried again after the next one", extra={"event": "sqlite.wal_scrub"})
                return
            time.sleep(delay)
            delay = min(delay * 2, LONGEST_RETRY_S)


_scrubbers: dict[str, WalScrubber] = {}
_scrubbers_lock = threading.Lock()


def scrubber_for(path: str) -> WalScrubber:
    key = os.path.realpath(path)
    with _scrubbers_lock:
        return _scrubbers.setdefault(key, WalScrubber(key))


def scrub_after_commit(path: str) -> None:
    """Ask for the log of database file `path` to be emptied (call once the erasure has committed)."""
    scrubber_for(path).request()


@atexit.register
def _finish_pending() -> None:
    # A command that erased and exits (`tripguard privacy …`) still empties the log before it goes.
    for scrubber in list(_scrubbers.values()):
        scrubber.wait(_AT_EXIT_WAIT_S)
