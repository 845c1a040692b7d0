"""Trip-monitoring alerts as raised (the trip store and device registry come later)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime


class TripAlert(Base):
    __tablename__ = "telematics_alerts"
    __table_args__ = (UniqueConstraint("trip_id", "kind", "ts", name="uq_telematics_alerts_trip_kind_ts"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    trip_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(8))
    ts: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # event time the monitor raised it
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
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
