"""The trip store: trip lifecycle, the planned route, and every ping, packed and sealed.

Each trip has its own data key in the vault (subject `trip:<id>`), so a trip's positions can be
shredded on their own when the trip-data retention period ends, without touching the people in it.
Reading positions is evidence access: it names a purpose and a reason and leaves an audit entry.
Where each alert happened is one of the trip's positions: sealed under the same key, opened only with
the trajectory (`open_evidence`).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import bindparam, case, delete, insert, or_, select, text, update
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import UTCDateTime
from tripguard.core.errors import NotFound, PermissionDenied
from tripguard.core.ids import new_id
from tripguard.privacy import freetext, subjects
from tripguard.security.permissions import Purpose
from tripguard.telematics.ingest.events import Event, Ping, TripEnded, TripStarted, format_ts
from tripguard.telematics.models import TrackChunk, Trip, TripAlert
from tripguard.telematics.store.track import Track
from tripguard.vault.service import SubjectErased, Vault

_IN_CHUNK = 500  # ids per IN (...) query
COMPACT_EVERY = 16  # pings: a trip under way has its chunks merged each time it passes a multiple


# After a person's erasure, trip data kept by law is blocked for every purpose but these (PIPL Art. 47).
BLOCKED_DATA_PURPOSES = frozenset({Purpose.INVESTIGATION, Purpose.LEGAL_CLAIMS})


def trip_key(trip_id: str) -> str:
    """The vault subject that holds this trip's data key (fits the 64-character subject id)."""
    return f"trip:{trip_id}" if len(trip_id) <= 59 else "trip#" + hashlib.sha256(trip_id.encode()).hexdigest()[:56]


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _load(session: Session, trip_ids: Iterable[str]) -> dict[str, Trip]:
    ids = sorted(set(trip_ids))
    found: dict[str, Trip] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        for trip in session.scalars(select(Trip).where(Trip.id.in_(ids[start:start + _IN_CHUNK]))):
            found[trip.id] = trip
    return found


def people_on(session: Session, *, trip_ids: Iterable[str]) -> set[str]:
    """The passengers and drivers of these trips (a breach investigation: whose positions were shown)."""
    return {person for trip in _load(session, trip_ids).values() for person in (trip.passenger_id, trip.driver_id)
            if person}


def _new_trip(session: Session, trip_id: str, now: datetime) -> Trip:
    trip = Trip(id=trip_id, status="active", crs="wgs84", points=0, updated_at=now)
    session.add(trip)
    return trip


# -- plan (pickup, drop-off, route, where it ended) ---------------------------------------------
def _seal_plan(session: Session, vault: Vault, trip: Trip, plan: dict[str, object]) -> None:
    trip.plan = vault.seal(session, subject_id=trip_key(trip.id), table=Trip.__tablename__, column="plan",
                           row_id=trip.id, value=json.dumps(plan, separators=(",", ":")))


def open_plan(session: Session, *, vault: Vault, trip: Trip) -> dict[str, object]:
    if trip.plan is None:
        return {}
    return dict(json.loads(vault.open(session, subject_id=trip_key(trip.id), table=Trip.__tablename__,
                                      column="plan", row_id=trip.id, blob=trip.plan)))


# -- positions ----------------------------------------------------------------------------------
def _chunk_row(session: Session, vault: Vault, trip_id: str, track: Track, now: datetime) -> dict[str, object]:
    chunk_id = new_id("trk")
    return {"id": chunk_id, "trip_id": trip_id, "first_ts": _at(int(track.t_ms[0]) / 1000),
            "last_ts": _at(int(track.t_ms[-1]) / 1000), "points": len(track), "created_at": now,
            "packed": vault.seal_bytes(session, subject_id=trip_key(trip_id), table=TrackChunk.__tablename__,
                                       column="packed", row_id=chunk_id, data=track.pack())}


_CHUNK_COLUMNS = ("id", "trip_id", "first_ts", "last_ts", "points", "created_at", "packed")


