"""The queue for SQLite's one writer, within a process: first come, first served, the emergency lane first.

SQLite lets one transaction write at a time. A plain lock is no queue: a thread that releases it and asks
again at once (bulk work written in slices) usually gets it back before a waiting thread has woken, so a
waiting SOS could sit behind every slice of a batch. Here the lock is handed to the next waiter on release,
and a waiter of the emergency lane (`urgent`) goes ahead of every bulk waiter: an SOS waits for at most the
transaction that holds the writer now.
"""

from __future__ import annotations

import threading
import time
from collections import deque


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
