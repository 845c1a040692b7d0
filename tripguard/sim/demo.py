"""The demo city of `make run`: the real Porto trips replayed in real time, looping, with anomalies.

Events go through the same ingest as the operator's backend (trip store, monitor, alerts, check-ins,
live feed, the trip-start safety net), one batch a second, as the wall clock reaches their event time.

- Trip ids are fresh for every run of the server and every lap (`demo-<run>-L<lap>-<Porto trip>`): a
  restart never sends a trip id the monitor or the store already knows. Trips a stopped server left
  under way are ended before the monitor is rebuilt (`close_interrupted`), so their silence is not
  taken for lost GPS.
- The passengers are the demo's named people (`sim.cast`), so cases show a caller's name and phone;
  a few of them press SOS during their trip each lap (through the real SOS service).
- Every monitoring device of the fleet sends a heartbeat each minute of the lap's clock (a parked
  vehicle's broken camera says so; one device stays silent), so the operating rate is a fleet's and the
  dispatch gate finds each driver's device working.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit.actor import Actor
from tripguard.core.db import unit_of_work
from tripguard.sim import cast
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics import service
from tripguard.telematics.ingest.events import format_ts, parse_ts
from tripguard.telematics.models import Trip
from tripguard.telematics.store import trips
from tripguard.vault.service import Vault

logger = logging.getLogger("tripguard.demo")
DEMO_ACTOR = Actor("system", "demo-city")
DEMO_PREFIX = "demo-"
INJECT_PER_LAP = {"route_deviation": 3, "long_stop": 2, "early_end": 2, "gps_lost": 2}
HEARTBEAT_SECONDS = 60.0  # of the lap's clock: well inside the monitor's 120 s and the registry's 5 minutes
SOS_PER_LAP = 2
SOS = "demo_sos"  # the demo's own event (never sent to ingest): a passenger presses the button

Device = tuple[str, str, bool]  # (device id, vehicle id, camera works)
Presser = Callable[[str, str], None]  # (passenger id, trip id): press SOS


def new_run() -> str:
    """This server run's part of the demo's trip ids: its start time and a random tail (hex)."""
    return f"{int(time.time()):x}{secrets.token_hex(2)}"


def lap_events(lap: int, start: datetime, stagger_s: float, trips: int | None = None, *, run: str = "r",
               devices: Sequence[Device] = ()) -> list[dict[str, object]]:
    """One lap: the Porto trips re-timed to start at `start`, ids fresh for this run and lap, passengers
    named; the devices' heartbeats each minute from the lap's start to its end; a few SOS presses."""
    events, injections = build_stream(load_trips()[:trips], start=start, stagger_s=stagger_s,
                                      inject=INJECT_PER_LAP, seed=lap)
    injected = {i.trip_id for i in injections}
    spans: dict[str, list[float]] = {}
    started = 0
    for event in events:
        porto_id = str(event["trip_id"])
        event["trip_id"] = f"{DEMO_PREFIX}{run}-L{lap}-{porto_id}"
        at = parse_ts(str(event["ts"]))
        spans.setdefault(porto_id, [at, at])[1] = at
        if event["type"] == "trip_started":
            event["passenger_id"] = cast.passenger(started).id
            spans[porto_id].append(started)
            started += 1
    extra = _presses(events, spans, injected) + _heartbeats(events, devices)
    return sorted(events + extra, key=lambda e: (parse_ts(str(e["ts"])), 0 if e["type"] == "device_heartbeat" else 1))


def _presses(events: list[dict[str, object]], spans: dict[str, list[float]],
             injected: set[str]) -> list[dict[str, object]]:
    """SOS_PER_LAP trips without an injected anomaly, whose passenger has a verified contact: the passenger
    presses halfway through."""
    candidates = [(porto_id, span) for porto_id, span in spans.items()
                  if porto_id not in injected and len(span) == 3 and cast.has_contact(int(span[2]))]
    # the first soon after the lap begins (a new visitor sees a case within minutes), the next mid-lap
    chosen = [candidates[len(candidates) * k // SOS_PER_LAP] for k in range(SOS_PER_LAP)] \
        if len(candidates) >= SOS_PER_LAP else candidates
    by_porto = {str(e["trip_id"]).rsplit("-", 1)[-1]: e for e in events if e["type"] == "trip_started"}
    presses = []
    for porto_id, (first, last, _) in dict(chosen).items():
        trip = by_porto[porto_id]
        presses.append({"type": SOS, "ts": format_ts((first + last) / 2), "trip_id": trip["trip_id"],
                        "passenger_id": trip["passenger_id"]})
    return presses


def _heartbeats(events: list[dict[str, object]], devices: Sequence[Device]) -> list[dict[str, object]]:
    if not events or not devices:
        return []
    first, last = parse_ts(str(events[0]["ts"])), max(parse_ts(str(e["ts"])) for e in events)
    beats: list[dict[str, object]] = []
    at = first
    while at <= last:
        beats.extend({"type": "device_heartbeat", "device_id": device_id, "vehicle_id": vehicle_id,
                      "ts": format_ts(at), "camera_ok": camera_ok, "storage_ok": True}
                     for device_id, vehicle_id, camera_ok in devices)
        at += HEARTBEAT_SECONDS
    return beats


def close_interrupted(factory: sessionmaker[Session], *, vault: Vault) -> int:
    """The demo's trips a stopped server left under way (this release's ids, and the `L<lap>-` ids of
    earlier ones), ended before the monitor is rebuilt: they will never be finished."""
    with unit_of_work(factory) as session:
        under_way = list(session.scalars(select(Trip.id).where(
            Trip.status == "active", or_(Trip.id.like(f"{DEMO_PREFIX}%"), Trip.passenger_id.like("P-L%")))))
        return trips.abandon(session, vault=vault, trip_ids=under_way, actor=DEMO_ACTOR,
                             reason="the demo city stopped while the trip was under way")


class DemoCity(threading.Thread):
    def __init__(self, factory: sessionmaker[Session], live: service.LiveMonitor, vault: Vault,
                 options: service.IngestOptions, *, speed: float = 1.0, stagger_s: float = 8.0,
                 trips: int | None = None, press: Presser | None = None) -> None:
        super().__init__(name="demo-city", daemon=True)
        self.factory, self.live, self.vault, self.options = factory, live, vault, options
        self.speed, self.stagger_s, self.trips, self.press = speed, stagger_s, trips, press
        self.run_id = new_run()
        self.taxis = cast.fleet(trips)
        self.devices = cast.heartbeating_devices(self.taxis)
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

    def events(self, lap: int, start: float) -> list[dict[str, object]]:
        return lap_events(lap, datetime.fromtimestamp(start, UTC), self.stagger_s, self.trips, run=self.run_id,
                          devices=self.devices)

    def run_lap(self, lap: int) -> None:
        wall_start = time.time()
        # A faster clock starts the lap in the past, so that no event is ever dated after the real time (ingest
        # refuses events ahead of the server's clock): the lap's last event comes due at the real "now".
        probe = self.events(lap, wall_start)
        length = parse_ts(str(probe[-1]["ts"])) - parse_ts(str(probe[0]["ts"])) if probe else 0.0
        lap_start = wall_start - length * (1 - 1 / self.speed)
        events = self.events(lap, lap_start)
        with unit_of_work(self.factory) as session:
            cast.install_fleet(session, taxis=self.taxis)
        index = 0
        while index < len(events) and not self.stopping.is_set():
            now = lap_start + (time.time() - wall_start) * self.speed
            batch: list[dict[str, object]] = []
            presses: list[dict[str, object]] = []
            while index < len(events) and parse_ts(str(events[index]["ts"])) <= now:
                event = events[index]
                (presses if event["type"] == SOS else batch).append(event)
                index += 1
            if batch:
                with unit_of_work(self.factory) as session:
                    service.ingest(session, live=self.live, vault=self.vault, lines=[json.dumps(e) for e in batch],
                                   options=self.options)
            for press in presses:
                if self.press is not None:
                    self.press(str(press["passenger_id"]), str(press["trip_id"]))
            if index < len(events):
                self.stopping.wait(1.0)

    def stop(self) -> None:
        self.stopping.set()
