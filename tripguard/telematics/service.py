"""Ingest: events in, through the in-process monitor, alerts stored and sent to the operator.

The monitor (the batched core, `fast_monitor`) keeps its per-trip state in memory. One lock
serialises it: detection is a pure function of the event sequence, so requests must not interleave
inside it. After a restart the state of the trips still under way is rebuilt from the trip store
(`restore`), by running their stored events through the monitor again.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
from sqlalchemy import Select, Subquery, and_, func, or_, select
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit.actor import Actor
from tripguard.core.blockers import Blocker, WorkerRef
from tripguard.core.clock import utcnow
from tripguard.core.db import as_hour, hour_of, unit_of_work
from tripguard.core.fastread import FastReader
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.security.permissions import Purpose
from tripguard.telematics.detection import checkins
from tripguard.telematics.detection.fast_monitor import BatchMonitor
from tripguard.telematics.detection.feed import LiveFeed, column_items
from tripguard.telematics.detection.monitor import Alert
from tripguard.telematics.fleet import registry
from tripguard.telematics.ingest import geo, lateness
from tripguard.telematics.ingest.columns import EventColumns, reject_rows
from tripguard.telematics.ingest.events import (
    DeviceHeartbeat,
    Event,
    LineError,
    Ping,
    TripEnded,
    TripStarted,
)
from tripguard.telematics.ingest.reader import read_ndjson_numbered
from tripguard.telematics.models import CheckIn, Device, Trip, TripAlert, Vehicle
from tripguard.telematics.store import trips
from tripguard.telematics.store.track import Track
from tripguard.vault.service import Vault

MAX_EVENTS_PER_BATCH = 10_000
POSITION_WAIT_SECONDS = 0.05


def shard_of(trip_id: str, shards: int) -> int:
    """The event subject a trip's events travel on (a heartbeat's: its vehicle's). Stable across
    processes and versions: CRC-32, not Python's salted hash."""
    return zlib.crc32(trip_id.encode("utf-8", "surrogatepass")) % shards


@dataclass
class LiveMonitor:
    monitor: BatchMonitor = field(default_factory=BatchMonitor)
    lock: threading.Lock = field(default_factory=threading.Lock)
    feed: LiveFeed = field(default_factory=LiveFeed)
    gcj_trips: dict[str, None] = field(default_factory=dict)  # trips whose positions arrive in GCJ-02
    # Alerts raised by a batch whose transaction then failed: a re-sent batch would not raise them
    # again (the monitor has seen its pings), so they are stored with the next batch instead.
    unstored: list[Alert] = field(default_factory=list)

    def take_unstored(self) -> list[Alert]:
        with self.lock:
            taken, self.unstored = self.unstored, []
        return taken

    def put_back(self, alerts: list[Alert]) -> None:
        with self.lock:
            self.unstored.extend(alerts)

    def position(self, trip_id: str) -> tuple[float, float, float] | None:
        """The trip's last trusted position and its time: from the monitor when it runs here, else
        (scale-out: the monitor runs in the workers) the newest the live feed brought. An SOS asks: it never
        waits long for a monitor at work (its lock is held for a slice's detection), the feed answers instead."""
        known = None
        if self.lock.acquire(timeout=POSITION_WAIT_SECONDS):
            try:
                known = self.monitor.position(trip_id)
            finally:
                self.lock.release()
        return known if known is not None else self.feed.position(trip_id)


MAX_AHEAD_OF_CLOCK_SECONDS = 600


