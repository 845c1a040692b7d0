"""The scheduler's lease: taken, renewed, expired, taken over with the next token; a fenced leader's
writes are refused, and nobody takes the lease while a leader's commit is being checked."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, Row, delete, select, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import BACKEND
from tripguard.core.db import unit_of_work
from tripguard.core.leader import Fenced, Lease, fenced_sessionmaker
from tripguard.core.models import Lease as LeaseRow

postgres_only = pytest.mark.skipif(BACKEND != "postgres", reason="leadership is contested only on PostgreSQL")


@pytest.fixture
def name(engine: Engine) -> Iterator[str]:
    """A lease of the test's own (committed: leases live across transactions), removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield name
    with engine.begin() as connection:
        connection.execute(delete(LeaseRow).where(LeaseRow.name == name))


def _row(engine: Engine, name: str) -> Row[Any] | None:
    with engine.connect() as connection:
        return connection.execute(select(LeaseRow.__table__).where(LeaseRow.name == name)).first()


def _expire(engine: Engine, name: str) -> None:
    """The lease's time runs out by the database's clock (as if its holder stopped renewing)."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE core_leases SET expires_at = clock_timestamp() - interval '1 second' "
                                "WHERE name = :name"), {"name": name})


def test_sqlite_is_one_process_and_always_leads(engine: Engine) -> None:
    if BACKEND != "sqlite":
        pytest.skip("the SQLite case")
    one, other = Lease(engine), Lease(engine)
    assert not one.exclusive and one.lead() and other.lead() and one.holds()
    with unit_of_work(fenced_sessionmaker(engine, one)) as session:  # nothing to fence
        assert session.scalar(text("SELECT 1")) == 1


@postgres_only
def test_taken_then_renewed_and_nobody_else_leads_meanwhile(engine: Engine, name: str) -> None:
    first, second = Lease(engine, name, holder="first"), Lease(engine, name, holder="second")
    try:
        assert first.lead() and first.token == 1 and first.holds()
        taken = _row(engine, name)
        assert taken is not None and taken.holder == "first"
        time.sleep(0.05)
        assert first.lead() and first.token == 1  # renewed: same token, later expiry
        renewed = _row(engine, name)
        assert renewed is not None and renewed.expires_at > taken.expires_at
        assert not second.lead() and second.token is None and not second.holds()
    finally:
        first.release()
        second.release()


@postgres_only
def test_an_expired_lease_is_taken_over_with_the_next_token_and_its_old_holder_cannot_renew(
        engine: Engine, name: str) -> None:
    first, second = Lease(engine, name, holder="first"), Lease(engine, name, holder="second")
    try:
        assert first.lead() and first.token == 1
        _expire(engine, name)
        assert first.lead() is False and first.token is None  # too late to renew: it stands by
        assert second.lead() and second.token == 2
        row = _row(engine, name)
        assert row is not None and row.holder == "second" and row.token == 2
        _expire(engine, name)
        assert first.lead() and first.token == 3  # and back: every change of holder a new token
        assert not second.lead()
    finally:
        first.release()
        second.release()


@postgres_only
def test_a_lease_held_locally_runs_out_on_the_local_clock_without_a_round_trip(engine: Engine, name: str) -> None:
    lease = Lease(engine, name, seconds=1)
    try:
        assert lease.lead() and lease.holds()
        time.sleep(1.05)
        assert not lease.holds()  # a stopped process that wakes starts no job before asking again
    finally:
        lease.release()


@postgres_only
def test_a_released_lease_is_taken_at_once(engine: Engine, name: str) -> None:
    first, second = Lease(engine, name), Lease(engine, name)
    assert first.lead()
    first.release()
    assert second.lead() and second.token == 2
    second.release()


@postgres_only
def test_a_fenced_leaders_writes_are_refused(engine: Engine, name: str) -> None:
    old, new = Lease(engine, name, holder="old"), Lease(engine, name, holder="new")
    old_writes = fenced_sessionmaker(engine, old)
    marker = f"fence-{uuid.uuid4().hex[:6]}"
    try:
        assert old.lead()
        with unit_of_work(old_writes) as session:  # while it leads, it writes
            session.add(LeaseRow(name=marker, holder="old", token=0, taken_at=_now(engine), expires_at=_now(engine)))
        _expire(engine, name)
        assert new.lead()
        with old_writes() as session, pytest.raises(Fenced):  # refused at its start, before its first statement
            session.execute(text("UPDATE core_leases SET holder = 'written by old' WHERE name = :m"), {"m": marker})
        assert _row(engine, marker).holder == "old"  # type: ignore[union-attr]
    finally:
        with engine.begin() as connection:
            connection.execute(delete(LeaseRow).where(LeaseRow.name == marker))
        new.release()


@postgres_only
def test_a_transaction_under_way_when_the_lease_changes_hands_is_refused_at_commit(engine: Engine, name: str) -> None:
    old, new = Lease(engine, name, holder="old"), Lease(engine, name, holder="new")
    assert old.lead()
    session = fenced_sessionmaker(engine, old)()
    try:
        session.execute(text("SELECT 1"))  # began while it led
        session.add(LeaseRow(name=f"{name}-late", holder="old", token=0, taken_at=_now(engine),
                             expires_at=_now(engine)))
        _expire(engine, name)  # it stopped here, say, and the standby took over
        assert new.lead()
        with pytest.raises(Fenced):
            session.commit()
        session.rollback()
    finally:
        session.close()
        new.release()
    assert _row(engine, f"{name}-late") is None


@postgres_only
def test_nobody_takes_the_lease_between_a_leaders_commit_check_and_its_commit(engine: Engine, name: str) -> None:
    old, new = Lease(engine, name, seconds=1, holder="old"), Lease(engine, name, holder="new")
    assert old.lead()
    taken: list[tuple[bool, float]] = []
    standby = threading.Thread(target=lambda: taken.append((new.lead(), time.monotonic())))
    with engine.connect() as connection:
        with connection.begin():
            old.check(connection, lock=True)  # the commit's check, passed
            connection.execute(text("SELECT pg_sleep(1.1)"))  # then slow: the lease runs out meanwhile
            standby.start()
            time.sleep(0.4)
            assert standby.is_alive()  # the standby waits for the commit
            committed_at = time.monotonic()
        standby.join(5)
    assert taken and taken[0][0] and taken[0][1] >= committed_at and new.token == 2  # then takes over
    new.release()


@postgres_only
def test_a_leader_stopped_inside_its_commit_check_is_cut_off_and_the_lease_taken(engine: Engine, name: str) -> None:
    old, new = Lease(engine, name, seconds=1, holder="old"), Lease(engine, name, holder="new")
    assert old.lead()
    connection = engine.connect()
    try:
        transaction = connection.begin()
        old.check(connection, lock=True)
        time.sleep(1.6)  # stopped past the lease's length: PostgreSQL ends its session
        assert new.lead()
        with pytest.raises(DBAPIError):  # terminated by the idle-in-transaction timeout
            transaction.commit()
    finally:
        connection.invalidate()
        new.release()


@postgres_only
def test_a_leader_stopped_inside_a_job_gives_up_its_row_locks_within_its_lease(engine: Engine, name: str) -> None:
    old = Lease(engine, name, seconds=1)
    assert old.lead()
    stopped = fenced_sessionmaker(engine, old)()
    try:
        stopped.execute(text("UPDATE core_leases SET holder = holder WHERE name = :name"), {"name": name})
        time.sleep(1.6)  # stopped with the row locked, past its lease
        with engine.begin() as other:
            other.exec_driver_sql("SET LOCAL lock_timeout = 3000")
            other.execute(text("UPDATE core_leases SET holder = 'next' WHERE name = :name"), {"name": name})
    finally:
        stopped.invalidate()
        old.release()


@postgres_only
def test_a_lease_whose_connection_broke_is_renewed_on_a_new_one(engine: Engine, name: str) -> None:
    lease = Lease(engine, name)
    try:
        assert lease.lead()
        pid = lease._connection.execute(text("SELECT pg_backend_pid()")).scalar()  # type: ignore[union-attr]
        lease._connection.rollback()  # type: ignore[union-attr]
        with engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert lease.lead() and lease.holds()  # the failed round trip leaves the lease held (locally, for now)
        assert lease.lead() and lease.token == 1  # and the next renews it
    finally:
        lease.release()


@postgres_only
def test_takes_and_renewals_from_many_threads_give_one_holder(engine: Engine, name: str) -> None:
    leases = [Lease(engine, name, holder=f"h{n}") for n in range(6)]
    results: list[bool] = []
    threads = [threading.Thread(target=lambda lease=lease: results.append(lease.lead())) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    try:
        assert sorted(results) == [False] * 5 + [True]
    finally:
        for lease in leases:
            lease.release()


def _now(engine: Engine) -> datetime:
    with engine.connect() as connection:
        return connection.execute(text("SELECT clock_timestamp()")).scalar_one()  # type: ignore[no-any-return]
