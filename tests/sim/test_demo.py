"""The demo city: a lap of real Porto trips through the real ingest, with its anomalies caught; fresh trip ids
for every run; a heartbeating fleet whose drivers the trip-start safety net lets through; named callers."""

from __future__ import annotations

import functools
import itertools
import json
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.app import _demo_press, demo_ingest_options, ineligible_on_trip, ingest_options
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.notify.models import OutboxMessage
from tripguard.notify.service import opened
from tripguard.privacy import access
from tripguard.privacy.models import DataSubject
from tripguard.safety.models import Incident
from tripguard.screening.service import rules_from
from tripguard.sim import cast
from tripguard.sim.demo import (
    HEARTBEAT_SECONDS,
    SOS,
    DemoCity,
    close_interrupted,
    lap_events,
    new_run,
)
from tripguard.telematics import service
from tripguard.telematics.fleet import registry
from tripguard.telematics.ingest.events import parse_ts
from tripguard.telematics.models import Trip, TripAlert, Vehicle
from tripguard.telematics.service import IngestOptions, LiveMonitor

START = datetime(2026, 11, 22, 8, tzinfo=UTC)


def test_laps_and_runs_get_their_own_trip_ids_and_named_passengers() -> None:
    first, second = lap_events(1, START, 8.0, trips=5, run="a"), lap_events(2, START, 8.0, trips=5, run="a")
    assert {e["trip_id"] for e in first}.isdisjoint({e["trip_id"] for e in second})
    # A restart is a new run: lap 1 again, never the ids the last run sent (33 false gps_lost alerts in a minute).
    restarted = lap_events(1, START, 8.0, trips=5, run="b")
    assert {e["trip_id"] for e in first}.isdisjoint({e["trip_id"] for e in restarted})
    started = [e for e in first if e["type"] == "trip_started"]
    assert [e["passenger_id"] for e in started] == [cast.passenger(n).id for n in range(5)]


def test_two_cities_started_one_after_the_other_send_different_trip_ids(
        app: FastAPI, session_factory: sessionmaker[Session]) -> None:
    def city() -> DemoCity:
        return DemoCity(session_factory, app.state.live_monitor, app.state.vault, IngestOptions(), trips=3)

    before, after = city(), city()  # as two server runs (two bootstraps of `make run`)
    assert before.run_id != after.run_id and new_run() != new_run()
    ids = [{e["trip_id"] for e in c.events(1, START.timestamp()) if "trip_id" in e} for c in (before, after)]
    assert ids[0] and ids[0].isdisjoint(ids[1])


def test_the_fleet_heartbeats_every_minute_from_the_laps_first_moment() -> None:
    taxis = cast.fleet(5)
    events = lap_events(1, START, 8.0, trips=5, devices=cast.heartbeating_devices(taxis))
    assert events[0]["type"] == "device_heartbeat"  # before the first trip starts: its driver's device works
    beats: dict[str, list[float]] = defaultdict(list)
    for event in events:
        if event["type"] == "device_heartbeat":
            beats[str(event["device_id"])].append(parse_ts(str(event["ts"])))
    assert set(beats) == {t.device_id for t in taxis} | {"DEV-V-PARK-1"}  # DEV-V-PARK-2 stays silent
    last = parse_ts(str(events[-1]["ts"]))
    for times in beats.values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) == HEARTBEAT_SECONDS and last - times[-1] < HEARTBEAT_SECONDS
    faulty = {e["camera_ok"] for e in events if e.get("device_id") == "DEV-V-PARK-1"}
    assert faulty == {False}


