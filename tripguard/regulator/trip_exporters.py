"""Exporters from the trip store: positions at the deployment's cadence, departures, arrivals and matches.

A TripGuard trip runs from the operator's `trip_started` to its `trip_ended`; its id is the operator's
order id (OrderId). The operator's events carry no dispatch time, so orderMatch's DistributeTime is the
trip's start: an operator that keeps the dispatch time sends orderMatch through the pass-through instead.
No 808 alarm or status word reaches the trip store (pings carry position, speed, heading and accuracy), so
PositionVehicle's WarnStatus and VehStatus, Elevation and Mileage stay unset.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise

from sqlalchemy.orm import Session

from tripguard.regulator import codes, settings
from tripguard.regulator.contract import Upload, exporter
from tripguard.regulator.exporters import license_id_of, upload, utc
from tripguard.regulator.gate import ExportReads, Unreadable
from tripguard.regulator.proto import otipc_pb2 as pb
from tripguard.screening import service as screening
from tripguard.telematics import service as telematics
from tripguard.telematics.ingest.events import Ping
from tripguard.vault.service import Vault

TRIPS = "trip"  # the audit's target type for a trip: breach investigations resolve it to its passenger and driver


def sampled(pings: list[Ping], start: datetime, end: datetime, seconds: int) -> list[Ping]:
    """The positions in [start, end), at most one per `seconds` (the first of each period, periods aligned on
    the epoch, so consecutive exports sample alike)."""
    first, last = start.timestamp(), end.timestamp()
    kept: list[Ping] = []
    period = None
    for ping in pings:
        if first <= ping.ts < last and (slot := int(ping.ts // seconds)) != period:
            kept.append(ping)
            period = slot
    return kept


def _optional(message: pb.PositionVehicle | pb.PositionDriver, kind: str, ping: Ping,
              config: settings.ExportSettings) -> None:
    if config.opted(kind, "Speed") and (speed := codes.speed_kmh(ping.speed_mps)) is not None:
        message.Speed = speed
    if config.opted(kind, "Direction") and (heading := codes.direction(ping.heading)) is not None:
        message.Direction = heading
    if config.opted(kind, "BizStatus"):
        message.BizStatus = codes.BizStatus.CARRYING  # a trip carries its passenger from start to end


@exporter("positionVehicle")
def position_vehicle(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterator[Upload]:
    yield from _positions(session, vault, start, end, driver=False)


@exporter("positionDriver")
def position_driver(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterator[Upload]:
    yield from _positions(session, vault, start, end, driver=True)


def _positions(session: Session, vault: Vault, start: datetime, end: datetime, *, driver: bool) -> Iterator[Upload]:
    config = settings.current()
    company_id, region = config.required()
    kind = "positionDriver" if driver else "positionVehicle"
    reads = ExportReads(session, vault, kind)
    for trip in telematics.trips_moving(session, start=start, end=end):
        vehicle = telematics.vehicle(session, vehicle_id=trip.vehicle_id)
        if vehicle is None:
            continue
        try:
            license_id = license_id_of(reads, trip.driver_id) if driver else None
        except Unreadable:
            reads.close()
            continue
        if driver and not license_id:
            reads.close()
            continue
        points = sampled(telematics.positions_of(session, vault=vault, trip_id=trip.id), start, end,
                         config.position_seconds)
        if points:
            reads.touch(TRIPS, trip.id, "packed")
        reads.close()
        for ping in points:
            lon, lat, datum = codes.coordinates(ping.lon, ping.lat, config.datum)
            message: pb.PositionVehicle | pb.PositionDriver
            if driver:
                assert license_id is not None
                message = pb.PositionDriver(CompanyId=company_id, LicenseId=license_id, DriverRegionCode=region,
                                            VehicleNo=vehicle.plate, PositionTime=codes.unix_time(utc(ping.ts)),
                                            Longitude=lon, Latitude=lat, Encrypt=datum, OrderId=trip.id)
            else:
                message = pb.PositionVehicle(CompanyId=company_id, VehicleNo=vehicle.plate,
                                             VehicleRegionCode=region, PositionTime=codes.unix_time(utc(ping.ts)),
                                             Longitude=lon, Latitude=lat, Encrypt=datum, OrderId=trip.id)
            _optional(message, kind, ping, config)
            yield upload(kind, f"{trip.id}:{message.PositionTime}", utc(ping.ts), message)


def _ends(session: Session, vault: Vault, trip_id: str) -> tuple[Ping, Ping] | None:
    pings = telematics.positions_of(session, vault=vault, trip_id=trip_id)
    return (pings[0], pings[-1]) if pings else None


def _distance_km(pings: list[Ping]) -> float:
    return sum(telematics.distance_m(a.lon, a.lat, b.lon, b.lat) for a, b in pairwise(pings)) / 1000


@exporter("operateDepart")
def operate_depart(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterator[Upload]:
    """A trip's start: where (its first position) and when, by whom in which vehicle. WaitMile, WaitTime
    (optional): not held."""
    config = settings.current()
    company_id, _ = config.required()
    fare_type = config.fare()
    reads = ExportReads(session, vault, "operateDepart")
    for trip in telematics.trips_started_in(session, start=start, end=end):
        vehicle = telematics.vehicle(session, vehicle_id=trip.vehicle_id)
        ends = _ends(session, vault, trip.id)
        try:
            license_id = license_id_of(reads, trip.driver_id)
        except Unreadable:
            license_id = None
        if vehicle is None or ends is None or not license_id or trip.started_at is None:
            reads.close()
            continue
        reads.touch(TRIPS, trip.id, "packed")
        reads.close()
        lon, lat, datum = codes.coordinates(ends[0].lon, ends[0].lat, config.datum)
        message = pb.OperateDepart(CompanyId=company_id, OrderId=trip.id, LicenseId=license_id, FareType=fare_type,
                                   VehicleNo=vehicle.plate, DepLongitude=lon, DepLatitude=lat, Encrypt=datum,
                                   DepTime=codes.timestamp(trip.started_at))
        yield upload("operateDepart", trip.id, trip.started_at, message)


@exporter("operateArrive")
def operate_arrive(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterator[Upload]:
    """A trip's end: its last position, the time, the distance driven along its positions and the time."""
    config = settings.current()
    company_id, _ = config.required()
    reads = ExportReads(session, vault, "operateArrive")
    for trip in telematics.trips_ended_in(session, start=start, end=end):
        pings = telematics.positions_of(session, vault=vault, trip_id=trip.id)
        if not pings or trip.started_at is None or trip.ended_at is None:
            continue
        reads.touch(TRIPS, trip.id, "packed")
        reads.close()
        lon, lat, datum = codes.coordinates(pings[-1].lon, pings[-1].lat, config.datum)
        message = pb.OperateArrive(
            CompanyId=company_id, OrderId=trip.id, DestLongitude=lon, DestLatitude=lat, Encrypt=datum,
            DestTime=codes.timestamp(trip.ended_at), DriveMile=round(_distance_km(pings), 3),
            DriveTime=max(0, round((trip.ended_at - trip.started_at).total_seconds())))
        yield upload("operateArrive", trip.id, trip.ended_at, message)