def _insert_chunks(session: Session, rows: list[dict[str, object]]) -> None:
    """The batch's chunks: COPY on PostgreSQL (in the session's transaction), one executemany elsewhere."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(TrackChunk), rows)  # no ORM objects
        return
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY {TrackChunk.__tablename__} ({', '.join(_CHUNK_COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(tuple(row[c] for c in _CHUNK_COLUMNS))


def _open_chunk(session: Session, vault: Vault, chunk: TrackChunk) -> Track:
    if chunk.packed is None:
        return Track.empty()
    return Track.unpack(vault.open_bytes(session, subject_id=trip_key(chunk.trip_id), table=TrackChunk.__tablename__,
                                         column="packed", row_id=chunk.id, blob=chunk.packed))


def _chunks(session: Session, trip_id: str) -> list[TrackChunk]:
    return list(session.scalars(select(TrackChunk).where(TrackChunk.trip_id == trip_id)
                                .order_by(TrackChunk.first_ts, TrackChunk.id)))


def load_tracks(session: Session, *, vault: Vault, trip_ids: list[str]) -> dict[str, Track]:
    """Many trips' positions at once (a restart): one query per 500 trips, keys opened in bulk."""
    vault.prefetch(session, [trip_key(t) for t in trip_ids])
    parts: dict[str, list[Track]] = defaultdict(list)
    for start in range(0, len(trip_ids), _IN_CHUNK):
        rows = session.execute(select(TrackChunk.id, TrackChunk.trip_id, TrackChunk.packed)
                               .where(TrackChunk.trip_id.in_(trip_ids[start:start + _IN_CHUNK])))
        for chunk_id, trip_id, packed in rows:
            if packed is not None:
                parts[trip_id].append(Track.unpack(vault.open_bytes(
                    session, subject_id=trip_key(trip_id), table=TrackChunk.__tablename__, column="packed",
                    row_id=chunk_id, blob=packed)))
    return {t: Track.concat(parts.get(t, [])) for t in trip_ids}


def load_track(session: Session, *, vault: Vault, trip_id: str) -> Track:
    """Every kept position of the trip, in time order, each timestamp once (internal use: no audit)."""
    return Track.concat(_open_chunk(session, vault, c) for c in _chunks(session, trip_id))


def compact(session: Session, *, vault: Vault, trip_id: str) -> None:
    """Merge a trip's chunks into one (duplicates dropped) once the trip has ended."""
    compact_many(session, vault=vault, trip_ids=[trip_id])


def compact_many(session: Session, *, vault: Vault, trip_ids: list[str]) -> None:
    """Merge each trip's chunks into one (duplicates dropped): one query for the chunks of 500 trips, one
    DELETE and one INSERT for all, instead of a round of statements per trip."""
    ids = sorted(set(trip_ids))
    if not ids:
        return
    found = _load(session, ids)
    chunks: dict[str, list[tuple[datetime, str, int, bytes | None]]] = defaultdict(list)
    for start in range(0, len(ids), _IN_CHUNK):
        for chunk_id, trip_id, first_ts, points, packed in session.execute(
                select(TrackChunk.id, TrackChunk.trip_id, TrackChunk.first_ts, TrackChunk.points, TrackChunk.packed)
                .where(TrackChunk.trip_id.in_(ids[start:start + _IN_CHUNK]))):
            chunks[trip_id].append((first_ts, chunk_id, points, packed))
    now = utcnow()
    rows: list[dict[str, object]] = []
    merged_away: list[str] = []
    for trip_id in ids:
        own = sorted(chunks.get(trip_id, []), key=lambda chunk: (chunk[0], chunk[1]))
        trip = found.get(trip_id)
        if len(own) <= 1:  # one batch's pings: already one per timestamp
            if trip is not None:
                trip.points = own[0][2] if own else 0
            continue
        merged = Track.concat(Track.empty() if packed is None else Track.unpack(vault.open_bytes(
            session, subject_id=trip_key(trip_id), table=TrackChunk.__tablename__, column="packed", row_id=chunk_id,
            blob=packed)) for _, chunk_id, _, packed in own)
        merged_away.extend(chunk_id for _, chunk_id, _, _ in own)
        if trip is not None:
            trip.points = len(merged)  # each position once, however often it was sent
        if len(merged):
            rows.append(_chunk_row(session, vault, trip_id, merged, now))
    for start in range(0, len(merged_away), _IN_CHUNK):  # no chunk is an ORM object: nothing to synchronise
        session.execute(delete(TrackChunk).where(TrackChunk.id.in_(merged_away[start:start + _IN_CHUNK]))
                        .execution_options(synchronize_session=False))
    _insert_chunks(session, rows)