@pytest.fixture
def cast_of(app: FastAPI, session_factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    """The demo's people for the first `trips` Porto trips, as `tripguard demo bootstrap` writes them."""

    def make(trips: int) -> list[cast.Taxi]:
        taxis = cast.fleet(trips)
        cast.cast(session_factory, vault=app.state.vault, secret_key="demo-test-secret-0123456789abcdef",
                  rules=rules_from(app.state.settings), taxis=taxis)
        return taxis

    return make


def test_a_fast_lap_stores_trips_and_raises_the_injected_alerts(app: FastAPI, db: Session,
                                                                session_factory: sessionmaker[Session]) -> None:
    demo = DemoCity(session_factory, app.state.live_monitor, app.state.vault, IngestOptions(),
                    speed=100_000, trips=12)
    demo.run_lap(1)
    assert db.scalar(select(func.count()).select_from(Trip).where(Trip.status == "ended")) == 12
    assert db.scalar(select(func.count()).select_from(Vehicle)) >= 1
    kinds = set(db.scalars(select(TripAlert.kind)))
    assert {"route_deviation", "long_stop", "gps_lost"} <= kinds


def test_the_safety_net_stays_on_and_lets_the_demo_drivers_through(app: FastAPI, db: Session, cast_of,  # type: ignore[no-untyped-def]
                                                                   session_factory: sessionmaker[Session]) -> None:
    """At the real clock (`make run`), the first second of a lap: every device heard, the first trips started,
    and the safety net (vehicle included) raises nothing: the drivers are screened, trained and signed."""
    cast_of(3)
    demo = DemoCity(session_factory, app.state.live_monitor, app.state.vault, ingest_options(app), trips=3)
    assert demo.options.check_trip is None  # the fixture's setting; the demo's own is on:
    options = ingest_options(app)
    gated = IngestOptions(**{**options.__dict__, "check_trip": ineligible_on_trip})
    now = time.time()
    due = [e for e in demo.events(1, now - 20) if parse_ts(str(e["ts"])) <= now and e["type"] != SOS]
    assert {e["type"] for e in due} >= {"device_heartbeat", "trip_started"}
    with unit_of_work(session_factory) as session:
        service.ingest(session, live=app.state.live_monitor, vault=app.state.vault, lines=[json.dumps(e) for e in due],
                       options=gated)
    assert db.scalar(select(func.count()).select_from(Trip)) >= 1
    assert list(db.scalars(select(TripAlert.kind))) == []
    kpi = registry.device_kpi(db, since=utcnow() - timedelta(hours=24))
    assert kpi.operating_rate is not None and kpi.operating_rate >= 0.75  # 3 taxis and the faulty one of 4 installed


def test_a_lap_heartbeats_presses_sos_and_names_its_callers(app: FastAPI, db: Session, cast_of,  # type: ignore[no-untyped-def]
                                                            session_factory: sessionmaker[Session]) -> None:
    taxis = cast_of(20)
    options = IngestOptions(**{**ingest_options(app).__dict__,
                               "check_trip": functools.partial(ineligible_on_trip, with_vehicle=False)})
    demo = DemoCity(session_factory, app.state.live_monitor, app.state.vault, options, speed=100_000, trips=20,
                    press=functools.partial(_demo_press, app))
    demo.run_lap(1)
    assert not db.scalar(select(func.count()).select_from(TripAlert).where(TripAlert.kind == "ineligible_driver"))
    kpi = registry.device_kpi(db, since=utcnow() - timedelta(hours=24))
    assert kpi.devices_installed == len(taxis) + 2 and kpi.devices_heard == len(taxis) + 1  # the silent one
    cases = db.scalars(select(Incident).where(Incident.source == "sos")).all()
    assert len(cases) == 2
    for case in cases:
        caller = db.get(DataSubject, case.caller_id)
        assert caller is not None and access.open_field(app.state.vault, db, caller, "name")
        assert case.driver_id and case.vehicle_id
    gateway = [opened(db, vault=app.state.vault, message=m) for m in db.scalars(select(OutboxMessage).where(
        OutboxMessage.channel == "emergency"))]
    payloads = [json.loads(m.body) for m in gateway if m is not None]
    assert len(payloads) == 2
    assert all(p["caller"]["name"] and p["caller"]["phone"] and p["driver"]["name"] for p in payloads)
    told = db.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.template == "sos_contact"))
    assert told == 2  # each caller's verified emergency contact


def test_a_restart_ends_the_last_runs_trips_and_raises_no_false_gps_lost(
        app: FastAPI, db: Session, session_factory: sessionmaker[Session]) -> None:
    """The server stops mid-lap; the next run closes what the last one left under way before the monitor is
    rebuilt, and sends trips of its own: no trip is taken for one whose GPS was lost."""
    first = DemoCity(session_factory, app.state.live_monitor, app.state.vault, IngestOptions(), trips=12)
    now = time.time()
    events = [e for e in first.events(1, now - 600) if e["type"] != SOS]
    half = [e for e in events if parse_ts(str(e["ts"])) <= now - 300]
    with unit_of_work(session_factory) as session:
        service.ingest(session, live=app.state.live_monitor, vault=app.state.vault, lines=[json.dumps(e) for e in half],
                       options=IngestOptions())
    left = set(db.scalars(select(Trip.id).where(Trip.status == "active")))
    assert left
    assert close_interrupted(session_factory, vault=app.state.vault) == len(left)  # at the next start
    live = LiveMonitor()
    assert service.restore(session_factory, live=live, vault=app.state.vault) == 0
    second = DemoCity(session_factory, live, app.state.vault, IngestOptions(), trips=12)
    again = [e for e in second.events(1, now - 300) if e["type"] != SOS and parse_ts(str(e["ts"])) <= now]
    with unit_of_work(session_factory) as session:
        service.ingest(session, live=live, vault=app.state.vault, lines=[json.dumps(e) for e in again],
                       options=IngestOptions())
    db.expire_all()
    lost = set(db.scalars(select(TripAlert.trip_id).where(TripAlert.kind == "gps_lost")))
    assert not lost & left
    assert db.scalar(select(func.count()).select_from(Trip).where(Trip.id.in_(left), Trip.status == "ended")) \
        == len(left)


def test_the_demo_keeps_the_safety_net_on_and_on_a_faster_clock_asks_about_the_driver_only(app: FastAPI) -> None:
    app.state.settings = app.state.settings.model_copy(update={"trip_start_gate": True, "demo_speed": 1.0})
    assert demo_ingest_options(app).check_trip is ineligible_on_trip  # vehicle included
    app.state.settings = app.state.settings.model_copy(update={"demo_speed": 10.0})
    faster = demo_ingest_options(app).check_trip
    assert isinstance(faster, functools.partial) and faster.keywords == {"with_vehicle": False}
    app.state.settings = app.state.settings.model_copy(update={"trip_start_gate": False})
    assert demo_ingest_options(app).check_trip is None  # an operator who turned it off