@dataclass(frozen=True)
class IngestOptions:
    webhook_url: str | None = None
    check_in_minutes: int = 3
    # Called for each alert stored, in the same transaction (the safety centre opens incidents here).
    on_alert: Callable[[Session, TripAlert], None] | None = None
    on_trip_started: Callable[[Session, Trip], None] | None = None  # automatic trip sharing
    # Asked once per trip start, in the same transaction: alerts about who and what the trip started with
    # (the safety net: a driver or vehicle the dispatch gate refuses). Stored and sent like the monitor's.
    check_trip: Callable[[Session, Trip], list[Alert]] | None = None
    # The trip store is written this many trips at a time, `between_slices` called after each slice but the
    # last (the transaction's owner commits there, so a waiting SOS gets the SQLite writer). Without it the
    # whole batch is one transaction.
    write_slice: int = 50
    between_slices: Callable[[Session], None] | None = None
    # An event further than this behind the stream is refused per line (telematics.ingest.lateness).
    max_lateness_seconds: float = 3600.0


@dataclass
class IngestResult:
    accepted: int
    rejected: list[LineError]
    alerts: list[TripAlert]  # newly stored (one already kept is not counted again)


@dataclass
class Accepted:
    """A batch read and checked at the API, ready for the bus: each good line by its shard."""

    lines: dict[int, list[bytes]]
    accepted: int
    rejected: list[LineError]
    mark: float = float("-inf")  # the newest event time taken, this batch included


def read_batch(lines: list[str], gcj_trips: dict[str, None]) -> tuple[EventColumns, list[int], list[LineError]]:
    """Read a batch as `tripguard monitor replay` reads it (`reader.read_ndjson`: Arrow's reader, the line
    parser for the rest), rows of which the server's clock says they are from the future rejected.
    The lines hold no newline (the API split them)."""
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    columns, numbers, rejected = read_ndjson_numbered(data, gcj_trips)
    # Live, the server's clock is the other reference: a device may run minutes ahead, not years.
    latest = utcnow().timestamp() + MAX_AHEAD_OF_CLOCK_SECONDS
    columns, kept, rejected = reject_rows(columns, numbers, rejected, columns.ts > latest,
                                          "ts is ahead of the server's clock by more than 10 minutes")
    return columns, kept, rejected


def accept(lines: list[str], shards: int, *, mark: float = float("-inf"), max_lateness: float = 3600.0,
           starts: lateness.TripStarts | None = None) -> Accepted:
    """Check a batch and sort its good lines by shard (scale-out). The monitor workers read them again,
    each with its shards' memory of the trips that send GCJ-02: a trip started in one request may send
    its pings through another replica. `mark` is the newest event time this replica took before (the
    stream as it sees it); events too old to take are refused per line (`lateness`)."""
    columns, numbers, rejected = read_batch(lines, {})
    columns, numbers, rejected = lateness.refuse_late(columns, numbers, rejected, mark=mark, lateness=max_lateness,
                                                      starts=starts)
    by_shard: dict[int, list[bytes]] = {}
    for row, (trip_id, number) in enumerate(zip(columns.trip_ids, numbers, strict=True)):
        other = columns.others.get(row)
        key = other.device_id if isinstance(other, DeviceHeartbeat) else trip_id  # a device's silence: one shard
        by_shard.setdefault(shard_of(key, shards), []).append(lines[number - 1].encode("utf-8", "surrogatepass"))
    return Accepted(lines=by_shard, accepted=len(columns), rejected=rejected, mark=lateness.newest(columns, mark))


def ingest(session: Session, *, live: LiveMonitor, vault: Vault, lines: list[str],
           options: IngestOptions) -> IngestResult:
    """Validate, keep trips and positions, run the monitor, store alerts and open check-ins."""
    with live.lock:  # the GCJ-02 trips are shared state
        columns, numbers, rejected = read_batch(lines, live.gcj_trips)
        mark = live.monitor.max_ts  # the stream as the monitor has seen it
    columns, _, rejected = lateness.refuse_late(columns, numbers, rejected,
                                                mark=lateness.stored_mark(session, mark=mark),
                                                lateness=options.max_lateness_seconds,
                                                starts=lateness.stored_starts(session))
    return apply(session, live=live, vault=vault, columns=columns, rejected=rejected, options=options)


