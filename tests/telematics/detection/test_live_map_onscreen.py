"""A live-map viewer's screen is on record: the trips its opening showed and those its stream brought later,
in one audit entry per opening and per interval (never one per trip), so that a breach investigation of
someone who only watched the map finds the people on those trips (issue #26, finding 6b)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import PASSWORD, TEST_ACTOR, sign_as_staff, sign_in_with_enrolment
from tests.conftest import fresh_database, make_settings
from tests.web.conftest import serve_in_thread
from tripguard.app import create_app
from tripguard.audit.actor import Actor
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.privacy import breaches
from tripguard.security import service
from tripguard.security.permissions import Role
from tripguard.telematics.detection import onscreen
from tripguard.telematics.models import Trip


def trip(session: Session, trip_id: str) -> None:
    """A trip and its people (ended: a restarting server puts no stored trip on the map by itself)."""
    now = utcnow()
    session.add(Trip(id=trip_id, status="ended", passenger_id=f"P_{trip_id}", driver_id=f"D_{trip_id}", points=1,
                     started_at=now, updated_at=now))


def shown(session: Session) -> list[tuple[str, str, list[str]]]:
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action.like("live_map.%")).order_by(AuditEntry.id))
    return [(e.action, e.target_id or "", onscreen.trips_of(json.loads(e.details))) for e in entries]


def found_by_breach(session: Session, reader_id: str) -> list[str]:
    breach = breaches.open_breach(session, actor=TEST_ACTOR, title="agent account misused", serious=False,
                                  occurred_from=utcnow() - timedelta(hours=1),
                                  occurred_to=utcnow() + timedelta(hours=1),
                                  categories=["user.location"], cause="c", harm="h", measures="m", advice="a",
                                  contact="privacy@example.com")
    return breaches.investigate(session, actor=TEST_ACTOR, breach_id=breach.id, reader_id=reader_id, since=None,
                                until=None).subjects


def position(trip_id: str) -> dict[str, object]:
    return {"type": "position", "trip_id": trip_id, "lon": 116.4, "lat": 39.9, "ts": "2026-03-01T08:00:00Z"}


def test_a_stream_records_the_trips_it_brought_once_an_interval(session_factory: sessionmaker[Session],
                                                               db: Session) -> None:
    now = [100.0]
    watcher = onscreen.ShownTrips(session_factory, Actor("staff", "stf_WATCH"), recorded=["T_OPEN"], every=15,
                                  clock=lambda: now[0])

    async def stream() -> None:
        await watcher.sent([position("T_OPEN"), position("T_A"), {"type": "alert", "trip_id": "T_ALERT"}])
        await watcher.sent([position("T_A"), {"type": "trip_started", "trip_id": "T_B", "route": []}])
        assert shown(db) == []  # not yet: one write an interval, whatever the traffic
        now[0] += 15
        await watcher.sent([])  # a heartbeat: the interval is over
        await watcher.sent([position("T_A"), position("T_B")])  # already on record
        now[0] += 15
        await watcher.sent([])

    asyncio.run(stream())
    # The opening's trips were recorded with it; an alert names a trip but shows no position.
    assert shown(db) == [("live_map.shown", "stream", ["T_A", "T_B"])]


def test_an_agent_who_only_opened_the_snapshot_is_found_with_the_people_on_it(
        client: object, app: FastAPI, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    for trip_id in ("T1", "T2"):
        trip(db, trip_id)
    db.commit()
    app.state.live_monitor.feed.apply([{"type": "trip_started", "trip_id": t, "vehicle_id": None, "route": [],
                                        "position": None} for t in ("T1", "T2")] + [position("T1")])
    act_as(Role.SAFETY_AGENT, id="stf_ROGUE")
    snapshot = client.get("/console/live/snapshot")  # type: ignore[attr-defined]
    assert snapshot.status_code == 200 and {t["trip_id"] for t in snapshot.json()["trips"]} == {"T1", "T2"}
    assert shown(db) == [("live_map.open", "snapshot", ["T1", "T2"])]
    assert found_by_breach(db, "stf_ROGUE") == ["D_T1", "D_T2", "P_T1", "P_T2"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FastAPI, sessionmaker[Session]]]:
    tmp = tmp_path_factory.mktemp("onscreen")
    database_url = fresh_database(f"tg_onscreen_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", tmp)
    engine = make_engine(database_url)
    factory = make_sessionmaker(engine)
    with factory() as session:
        sign_as_staff(session, service.create_staff(session, actor=TEST_ACTOR, username="agent.lu", display_name="陆",
                                                    password=PASSWORD, roles={Role.SAFETY_AGENT}))
        for trip_id in ("T_BEFORE", "T_LATER"):
            trip(session, trip_id)
        session.commit()
    app = create_app(make_settings(database_url, Path(tmp) / "keys"))
    with serve_in_thread(app) as url:
        yield url, app, factory
    engine.dispose()


def test_a_stream_that_ends_records_the_trips_it_brought(site: tuple[str, FastAPI, sessionmaker[Session]]) -> None:
    url, app, factory = site
    feed = app.state.live_monitor.feed
    feed.apply([{"type": "trip_started", "trip_id": "T_BEFORE", "vehicle_id": None, "route": [], "position": None}])
    with httpx.Client(base_url=url, timeout=20) as agent:
        sign_in_with_enrolment(agent, "agent.lu")  # type: ignore[arg-type]
        agent_id = agent.get("/api/v1/auth/whoami").json()["id"]
        with agent.stream("GET", "/console/live/stream") as response:
            assert response.status_code == 200
            events = []
            for line in response.iter_lines():
                if line == "event: hello":  # the viewer is registered: a trip starts while it watches
                    feed.apply([{"type": "trip_started", "trip_id": "T_LATER", "vehicle_id": None, "route": [],
                                 "position": None}, position("T_LATER")])
                elif line.startswith("event:"):
                    events.append(line)
                if (line.startswith("data:") and json.loads(line[5:]).get("type") == "position") or len(events) > 3:
                    break  # T_LATER's position reached the screen (or heartbeats came instead); the viewer goes away
    deadline = time.monotonic() + 20
    with factory() as session:
        while ("live_map.shown", "stream", ["T_LATER"]) not in shown(session) and time.monotonic() < deadline:
            session.rollback()
            time.sleep(0.1)
        assert ("live_map.open", "stream", ["T_BEFORE"]) in shown(session)
        assert ("live_map.shown", "stream", ["T_LATER"]) in shown(session)
        assert found_by_breach(session, agent_id) == ["D_T_BEFORE", "D_T_LATER", "P_T_BEFORE", "P_T_LATER"]
