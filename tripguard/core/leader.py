"""Leader election: two schedulers never run the same job; two monitor workers never run the same shard.

The scheduler's leadership, and each monitor shard's ownership, is a lease (`core_leases`): a row
saying who holds it until when, by the database's clock, with a token that grows by one at every
change of holder. The holder renews it every few seconds from the loop that does the work, so a
holder that is stopped (SIGSTOP, a long pause, a hung loop) stops renewing, and a standby takes the
lease once it has expired. Fencing makes a holder that wakes up after that harmless: every
transaction of its work (`fenced_sessionmaker`) checks at its start that the token is still the
current one, and at its commit share-locks the row with the same check, so the lease cannot change
hands between that check and the commit; a refused transaction raises `Fenced`, and the holder stops
at once. See M. Kleppmann, "How to do distributed locking" (2016).

On SQLite TripGuard is one process by design (the embedded default): that process always leads,
and nothing is fenced."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from tripguard.core.db import make_sessionmaker

T = TypeVar("T")
SCHEDULER_LEASE = "scheduler"
_BEGUN = "tripguard_fenced_begun"  # Session.info: this transaction passed the check at its start

_TAKE = text("""
INSERT INTO core_leases (name, holder, token, taken_at, expires_at)
VALUES (:name, :holder, 1, clock_timestamp(), clock_timestamp() + make_interval(secs => :seconds))
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = core_leases.token + 1,
    taken_at = excluded.taken_at, expires_at = excluded.expires_at
WHERE core_leases.expires_at <= clock_timestamp()
RETURNING token""")
_RENEW = text("""
UPDATE core_leases SET expires_at = clock_timestamp() + make_interval(secs => :seconds)
WHERE name = :name AND holder = :holder AND token = :token AND expires_at > clock_timestamp()
RETURNING token""")
_LIVE = text("SELECT expires_at > clock_timestamp() FROM core_leases WHERE name = :name")
_RELEASE = text("UPDATE core_leases SET expires_at = clock_timestamp() "
                "WHERE name = :name AND token = :token AND expires_at > clock_timestamp()")
# The token is current; and (one round trip) the transaction gets an idle-in-transaction timeout.
_CURRENT = ("SELECT set_config('idle_in_transaction_session_timeout', :idle_ms, true) FROM core_leases "
            "WHERE name = :name AND token = :token AND expires_at > clock_timestamp()")


# A member of a group (the monitor workers of a bus): a row of its own, renewed as a lease is, so the live
# members are the rows not yet expired; rows expired long ago are pruned by the live ones.
_JOIN = text("""
INSERT INTO core_leases (name, holder, token, taken_at, expires_at)
VALUES (:name, :holder, 1, clock_timestamp(), clock_timestamp() + make_interval(secs => :seconds))
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at""")
_PRUNE = text("DELETE FROM core_leases WHERE starts_with(name, :prefix) "
              "AND expires_at < clock_timestamp() - make_interval(secs => :seconds)")
_LIVE_HOLDERS = text("SELECT holder, starts_with(name, :members) FROM core_leases "
                     "WHERE (starts_with(name, :members) OR starts_with(name, :leases)) "
                     "AND expires_at > clock_timestamp()")
_LEAVE = text("UPDATE core_leases SET expires_at = clock_timestamp() WHERE name = :name")


class Fenced(Exception):
    """A transaction of a leader whose lease is no longer the current one: refused, and it must stop leading."""


def holder_name() -> str:
    """Which process holds a lease, as an operator reads it: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Lease:
    """One named lease on PostgreSQL, held by this process or not; thread-safe.

    `lead()` renews it (or takes it when free or expired) and says whether this process leads; the
    caller calls it every `seconds / 3` or so. `holds()` is the local, round-trip-free view: held, and
    not yet expired by this process's monotonic clock (started before the database read its own, so
    never later than the row's `expires_at`)."""

    def __init__(self, engine: Engine, name: str = SCHEDULER_LEASE, *, seconds: float = 10.0,
                 holder: str | None = None, own_connection: bool = True) -> None:
        self.engine = engine
        self.name = name
        self.seconds = seconds
        self.holder = holder or holder_name()
        self.own_connection = own_connection  # False: from the pool each time (a worker with many leases)
        self.token: int | None = None
        self._valid_until = 0.0
        self._connection: Connection | None = None
        self._mutex = threading.Lock()

    @property
    def exclusive(self) -> bool:
        """Whether leadership is contested at all (PostgreSQL); SQLite's single process always leads."""
        return self.engine.dialect.name == "postgresql"

    def lead(self) -> bool:
        """Renew the lease if this process holds it, else take it if it is free or expired."""
        if not self.exclusive:
            return True
        with self._mutex:
            asked = time.monotonic()
            try:
                token = self._in_transaction(self._renew if self.token is not None else self._take)
            except SQLAlchemyError:  # not asked: a lease held stays held until it runs out locally
                return self.token is not None and asked < self._valid_until
            self.token = token
            self._valid_until = asked + self.seconds if token is not None else 0.0
            return token is not None

    def keep(self) -> bool:
        """`lead()`, but no round trip while less than a third of the lease has passed since the last
        renewal: what a loop that turns many times a second calls every turn."""
        if self.holds() and time.monotonic() < self._valid_until - self.seconds * 2 / 3:
            return True
        return self.lead()

    def holds(self) -> bool:
        if not self.exclusive:
            return True
        return self.token is not None and time.monotonic() < self._valid_until

    def lose(self) -> None:
        """Forget the lease without a round trip (a transaction was fenced: someone else holds it)."""
        with self._mutex:
            self.token, self._valid_until = None, 0.0

    def release(self) -> None:
        """Give the lease up (a clean stop): a standby takes it at its next try rather than at expiry."""
        if not self.exclusive:
            return
        with self._mutex:
            token, self.token, self._valid_until = self.token, None, 0.0
            if token is not None:
                with contextlib.suppress(SQLAlchemyError):  # then it runs out
                    self._in_transaction(lambda connection: self._release(connection, token))
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()

    def check(self, connection: Connection, *, lock: bool) -> None:
        """Raise `Fenced` unless this process's token is the current, unexpired one (the database's clock).

        With `lock`, the row is share-locked until the transaction ends: nobody takes the lease over
        before it has committed. Should this process stop between that check and its commit (or anywhere
        in the transaction), PostgreSQL ends its session after the lease's length idle, and the locks go."""
        if not self.exclusive:
            return
        token = self.token
        if token is None:
            raise Fenced(f"lease {self.name!r} not held")
        # A leader stopped inside a transaction would keep its row locks (and at commit, the lease row)
        # for as long as it stays stopped: PostgreSQL ends such a session after the lease's length idle.
        idle_ms = str(max(1, int(self.seconds * 1000)))
        statement = _CURRENT + (" FOR SHARE" if lock else "")
        if connection.execute(text(statement), {"name": self.name, "token": token, "idle_ms": idle_ms}).first() is None:
            raise Fenced(f"lease {self.name!r} token {token} is no longer the current one")

    def _take(self, connection: Connection) -> int | None:
        live = connection.execute(_LIVE, {"name": self.name}).scalar()
        if live:  # someone holds it: no write, so no lock on the holder's row
            return None
        connection.exec_driver_sql("SET LOCAL lock_timeout = 1000")  # a stopped holder's share lock
        token = connection.execute(_TAKE, {"name": self.name, "holder": self.holder, "seconds": self.seconds}).scalar()
        return None if token is None else int(token)

    def _renew(self, connection: Connection) -> int | None:
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(self.seconds * 1000 / 3))}")
        token = connection.execute(_RENEW, {"name": self.name, "holder": self.holder, "token": self.token,
                                            "seconds": self.seconds}).scalar()
        return None if token is None else int(token)

    def _release(self, connection: Connection, token: int) -> None:
        connection.execute(_RELEASE, {"name": self.name, "token": token})

    def _in_transaction(self, step: Callable[[Connection], T]) -> T:
        """Run `step(connection)` in a transaction of the lease's own connection (not the jobs' pool, which
        they may have exhausted); on a database error the connection is dropped and the error raised."""
        if not self.own_connection:
            with self.engine.connect() as pooled, pooled.begin():
                return step(pooled)
        try:
            if self._connection is None:
                self._connection = self.engine.connect()
            with self._connection.begin():
                return step(self._connection)
        except SQLAlchemyError:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.invalidate()
            raise


