"""Ingest responses and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tripguard.core.identifiers import ID_PATTERN
from tripguard.core.types import CleanStr, Timestamp


class RejectedLine(BaseModel):
    line: int
    reason: str


class IngestReport(BaseModel):
    """The good lines were taken; each bad one is named with its line number and why."""

    accepted: int
    rejected: list[RejectedLine]
    alerts: int


class AlertRead(BaseModel):
    """An alert without where it happened (a position is evidence: it opens with the trip's trajectory)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    trip_id: str
    kind: str
    severity: str
    ts: datetime
    evidence: dict[str, object]


class VehicleUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plate: CleanStr = Field(min_length=1, max_length=16)
    colour: CleanStr = Field(min_length=1, max_length=32)
    model: CleanStr = Field(min_length=1, max_length=64)


class VehicleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    plate: str
    colour: str
    model: str


class DeviceInstall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vehicle_id: str = Field(pattern=ID_PATTERN)
    installed_at: Timestamp


class DeviceRead(BaseModel):
    id: str
    vehicle_id: str | None
    installed_at: datetime | None
    last_heartbeat_at: datetime | None
    status: str


class DeviceKpiRead(BaseModel):
    """R 五.2 評估標準二: install rate (target 100 %) and operating rate over the period."""

    since: datetime
    vehicles: int
    vehicles_with_device: int
    install_rate: float | None
    devices_installed: int
    devices_heard: int
    operating_rate: float | None


class TripRead(BaseModel):
    """A trip without where it went (positions are evidence: see the trajectory route)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str
    vehicle_id: str | None
    driver_id: str | None
    passenger_id: str | None
    started_at: datetime | None
    ended_at: datetime | None
    last_ping_at: datetime | None
    points: int


class CheckInRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    alert_id: str
    trip_id: str
    subject_id: str
    role: str
    status: str
    sent_at: datetime
    answer_by: datetime
    answered_at: datetime | None


class CheckInAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Literal["ok", "help"]


class TripDetail(BaseModel):
    trip: TripRead
    vehicle: VehicleRead | None
    alerts: list[AlertRead]
    check_ins: list[CheckInRead]
