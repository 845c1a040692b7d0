"""SQLite's one writer, queued in this process: one queue per database file, urgent writers first.

SQLite lets one transaction write at a time and makes the others poll, sleeping 1, 2, 5, 10, 25,
50 ms between tries: a writer can sit idle long after the lock came free (begin waits of up to
36 ms were measured under an SOS burst). Writers of this process wait in a queue instead, and the
writer is handed straight to the next one when the previous one commits (a plain lock is no queue:
a thread that releases it and asks again at once, bulk work written in slices, usually gets it back
before a waiting thread has woken, so a waiting SOS could sit behind every slice of a batch). Every
engine on the same file shares the file's queue (the emergency engine and the bulk one), and an urgent
writer (an SOS) goes ahead of every waiting bulk writer: it waits at most for the writer in place. Other
processes (the CLI, a second server) still meet SQLite's own locking, and a writer that waited its busy
timeout here goes on to that.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import deque

_queues: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


class WriterQueue:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._urgent: deque[threading.Lock] = deque()
        self._bulk: deque[threading.Lock] = deque()
        self._held_since = 0.0
        self.longest_hold = 0.0  # seconds: the longest any transaction held the writer (tests, diagnostics)

    def acquire(self, *, timeout: float, urgent: bool = False) -> bool:
        """Wait for the writer, at most `timeout` seconds; True once it is ours."""
        with self._mutex:
            if not self._held:
                self._take()
                return True
            turn = threading.Lock()
            turn.acquire()  # released by the holder that hands the writer to us
            (self._urgent if urgent else self._bulk).append(turn)
        if turn.acquire(timeout=timeout):
            return True
        with self._mutex:
            waiting = self._urgent if urgent else self._bulk
            if turn in waiting:
                waiting.remove(turn)
                return False
        return True  # handed to us between the timeout and the check

    def release(self) -> None:
        with self._mutex:
            self.longest_hold = max(self.longest_hold, time.perf_counter() - self._held_since)
            following = self._urgent or self._bulk
            if following:
                self._held_since = time.perf_counter()
                following.popleft().release()  # the writer passes straight on: it is never free in between
            else:
                self._held = False

    def _take(self) -> None:
        self._held = True
        self._held_since = time.perf_counter()


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
        writer_queue = queue

        def begin_write(self, timeout: float | None = None) -> bool:
            if not self.holds_writer:
                self.holds_writer = queue.acquire(urgent=urgent, timeout=wait_seconds if timeout is None else timeout)
            return self.holds_writer

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