def compaction_offset(trip_id: str, every: int) -> int:
    """Where in its cycle of `every` pings a trip is merged: trips that started together (and so ping
    together) are merged in different batches, a sixteenth of them in each, never all in one."""
    return zlib.crc32(trip_id.encode("utf-8", "surrogatepass")) % every


# -- where alerts happened ------------------------------------------------------------------------
def seal_alert_positions(session: Session, *, vault: Vault, placed: list[tuple[TripAlert, float, float]]) -> None:
    """Each alert's position ("lon,lat"), sealed under its trip's key (the keys opened in one query)."""
    if not placed:
        return
    vault.prefetch(session, [trip_key(alert.trip_id) for alert, _, _ in placed], create_missing=True)
    for alert, lon, lat in placed:
        try:
            alert.position = vault.seal(session, subject_id=trip_key(alert.trip_id), table=TripAlert.__tablename__,
                                        column="position", row_id=alert.id, value=f"{lon:.6f},{lat:.6f}")
        except SubjectErased:  # the trip's key is shredded (its data period ended): nothing more is kept
            alert.position = None


def open_alert_position(session: Session, *, vault: Vault, alert: TripAlert) -> tuple[float, float] | None:
    """Internal use (no audit): the caller is the gate (`open_evidence`), or a migration."""
    if alert.position is None:
        return None
    text = vault.open(session, subject_id=trip_key(alert.trip_id), table=TripAlert.__tablename__, column="position",
                      row_id=alert.id, blob=alert.position)
    lon, lat = (float(part) for part in text.split(","))
    return lon, lat


# -- ingest ---------------------------------------------------------------------------------------
def record(session: Session, *, vault: Vault, events: Sequence[Event],
           compact_every: int | None = COMPACT_EVERY) -> list[Trip]:
    """Keep what the batch says about trips: starts, one chunk of pings per trip, ends. Returns the
    trips that started in this batch (a re-sent start is not a start). A trip under way has its chunks
    merged each time it passes a multiple of `compact_every` pings (None: only when it ends; a monitor
    worker restarts from checkpoints, not from the trip store)."""
    trip_events = [e for e in events if isinstance(e, (TripStarted, Ping, TripEnded))]
    started: list[Trip] = []
    if not trip_events:
        return started
    now = utcnow()
    trips = _load(session, (e.trip_id for e in trip_events))
    # Keys opened (or made) for the whole batch at once: a trip that starts or sends positions needs one.
    vault.prefetch(session, [trip_key(t) for t in {e.trip_id for e in trip_events}], create_missing=True)
    pings: dict[str, list[Ping]] = defaultdict(list)
    for event in trip_events:
        trip = trips.get(event.trip_id) or trips.setdefault(event.trip_id, _new_trip(session, event.trip_id, now))
        if isinstance(event, TripStarted) and _start(session, vault, trip, event):
            started.append(trip)
        elif isinstance(event, Ping):
            pings[event.trip_id].append(event)
    # Its driver and passenger are data subjects from their first trip (one read and one insert per batch).
    subjects.register_many(session, people=[subjects.Seen(person, kind) for trip in started for person, kind in
                                     ((trip.driver_id, "driver"), (trip.passenger_id, "passenger")) if person],
                           source="trip")
    rows = []
    long_running = []
    for trip_id, trip_pings in pings.items():
        trip = trips[trip_id]
        track = Track.from_pings(trip_pings)
        rows.append(_chunk_row(session, vault, trip_id, track, now))
        if compact_every:
            before = trip.points + compaction_offset(trip_id, compact_every)
            if (before + len(trip_pings)) // compact_every > before // compact_every:
                long_running.append(trip_id)
        trip.points += len(trip_pings)
        newest = _at(int(track.t_ms[-1]) / 1000)
        trip.last_ping_at = max(trip.last_ping_at, newest) if trip.last_ping_at else newest
        trip.updated_at = now
    session.flush()
    _insert_chunks(session, rows)
    # A long trip's chunks merged as it goes: fewer rows, a quicker restart. An ended trip's at once: its
    # count stays exact when positions come after its end (late, or sent again).
    compact_many(session, vault=vault, trip_ids=[t for t in long_running if trips[t].ended_at is None]
                 + [t for t in pings if trips[t].ended_at is not None])
    for event in trip_events:
        if isinstance(event, TripEnded):
            _end(session, vault, trips[event.trip_id], event)
    return started