def fenced_sessionmaker(engine: Engine, lease: Lease) -> sessionmaker[Session]:
    """Sessions whose every transaction is refused (`Fenced`) unless `lease` is still this process's."""
    factory = make_sessionmaker(engine)
    if not lease.exclusive:
        return factory

    @event.listens_for(factory, "after_begin")
    def _check_at_begin(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
        lease.check(connection, lock=False)
        session.info[_BEGUN] = True

    @event.listens_for(factory, "before_commit")
    def _check_at_commit(session: Session) -> None:
        session.flush()  # what the commit would flush, flushed under the check
        if session.info.get(_BEGUN):
            lease.check(session.connection(), lock=True)

    @event.listens_for(factory, "after_transaction_end")
    def _forget(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            session.info.pop(_BEGUN, None)

    return factory


@dataclass(frozen=True)
class Roll:
    """A group's live members, and how many of the group's leases each live holder has."""

    members: frozenset[str]
    held: dict[str, int]


class Membership:
    """This process's presence in a group (`members` prefix) whose members share leases (`leases` prefix):
    `beat()` renews it and reads who else is there and what they hold; PostgreSQL only."""

    def __init__(self, engine: Engine, *, members: str, leases: str, holder: str, seconds: float) -> None:
        self.engine, self.members, self.leases = engine, members, leases
        self.holder, self.seconds = holder, seconds
        self.name = members + secrets.token_hex(6)

    def beat(self) -> Roll:
        with self.engine.connect() as connection, connection.begin():
            connection.execute(_JOIN, {"name": self.name, "holder": self.holder, "seconds": self.seconds})
            connection.execute(_PRUNE, {"prefix": self.members, "seconds": 60 * self.seconds})
            rows = connection.execute(_LIVE_HOLDERS, {"members": self.members, "leases": self.leases}).all()
        held: dict[str, int] = {}
        for holder, is_member in rows:
            if not is_member:
                held[holder] = held.get(holder, 0) + 1
        return Roll(frozenset(holder for holder, is_member in rows if is_member), held)

    def leave(self) -> None:
        with contextlib.suppress(SQLAlchemyError), self.engine.connect() as connection, connection.begin():
            connection.execute(_LEAVE, {"name": self.name})
