"""Admission control: SOS first and never shed, bulk work bounded and refused first, and no one principal's
burst reaches the database.

A route declares its lane where it is declared, as it declares its permission: `dependencies=[Emergency]`
(the SOS button), `[Bulk]` (ingest, reports, labels, documents, exports) or `[BulkWhenDownloaded]` (a console
list: bulk when asked for as a file, `?format=csv`). Every other route is normal. The app-level dependency
`admit` is the first dependency of every route, so it decides before the principal is resolved or a database
session opened:

- emergency: always taken, never counted (its storing has its own threads, connections and deadline:
  `safety.intake`);
- any other request: at most `per_principal` in flight per credential (a hash of the session cookie or
  subject token; `per_api_key` for an API key); the next is 429 with Retry-After;
- at most `running` of them run at once per process; the next ones wait their turn on the event loop (first
  come, first served, holding no thread and no connection) for up to `queue_seconds`, then 503 with
  Retry-After. `running` is kept below the thread pool's size: a request that holds a connection (or, on
  SQLite, the writer) always finds a thread to finish on, so requests waiting for the database can never
  take every thread from the ones holding it (48 parallel reads of three passengers froze a server so);
- bulk: at most `bulk` in flight per process, and none while the process is saturated (`busy` admitted
  requests in flight, requests waiting for their turn, or requests waiting for a thread): 503 with
  Retry-After, before anything else is refused.

Counts are per process (each API replica admits for itself) and change only on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam

from tripguard.core.deps import admission_of
from tripguard.core.errors import DomainError
from tripguard.core.middleware import SHED

DOWNLOAD_FORMATS = frozenset({"csv", "pdf"})


class Lane(StrEnum):
    EMERGENCY = "emergency"
    NORMAL = "normal"
    BULK = "bulk"
    BULK_WHEN_DOWNLOADED = "bulk-when-downloaded"


class Overloaded(DomainError):
    status, type, title = 503, "/problems/overloaded", "Busy: bulk work refused"
    shown_as_page = False  # a console error page would need the threads and the database it protects

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooManyInFlight(Overloaded):
    status, type, title = 429, "/problems/too-many-in-flight", "Too many requests in flight"


def admitted_as(lane: Lane) -> DependsParam:
    """The dependency a route declares to name its lane (the admission reads it, as the permission test reads
    `requires`)."""

    async def lane_marker() -> None:
        return None

    lane_marker.admission_lane = lane  # type: ignore[attr-defined]
    return DependsParam(lane_marker)


Emergency = admitted_as(Lane.EMERGENCY)
Bulk = admitted_as(Lane.BULK)
BulkWhenDownloaded = admitted_as(Lane.BULK_WHEN_DOWNLOADED)


def declared_lane(dependant: Any) -> Lane:
    """The lane a route declared through `admitted_as` (searching its dependency tree), else normal."""
    for dep in dependant.dependencies:
        found = getattr(dep.call, "admission_lane", None)
        if found is not None:
            return found  # type: ignore[no-any-return]
        nested = declared_lane(dep)
        if nested is not Lane.NORMAL:
            return nested
    return Lane.NORMAL


@dataclass(frozen=True)
class Credential:
    secret: str  # the cookie or token as sent; only its hash is kept
    api_key: bool


@dataclass(frozen=True)
class Limits:
    per_principal: int
    per_api_key: int
    bulk: int
    busy: int
    retry_after: int
    running: int = 24
    queue_seconds: float = 10.0


@dataclass(frozen=True)
class Ticket:
    principal: bytes | None
    bulk: bool


class Admission:
    """The counts of one process, and the decision for each request."""

    def __init__(self, limits: Limits, credential_of: Callable[[Request], Credential | None]) -> None:
        self.limits = limits
        self.credential_of = credential_of
        self.in_flight: dict[bytes, int] = {}  # per credential hash
        self.bulk = 0
        self.admitted = 0  # requests running (SOS not counted); at most `limits.running`
        self._lanes: dict[int, Lane] = {}
        self._waiting: deque[asyncio.Future[None]] = deque()  # requests waiting for a place to run, oldest first
        self._lock = threading.Lock()  # uncontended: one event loop, but tests may drive an app from two

    def lane_of(self, request: Request) -> Lane:
        route = request.scope.get("route")
        lane = self._lanes.get(id(route))
        if lane is None:
            dependant = getattr(route, "dependant", None)
            lane = declared_lane(dependant) if dependant is not None else Lane.NORMAL
            self._lanes[id(route)] = lane
        if lane is Lane.BULK_WHEN_DOWNLOADED:
            return Lane.BULK if request.query_params.get("format") in DOWNLOAD_FORMATS else Lane.NORMAL
        return lane

    async def enter(self, request: Request) -> Ticket | None:
        """Take the request once it may run (its ticket; None for an emergency), or raise why not."""
        lane = self.lane_of(request)
        if lane is Lane.EMERGENCY:
            return None
        credential = self.credential_of(request)
        key = hashlib.blake2b(credential.secret.encode(), digest_size=16).digest() if credential else None
        bulk = lane is Lane.BULK
        turn: asyncio.Future[None] | None = None
        with self._lock:
            if key is not None:
                limit = self.limits.per_api_key if credential and credential.api_key else self.limits.per_principal
                if self.in_flight.get(key, 0) >= limit:
                    SHED.labels(lane.value, "principal").inc()
                    raise TooManyInFlight(f"at most {limit} requests of one principal at a time; retry after the "
                                          "ones in flight", retry_after=self.limits.retry_after)
            if bulk:
                self._check_bulk()
                self.bulk += 1
            if key is not None:
                self.in_flight[key] = self.in_flight.get(key, 0) + 1
            if self.admitted < self.limits.running and not self._waiting:
                self.admitted += 1
            else:
                turn = asyncio.get_running_loop().create_future()
                self._waiting.append(turn)
        ticket = Ticket(key, bulk)
        if turn is not None:
            await self._wait_for(turn, ticket, lane)
        return ticket

    async def _wait_for(self, turn: asyncio.Future[None], ticket: Ticket, lane: Lane) -> None:
        """Until `leave` hands this request a place; 503 if none came within `queue_seconds`."""
        try:
            await asyncio.wait({turn}, timeout=self.limits.queue_seconds)
        except BaseException:  # the client went away: give back what was counted, a place handed over too
            with self._lock:
                handed = turn not in self._waiting
                if not handed:
                    self._waiting.remove(turn)
                self._release(ticket, running=handed)
            raise
        with self._lock:
            if turn not in self._waiting:
                return
            self._waiting.remove(turn)
            self._release(ticket, running=False)
        SHED.labels(lane.value, "queued_too_long").inc()
        raise Overloaded(f"no turn within {self.limits.queue_seconds:g} s: the server is busy; retry later "
                         "(emergencies go first)", retry_after=self.limits.retry_after)

    def _check_bulk(self) -> None:
        if self.bulk >= self.limits.bulk:
            SHED.labels(Lane.BULK.value, "bulk_limit").inc()
            raise Overloaded(f"at most {self.limits.bulk} bulk requests at a time here; retry later",
                             retry_after=self.limits.retry_after)
        if self.admitted >= self.limits.busy or self._waiting or _threads_waiting():
            SHED.labels(Lane.BULK.value, "saturated").inc()
            raise Overloaded("the server is busy; bulk work waits (retry later), emergencies go first",
                             retry_after=self.limits.retry_after)

    def leave(self, ticket: Ticket) -> None:
        with self._lock:
            self._release(ticket, running=True)

    def _release(self, ticket: Ticket, *, running: bool) -> None:
        if running:
            if self._waiting:  # the place passes straight to the longest waiting request
                turn = self._waiting.popleft()
                turn.get_loop().call_soon_threadsafe(_begin, turn)
            else:
                self.admitted -= 1
        if ticket.bulk:
            self.bulk -= 1
        if ticket.principal is not None:
            left = self.in_flight.get(ticket.principal, 1) - 1
            if left > 0:
                self.in_flight[ticket.principal] = left
            else:
                self.in_flight.pop(ticket.principal, None)


def _begin(turn: asyncio.Future[None]) -> None:
    if not turn.done():
        turn.set_result(None)


def _threads_waiting() -> bool:
    return anyio.to_thread.current_default_thread_limiter().statistics().tasks_waiting > 0


async def admit(request: Request) -> AsyncIterator[None]:
    """The app-level dependency: every route's first; holds the request's place until its function returns."""
    admission = admission_of(request.app)
    ticket = await admission.enter(request)
    if ticket is None:
        yield
        return
    try:
        yield
    finally:
        admission.leave(ticket)


AdmitFirst = Depends(admit, scope="function")