def record_positions(session: Session, vault: Vault, trip_ids: list[str], table: np.ndarray) -> int:
    """Many trips' positions in one go (a monitor worker's held-back pings): one sealed chunk per trip,
    packed in bulk, written with one multi-row INSERT; the trips' counters with one UPDATE per trip in
    one round of statements (no ORM objects). `table` is `Track.int_columns` of the pings; a trip not
    yet known gets its row. Returns the chunks written."""
    if not trip_ids:
        return 0
    names = list(dict.fromkeys(trip_ids))
    number = {name: n for n, name in enumerate(names)}
    groups = np.fromiter(map(number.__getitem__, trip_ids), dtype=np.int64, count=len(trip_ids))
    packed = Track.pack_groups(groups, table)
    now = utcnow()
    known: set[str] = set()
    ended: list[str] = []
    for start in range(0, len(names), _IN_CHUNK):
        for trip_id, ended_at in session.execute(select(Trip.id, Trip.ended_at)
                                                 .where(Trip.id.in_(names[start:start + _IN_CHUNK]))):
            known.add(trip_id)
            if ended_at is not None:
                ended.append(trip_id)
    missing = [{"id": t, "status": "active", "crs": "wgs84", "points": 0, "updated_at": now}
               for t in names if t not in known]
    if missing:
        session.execute(insert(Trip), missing)
    vault.prefetch(session, [trip_key(t) for t in names], create_missing=True)
    rows = []
    counters = []
    erased: set[str] = set()
    for group, points, first_ms, last_ms, data in packed:
        trip_id, chunk_id = names[group], new_id("trk")
        try:
            sealed = vault.seal_bytes(session, subject_id=trip_key(trip_id), table=TrackChunk.__tablename__,
                                      column="packed", row_id=chunk_id, data=data)
        except SubjectErased:  # erased while its pings were held or waited (a monitor's buffer, the inbox): dropped
            erased.add(trip_id)
            continue
        rows.append({"id": chunk_id, "trip_id": trip_id, "first_ts": _at(first_ms / 1000),
                     "last_ts": _at(last_ms / 1000), "points": points, "created_at": now, "packed": sealed})
        counters.append({"trip": trip_id, "n": points, "newest": _at(last_ms / 1000), "now": now})
    if rows:
        _insert_chunks(session, rows)
        _count_positions(session, counters, now)
    # An ended trip's positions are its one compacted chunk: what comes after its end (late, or replayed from
    # a checkpoint older than the end) is merged in at once, each timestamp kept and counted once.
    compact_many(session, vault=vault, trip_ids=[t for t in ended if t not in erased])
    return len(rows)