@exporter("orderMatch")
def order_match(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterator[Upload]:
    """The order's driver and vehicle, from the trip's start. Longitude, Latitude (optional): opt-in."""
    config = settings.current()
    company_id, region = config.required()
    reads = ExportReads(session, vault, "orderMatch")
    for trip in telematics.trips_started_in(session, start=start, end=end):
        vehicle = telematics.vehicle(session, vehicle_id=trip.vehicle_id)
        driver = screening.find(session, applicant_id=trip.driver_id)
        if vehicle is None or driver is None or trip.started_at is None:
            continue
        try:
            license_id, phone = reads.open(driver, "id_number"), reads.open(driver, "phone")
        except Unreadable:
            reads.close()
            continue
        if not license_id or not phone:
            reads.close()
            continue
        message = pb.OrderMatch(CompanyId=company_id, Address=region, OrderId=trip.id, LicenseId=license_id,
                                DriverPhone=phone, VehicleNo=vehicle.plate, Encrypt=codes.encrypt(config.datum),
                                DistributeTime=codes.timestamp(trip.started_at))
        if config.opted("orderMatch", "Longitude") and (ends := _ends(session, vault, trip.id)) is not None:
            message.Longitude, message.Latitude, _ = codes.coordinates(ends[0].lon, ends[0].lat, config.datum)
            reads.touch(TRIPS, trip.id, "packed")
        reads.touch(TRIPS, trip.id)
        reads.close()
        yield upload("orderMatch", trip.id, trip.started_at, message)
