"""Exporters from TripGuard's own data: the upload types it holds (issue #31), each registered by type.

Each reads other domains only through their service modules, opens every personal field through the vault's
gate for the legal obligation (`regulator.gate`, audited per record), and sends what the type requires;
an optional field only when the operator opts in (TRIPGUARD_REGULATOR_OPT_IN, `settings.ExportSettings`),
except `Encrypt`, which says in what datum the required coordinates are.

A required field TripGuard does not hold is left unset (the body is serialized partially):
`envelope.missing` names it and `envelope.pack` refuses to send such an upload, so it waits for its source
(docs/requirements.md lists them per type). Dynamic types (positions, departures, arrivals, matches,
complaints, punishments) are complete from TripGuard's data and the deployment's settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from google.protobuf.message import Message
from sqlalchemy.orm import Session

from tripguard.feedback import service as feedback
from tripguard.regulator import codes, settings
from tripguard.regulator.contract import Upload, exporter
from tripguard.regulator.gate import ExportReads, Unreadable
from tripguard.regulator.proto import otipc_pb2 as pb
from tripguard.safety import service as safety
from tripguard.screening import service as screening
from tripguard.telematics import service as telematics
from tripguard.vault.service import Vault
from tripguard.workforce import discipline, training


def upload(kind: str, key: str, at: datetime, message: Message) -> Upload:
    return Upload(kind=kind, key=f"{kind}:{key}", occurred_at=at, body=message.SerializePartialToString())


def from_id_number(number: str) -> tuple[str | None, int | None]:
    """(DriverGender, DriverBirthday) as a resident ID of 18 characters states them (GB 11643: birth date in
    characters 7-14, an odd 17th digit for a man), in GB/T 2261.1 codes: 1 man, 2 woman."""
    if len(number) != 18 or not number[:17].isdigit():
        return None, None
    return ("1" if int(number[16]) % 2 else "2"), int(number[6:14])


# -- drivers ----------------------------------------------------------------------------------------------
@exporter("baseInfoDriver")
def base_info_driver(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterator[Upload]:
    """From screening: who the driver is, as the gate cleared them. Not held (left unset): DriverNation,
    DriverContactAddress, licence dates, TaxiDriver, the 网约车 certificate and its dates, the contract."""
    config = settings.current()
    company_id, region = config.required()
    reads = ExportReads(session, vault, "baseInfoDriver")
    for driver in screening.drivers_changed(session, start=start, end=end):
        try:
            license_id, phone = reads.open(driver, "id_number"), reads.open(driver, "phone")
            if not license_id:
                continue
            message = pb.BaseInfoDriver(
                CompanyId=company_id, Address=region, LicenseId=license_id, RegisterDate=codes.date(driver.created_at),
                CommercialType=config.commercial_type, UpdateTime=codes.timestamp(driver.updated_at),
                State=codes.State.VALID if driver.status == "active" else codes.State.INVALID,
                Flag=codes.Flag.ADD if driver.created_at == driver.updated_at else codes.Flag.UPDATE)
            if phone:
                message.DriverPhone = phone
            gender, birthday = from_id_number(license_id)
            if gender is not None and birthday is not None:
                message.DriverGender, message.DriverBirthday = gender, birthday
            if config.opted("baseInfoDriver", "DriverName") and (name := reads.open(driver, "name")):
                message.DriverName = name
            _emergency_contact(reads, config, driver.id, message)
        except Unreadable:
            continue
        finally:
            reads.close()
        yield upload("baseInfoDriver", f"{driver.id}:{message.UpdateTime}", driver.updated_at, message)


def _emergency_contact(reads: ExportReads, config: settings.ExportSettings, driver_id: str,
                       message: pb.BaseInfoDriver) -> None:
    """EmergencyContact and EmergencyContactPhone (optional): the driver's first verified contact, when the
    operator opts in. EmergencyContactAddress: TripGuard keeps no contact's address."""
    name_in, phone_in = (config.opted("baseInfoDriver", f) for f in ("EmergencyContact", "EmergencyContactPhone"))
    if not (name_in or phone_in):
        return
    contact = safety.first_contact(reads.session, subject_id=driver_id)
    if contact is None:
        return
    if name_in and (name := reads.open(contact, "name")):
        message.EmergencyContact = name
    if phone_in and (phone := reads.open(contact, "phone")):
        message.EmergencyContactPhone = phone


def license_id_of(reads: ExportReads, driver_id: str | None) -> str | None:
    """The driver's LicenseId (their resident ID number, which is their driving licence's number)."""
    driver = screening.find(reads.session, applicant_id=driver_id)
    return None if driver is None else reads.open(driver, "id_number")


