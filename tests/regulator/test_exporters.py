"""Each exporter builds its messages from a seeded driver, vehicle, trip, complaint and punishment: every field
against its source, the round trip through the envelope, the audit with purpose legal_obligation that breach
investigations count, and optional fields only when opted in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit.actor import SYSTEM
from tripguard.audit.models import AuditEntry
from tripguard.feedback.models import Complaint
from tripguard.privacy import access, breaches
from tripguard.regulator import codes, envelope, settings, sources
from tripguard.regulator.contract import Upload
from tripguard.screening.models import Applicant
from tripguard.telematics.ingest.events import Ping, TripEnded, TripStarted
from tripguard.telematics.models import Device, Vehicle
from tripguard.telematics.store import trips
from tripguard.vault.crypto import Suite
from tripguard.vault.keys import vault_in
from tripguard.vault.keysource import KeyringFile
from tripguard.vault.service import Vault
from tripguard.workforce.models import Attempt, Course, Sanction, Violation

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 08:00 in Beijing
ID_NUMBER = "11010519491231002X"  # the catalogue's fictional resident ID: born 1949-12-31, a woman
CONFIG = settings.ExportSettings(company_id="3301TESTCO", region_code=110100, fare_type="F1", position_seconds=10)


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return vault_in(tmp_path, KeyringFile(tmp_path / "keyring.json", "correct horse battery"), Suite.AES)


@pytest.fixture
def seeded(db: Session, vault: Vault) -> Iterator[Session]:
    driver = Applicant(id="D1", role="driver", city=None, status="active", locale="zh", notice_version="v1",
                       consented_at=T0, created_at=T0, updated_at=T0)
    db.add(driver)
    for column, value in (("name", "王小明"), ("id_number", ID_NUMBER), ("phone", "13800001234")):
        access.write_field(vault, db, driver, column, value)
    db.add(Vehicle(id="V1", plate="京A12345", colour="白", model="比亚迪 秦", created_at=T0, updated_at=T0))
    db.add(Device(id="DEV1", vehicle_id="V1", installed_at=T0))
    db.add(Course(id="safety-1", kind="safety", audience="driver", title_zh="安全驾驶", title_en="Safe driving",
                  modules=[], quiz=[], pass_mark=80, required=True, refresher_months=None, version=1,
                  created_at=T0, updated_at=T0))
    db.add(Attempt(id="att1", worker_id="D1", course_id="safety-1", course_version=1, score=90, passed=True,
                   at=T0 + timedelta(minutes=5)))
    violation = Violation(id="vio1", offender_type="worker", offender_id="D1", kind="safety", evidence={},
                          status="decided", created_by="staff:hr", created_at=T0)
    db.add(violation)
    access.write_field(vault, db, violation, "summary", "超速")
    db.add(Sanction(id="san1", violation_id="vio1", offender_id="D1", kind="warning", starts_at=T0,
                    status="active", decided_by="staff:hr", decided_at=T0 + timedelta(minutes=30)))
    start = T0.timestamp()
    events = [TripStarted("T1", start, "V1", "D1", (116.3, 39.9), (116.4, 39.95), None, passenger_id="P1"),
              *(Ping("T1", start + s, 116.3 + s * 1e-4, 39.9 + s * 1e-4, speed_mps=10.0, heading=45.0)
                for s in range(0, 60, 4)),
              TripEnded("T1", start + 60, 116.3 + 56e-4, 39.9 + 56e-4)]
    trips.record(db, vault=vault, events=events)
    complaint = Complaint(id="cmp1", subject_id="P1", subject_role="passenger", trip_id="T1", order_id=None,
                          category="safety", rating=1, status="answered", created_at=T0 + timedelta(minutes=20))
    db.add(complaint)
    access.write_field(vault, db, complaint, "text", "司机开得太快")
    access.write_field(vault, db, complaint, "answer", "已处理")
    db.flush()
    yield db


def _export(session: Session, vault: Vault, kind: str, config: settings.ExportSettings = CONFIG) -> list[Message]:
    with settings.using(config):
        uploads = list(sources.all_exporters()[kind](session, vault, T0 - timedelta(hours=1), T0 + timedelta(hours=1)))
    assert uploads, kind
    return [message for _, message in _round_trip(kind, uploads)]


def _round_trip(kind: str, uploads: list[Upload]) -> list[tuple[str, Message]]:
    complete = [u for u in uploads if not envelope.missing(kind, u.body)]
    if not complete:  # a base-info type TripGuard cannot complete: parse it as the receiver would, partially
        return [(kind, envelope.parse(kind, u.body, partial=True)) for u in uploads]
    pairs = envelope.unpack(envelope.pack(complete, company_id="3301TESTCO", source="tripguard"))
    assert [k for k, _ in pairs] == [kind] * len(complete)
    return pairs


def test_position_vehicle_and_driver(seeded: Session, vault: Vault) -> None:
    vehicle = _export(seeded, vault, "positionVehicle")
    # pings every 4 s for a minute, one kept per 10 s period: 0, 12, 20, 32, 40, 52 s
    assert [m.PositionTime - int(T0.timestamp()) for m in vehicle] == [0, 12, 20, 32, 40, 52]  # type: ignore[attr-defined]
    first = vehicle[1]
    assert (first.CompanyId, first.VehicleNo, first.VehicleRegionCode, first.OrderId) == (  # type: ignore[attr-defined]
        "3301TESTCO", "京A12345", 110100, "T1")
    assert (first.Longitude, first.Latitude, first.Encrypt) == (round((116.3 + 12e-4) * 1e6),  # type: ignore[attr-defined]
                                                                  round((39.9 + 12e-4) * 1e6), codes.Encrypt.WGS84)
    for absent in ("Speed", "Direction", "BizStatus", "WarnStatus", "VehStatus", "Elevation", "Mileage"):
        assert not first.HasField(absent), absent
    driver = _export(seeded, vault, "positionDriver")
    assert {(m.LicenseId, m.DriverRegionCode, m.VehicleNo) for m in driver} == {  # type: ignore[attr-defined]
        (ID_NUMBER, 110100, "京A12345")}
    opted = settings.ExportSettings(**{**CONFIG.model_dump(), "opt_in": frozenset({"positionVehicle.Speed"})})
    assert _export(seeded, vault, "positionVehicle", opted)[0].Speed == 36  # type: ignore[attr-defined]


def test_operate_depart_arrive_and_order_match(seeded: Session, vault: Vault) -> None:
    (depart,) = _export(seeded, vault, "operateDepart")
    assert (depart.OrderId, depart.LicenseId, depart.FareType, depart.VehicleNo, depart.DepTime,  # type: ignore[attr-defined]
            depart.DepLongitude, depart.DepLatitude) == ("T1", ID_NUMBER, "F1", "京A12345", 20260301080000,  # type: ignore[attr-defined]
                                                         116300000, 39900000)
    (arrive,) = _export(seeded, vault, "operateArrive")
    assert (arrive.DestTime, arrive.DriveTime, arrive.DestLongitude) == (20260301080100, 60, 116305600)  # type: ignore[attr-defined]
    assert 0.7 < arrive.DriveMile < 0.9  # type: ignore[attr-defined]  # 56 s at ~15 m/s along the diagonal
    (match,) = _export(seeded, vault, "orderMatch")
    assert (match.Address, match.LicenseId, match.DriverPhone, match.VehicleNo, match.DistributeTime,  # type: ignore[attr-defined]
            match.Encrypt) == (110100, ID_NUMBER, "13800001234", "京A12345", 20260301080000, 2)  # type: ignore[attr-defined]
    assert not match.HasField("Longitude")


def test_complaint_and_punishment(seeded: Session, vault: Vault) -> None:
    (complaint,) = _export(seeded, vault, "ratedPassengerComplaint")
    assert (complaint.OrderId, complaint.ComplaintTime, complaint.Detail) == ("T1", 20260301082000, "司机开得太快")  # type: ignore[attr-defined]
    assert not complaint.HasField("Result")
    (punish,) = _export(seeded, vault, "ratedDriverPunish")
    assert (punish.LicenseId, punish.PunishTime, punish.PunishResult) == (ID_NUMBER, 20260301083000, "warning")  # type: ignore[attr-defined]
    assert not punish.HasField("PunishReason")
    opted = settings.ExportSettings(**{**CONFIG.model_dump(), "opt_in": frozenset({"ratedDriverPunish.PunishReason"})})
    assert _export(seeded, vault, "ratedDriverPunish", opted)[0].PunishReason == "超速"  # type: ignore[attr-defined]


def test_base_info_driver_vehicle_and_training(seeded: Session, vault: Vault) -> None:
    (driver,) = _export(seeded, vault, "baseInfoDriver")
    assert (driver.LicenseId, driver.DriverPhone, driver.DriverGender, driver.DriverBirthday,  # type: ignore[attr-defined]
            driver.RegisterDate, driver.CommercialType, driver.State, driver.Flag, driver.UpdateTime) == (  # type: ignore[attr-defined]
        ID_NUMBER, "13800001234", "2", 19491231, 20260301, 1, 0, 1, 20260301080000)
    assert not driver.HasField("DriverName") and not driver.HasField("EmergencyContact")
    body = driver.SerializePartialToString()
    assert "CertificateNo" in envelope.missing("baseInfoDriver", body)  # not held: waits for its source
    opted = settings.ExportSettings(**{**CONFIG.model_dump(), "opt_in": frozenset({"baseInfoDriver.DriverName"})})
    assert _export(seeded, vault, "baseInfoDriver", opted)[0].DriverName == "王小明"  # type: ignore[attr-defined]
    (vehicle,) = _export(seeded, vault, "baseInfoVehicle")
    assert (vehicle.VehicleNo, vehicle.VehicleColor, vehicle.Model, vehicle.FareType, vehicle.GPSInstallDate) == (  # type: ignore[attr-defined]
        "京A12345", "白", "比亚迪 秦", "F1", 20260301)
    (course,) = _export(seeded, vault, "baseInfoDriverEducate")
    assert (course.LicenseId, course.CourseName, course.CourseDate) == (ID_NUMBER, "安全驾驶", 20260301)  # type: ignore[attr-defined]


def test_an_export_is_audited_for_the_legal_obligation_and_counted_by_breach_investigations(
        seeded: Session, vault: Vault) -> None:
    _export(seeded, vault, "orderMatch")
    entries = list(seeded.scalars(select(AuditEntry).where(AuditEntry.action == "regulator.export")))
    assert {(e.actor_type, e.actor_id, e.purpose) for e in entries} == {("system", "regulator", "legal_obligation")}
    assert {(e.target_type, e.target_id) for e in entries} == {("screening_applicants", "D1"), ("trip", "T1")}
    breach = breaches.open_breach(seeded, actor=SYSTEM, title="t", serious=False, occurred_from=T0 - timedelta(days=1),
                                  occurred_to=datetime.now(UTC) + timedelta(days=1), categories=[], cause="c",
                                  harm="h", measures="m", advice="a", contact="c")
    findings = breaches.investigate(seeded, actor=SYSTEM, breach_id=breach.id, reader_id="regulator",
                                    since=None, until=None)
    assert {"D1", "P1"} <= set(findings.subjects)