def _count_positions(session: Session, counters: list[dict[str, object]], now: datetime) -> None:
    """Each trip's `points` and `last_ping_at` moved on: on PostgreSQL one UPDATE over arrays (unnest),
    elsewhere one statement per trip."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text(
            f"UPDATE {Trip.__tablename__} AS t SET points = t.points + v.n, updated_at = :now, "  # noqa: S608 - the model's name
            "last_ping_at = CASE WHEN t.last_ping_at IS NULL OR t.last_ping_at < v.newest THEN v.newest "
            "ELSE t.last_ping_at END "
            "FROM (SELECT unnest(CAST(:trips AS text[])) AS id, unnest(CAST(:ns AS integer[])) AS n, "
            "unnest(CAST(:newest AS timestamptz[])) AS newest) AS v WHERE t.id = v.id"),
            {"now": now, "trips": [c["trip"] for c in counters], "ns": [c["n"] for c in counters],
             "newest": [c["newest"] for c in counters]})
        return
    newest = bindparam("newest", type_=UTCDateTime)
    connection.execute(
        update(Trip).where(Trip.id == bindparam("trip")).values(
            points=Trip.points + bindparam("n"), updated_at=bindparam("now", type_=UTCDateTime),
            last_ping_at=case((or_(Trip.last_ping_at.is_(None), Trip.last_ping_at < newest), newest),
                              else_=Trip.last_ping_at)),
        counters)


def _start(session: Session, vault: Vault, trip: Trip, event: TripStarted) -> bool:
    if trip.started_at is not None:
        return False  # re-sent
    trip.started_at = _at(event.ts)
    trip.vehicle_id, trip.driver_id, trip.passenger_id = event.vehicle_id, event.driver_id, event.passenger_id
    trip.crs = event.crs
    plan = open_plan(session, vault=vault, trip=trip)
    plan.update({"pickup": list(event.pickup) if event.pickup else None,
                 "dropoff": list(event.dropoff) if event.dropoff else None,
                 "route": [list(p) for p in event.route] if event.route else None,
                 "pickup_name": event.pickup_name, "dropoff_name": event.dropoff_name})
    _seal_plan(session, vault, trip, plan)
    trip.updated_at = utcnow()
    return True


def _end(session: Session, vault: Vault, trip: Trip, event: TripEnded) -> None:
    if trip.ended_at is not None:
        return  # re-sent
    trip.status, trip.ended_at, trip.updated_at = "ended", _at(event.ts), utcnow()
    if event.lon is not None and event.lat is not None:
        plan = open_plan(session, vault=vault, trip=trip)
        plan["end"] = [event.lon, event.lat]
        _seal_plan(session, vault, trip, plan)
    compact(session, vault=vault, trip_id=trip.id)


def abandon(session: Session, *, vault: Vault, trip_ids: list[str], actor: Actor, reason: str) -> int:
    """Trips their sender will never finish (it stopped while they were under way, as the demo city does
    when the server stops): ended at their last position's time, without the end-of-trip rules (nothing
    is known of how they ended), each audited. A restart then finds them ended, so the monitor does not
    take their silence for lost GPS. Returns how many were ended."""
    ended = []
    for trip in _load(session, trip_ids).values():
        if trip.ended_at is not None:
            continue
        trip.status, trip.updated_at = "ended", utcnow()
        trip.ended_at = trip.last_ping_at or trip.started_at or trip.updated_at
        audit.record(session, actor=actor, action="trip.abandoned", target_type="telematics_trips",
                     target_id=trip.id, details={"reason": reason})
        ended.append(trip.id)
    compact_many(session, vault=vault, trip_ids=ended)
    return len(ended)


# -- evidence -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    trip: Trip
    plan: dict[str, object]
    track: Track
    alerts: list[tuple[TripAlert, tuple[float, float]]]  # each alert with where it happened

    def geojson(self) -> dict[str, object]:
        """A FeatureCollection: the driven line, the planned route, pickup, drop-off, end and the alerts."""
        features: list[dict[str, object]] = [{
            "type": "Feature", "geometry": {"type": "LineString", "coordinates": self.track.coordinates()},
            "properties": {"role": "trajectory", "trip_id": self.trip.id,
                           "times": [row["ts"] for row in self.track.rows()]}}]
        if self.plan.get("route"):
            features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": self.plan["route"]},
                             "properties": {"role": "planned_route"}})
        for role in ("pickup", "dropoff", "end"):
            if self.plan.get(role):
                features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": self.plan[role]},
                                 "properties": {"role": role}})
        features.extend({"type": "Feature", "geometry": {"type": "Point", "coordinates": list(where)},
                         "properties": {"role": "alert", "alert_id": alert.id, "kind": alert.kind,
                                        "severity": alert.severity, "ts": format_ts(alert.ts.timestamp())}}
                        for alert, where in self.alerts)
        return {"type": "FeatureCollection", "features": features}


def get_trip(session: Session, *, trip_id: str) -> Trip:
    trip = session.get(Trip, trip_id)
    if trip is None:
        raise NotFound("no such trip")
    return trip


def latest(session: Session, *, status: str | None, limit: int) -> list[Trip]:
    """Trips, most recently active first; only those in `status` when it is given."""
    statement = select(Trip).order_by(Trip.updated_at.desc(), Trip.id).limit(limit)
    if status:
        statement = statement.where(Trip.status == status)
    return list(session.scalars(statement))


def own_trip(session: Session, *, subject_id: str, trip_id: str) -> Trip:
    """A trip the person took part in (its passenger or its driver): the one ownership check of trips. Anyone
    else's trip, or none, is 404 to them."""
    trip = session.get(Trip, trip_id)
    if trip is None or subject_id not in (trip.passenger_id, trip.driver_id):
        raise NotFound("no such trip of yours")
    return trip