@dataclass
class PingBuffer:
    """Positions a monitor worker holds back from the trip store until its next checkpoint (scale-out).

    Written per batch, a live city makes a sealed chunk per trip per batch, each a ping or two; held
    for a checkpoint interval, a chunk carries several, and they are packed and written in bulk
    (`trips.record_positions`). Nothing is lost: a checkpoint is saved only after the buffer is
    written, and a worker that dies replays the stream from the last one."""

    trip_ids: list[str] = field(default_factory=list)
    tables: list[np.ndarray] = field(default_factory=list)  # `Track.int_columns`, one per batch

    def __len__(self) -> int:
        return len(self.trip_ids)

    def add(self, columns: EventColumns, rows: np.ndarray) -> None:
        if not rows.size:
            return
        self.trip_ids.extend(columns.trip_ids[k] for k in rows.tolist())
        self.tables.append(Track.int_columns(columns.ts[rows], columns.lon[rows], columns.lat[rows],
                                             columns.speed[rows], columns.heading[rows], columns.accuracy[rows]))

    def drain(self) -> tuple[list[str], np.ndarray]:
        trip_ids, table = self.trip_ids, (np.concatenate(self.tables, axis=1) if self.tables
                                          else np.empty((6, 0), dtype=np.int64))
        self.trip_ids, self.tables = [], []
        return trip_ids, table

    def take(self, ending: set[str]) -> tuple[list[str], np.ndarray]:
        """The held pings of these trips, out of the buffer."""
        trip_ids, table = self.drain()
        mine = np.fromiter((t in ending for t in trip_ids), dtype=bool, count=len(trip_ids))
        if (~mine).any():
            self.trip_ids = [t for t, m in zip(trip_ids, mine.tolist(), strict=True) if not m]
            self.tables = [table[:, ~mine]]
        return [t for t, m in zip(trip_ids, mine.tolist(), strict=True) if m], table[:, mine]


def apply(session: Session, *, live: LiveMonitor, vault: Vault, columns: EventColumns, rejected: list[LineError],
          options: IngestOptions, held: PingBuffer | None = None) -> IngestResult:
    """Run the monitor over read events and keep what they say, in the session's transaction: trips and
    positions, heartbeats, alerts (each once), check-ins; the caller commits. With `held`, positions go
    to that buffer instead, but for the trips ending here (a trip's track is complete when it ends)."""
    # Holding positions back (a monitor worker), no Ping object is made: only the other events are.
    events = columns.events() if held is None else [columns.others[k] for k in sorted(columns.others)]
    # Detection first: the alert reaches the agents' live map without waiting for the writes below.
    with live.lock:
        alerts = live.monitor.process_columns(columns)
        if held is None:
            live.feed.publish_batch(events, alerts)
        else:
            live.feed.publish_many(column_items(columns, alerts))
    alerts = live.take_unstored() + alerts
    if alerts:
        session.connection()  # begin now: a rollback of a transaction never begun is not an event
        orm_event.listen(session, "after_soft_rollback", lambda *_: live.put_back(alerts), once=True)
    tampered = registry.record_heartbeats(session, beats=[e for e in events if isinstance(e, DeviceHeartbeat)])
    for device in tampered:
        if options.webhook_url:
            notify.enqueue_webhook(session, url=options.webhook_url, event="device_tampered",
                                   payload={"device_id": device.id, "vehicle_id": device.vehicle_id,
                                            "reason": device.tamper_reason},
                                   idempotency_key=f"device_tampered:{device.id}:{device.tampered_at}")
    if held is None:
        started = record_in_slices(session, vault=vault, events=events, options=options)
    else:
        # Held back, but for the trips ending here: their positions go in first, then the end merges them.
        ending = {e.trip_id for e in columns.others.values() if isinstance(e, TripEnded)}
        is_ping = np.ones(len(columns), dtype=bool)
        is_ping[list(columns.others)] = False
        ending_rows = np.fromiter((t in ending for t in columns.trip_ids), dtype=bool, count=len(columns)) \
            if ending else np.zeros(len(columns), dtype=bool)
        held.add(columns, np.flatnonzero(is_ping & ~ending_rows))
        if ending:
            held.add(columns, np.flatnonzero(is_ping & ending_rows))
            trips.record_positions(session, vault, *held.take(ending))
        started = trips.record(session, vault=vault, events=events, compact_every=None)
    if options.on_trip_started is not None:
        for trip in started:
            options.on_trip_started(session, trip)
    # Not put back on a rollback as the monitor's are: the trip's start is not kept either, so the batch sent
    # again starts it, and asks, again.
    checked = [a for trip in started for a in options.check_trip(session, trip)] if options.check_trip else []
    if checked:
        live.feed.publish_many([{"type": "alert", **alert.without_position()} for alert in checked])
    stored = store_alerts(session, vault=vault, alerts=alerts + checked, webhook_url=options.webhook_url)
    for row in stored:
        checkins.open_for_alert(session, vault=vault, alert=row, minutes=options.check_in_minutes,
                                webhook_url=options.webhook_url)
        if options.on_alert is not None:
            options.on_alert(session, row)
    return IngestResult(accepted=len(columns), rejected=rejected, alerts=stored)