@exporter("baseInfoDriverEducate")
def base_info_driver_educate(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterator[Upload]:
    """From training: each course a driver passed. Not held: StartTime, StopTime, Duration (TripGuard keeps
    when an attempt was handed in, not when it began)."""
    company_id, region = settings.current().required()
    reads = ExportReads(session, vault, "baseInfoDriverEducate")
    for attempt, course in training.passed_in(session, start=start, end=end):
        if screening.role_of(session, worker_id=attempt.worker_id) != "driver":
            continue
        try:
            license_id = license_id_of(reads, attempt.worker_id)
        except Unreadable:
            continue
        finally:
            reads.touch("workforce_attempts", attempt.id)
            reads.close()
        if not license_id:
            continue
        message = pb.BaseInfoDriverEducate(
            CompanyId=company_id, Address=region, LicenseId=license_id, CourseName=course.title_zh,
            CourseDate=codes.date(attempt.at), Flag=codes.Flag.ADD, UpdateTime=codes.timestamp(attempt.at))
        yield upload("baseInfoDriverEducate", attempt.id, attempt.at, message)


@exporter("ratedDriverPunish")
def rated_driver_punish(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterator[Upload]:
    """From discipline: each sanction on a driver, its kind as the result. PunishReason (optional, the
    violation's summary, free text) only when opted in."""
    config = settings.current()
    company_id, _ = config.required()
    reads = ExportReads(session, vault, "ratedDriverPunish")
    for sanction, violation in discipline.sanctions_decided(session, start=start, end=end):
        if screening.role_of(session, worker_id=violation.offender_id) != "driver":
            continue
        try:
            license_id = license_id_of(reads, violation.offender_id)
            if not license_id:
                continue
            message = pb.RatedDriverPunish(CompanyId=company_id, LicenseId=license_id,
                                           PunishTime=codes.timestamp(sanction.decided_at), PunishResult=sanction.kind)
            reads.touch("workforce_sanctions", sanction.id)
            if config.opted("ratedDriverPunish", "PunishReason") and (reason := reads.open(violation, "summary")):
                message.PunishReason = reason
        except Unreadable:
            continue
        finally:
            reads.close()
        yield upload("ratedDriverPunish", sanction.id, sanction.decided_at, message)


# -- vehicles ---------------------------------------------------------------------------------------------
@exporter("baseInfoVehicle")
def base_info_vehicle(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterator[Upload]:
    """From the registry: plate, colour, model, the fare code and the device's installation date. Not held:
    plate colour, seats, brand, type, owner, engine, VIN, fuel, the 运输证 and inspection records, GPS brand
    and model, registration date."""
    config = settings.current()
    company_id, region = config.required()
    reads = ExportReads(session, vault, "baseInfoVehicle")
    for vehicle in telematics.vehicles_changed(session, start=start, end=end):
        message = pb.BaseInfoVehicle(
            CompanyId=company_id, Address=region, VehicleNo=vehicle.plate, VehicleColor=vehicle.colour,
            Model=vehicle.model, CommercialType=config.commercial_type, State=codes.State.VALID,
            Flag=codes.Flag.ADD if vehicle.created_at == vehicle.updated_at else codes.Flag.UPDATE,
            UpdateTime=codes.timestamp(vehicle.updated_at))
        if config.fare_type:
            message.FareType = config.fare_type
        device = telematics.device_of(session, vehicle_id=vehicle.id)
        if device is not None and device.installed_at is not None:
            message.GPSInstallDate = codes.date(device.installed_at)
        reads.touch("telematics_vehicles", vehicle.id)
        reads.close()
        yield upload("baseInfoVehicle", f"{vehicle.id}:{message.UpdateTime}", vehicle.updated_at, message)


# -- feedback ---------------------------------------------------------------------------------------------
@exporter("ratedPassengerComplaint")
def rated_passenger_complaint(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterator[Upload]:
    """From the feedback desk: each complaint about a trip (the trip's id is the order's), its text as the
    detail. Result (optional, the desk's answer) only when opted in."""
    config = settings.current()
    company_id, _ = config.required()
    reads = ExportReads(session, vault, "ratedPassengerComplaint")
    for complaint in feedback.about_trips(session, start=start, end=end):
        try:
            detail = reads.open(complaint, "text")
            if not detail or complaint.trip_id is None:
                continue
            message = pb.RatedPassengerComplaint(CompanyId=company_id, OrderId=complaint.trip_id,
                                                 ComplaintTime=codes.timestamp(complaint.created_at), Detail=detail)
            if config.opted("ratedPassengerComplaint", "Result") and (answer := reads.open(complaint, "answer")):
                message.Result = answer
        except Unreadable:
            continue
        finally:
            reads.close()
        yield upload("ratedPassengerComplaint", complaint.id, complaint.created_at, message)


def utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)