def open_evidence(session: Session, *, vault: Vault, actor: Actor, trip_id: str, purpose: Purpose,
                  reason: str, case_id: str | None = None) -> Evidence:
    """The trip's positions and plan for a person who must see them; audited with purpose and reason.

    `case_id`: the live case about this trip that the reader handles (the safety domain checked it). On
    the emergency purpose it opens the trip even after a person on it was erased: someone may be in
    danger now (vital interest, PIPL Art. 13(4)). The audit entry names the case."""
    trip = get_trip(session, trip_id=trip_id)
    vital = case_id is not None and purpose is Purpose.EMERGENCY
    if purpose not in BLOCKED_DATA_PURPOSES and not vital and any(
            person is not None and vault.is_erased(session, person) for person in (trip.passenger_id, trip.driver_id)):
        raise PermissionDenied("a person on this trip was erased: its data is kept only as the law requires and opens "
                               "only for legal claims or an investigation (PIPL Art. 47), or for the emergency "
                               "purpose by the handler of a live case about it")
    evidence = Evidence(trip=trip, plan=open_plan(session, vault=vault, trip=trip),
                        track=load_track(session, vault=vault, trip_id=trip_id),
                        alerts=_placed_alerts(session, vault, trip_id))
    audit.record(session, actor=actor, action="trip.trajectory_read", target_type="trip", target_id=trip_id,
                 purpose=purpose.value, details={"points": len(evidence.track), "alerts": len(evidence.alerts),
                                                 **({"case": case_id} if case_id else {}),
                                                 **freetext.keep(session, vault=vault, subject_id=trip_key(trip_id),
                                                                 text=reason[:200])})
    return evidence


def _placed_alerts(session: Session, vault: Vault, trip_id: str) -> list[tuple[TripAlert, tuple[float, float]]]:
    placed = []
    for alert in session.scalars(select(TripAlert).where(TripAlert.trip_id == trip_id).order_by(TripAlert.ts)):
        where = open_alert_position(session, vault=vault, alert=alert)
        if where is not None:
            placed.append((alert, where))
    return placed