def record_in_slices(session: Session, *, vault: Vault, events: list[Event], options: IngestOptions) -> list[Trip]:
    """`trips.record` for the batch, `options.write_slice` trips at a time (each trip's events together, in
    their order), `options.between_slices` after each slice but the last. A batch cut off between slices is
    safe to send again, as a batch whose transaction failed always was: positions are kept once."""
    slices = trip_slices(events, options.write_slice) if options.between_slices is not None else [events]
    started: list[Trip] = []
    for number, part in enumerate(slices):
        if number and options.between_slices is not None:
            options.between_slices(session)
        started.extend(trips.record(session, vault=vault, events=part))
    return started


def trip_slices(events: list[Event], size: int) -> list[list[Event]]:
    """The batch's events cut into runs of at most `size` trips (other events go with the first run), each
    trip's events in one run and in their order."""
    slice_of: dict[str, int] = {}
    slices: list[list[Event]] = [[]]
    for event in events:
        trip_id = event.trip_id if isinstance(event, (TripStarted, TripEnded, Ping)) else None
        if trip_id is None:
            slices[0].append(event)
            continue
        number = slice_of.get(trip_id)
        if number is None:
            if len(slice_of) and len(slice_of) % size == 0:
                slices.append([])
            number = slice_of[trip_id] = len(slices) - 1
        slices[number].append(event)
    return slices


def store_alerts(session: Session, *, vault: Vault, alerts: list[Alert], webhook_url: str | None) -> list[TripAlert]:
    """Keep each alert once (a replayed batch raises it again: same trip, kind and time), its position
    sealed under the trip's key, and tell the operator (without the position); one query for those
    already kept, one flush for the rest."""
    if not alerts:
        return []
    when = {id(alert): datetime.fromtimestamp(alert.ts, UTC) for alert in alerts}
    kept: set[tuple[str, str, datetime]] = set()
    trip_ids = sorted({a.trip_id for a in alerts})
    for start in range(0, len(trip_ids), 500):
        kept.update((trip_id, kind, ts) for trip_id, kind, ts in session.execute(
            select(TripAlert.trip_id, TripAlert.kind, TripAlert.ts).where(
                TripAlert.trip_id.in_(trip_ids[start:start + 500]), TripAlert.ts.in_(sorted(set(when.values()))))))
    rows = []
    for alert in alerts:
        key = (alert.trip_id, alert.kind, when[id(alert)])
        if key in kept:
            continue
        kept.add(key)
        rows.append((alert, TripAlert(id=new_id("alt"), trip_id=alert.trip_id, kind=alert.kind, severity=alert.severity,
                                      ts=when[id(alert)], evidence=alert.evidence, received_at=utcnow())))
    trips.seal_alert_positions(session, vault=vault, placed=[(row, alert.lon, alert.lat) for alert, row in rows
                                                if alert.lon is not None and alert.lat is not None])
    session.add_all([row for _, row in rows])
    session.flush()
    if webhook_url:
        for alert, row in rows:
            notify.enqueue_webhook(session, url=webhook_url, event="alert", payload=alert.without_position(),
                                   idempotency_key=f"alert:{row.id}")
    return [row for _, row in rows]


