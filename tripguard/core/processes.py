"""A pool of worker processes for CPU-bound rendering (privacy labels), sized to the cores.

ReportLab's font subsetting and PDFium are not thread-safe, and hold the GIL anyway: in one process they
render one at a time (`core.pdf.RENDERING`). Each worker process of the pool renders alone, so the pool
renders as many at once as it has processes, and the request's event loop only awaits the result.

Started on the first use, shut down with the app. Workers are spawned (never forked from a process with
threads and locks held) and warmed by `initializer`. A worker that dies (killed, out of memory) breaks
the pool: every render waiting on it is answered 503 with Retry-After at once (`RendererRestarted`), and
the next render starts a new pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from tripguard.core.errors import DomainError

logger = logging.getLogger("tripguard.processes")
T = TypeVar("T")


class RendererRestarted(DomainError):
    status, type, title = 503, "/problems/renderer-restarted", "Service unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class ProcessPool:
    def __init__(self, processes: int, *, initializer: Callable[[], None] | None = None,
                 name: str = "render") -> None:
        self.processes = processes
        self._initializer = initializer
        self._name = name
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # the pool is started once, whichever thread asks first
        self.restarts = 0

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(max_workers=self.processes,
                                                     mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=self._initializer)
            return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:  # not replaced yet by another render that saw the same crash
                self._executor = None
                self.restarts += 1
                logger.error("a %s worker process died; the pool is started anew", self._name,
                             extra={"event": f"{self._name}.worker_died"})
        broken.shutdown(wait=False, cancel_futures=True)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """`function(*args)` in a worker process (both picklable); the event loop only waits."""
        executor = self._pool()
        try:
            return await asyncio.wrap_future(executor.submit(function, *args))
        except BrokenProcessPool:
            self._replace(executor)
            raise RendererRestarted("the renderer restarted; nothing was lost: try again") from None

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
