"""Group commit for the emergency button: presses waiting together are one transaction; none is lost."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tripguard.app import sos_desk
from tripguard.core.clock import utcnow
from tripguard.core.errors import DatabaseUnavailable
from tripguard.notify.models import OutboxMessage
from tripguard.safety import intake as intake_module
from tripguard.safety.intake import SosIntake
from tripguard.safety.models import Incident
from tripguard.safety.sos import Press, Raised
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.telematics.models import Trip


def caller(subject_id: str) -> Principal:
    return Principal.for_roles("subject", subject_id, frozenset({Role.PASSENGER}))


def make_intake(app: FastAPI, session_factory: sessionmaker[Session],
                stored: list[Incident] | None = None) -> SosIntake:
    return SosIntake(session_factory, lambda: sos_desk(app),
                     on_stored=lambda incidents: (stored if stored is not None else []).extend(incidents))


def press_together(intake: SosIntake, presses: list[Press]) -> list[Raised | BaseException]:
    async def all_at_once() -> list[Raised | BaseException]:
        return await asyncio.gather(*(intake.submit(p) for p in presses), return_exceptions=True)

    return asyncio.run(all_at_once())


def test_presses_waiting_together_are_one_transaction(app: FastAPI, session_factory: sessionmaker[Session],
                                                     db: Session) -> None:
    stored: list[Incident] = []
    intake = make_intake(app, session_factory, stored)
    outcomes = press_together(intake, [Press(caller(f"P{n}"), lon=116.4, lat=39.9, idempotency_key="k")
                                       for n in range(20)])
    assert all(isinstance(o, Raised) and o.new for o in outcomes)
    assert intake.groups == 1
    assert len({o.incident.id for o in outcomes if isinstance(o, Raised)}) == 20
    assert db.scalar(select(func.count()).select_from(Incident)) == 20
    assert db.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.channel == "emergency")) == 20
    assert sorted(i.caller_id for i in stored) == sorted(f"P{n}" for n in range(20))  # all on the live feed


def test_a_retry_and_a_double_tap_in_the_same_group_are_one_incident(app: FastAPI,
                                                                    session_factory: sessionmaker[Session],
                                                                    db: Session) -> None:
    intake = make_intake(app, session_factory)
    first, retry, tap = press_together(intake, [Press(caller("P1"), idempotency_key="a"),
                                                Press(caller("P1"), idempotency_key="a"),
                                                Press(caller("P1"), idempotency_key="b")])
    assert isinstance(first, Raised) and isinstance(retry, Raised) and isinstance(tap, Raised)
    assert (first.new, retry.new, tap.new) == (True, False, False)
    assert first.incident.id == retry.incident.id == tap.incident.id
    assert db.scalar(select(func.count()).select_from(Incident)) == 1
    later = press_together(intake, [Press(caller("P1"), idempotency_key="a")])[0]  # a retry in a later group
    assert isinstance(later, Raised) and not later.new and later.incident.id == first.incident.id


def test_a_press_naming_someone_elses_trip_is_a_case_in_the_same_group(
        app: FastAPI, session_factory: sessionmaker[Session], db: Session) -> None:
    db.add(Trip(id="T9", status="active", vehicle_id="V9", driver_id="D9", passenger_id="SOMEONE_ELSE",
                started_at=utcnow(), updated_at=utcnow()))
    db.commit()
    intake = make_intake(app, session_factory)
    outcomes = press_together(intake, [Press(caller("P1")), Press(caller("P2"), trip_id="T9"), Press(caller("P3"))])
    assert all(isinstance(o, Raised) and o.new for o in outcomes) and intake.groups == 1
    claimed = outcomes[1]
    assert isinstance(claimed, Raised)
    assert (claimed.incident.trip_id, claimed.incident.driver_id,
            claimed.incident.claimed_trip_id) == (None, None, "T9")
    assert db.scalar(select(func.count()).select_from(Incident)) == 3


def test_a_group_that_breaks_is_stored_press_by_press(app: FastAPI, session_factory: sessionmaker[Session],
                                                      db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    real: Callable[..., list[object]] = intake_module.raise_many

    def breaks_on_p2(session: Session, desk: object, presses: list[Press]) -> list[object]:
        if any(p.caller.id == "P2" for p in presses):
            raise RuntimeError("disk full, say")
        return real(session, desk=desk, presses=presses)

    monkeypatch.setattr(intake_module, "raise_many", breaks_on_p2)
    intake = make_intake(app, session_factory)
    outcomes = press_together(intake, [Press(caller(f"P{n}")) for n in range(1, 5)])
    assert [type(o).__name__ for o in outcomes] == ["Raised", "RuntimeError", "Raised", "Raised"]
    assert intake.groups == 3  # the group failed and rolled back; the three good presses went one by one
    assert sorted(db.scalars(select(Incident.caller_id))) == ["P1", "P3", "P4"]


def test_the_writer_starts_again_after_a_quiet_spell(app: FastAPI, session_factory: sessionmaker[Session]) -> None:
    stored: list[Incident] = []
    intake = make_intake(app, session_factory, stored)
    assert isinstance(press_together(intake, [Press(caller("P1"))])[0], Raised)
    assert isinstance(press_together(intake, [Press(caller("P2"))])[0], Raised)  # another event loop, even
    assert intake.groups == 2 and len(stored) == 2


def test_a_database_that_does_not_answer_is_a_503_within_the_deadline(app: FastAPI,
                                                                      session_factory: sessionmaker[Session],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    hung, interrupted = threading.Event(), threading.Event()

    def never_answers(session: Session, desk: object, presses: list[Press]) -> list[object]:
        hung.wait(10)  # a silent database: only the interrupt (it cuts the connection) wakes this thread
        raise RuntimeError("connection cut")

    def interrupt() -> None:
        interrupted.set()
        hung.set()

    monkeypatch.setattr(intake_module, "raise_many", never_answers)
    intake = SosIntake(session_factory, lambda: sos_desk(app), on_stored=lambda incidents: None, deadline=0.3,
                       interrupt=interrupt)

    async def pressed_then_closed() -> tuple[list[Raised | BaseException], float]:
        started = time.monotonic()
        outcomes = await asyncio.gather(intake.submit(Press(caller("P1"))), intake.submit(Press(caller("P2"))),
                                        return_exceptions=True)
        answered = time.monotonic() - started
        await intake.close()  # waits for the store under way: the interrupt has ended it
        return outcomes, answered

    outcomes, answered = asyncio.run(pressed_then_closed())
    assert answered < 2
    assert all(isinstance(o, DatabaseUnavailable) and o.status == 503 for o in outcomes), outcomes
    assert interrupted.is_set()  # the thread the database held is let go


def test_a_press_waiting_behind_a_stuck_group_is_answered_within_its_own_deadline(
        app: FastAPI, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow(session: Session, desk: object, presses: list[Press]) -> list[object]:
        release.wait(10)
        raise RuntimeError("too late")

    monkeypatch.setattr(intake_module, "raise_many", slow)
    intake = SosIntake(session_factory, lambda: sos_desk(app), on_stored=lambda incidents: None, deadline=0.5)

    async def one_behind_the_other() -> tuple[BaseException, BaseException, float]:
        first = asyncio.ensure_future(intake.submit(Press(caller("P1"))))
        await asyncio.sleep(0.1)  # P1's group is being written (stuck) when P2 arrives
        started = asyncio.get_running_loop().time()
        second = await asyncio.gather(intake.submit(Press(caller("P2"))), return_exceptions=True)
        waited = asyncio.get_running_loop().time() - started
        release.set()
        await intake.close()
        return (await asyncio.gather(first, return_exceptions=True))[0], second[0], waited

    try:
        first, second, waited = asyncio.run(one_behind_the_other())
    finally:
        release.set()
    assert isinstance(first, DatabaseUnavailable) and isinstance(second, DatabaseUnavailable)
    assert waited < 0.75  # its own deadline, not the stuck group's plus its own


def test_an_unreachable_database_fails_the_group_at_once_not_press_by_press(
        app: FastAPI, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def unreachable(session: Session, desk: object, presses: list[Press]) -> list[object]:
        calls.append(len(presses))
        raise OperationalError("SELECT 1", {}, Exception("connection timeout expired"))

    monkeypatch.setattr(intake_module, "raise_many", unreachable)
    intake = make_intake(app, session_factory)
    outcomes = press_together(intake, [Press(caller(f"P{n}")) for n in range(5)])
    assert all(isinstance(o, OperationalError) for o in outcomes)
    assert calls == [5]  # one wait on the database, not six