def recent_alerts(session: Session, *, trip_id: str | None, limit: int) -> list[TripAlert]:
    statement = select(TripAlert).order_by(TripAlert.ts.desc()).limit(limit)
    if trip_id:
        statement = statement.where(TripAlert.trip_id == trip_id)
    return list(session.scalars(statement))


RESTORE_ACTIVE_WITHIN = timedelta(hours=6)  # an "active" trip silent for longer was abandoned by its sender


def restore(factory: sessionmaker[Session], *, live: LiveMonitor, vault: Vault) -> int:
    """Rebuild the monitor after a restart: the trips under way, their stored events run through it again.

    Alerts this raises were raised (and stored) before the restart, so they are dropped here. Trips
    ended in the last hour are remembered, so a re-sent batch does not start them again.
    """
    now = utcnow()
    with unit_of_work(factory) as session:
        active = list(session.scalars(select(Trip).where(Trip.status == "active",
                                                         Trip.updated_at >= now - RESTORE_ACTIVE_WITHIN)))
        events: list[Event] = []
        tracks = trips.load_tracks(session, vault=vault, trip_ids=[t.id for t in active])
        for trip in active:
            events.extend(_stored_events(session, vault, trip, tracks[trip.id]))
        beats = session.execute(select(Device.id, Device.vehicle_id, Device.last_heartbeat_at, Device.camera_ok,
                                       Device.storage_ok).where(Device.vehicle_id.is_not(None),
                                                                Device.last_heartbeat_at.is_not(None)))
        events.extend(DeviceHeartbeat(device_id, vehicle_id, at.timestamp(), bool(camera_ok is not False),
                                      bool(storage_ok is not False))
                      for device_id, vehicle_id, at, camera_ok, storage_ok in beats
                      if vehicle_id is not None and at is not None)
        ended = session.scalars(select(Trip.id).where(Trip.status == "ended",
                                                      Trip.ended_at >= now - timedelta(hours=1)))
        ended_ids = list(ended)
    events.sort(key=lambda e: e.ts)
    with live.lock:
        live.monitor.process(events)
        live.monitor.remember_ended(ended_ids)
        live.feed.publish_batch(events, [])
    return len(active)


def _stored_events(session: Session, vault: Vault, trip: Trip, track: Track) -> list[Event]:
    plan = trips.open_plan(session, vault=vault, trip=trip)
    events: list[Event] = []
    if trip.started_at is not None:
        route = plan.get("route")
        events.append(TripStarted(
            trip.id, trip.started_at.timestamp(), trip.vehicle_id, trip.driver_id,
            tuple(plan["pickup"]) if plan.get("pickup") else None,  # type: ignore[arg-type]
            tuple(plan["dropoff"]) if plan.get("dropoff") else None,  # type: ignore[arg-type]
            tuple(tuple(p) for p in route) if route else None,  # type: ignore[attr-defined]
            passenger_id=trip.passenger_id, crs=trip.crs))
    events.extend(track.pings(trip.id))
    return events


def alerts_by_hour(session: Session, *, since: datetime) -> dict[datetime, dict[str, int]]:
    """Monitor alerts per hour (by event time) since `since`, by kind (the dashboard's chart)."""
    hour = hour_of(TripAlert.ts)
    rows = session.execute(select(hour, TripAlert.kind, func.count()).where(TripAlert.ts >= since)
                           .group_by(hour, TripAlert.kind))
    counts: dict[datetime, dict[str, int]] = {}
    for at, kind, count in rows:
        counts.setdefault(as_hour(at), {})[kind] = int(count)
    return counts


