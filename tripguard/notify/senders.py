"""The outbox's senders: the emergency lane on a sender of its own, everything else on another.

Each sender is a thread that claims what its bulkheads have room for, hands each message to its
destination's bulkhead (at most `concurrency` sends in flight, on threads of its own) and
records outcomes as sends finish, so it never waits for a slow receiver: a webhook host answering
in two seconds holds only its own bulkhead, and the emergency sender holds none of theirs. A sender
sleeps until it is woken (`OutboxWake`: an SOS stored in this process; `listener.py`: one stored
in another, by PostgreSQL NOTIFY), a send finishes, or `poll` seconds pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.db import unit_of_work
from tripguard.notify.listener import EmergencyListener
from tripguard.notify.models import Priority
from tripguard.notify.service import (
    CLAIM_FOR,
    Claimed,
    Notifier,
    Outcome,
    claim_due,
    record_outcomes,
    send_one,
)
from tripguard.vault.service import Vault

logger = logging.getLogger("tripguard.notify")


class OutboxWake:
    """`set()` from anywhere (the event loop, a request's thread) wakes every sender subscribed."""

    def __init__(self) -> None:
        self._events: list[threading.Event] = []

    def subscribe(self, event: threading.Event) -> None:
        self._events.append(event)

    def set(self) -> None:
        for event in self._events:
            event.set()


@dataclass
class Bulkhead:
    """One destination's sends: at most `cap` in flight, on threads of their own."""

    cap: int
    executor: ThreadPoolExecutor
    in_flight: int = 0

    @property
    def full(self) -> bool:
        return self.in_flight >= self.cap


@dataclass
class Sender:
    """Claims and sends the messages of some priorities, until `stop` is set."""

    name: str
    factory: sessionmaker[Session]
    vault: Vault
    notifier: Notifier
    priorities: Collection[int]
    database_lock: threading.Lock  # the outbox's transactions in this process, one at a time: a few ms each
    concurrency: int = 4  # sends in flight per destination
    claim_for: timedelta = CLAIM_FOR
    poll: float = 1.0
    wake: threading.Event = field(default_factory=threading.Event)
    _bulkheads: dict[str, Bulkhead] = field(default_factory=dict)
    _finished: list[Outcome] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the bulkheads' counts and `_finished`

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.wake.clear()  # before looking: a wake-up from now on is seen by the wait below
            try:
                busy = self.round()
            except Exception:  # the database is away: try again at the next poll
                logger.exception("outbox round failed", extra={"event": f"notify.{self.name}"})
                busy = False
            if not busy:
                self.wake.wait(self.poll)
        for bulkhead in self._bulkheads.values():  # sends under way finish, and are recorded
            bulkhead.executor.shutdown(wait=True)
        self._record_finished()

    def round(self) -> bool:
        """Record what finished and claim what there is room for, in one short transaction; start sending
        what it claimed. Whether it claimed any."""
        with self._lock:
            finished, self._finished = self._finished, []
            full = {destination for destination, bulkhead in self._bulkheads.items() if bulkhead.full}
        taken: list[str] = []

        def take(destination: str) -> bool:
            if self._take(destination):
                taken.append(destination)
                return True
            return False

        try:
            with self.database_lock, unit_of_work(self.factory) as session:
                record_outcomes(session, notifier=self.notifier, outcomes=finished)
                claimed = claim_due(session, vault=self.vault, limit=self.notifier.batch,
                                    claim_for=self.claim_for,
                                    priorities=self.priorities, skip_destinations=full, take=take)
        except BaseException:  # nothing was claimed or recorded: the places go back, the outcomes wait
            with self._lock:
                for destination in taken:
                    self._bulkheads[destination].in_flight -= 1
                self._finished[:0] = finished
            raise
        for item in claimed:
            self._bulkheads[item.destination].executor.submit(self._send, item)
        return bool(claimed)

    def in_flight(self, destination: str | None = None) -> int:
        """Sends claimed and not yet finished, to `destination` or to all."""
        with self._lock:
            return sum(bulkhead.in_flight for name, bulkhead in self._bulkheads.items()
                       if destination in (None, name))

    def _take(self, destination: str) -> bool:
        """A place in the destination's bulkhead, if it has one free."""
        with self._lock:
            bulkhead = self._bulkheads.get(destination)
            if bulkhead is None:
                bulkhead = self._bulkheads[destination] = Bulkhead(
                    cap=self.concurrency, executor=ThreadPoolExecutor(
                        max_workers=self.concurrency, thread_name_prefix=f"outbox-{self.name}"))
            if bulkhead.full:
                return False
            bulkhead.in_flight += 1
            return True

    def _send(self, item: Claimed) -> None:
        try:
            outcome = send_one(self.notifier, item)
        except Exception as exc:  # a channel's bug: the message is retried like a transient failure
            logger.exception("outbox send failed", extra={"event": f"notify.{self.name}"})
            outcome = (item.message_id, exc)
        with self._lock:
            self._bulkheads[item.destination].in_flight -= 1
            self._finished.append(outcome)
        self.wake.set()  # record it, and claim into the place it left

    def _record_finished(self) -> None:
        with self._lock:
            finished, self._finished = self._finished, []
        if not finished:
            return
        try:
            with self.database_lock, unit_of_work(self.factory) as session:
                record_outcomes(session, notifier=self.notifier, outcomes=finished)
        except Exception:  # not recorded: their claims lapse after `claim_for` and they go again (at least once)
            logger.exception("recording outbox outcomes failed", extra={"event": f"notify.{self.name}"})


EMERGENCY_LANE = (int(Priority.EMERGENCY),)
OTHER_LANES = tuple(int(p) for p in Priority if p != Priority.EMERGENCY)


class OutboxSenders:
    """The emergency sender and the general one, each on a thread, and on PostgreSQL the NOTIFY listener
    that wakes the emergency sender when another process stores an SOS."""

    def __init__(self, factory: sessionmaker[Session], vault: Vault, notifier: Notifier, *, database_url: str,
                 wake: OutboxWake | None = None, poll: float = 1.0, claim_for: timedelta = CLAIM_FOR,
                 emergency_factory: sessionmaker[Session] | None = None) -> None:
        """`emergency_factory`: the emergency lane's connections (on SQLite its writes go ahead of bulk
        writers), so the gateway message never waits for the general sender's transactions."""
        database_lock = threading.Lock()
        emergency_factory = emergency_factory or factory
        # Two senders share one lock only when they share one connection (the tests' rollback per test).
        emergency_lock = database_lock if emergency_factory is factory else threading.Lock()
        self.emergency = Sender("emergency", emergency_factory, vault, notifier, EMERGENCY_LANE, emergency_lock,
                                concurrency=notifier.emergency_concurrency, claim_for=claim_for, poll=poll)
        self.general = Sender("general", factory, vault, notifier, OTHER_LANES, database_lock,
                              concurrency=notifier.concurrency, claim_for=claim_for, poll=poll)
        self.wake = wake or OutboxWake()
        self.wake.subscribe(self.emergency.wake)
        self.wake.subscribe(self.general.wake)
        self.listener = (EmergencyListener(database_url, on_notify=self.emergency.wake.set)
                         if database_url.startswith("postgresql") else None)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        runs = [("outbox-emergency", self.emergency.run), ("outbox-general", self.general.run)]
        if self.listener is not None:
            runs.append(("outbox-listener", self.listener.run))
        for name, run in runs:
            thread = threading.Thread(target=run, args=(self._stop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; sends under way finish (within `timeout`) and are recorded."""
        self._stop.set()
        self.wake.set()
        for thread in self._threads:
            thread.join(timeout)
