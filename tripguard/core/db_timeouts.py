"""How long any database wait may last: connecting, a statement, a lock, a dead peer.

Every engine gets a `DatabaseTimeouts`. Bulk work (requests, jobs, workers) has generous bounds; the
emergency lane (SOS intake) has its own engine with tight ones, so that a partition or a hung primary
turns into a quick 503 the app can act on (dial 110) instead of a press that hangs.

On PostgreSQL the bounds are libpq connection parameters and server settings sent at connection time
(the `options` startup parameter). The server enforces `statement_timeout`, `lock_timeout` and
`idle_in_transaction_session_timeout`; the client's kernel enforces the keepalives and
`tcp_user_timeout` (without it, a write into a partitioned network waits for TCP's retransmission
timeout, about 15 minutes). A peer that keeps the connection open but never answers (a hung primary,
a stalled proxy) is caught by neither: `interrupt_busy_connections` is the last resort for the lane
that must answer in time.
"""

from __future__ import annotations

import logging
import os
import socket
import weakref
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event

if TYPE_CHECKING:
    from tripguard.core.settings import Settings

logger = logging.getLogger("tripguard.db")


@dataclass(frozen=True)
class DatabaseTimeouts:
    """Bounds for one engine; a `*_seconds` of 0 means no bound (not for connecting)."""

    connect_seconds: int = 5
    statement_seconds: float = 60
    lock_seconds: float = 10
    idle_in_transaction_seconds: float = 60
    keepalives_idle_seconds: int = 10
    keepalives_interval_seconds: int = 3
    keepalives_count: int = 3
    tcp_user_timeout_seconds: float = 15
    sqlite_busy_seconds: float = 10  # SQLite: how long a writer waits for the file's write lock


DEFAULTS = DatabaseTimeouts()  # what an engine made without settings gets (tests, benchmarks)
# Migrations and backups: a long statement is expected; a dead peer still is not.
MAINTENANCE = DatabaseTimeouts(statement_seconds=0, idle_in_transaction_seconds=0)


def bulk_timeouts(settings: Settings) -> DatabaseTimeouts:
    return DatabaseTimeouts(
        connect_seconds=settings.db_connect_timeout_seconds,
        statement_seconds=settings.db_statement_timeout_seconds,
        lock_seconds=settings.db_lock_timeout_seconds,
        idle_in_transaction_seconds=settings.db_idle_in_transaction_timeout_seconds,
        keepalives_idle_seconds=settings.db_keepalives_idle_seconds,
        keepalives_interval_seconds=settings.db_keepalives_interval_seconds,
        keepalives_count=settings.db_keepalives_count,
        tcp_user_timeout_seconds=settings.db_tcp_user_timeout_seconds,
        sqlite_busy_seconds=max(settings.db_lock_timeout_seconds, 1.0),
    )


def emergency_timeouts(settings: Settings) -> DatabaseTimeouts:
    """The SOS lane: every wait fits inside the press's deadline (`sos_deadline_seconds`)."""
    return DatabaseTimeouts(
        connect_seconds=settings.db_emergency_connect_timeout_seconds,
        statement_seconds=settings.db_emergency_statement_timeout_seconds,
        lock_seconds=settings.db_emergency_lock_timeout_seconds,
        idle_in_transaction_seconds=5,  # the lane never idles inside a transaction: a crashed writer's locks go soon
        keepalives_idle_seconds=1,
        keepalives_interval_seconds=1,
        keepalives_count=2,
        tcp_user_timeout_seconds=settings.db_emergency_tcp_user_timeout_seconds,
        # On SQLite an SOS is first in this process's writer queue: it waits only for the writer in place.
        sqlite_busy_seconds=settings.sos_deadline_seconds,
    )


def maintenance_timeouts(settings: Settings) -> DatabaseTimeouts:
    return replace(bulk_timeouts(settings), statement_seconds=MAINTENANCE.statement_seconds,
                   idle_in_transaction_seconds=MAINTENANCE.idle_in_transaction_seconds)


def _milliseconds(seconds: float) -> int:
    return round(seconds * 1000)


def postgres_connect_args(timeouts: DatabaseTimeouts) -> dict[str, Any]:
    """libpq/psycopg connection parameters carrying `timeouts`."""
    server = {"statement_timeout": timeouts.statement_seconds, "lock_timeout": timeouts.lock_seconds,
              "idle_in_transaction_session_timeout": timeouts.idle_in_transaction_seconds}
    args: dict[str, Any] = {
        "connect_timeout": timeouts.connect_seconds,
        "keepalives": 1,
        "keepalives_idle": timeouts.keepalives_idle_seconds,
        "keepalives_interval": timeouts.keepalives_interval_seconds,
        "keepalives_count": timeouts.keepalives_count,
        "tcp_user_timeout": _milliseconds(timeouts.tcp_user_timeout_seconds),
        "options": " ".join(f"-c {name}={_milliseconds(seconds)}" for name, seconds in server.items()),
    }
    return args


def postgres_conninfo_params(timeouts: DatabaseTimeouts) -> dict[str, str]:
    """The same, as conninfo keywords (psycopg's own pools)."""
    return {name: str(value) for name, value in postgres_connect_args(timeouts).items()}


_ACTIVE = 1  # libpq PQTRANS_ACTIVE: a command was sent and its result has not been read
_open_connections: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[Any]] = weakref.WeakKeyDictionary()


def track_connections(engine: Engine) -> None:
    """Remember the engine's open DBAPI connections, for `interrupt_busy_connections`."""
    connections: weakref.WeakSet[Any] = weakref.WeakSet()
    _open_connections[engine] = connections

    @event.listens_for(engine, "connect")
    def _remember(dbapi_connection: Any, _record: Any) -> None:
        connections.add(dbapi_connection)


def interrupt_busy_connections(engine: Engine) -> int:
    """Cut the sockets of the engine's connections that wait for the server's answer to a command.

    The thread waiting on one wakes at once with a lost-connection error (SQLAlchemy then discards
    the connection). Used when the emergency lane's deadline passed: a server that keeps the socket
    open and never answers would otherwise hold that thread, and its connection, for good.
    Returns how many were cut.
    """
    cut = 0
    for dbapi_connection in list(_open_connections.get(engine, ())):
        pgconn = getattr(dbapi_connection, "pgconn", None)
        if pgconn is None:
            continue
        duplicate = _socket_if_busy(pgconn)
        if duplicate is None:
            continue
        try:
            duplicate.shutdown(socket.SHUT_RDWR)  # shuts the shared socket, not only this descriptor
            cut += 1
        except OSError:
            pass
        finally:
            duplicate.close()
    if cut:
        logger.warning("database connections cut after the deadline", extra={"event": f"{cut} connections"})
    return cut


def _socket_if_busy(pgconn: Any) -> socket.socket | None:
    """A duplicate of the connection's socket, if it waits for an answer (None if closed meanwhile)."""
    try:
        if pgconn.transaction_status != _ACTIVE:
            return None
        return socket.socket(fileno=os.dup(pgconn.socket))
    except Exception:  # noqa: BLE001 - psycopg raises its own error on a closed connection
        return None