# What other domains read of telematics: read-only views of its rows, through these functions only (they
# never query its tables). The views are what the rows are; a view's caller gets no way to change them.

class TripView(Protocol):
    """A trip: who and what was on it, and when. Its positions and plan are evidence (`open_evidence`)."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def vehicle_id(self) -> str | None: ...
    @property
    def driver_id(self) -> str | None: ...
    @property
    def passenger_id(self) -> str | None: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...


class VehicleView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def plate(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def colour(self) -> str: ...


class AlertView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def trip_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def severity(self) -> str: ...


class CheckInView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def trip_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def status(self) -> str: ...


def trip(session: Session, *, trip_id: str) -> TripView | None:
    return session.get(Trip, trip_id)


def trips_by_id(session: Session, *, trip_ids: Iterable[str]) -> dict[str, TripView]:
    wanted = sorted(set(trip_ids))
    return {t.id: t for t in session.scalars(select(Trip).where(Trip.id.in_(wanted)))} if wanted else {}


def trips_under_way(session: Session, *, people: Iterable[str]) -> list[TripView]:
    """Trips under way with any of these people on them (passenger or driver), least recently active first."""
    wanted = sorted(set(people))
    return list(session.scalars(select(Trip).where(
        Trip.status == "active", or_(Trip.passenger_id.in_(wanted), Trip.driver_id.in_(wanted)))
        .order_by(Trip.updated_at))) if wanted else []


def trip_ids_with(subject_id: str) -> Select[str]:
    """The ids of the trips this person took part in, as a statement to filter by."""
    return select(Trip.id).where(or_(Trip.passenger_id == subject_id, Trip.driver_id == subject_id))


def get_trip(session: Session, *, trip_id: str) -> TripView:
    """The trip; 404 when there is none."""
    return trips.get_trip(session, trip_id=trip_id)


def own_trip(session: Session, *, subject_id: str, trip_id: str) -> TripView:
    """A trip the person took part in; anyone else's, or none, is 404 (the one ownership check of trips)."""
    return trips.own_trip(session, subject_id=subject_id, trip_id=trip_id)


def trip_plan(session: Session, *, vault: Vault, trip_id: str) -> dict[str, object]:
    """The trip's planned route, pickup and drop-off, opened (empty for a trip without a plan, or none)."""
    row = session.get(Trip, trip_id)
    return trips.open_plan(session, vault=vault, trip=row) if row is not None else {}


def open_evidence(session: Session, *, vault: Vault, actor: Actor, trip_id: str, purpose: Purpose, reason: str,
                  case_id: str | None = None) -> trips.Evidence:
    """The trip's positions and plan for a person who must see them; audited with purpose and reason."""
    return trips.open_evidence(session, vault=vault, actor=actor, trip_id=trip_id, purpose=purpose, reason=reason,
                               case_id=case_id)


