"""Group commit for the emergency button: presses that arrive together are stored together.

A press goes in the next group with every other press waiting: one transaction and a handful of
queries for the whole group instead of for each press. A press that finds the writer idle is
written at once, so a quiet night costs no latency. When presses arrive while a group is being
written (a disaster, a crowd leaving a stadium), the writer lets the next group fill until `gap`
seconds after the previous one started (the idea of PostgreSQL's commit_delay): a burst is written
in groups of many, at a fraction of the cost per press. Each press's request answers only once
its incident is committed; the incidents then go on the agents' live feed.

If a group's transaction fails, its presses are retried one by one, so a press that breaks in an
unexpected way fails alone; not when the database is unreachable, which fails the whole group at once.

The emergency lane owns what it waits on: its own threads (never anyio's pool, which every sync route
shares and a burst can fill), its own connections (the caller's session factory, the emergency
engine in the app), and a deadline. A press not stored within `deadline` seconds of its arrival is
answered 503 (`DatabaseUnavailable`, with Retry-After), so the app can dial 110 instead; `interrupt`
then frees the threads a silent database holds (it cuts the emergency engine's busy connections).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from prometheus_client import Histogram
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.db import unit_of_work, unreachable
from tripguard.core.errors import DatabaseUnavailable, DomainError
from tripguard.safety.models import Incident
from tripguard.safety.sos import Press, Raised, SosDesk, raise_many

logger = logging.getLogger("tripguard.safety")
MAX_GROUP = 256
GAP = 0.02  # seconds from one group's start to the next one's while presses keep arriving
DEADLINE = 2.5  # seconds from a press's arrival to its answer, stored or 503
THREADS = 4
GROUP_SIZE = Histogram("tripguard_sos_group_size", "SOS presses stored per transaction",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))


class SosIntake:
    def __init__(self, factory: sessionmaker[Session], desk: Callable[[], SosDesk],
                 on_stored: Callable[[list[Incident]], None], *, max_group: int = MAX_GROUP,
                 gap: float = GAP, deadline: float = DEADLINE, threads: int = THREADS,
                 interrupt: Callable[[], object] = lambda: None) -> None:
        self._factory = factory
        self._desk = desk  # read per group: settings may change (tests)
        self._on_stored = on_stored
        self._max_group = max_group
        self._gap = gap
        self._deadline = deadline
        self._threads = threads
        self._interrupt = interrupt
        self._executor: ThreadPoolExecutor | None = None
        self._under_way: list[Future[list[Raised | Exception]]] = []
        self._waiting: list[tuple[Press, asyncio.Future[Raised]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.groups = 0  # transactions that stored presses

    async def submit(self, press: Press) -> Raised:
        """The press's incident once it is committed; raises the press's own error (a 404 trip, say), or
        `DatabaseUnavailable` when it was not stored within the deadline."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Raised] = loop.create_future()
        entry = (press, future)
        self._waiting.append(entry)
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_while_waiting())
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._deadline)
        except TimeoutError:
            future.cancel()  # the writer leaves it alone now
            if entry in self._waiting:  # its group never started: nothing of it is stored
                self._waiting.remove(entry)
                raise DatabaseUnavailable("the emergency could not be stored in time; nothing was stored: dial "
                                          "110, and retry with the same Idempotency-Key") from None
            raise DatabaseUnavailable("the database did not confirm the emergency in time; it may have been "
                                      "stored: dial 110, and retry with the same Idempotency-Key") from None

    async def close(self) -> None:
        """At shutdown: wait (a deadline at most) for stores under way, then let the lane's threads go; a
        later press starts new ones. No store outlives its app on a connection handed back meanwhile."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        under_way = [asyncio.wrap_future(f) for f in self._under_way if not f.done()]
        if under_way:
            await asyncio.wait(under_way, timeout=self._deadline)
        executor.shutdown(wait=False, cancel_futures=True)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="tripguard-sos")
        return self._executor

    async def _stored_in_time(self, presses: list[Press]) -> list[Raised | Exception]:
        stored = self._pool().submit(self._store, presses)
        self._under_way = [f for f in self._under_way if not f.done()] + [stored]
        try:
            return await asyncio.wait_for(asyncio.wrap_future(stored), self._deadline)
        except TimeoutError:
            # The thread still waits on a database that does not answer: free it, and fail the group now.
            self._interrupt()
            logger.error("SOS presses not stored within the deadline", extra={"event": "sos.deadline"})
            failed = DatabaseUnavailable("the database did not answer in time: dial 110, and retry with the same "
                                         "Idempotency-Key")
            return [failed for _ in presses]

    async def _write_while_waiting(self) -> None:
        # The group's futures are settled with no await in between the last one and the check for
        # more: the writer has finished before any answered request runs again.
        loop = asyncio.get_running_loop()
        started: float | None = None
        while self._waiting:
            if started is not None and (wait := started + self._gap - loop.time()) > 0:
                await asyncio.sleep(wait)  # presses came in while the last group was written: let this one fill
            started = loop.time()
            group, self._waiting = self._waiting[:self._max_group], self._waiting[self._max_group:]
            try:
                outcomes = await self._stored_in_time([press for press, _ in group])
            except BaseException as exc:  # cancelled at shutdown: nobody is left without an answer
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("shutting down"))
                raise
            new = [o.incident for o in outcomes if isinstance(o, Raised) and o.new]
            if new:
                try:
                    self._on_stored(new)
                except Exception:  # the cases are stored and the callers are answered regardless
                    logger.exception("telling about new SOS cases failed", extra={"event": "sos.feed_failed"})
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if future.done():  # its request went away
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _store(self, presses: list[Press]) -> list[Raised | Exception]:
        desk = self._desk()
        try:
            with unit_of_work(self._factory) as session:
                outcomes: list[Raised | Exception] = list(raise_many(session, desk=desk, presses=presses))
            self.groups += 1
            GROUP_SIZE.observe(len(presses))
            return outcomes
        except Exception as exc:
            if unreachable(exc):  # one by one would wait on the database once per press
                logger.warning("SOS presses not stored: database unavailable", extra={"event": "sos.unavailable"})
                return [exc for _ in presses]
            if len(presses) == 1:
                if not isinstance(exc, DomainError):  # a press's own 4xx is not the server's failure
                    logger.exception("SOS press failed", extra={"event": "sos.failed"})
                return [exc]
        logger.warning("a group of SOS presses failed; storing them one by one",
                       extra={"event": "sos.group_failed"})
        return [outcome for press in presses for outcome in self._store([press])]
