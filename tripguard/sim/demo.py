"""The demo city of `make run`: the real Porto trips replayed in real time, looping, with anomalies.

Events go through the same ingest as the operator's backend (trip store, monitor, alerts,
check-ins, live feed), one batch a second, as the wall clock reaches their event time. Each lap
re-times the trips to start now and gives them fresh ids, so laps never collide.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit.actor import Actor
from tripguard.core.db import unit_of_work
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics import registry, service
from tripguard.telematics.events import parse_ts
from tripguard.telematics.models import Vehicle
from tripguard.vault.service import Vault

logger = logging.getLogger("tripguard.demo")
DEMO_ACTOR = Actor("system", "demo-city")
INJECT_PER_LAP = {"route_deviation": 3, "long_stop": 2, "early_end": 2, "gps_lost": 2}
COLOURS = ("white", "black", "silver", "blue")
MODELS = ("Toyota Prius", "Mercedes E-Class", "Skoda Octavia", "Peugeot 508")


def lap_events(lap: int, start: datetime, stagger_s: float, trips: int | None = None) -> list[dict[str, object]]:
    """One lap: the Porto trips re-timed to start at `start`, ids prefixed by the lap, passengers named."""
    events, _ = build_stream(load_trips()[:trips], start=start, stagger_s=stagger_s, inject=INJECT_PER_LAP, seed=lap)
    for event in events:
        event["trip_id"] = f"L{lap}-{event['trip_id']}"
        if event["type"] == "trip_started":
            event["passenger_id"] = f"P-{event['trip_id']}"
    return events


def register_fleet(session: Session, events: list[dict[str, object]]) -> None:
    """Vehicles and their devices, once, so the trip page shows plate, colour and model."""
    vehicles = sorted({str(e["vehicle_id"]) for e in events if e["type"] == "trip_started" and e.get("vehicle_id")})
    for n, vehicle_id in enumerate(vehicles):
        if session.get(Vehicle, vehicle_id) is not None:
            continue
        registry.upsert_vehicle(session, actor=DEMO_ACTOR, vehicle_id=vehicle_id, plate=f"{n:02d}-PT-{n % 97:02d}",
                                colour=COLOURS[n % len(COLOURS)], model=MODELS[n % len(MODELS)])
        registry.install_device(session, actor=DEMO_ACTOR, device_id=f"DEV-{vehicle_id}", vehicle_id=vehicle_id,
                                installed_at=datetime.now(UTC) - timedelta(days=90))


class DemoCity(threading.Thread):
    def __init__(self, factory: sessionmaker[Session], live: service.LiveMonitor, vault: Vault,
                 options: service.IngestOptions, *, speed: float = 1.0, stagger_s: float = 8.0,
                 trips: int | None = None) -> None:
        super().__init__(name="demo-city", daemon=True)
        self.factory, self.live, self.vault, self.options = factory, live, vault, options
        self.speed, self.stagger_s, self.trips = speed, stagger_s, trips
        self.stopping = threading.Event()

    def run(self) -> None:
        lap = 1
        while not self.stopping.is_set():
            try:
                self.run_lap(lap)
            except Exception:
                logger.exception("demo city lap failed", extra={"event": "demo.lap"})
                self.stopping.wait(10)
            lap += 1

    def run_lap(self, lap: int) -> None:
        wall_start = time.time()
        # A faster clock starts the lap in the past, so that no event is ever dated after the real time (ingest
        # refuses events ahead of the server's clock): the lap's last event comes due at the real "now".
        probe = lap_events(lap, datetime.fromtimestamp(wall_start, UTC), self.stagger_s, self.trips)
        length = parse_ts(probe[-1]["ts"]) - parse_ts(probe[0]["ts"]) if probe else 0.0
        lap_start = wall_start - length * (1 - 1 / self.speed)
        events = lap_events(lap, datetime.fromtimestamp(lap_start, UTC), self.stagger_s, self.trips)
        with unit_of_work(self.factory) as session:
            register_fleet(session, events)
        index = 0
        while index < len(events) and not self.stopping.is_set():
            now = lap_start + (time.time() - wall_start) * self.speed
            batch = []
            while index < len(events) and parse_ts(events[index]["ts"]) <= now:
                batch.append(json.dumps(events[index]))
                index += 1
            if batch:
                with unit_of_work(self.factory) as session:
                    service.ingest(session, self.live, self.vault, batch, options=self.options)
            if index < len(events):
                self.stopping.wait(1.0)

    def stop(self) -> None:
        self.stopping.set()