def trip_key(trip_id: str) -> str:
    """The vault subject holding the trip's data key: what else is kept of the trip is sealed under it too."""
    return trips.trip_key(trip_id)


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Metres between two WGS-84 positions."""
    return geo.haversine_m(lon1, lat1, lon2, lat2)


VEHICLE_READS = registry.VEHICLE_READS


async def vehicle_blockers(reader: FastReader, *, worker: WorkerRef, now: datetime) -> list[Blocker]:
    """What keeps a driver from being dispatched in their vehicle (the dispatch gate's vehicle source)."""
    return await registry.vehicle_blockers(reader, worker=worker, now=now)


def vehicles_by_id(session: Session, *, vehicle_ids: Iterable[str]) -> dict[str, VehicleView]:
    wanted = sorted(set(vehicle_ids))
    return {v.id: v for v in session.scalars(select(Vehicle).where(Vehicle.id.in_(wanted)))} if wanted else {}


def vehicle(session: Session, *, vehicle_id: str | None) -> VehicleView | None:
    return session.get(Vehicle, vehicle_id) if vehicle_id else None


def alerts_by_id(session: Session, *, alert_ids: Iterable[str]) -> list[AlertView]:
    """These alerts, oldest first by event time."""
    wanted = sorted(set(alert_ids))
    return list(session.scalars(select(TripAlert).where(TripAlert.id.in_(wanted)).order_by(TripAlert.ts))) \
        if wanted else []


def check_ins_by_id(session: Session, *, check_in_ids: Iterable[str]) -> list[CheckInView]:
    """These check-ins, oldest first by when they were asked."""
    wanted = sorted(set(check_in_ids))
    return list(session.scalars(select(CheckIn).where(CheckIn.id.in_(wanted)).order_by(CheckIn.sent_at))) \
        if wanted else []


def check_in(session: Session, *, check_in_id: str) -> CheckInView | None:
    return session.get(CheckIn, check_in_id)


def trips_started(*, since: datetime, until: datetime | None = None) -> Subquery:
    """The trips started in the period (`id`, `passenger_id`, `started_at`), for a report to join its own rows to."""
    in_period = and_(Trip.started_at >= since, Trip.started_at < until) if until is not None \
        else Trip.started_at >= since
    return select(Trip.id.label("id"), Trip.passenger_id.label("passenger_id"),
                  Trip.started_at.label("started_at")).where(in_period).subquery()


def trips_checked_in() -> Subquery:
    """The trips whose check-in someone answered (`trip_id`): "ok" or "help"."""
    return select(CheckIn.trip_id.label("trip_id")).where(CheckIn.status.in_(("ok", "help"))).distinct().subquery()

# -- what the regulator's exporters read (tripguard.regulator.exporters): rows and positions, no audit here;
# the exporter audits each export as machine use for the legal obligation.
def vehicles_changed(session: Session, *, start: datetime, end: datetime) -> list[Vehicle]:
    """Vehicles registered or changed in [start, end), oldest change first."""
    return list(session.scalars(select(Vehicle).where(Vehicle.updated_at >= start, Vehicle.updated_at < end)
                                .order_by(Vehicle.updated_at, Vehicle.id)))


def device_of(session: Session, *, vehicle_id: str) -> Device | None:
    """The vehicle's installed device (the earliest installed, when it has several)."""
    return session.scalars(select(Device).where(Device.vehicle_id == vehicle_id, Device.installed_at.is_not(None))
                           .order_by(Device.installed_at, Device.id).limit(1)).first()


def trips_started_in(session: Session, *, start: datetime, end: datetime) -> list[Trip]:
    return list(session.scalars(select(Trip).where(Trip.started_at >= start, Trip.started_at < end)
                                .order_by(Trip.started_at, Trip.id)))


def trips_ended_in(session: Session, *, start: datetime, end: datetime) -> list[Trip]:
    return list(session.scalars(select(Trip).where(Trip.ended_at >= start, Trip.ended_at < end)
                                .order_by(Trip.ended_at, Trip.id)))


def trips_moving(session: Session, *, start: datetime, end: datetime) -> list[Trip]:
    """Trips that may have positions in [start, end): started before its end, not ended before its start."""
    return list(session.scalars(select(Trip).where(Trip.started_at < end)
                                .where((Trip.ended_at.is_(None)) | (Trip.ended_at >= start))
                                .order_by(Trip.started_at, Trip.id)))


def positions_of(session: Session, *, vault: Vault, trip_id: str) -> list[Ping]:
    """The trip's kept positions (WGS-84), in time order, each timestamp once."""
    return trips.load_track(session, vault=vault, trip_id=trip_id).pings(trip_id)


def to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    return geo.wgs84_to_gcj02(lon, lat)


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return geo.haversine_m(lon1, lat1, lon2, lat2)
