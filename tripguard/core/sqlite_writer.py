"""SQLite's one writer, queued in this process: one queue per database file, urgent writers first.

SQLite lets one transaction write at a time and makes the others poll, sleeping 1, 2, 5, 10, 25,
50 ms between tries: a writer can sit idle long after the lock came free (begin waits of up to
36 ms were measured under an SOS burst). Writers of this process wait on a condition instead and
start the moment the previous one commits. Every engine on the same file shares the file's queue
(the emergency engine and the bulk one), and an urgent writer (an SOS) goes ahead of every waiting
bulk writer: it waits at most for the writer in place. Other processes (the CLI, a second server)
still meet SQLite's own locking, and a writer that waited its busy timeout here goes on to that.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

_queues: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


class WriterQueue:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held = False
        self._urgent_waiting = 0

    def acquire(self, *, urgent: bool, timeout: float) -> bool:
        """True once this thread writes; False if `timeout` seconds passed first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            if urgent:
                self._urgent_waiting += 1
            try:
                while self._held or (not urgent and self._urgent_waiting):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._changed.wait(remaining)
                self._held = True
                return True
            finally:
                if urgent:  # it waited only while the file was held: nobody it held back could go meanwhile
                    self._urgent_waiting -= 1

    def release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()


def writer_queue_for(path: str) -> WriterQueue:
    """The process's queue for one database file (an in-memory database gets one of its own)."""
    if not path or path == ":memory:":
        return WriterQueue()
    key = os.path.realpath(path)
    with _queues_lock:
        return _queues.setdefault(key, WriterQueue())


def queued_writer_connection(queue: WriterQueue, *, urgent: bool, wait_seconds: float) -> type[sqlite3.Connection]:
    """A sqlite3 connection class whose write transactions take their turn in `queue`."""

    class QueuedWriterConnection(sqlite3.Connection):
        holds_writer = False

        def begin_write(self) -> None:
            if not self.holds_writer:
                self.holds_writer = queue.acquire(urgent=urgent, timeout=wait_seconds)

        def end_write(self) -> None:
            if self.holds_writer:
                self.holds_writer = False
                queue.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.end_write()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.end_write()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.end_write()

    return QueuedWriterConnection
