"""Group commit for order intake: orders that arrive together are stored together (as the SOS intake does,
`safety.intake`).

An order request waits for the next group; a group is stored in one transaction by `service.take_orders`:
a handful of queries, one commit and one key-wrap derivation for all its orders instead of for each. A
request that finds the writer idle is stored at once; requests that arrive while a group is being written
make up the next one. Each request is answered only once its order is committed, with its own outcome: a bad
order (another customer's id, no such notice, an erased customer) fails alone. The same order id twice, in
one group or in two, is one order: the groups are written one after another, so a retry that races the
first request finds it (and across processes, the database's key refuses the second insert: see below).

If a group's transaction fails, its orders are stored one by one, so an order that breaks in an unexpected
way (or loses a race with another process) fails alone; not when the database is unreachable, which fails
the whole group at once (503, nothing stored). A group not stored within `deadline` seconds is answered 503
too: it may have been stored, and a retry with the same order id returns it.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor

from prometheus_client import Histogram
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit.actor import Actor
from tripguard.core.db import unit_of_work, unreachable
from tripguard.core.errors import DatabaseUnavailable, DomainError
from tripguard.core.logging import request_id_var
from tripguard.delivery.service import Intake, Taken, Taking, take_orders
from tripguard.vault.service import Vault

logger = logging.getLogger("tripguard.delivery")
MAX_GROUP = 256
DEADLINE = 15.0  # seconds from a group's start to its commit
GROUP_SIZE = Histogram("tripguard_order_group_size", "orders stored per transaction",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))


class OrderIntake:
    def __init__(self, factory: sessionmaker[Session], vault: Vault, *, max_group: int = MAX_GROUP,
                 deadline: float = DEADLINE) -> None:
        self._factory = factory
        self._vault = vault
        self._max_group = max_group
        self._deadline = deadline
        # Two threads: a group stuck past its deadline on a silent database does not hold up the next.
        self._executor: ThreadPoolExecutor | None = None
        self._under_way: list[Future[list[Taken | Exception]]] = []
        self._waiting: list[tuple[Taking, asyncio.Future[Taken]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.groups = 0  # transactions that stored orders

    async def submit(self, actor: Actor, intake: Intake) -> Taken:
        """The order once it is committed (and whether this request stored it); raises the order's own error,
        or `DatabaseUnavailable`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Taken] = loop.create_future()
        self._waiting.append((Taking(actor, intake, request_id_var.get()), future))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_while_waiting())
        return await asyncio.shield(future)  # a request that goes away leaves its order to be stored

    async def close(self) -> None:
        """At shutdown: wait (a deadline at most) for groups under way, then let the threads go."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        under_way = [asyncio.wrap_future(f) for f in self._under_way if not f.done()]
        if under_way:
            await asyncio.wait(under_way, timeout=self._deadline)
        executor.shutdown(wait=False, cancel_futures=True)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tripguard-orders")
        return self._executor

    async def _stored_in_time(self, takings: list[Taking]) -> list[Taken | Exception]:
        stored = self._pool().submit(self._store, takings)
        self._under_way = [f for f in self._under_way if not f.done()] + [stored]
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(stored)), self._deadline)
        except TimeoutError:
            logger.error("orders not stored within the deadline", extra={"event": "orders.deadline"})
            failed = DatabaseUnavailable("the database did not confirm the order in time; it may have been stored: "
                                         "retry with the same order id")
            return [failed for _ in takings]

    async def _write_while_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:self._max_group], self._waiting[self._max_group:]
            try:
                outcomes = await self._stored_in_time([taking for taking, _ in group])
            except BaseException as exc:  # cancelled at shutdown: nobody is left without an answer
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("shutting down"))
                raise
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _store(self, takings: list[Taking]) -> list[Taken | Exception]:
        try:
            with unit_of_work(self._factory) as session:
                outcomes = take_orders(session, vault=self._vault, takings=takings)
            self.groups += 1
            GROUP_SIZE.observe(len(takings))
            return outcomes
        except Exception as exc:
            if unreachable(exc):  # one by one would wait on the database once per order
                logger.warning("orders not stored: database unavailable", extra={"event": "orders.unavailable"})
                failed = DatabaseUnavailable("the database is unavailable; nothing was stored: retry with the same "
                                             "order id")
                return [failed for _ in takings]
            if len(takings) == 1:
                if not isinstance(exc, DomainError):
                    logger.exception("order failed", extra={"event": "orders.failed"})
                return [exc]
        logger.warning("a group of orders failed; storing them one by one", extra={"event": "orders.group_failed"})
        return [outcome for taking in takings for outcome in self._store([taking])]
