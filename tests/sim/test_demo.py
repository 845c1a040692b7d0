"""The demo city: a lap of real Porto trips through the real ingest, with its anomalies caught."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.sim.demo import DemoCity, lap_events
from tripguard.telematics.models import Trip, TripAlert, Vehicle
from tripguard.telematics.service import IngestOptions


def test_laps_get_their_own_trip_ids_and_passengers() -> None:
    start = datetime(2026, 11, 22, 8, tzinfo=UTC)
    first, second = lap_events(1, start, 8.0, trips=5), lap_events(2, start, 8.0, trips=5)
    assert {e["trip_id"] for e in first}.isdisjoint({e["trip_id"] for e in second})
    started = [e for e in first if e["type"] == "trip_started"]
    assert len(started) == 5 and all(str(e["passenger_id"]).startswith("P-L1-") for e in started)


def test_a_fast_lap_stores_trips_and_raises_the_injected_alerts(app: FastAPI, db: Session,
                                                                session_factory: sessionmaker[Session]) -> None:
    demo = DemoCity(session_factory, app.state.live_monitor, app.state.vault, IngestOptions(),
                    speed=100_000, trips=12)
    demo.run_lap(1)
    assert db.scalar(select(func.count()).select_from(Trip).where(Trip.status == "ended")) == 12
    assert db.scalar(select(func.count()).select_from(Vehicle)) >= 1
    kinds = set(db.scalars(select(TripAlert.kind)))
    assert {"route_deviation", "long_stop", "gps_lost"} <= kinds
