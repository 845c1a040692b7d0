"""Which trips a live-map viewer was shown, kept in the audit log so that a breach investigation of that
viewer finds the people on those trips (passenger and driver).

An opening records the trips on the map at that moment with its audit entry (`live_map.open`: the
snapshot's trips, or the stream's), in the request's transaction, before anything is sent. The stream
then brings trips that start (or first report) later: it notes the ids of the trips it sent, and writes
those not yet recorded as one `live_map.shown` entry at most every `RECORD_EVERY` seconds and once
more when it ends. That is one small write per viewer per interval, never one per trip or per message,
and never in the feed's way: it runs after the write to the viewer, off the event loop, as a bookkeeping
write (its own short transaction that skips a busy SQLite writer instead of waiting; the ids stay
pending for the next interval). The last one, when the stream ends, runs on a thread of its own and
waits its turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.bookkeeping import write_bookkeeping
from tripguard.core.db import unit_of_work
from tripguard.core.fanout import Item
from tripguard.security.permissions import Purpose

logger = logging.getLogger("tripguard.telematics")
RECORD_EVERY = 15.0  # seconds: the same as the stream's heartbeat, so a quiet stream still records
SHOWING = frozenset({"trip_started", "position"})  # items that put a trip (its route, where it is) on screen
MAX_REMEMBERED = 200_000  # trip ids a stream remembers as recorded; past it, it forgets (a repeat is harmless)


def shown_details(trip_ids: list[str]) -> dict[str, str | int | float | bool | None]:
    """An audit entry's details for the trips shown: their ids (identifiers, not personal data) and count."""
    ids = sorted(set(trip_ids))
    return {"trips": ",".join(ids), "count": len(ids)}


def trips_of(details: dict[str, object]) -> list[str]:
    """The trip ids an entry with `shown_details` names."""
    trips = details.get("trips")
    return [t for t in trips.split(",") if t] if isinstance(trips, str) else []


class ShownTrips:
    """A live-map stream's record of the trips it sent (`console.streams.Watcher`)."""

    def __init__(self, factory: sessionmaker[Session], actor: Actor, *, recorded: list[str],
                 every: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.factory, self.actor, self.clock = factory, actor, clock
        self.every = RECORD_EVERY if every is None else every
        self.recorded: set[str] = set(recorded)
        self.pending: set[str] = set()
        self.last = clock()
        # A stream cut off while its interval's write runs closes with the last write on another thread.
        self._writing = threading.Lock()

    def note(self, items: list[Item]) -> None:
        for item in items:
            trip_id = item.get("trip_id")
            if item.get("type") in SHOWING and isinstance(trip_id, str) and trip_id not in self.recorded:
                self.pending.add(trip_id)

    async def sent(self, items: list[Item]) -> None:
        self.note(items)
        if self.pending and self.clock() - self.last >= self.every:
            await run_in_threadpool(self.record, wait=False)

    def closed(self) -> None:
        if self.pending:
            threading.Thread(target=self._record_last, name="live-map-shown").start()

    def _record_last(self) -> None:
        try:
            self.record(wait=True)
        except Exception:
            logger.exception("the trips a live map was shown could not be recorded",
                             extra={"event": f"{len(self.pending)} trips"})

    def record(self, *, wait: bool) -> bool:
        """One entry for the trips pending; False when the write was skipped (they stay pending)."""
        with self._writing:
            return self._record(wait=wait)

    def _record(self, *, wait: bool) -> bool:
        trips = sorted(self.pending)
        self.last = self.clock()
        if not trips:
            return True

        def write(session: Session) -> bool:
            audit.record(session, actor=self.actor, action="live_map.shown", target_type="live_map",
                         target_id="stream", purpose=Purpose.EMERGENCY.value, details=shown_details(trips))
            return True

        if wait:
            with unit_of_work(self.factory) as session:
                write(session)
        elif not write_bookkeeping(self.factory, write=write):
            return False
        if len(self.recorded) > MAX_REMEMBERED:
            self.recorded.clear()
        self.recorded.update(trips)
        self.pending.difference_update(trips)
        return True
