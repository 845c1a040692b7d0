"""Trips and their packed, sealed trajectories; alerts as raised; vehicles and devices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import NOT_BACKED_UP, Base, UTCDateTime
from tripguard.privacy.catalogue import Category, Key, personal_column


class TripAlert(Base):
    """An alert as the monitor raised it. Where it happened ("lon,lat") is sealed under the trip's key
    (`trip:<id>`, as its positions are) and opens only with the trajectory, on a purpose, audited."""

    __tablename__ = "telematics_alerts"
    __table_args__ = (UniqueConstraint("trip_id", "kind", "ts", name="uq_telematics_alerts_trip_kind_ts"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    trip_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(8))
    ts: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # event time the monitor raised it
    position: Mapped[bytes | None] = personal_column(Category.LOCATION, subject_column="trip_id", key=Key.TRIP)
    evidence: Mapped[dict[str, object]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Vehicle(Base):
    """A vehicle as the operator registers it: what a passenger and a safety agent check (not personal data)."""

    __tablename__ = "telematics_vehicles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    plate: Mapped[str] = mapped_column(String(16))
    colour: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Device(Base):
    """An in-vehicle monitoring device: where it is installed and what it last said."""

    __tablename__ = "telematics_devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vehicle_id: Mapped[str | None] = mapped_column(String(64), index=True)
    installed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    camera_ok: Mapped[bool | None] = mapped_column()
    storage_ok: Mapped[bool | None] = mapped_column()
    # Set when the device reports its tamper switch or speaks from another vehicle; cleared by reinstalling.
    tampered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tamper_reason: Mapped[str | None] = mapped_column(String(32))


class Trip(Base):
    """A trip as the operator's backend reported it. Where it went is sealed under the trip's own key.

    `plan` holds pickup, drop-off, planned route and where it ended (JSON, sealed); the positions are
    in `TrackChunk`. Kept for the trip-data retention period (≥ 2 years), then deleted and shredded.
    """

    __tablename__ = "telematics_trips"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(8), index=True)  # active | ended
    vehicle_id: Mapped[str | None] = mapped_column(String(64), index=True)
    driver_id: Mapped[str | None] = mapped_column(String(64), index=True)
    passenger_id: Mapped[str | None] = mapped_column(String(64), index=True)
    crs: Mapped[str] = mapped_column(String(8), default="wgs84")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_ping_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    points: Mapped[int] = mapped_column(Integer, default=0)  # pings received; exact (re-sends merged) once ended
    plan: Mapped[bytes | None] = personal_column(Category.LOCATION, key=Key.TRIP)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TrackChunk(Base):
    """Pings of one trip as one ingest batch brought them; merged into one chunk when the trip ends.

    On PostgreSQL the table is partitioned by month of `created_at` (`telematics.store.partitions`), hence
    the key (id, created_at)."""

    __tablename__ = "telematics_track_chunks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    trip_id: Mapped[str] = mapped_column(String(64), index=True)
    first_ts: Mapped[datetime] = mapped_column(UTCDateTime)
    last_ts: Mapped[datetime] = mapped_column(UTCDateTime)
    points: Mapped[int] = mapped_column(Integer)
    packed: Mapped[bytes | None] = personal_column(Category.LOCATION, subject_column="trip_id", key=Key.TRIP)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)


class CheckIn(Base):
    """"Are you OK?" sent to a person on a trip after an alert, and what they answered."""

    __tablename__ = "telematics_check_ins"
    __table_args__ = (UniqueConstraint("alert_id", "subject_id", name="uq_telematics_check_ins_alert_subject"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(40), index=True)
    trip_id: Mapped[str] = mapped_column(String(64), index=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))  # passenger | driver
    status: Mapped[str] = mapped_column(String(12), index=True)  # pending | ok | help | unanswered
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answer_by: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IngestBatch(Base):
    """An ingest batch sent with an Idempotency-Key: its report, returned again to a retry (kept a day)."""

    __tablename__ = "telematics_ingest_batches"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "<principal id>:<Idempotency-Key>"
    report: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class MonitorCheckpoint(Base):
    """A monitor worker's shard state (scale-out): the per-trip state of the trips under way on that
    shard, as of the events stream's message `seq`, sealed. Overwritten every few seconds."""

    __tablename__ = "telematics_monitor_checkpoints"
    # Positions of trips under way, sealed under a system key no erasure shreds, as of a message of the
    # events stream: in a backup they would outlive every window, and they mean nothing to another stream.
    # A restored system's workers start their shards from the stream, as on a first start.
    __table_args__ = ({"info": {NOT_BACKED_UP: "monitor state: positions under a system key; tied to the stream"}},)

    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    subject_id: Mapped[str] = mapped_column(String(64))  # the vault key that seals `state`
    state: Mapped[bytes | None] = personal_column(Category.LOCATION, subject_column="subject_id", key=Key.SYSTEM)
    trips: Mapped[int] = mapped_column(Integer)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboxBatch(Base):
    """An ingest batch's good lines as one NDJSON blob, waiting for the embedded monitor (memory:// bus).

    The id is the sequence the monitor consumes in order and its checkpoint names (`seq`). Rows a checkpoint
    covers are deleted at once, so a row lives seconds: like the events stream of scale-out, it holds raw
    lines (positions included) only until they are applied, and means nothing without its checkpoint.
    """

    __tablename__ = "telematics_inbox"
    # AUTOINCREMENT on SQLite: an id is never used again after the rows before it were deleted (a plain rowid
    # would restart at 1 in an emptied table, behind the checkpoint).
    __table_args__ = ({"info": {NOT_BACKED_UP: "transient: lines waiting for the monitor, tied to its checkpoint"},
                       "sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                    autoincrement=True)
    lines: Mapped[int] = mapped_column(Integer)  # how many lines `data` holds (the backlog's bound counts them)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
