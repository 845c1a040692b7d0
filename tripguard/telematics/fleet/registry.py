"""Vehicles and their monitoring devices: registration, heartbeats, status, and the plan's KPIs.

Install rate: vehicles with an installed device / vehicles (target 100 %). Operating rate: installed
devices heard from in the period / installed devices (R 五.2 評估標準二).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import SYSTEM, Actor
from tripguard.core.blockers import Blocker, WorkerRef
from tripguard.core.clock import utcnow
from tripguard.core.fastread import FastReader, as_utc
from tripguard.telematics.ingest.events import DeviceHeartbeat
from tripguard.telematics.models import Device, Vehicle

ONLINE_WITHIN = timedelta(minutes=5)


def upsert_vehicle(session: Session, *, actor: Actor, vehicle_id: str, plate: str, colour: str, model: str) -> Vehicle:
    now = utcnow()
    vehicle = session.get(Vehicle, vehicle_id)
    if vehicle is None:
        vehicle = Vehicle(id=vehicle_id, created_at=now)
        session.add(vehicle)
    vehicle.plate, vehicle.colour, vehicle.model, vehicle.updated_at = plate, colour, model, now
    session.flush()
    audit.record(session, actor=actor, action="vehicle.upsert", target_type="vehicle", target_id=vehicle_id)
    return vehicle


def install_device(session: Session, *, actor: Actor, device_id: str, vehicle_id: str,
                   installed_at: datetime) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        device = Device(id=device_id)
        session.add(device)
    device.vehicle_id, device.installed_at = vehicle_id, installed_at
    device.tampered_at = device.tamper_reason = None
    session.flush()
    audit.record(session, actor=actor, action="device.install", target_type="device", target_id=device_id,
                 details={"vehicle": vehicle_id})
    return device


def record_heartbeats(session: Session, *, beats: list[DeviceHeartbeat]) -> list[Device]:
    """Keep each device's newest heartbeat; a device heard of for the first time is registered by it.

    Returns the devices found tampered with by this batch: the device said so, or it spoke from a
    vehicle other than the one it is installed in.
    """
    tampered: list[Device] = []
    newest: dict[str, DeviceHeartbeat] = {}
    for beat in beats:
        if beat.device_id not in newest or beat.ts > newest[beat.device_id].ts:
            newest[beat.device_id] = beat
    for beat in newest.values():
        at = datetime.fromtimestamp(beat.ts, UTC)
        device = session.get(Device, beat.device_id)
        if device is None:
            device = Device(id=beat.device_id, vehicle_id=beat.vehicle_id, installed_at=at)
            session.add(device)
        if device.last_heartbeat_at is None or at > device.last_heartbeat_at:
            device.last_heartbeat_at, device.camera_ok, device.storage_ok = at, beat.camera_ok, beat.storage_ok
        reason = "tamper_switch" if beat.tampered else "moved_vehicle" if beat.vehicle_id != device.vehicle_id else None
        if reason and device.tampered_at is None:
            device.tampered_at, device.tamper_reason = at, reason
            audit.record(session, actor=SYSTEM, action="device.tampered", target_type="device", target_id=device.id,
                         details={"reason": reason, "vehicle": beat.vehicle_id})
            tampered.append(device)
    session.flush()
    return tampered


def devices(session: Session, *, limit: int) -> list[Device]:
    """Every device (up to `limit`), by id."""
    return list(session.scalars(select(Device).order_by(Device.id).limit(limit)))


def devices_in(session: Session, *, vehicle_id: str) -> list[Device]:
    """The devices installed in the vehicle."""
    return list(session.scalars(select(Device).where(Device.vehicle_id == vehicle_id)))


DEVICE_STATES = ("online", "offline", "faulty", "tampered", "not_installed")


def status_sql(now: datetime) -> ColumnElement[str]:
    """`status` as SQL, to filter and sort a list of devices by it (the same order of checks)."""
    return case(
        (Device.tampered_at.is_not(None), "tampered"),
        (or_(Device.installed_at.is_(None), Device.vehicle_id.is_(None)), "not_installed"),
        (or_(Device.camera_ok.is_(False), Device.storage_ok.is_(False)), "faulty"),
        (or_(Device.last_heartbeat_at.is_(None), Device.last_heartbeat_at < now - ONLINE_WITHIN), "offline"),
        else_="online")


def status(device: Device, now: datetime) -> str:
    return state_of(device.tampered_at, device.installed_at, device.vehicle_id, device.camera_ok, device.storage_ok,
                    device.last_heartbeat_at, now)


def state_of(tampered_at: datetime | None, installed_at: datetime | None, vehicle_id: str | None,
             camera_ok: bool | None, storage_ok: bool | None, last_heartbeat_at: datetime | None,
             now: datetime) -> str:
    if tampered_at is not None:
        return "tampered"
    if installed_at is None or vehicle_id is None:
        return "not_installed"
    if camera_ok is False or storage_ok is False:
        return "faulty"
    if last_heartbeat_at is None or now - last_heartbeat_at > ONLINE_WITHIN:
        return "offline"
    return "online"


# The dispatch gate asks, for a driver, about the vehicle they are about to drive (`core.fastread`).
VEHICLE_SQL = ("SELECT d.id, d.tampered_at, d.installed_at, d.vehicle_id, d.camera_ok, d.storage_ok, "
               "d.last_heartbeat_at FROM telematics_vehicles v LEFT JOIN telematics_devices d ON d.vehicle_id = v.id "
               "WHERE v.id = :vehicle_id ORDER BY d.id")

# The rows VEHICLE_SQL reads, with the column naming the vehicle (the read cache's invalidation).
VEHICLE_READS: tuple[tuple[str, str], ...] = (("telematics_vehicles", "id"), ("telematics_devices", "vehicle_id"))


async def vehicle_blockers(reader: FastReader, *, worker: WorkerRef, now: datetime) -> list[Blocker]:
    """A driver is dispatched only in a registered vehicle with a monitoring device that works now."""
    if worker.role != "driver":
        return []
    rows = await reader.all(VEHICLE_SQL, vehicle_id=worker.vehicle_id) if worker.vehicle_id is not None else []
    if not rows:
        return [Blocker("vehicle.unknown", ref=worker.vehicle_id)]
    states = {row[0]: state_of(as_utc(row[1]), as_utc(row[2]), row[3], _flag(row[4]), _flag(row[5]),
                               as_utc(row[6]), now) for row in rows if row[0] is not None}
    if "online" in states.values():
        return []
    if not states or set(states.values()) == {"not_installed"}:
        return [Blocker("device.missing", ref=worker.vehicle_id)]
    device_id, state = next((d, s) for d, s in states.items() if s != "not_installed")
    return [Blocker(f"device.{state}", ref=device_id)]


def _flag(value: object) -> bool | None:
    return None if value is None else bool(value)


@dataclass(frozen=True)
class DeviceKpi:
    vehicles: int
    vehicles_with_device: int
    devices_installed: int
    devices_heard: int
    since: datetime

    @property
    def install_rate(self) -> float | None:
        return self.vehicles_with_device / self.vehicles if self.vehicles else None

    @property
    def operating_rate(self) -> float | None:
        return self.devices_heard / self.devices_installed if self.devices_installed else None


def device_kpi(session: Session, *, since: datetime) -> DeviceKpi:
    installed = select(Device).where(Device.installed_at.is_not(None), Device.vehicle_id.is_not(None))
    vehicles = session.scalar(select(func.count()).select_from(Vehicle)) or 0
    with_device = session.scalar(select(func.count(func.distinct(Vehicle.id))).join(
        Device, Device.vehicle_id == Vehicle.id).where(Device.installed_at.is_not(None))) or 0
    devices_installed = session.scalar(select(func.count()).select_from(installed.subquery())) or 0
    heard = session.scalar(select(func.count()).select_from(
        installed.where(Device.last_heartbeat_at >= since).subquery())) or 0
    return DeviceKpi(vehicles=vehicles, vehicles_with_device=with_device, devices_installed=devices_installed,
                     devices_heard=heard, since=since)
