"""Every KPI's definition on a seeded history of a finished quarter, in which each figure's numerator and
denominator differ: the quarter is measured from its own records (the roster of the quarter, the vehicles
registered by its end), never from today's, and a quarter before anything existed is "no data"."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.feedback.models import Complaint
from tripguard.privacy.models import Breach, DeletionRecord, RetentionRun, SubjectRequest
from tripguard.reporting import kpis, periods, quarterly, render
from tripguard.reporting.models import DeviceDay
from tripguard.safety.models import EmergencyContact, Incident, TripShare
from tripguard.screening.models import Applicant, Event
from tripguard.security.permissions import Role
from tripguard.telematics.models import CheckIn, Device, Trip, TripAlert, Vehicle
from tripguard.vault.keys import key_source
from tripguard.workforce.models import Attempt, Course, Sanction

ZONE = "Asia/Shanghai"
INSTALL_DAY = 80  # the install's first day, in the quarter's days


def last_quarter() -> periods.Period:
    return periods.parse(periods.current_quarter(utcnow(), ZONE), ZONE).previous(ZONE)


class History:
    """Rows written straight into the tables, dated in the quarter (`at(day)`) or around it."""

    def __init__(self, db: Session, period: periods.Period) -> None:
        self.db, self.period = db, period

    def at(self, day: float, hours: float = 10) -> datetime:
        return self.period.start + timedelta(days=day, hours=hours)

    def worker(self, worker_id: str, role: str, timeline: list[tuple[datetime, str, str | None]], *,
               cleared_at: datetime | None = None, cycle_days: int = 365) -> None:
        status = next((kind.removeprefix("status.") for _, kind, _ in reversed(timeline) if kind.startswith("status.")),
                      "screening")
        first = timeline[0][0]
        self.db.add(Applicant(id=worker_id, role=role, status=status, locale="zh_CN", notice_version="v1",
                              consented_at=first, created_at=first, updated_at=first, outcome="clear",
                              cleared_at=cleared_at,
                              rescreen_due_at=cleared_at + timedelta(days=cycle_days) if cleared_at else None))
        for when, kind, outcome in timeline:
            self.db.add(Event(id=new_id("sev"), applicant_id=worker_id, at=when, kind=kind, actor="system:tests",
                              details={"outcome": outcome} if outcome else {}))

    def course(self, course_id: str, audience: str, created_at: datetime) -> None:
        self.db.add(Course(id=course_id, kind="safety", audience=audience, title_zh="课", title_en="Course",
                           modules=[], quiz=[], pass_mark=60, required=True, version=1, created_at=created_at,
                           updated_at=created_at))

    def passed(self, worker_id: str, course_id: str, at: datetime, *, expires_at: datetime | None = None,
               rating: int | None = None, rated_at: datetime | None = None) -> None:
        self.db.add(Attempt(id=new_id("att"), worker_id=worker_id, course_id=course_id, course_version=1, score=100,
                            passed=True, at=at, expires_at=expires_at, rating=rating, rated_at=rated_at))

    def trip(self, trip_id: str, started_at: datetime, passenger: str) -> None:
        self.db.add(Trip(id=trip_id, status="ended", crs="wgs84", points=0, passenger_id=passenger,
                         started_at=started_at, updated_at=started_at))

    def sos(self, trip_id: str, created_at: datetime, ack_s: float, outcome: str | None = None) -> None:
        self.db.add(Incident(id=new_id("inc"), source="sos", severity="high", status="closed", trip_id=trip_id,
                             created_at=created_at, ack_due_at=created_at + timedelta(seconds=60),
                             acknowledged_at=created_at + timedelta(seconds=ack_s), outcome=outcome))

    def complaint(self, created_at: datetime, due_at: datetime, answered_at: datetime | None) -> None:
        self.db.add(Complaint(id=new_id("cmp"), subject_id="P1", subject_role="passenger", category="service",
                              status="answered" if answered_at else "received", created_at=created_at, due_at=due_at,
                              answered_at=answered_at))

    def request(self, due_at: datetime, completed_at: datetime | None) -> None:
        self.db.add(SubjectRequest(id=new_id("req"), idempotency_key=new_id("k"), subject_id="P1", kind="access",
                                   status="completed" if completed_at else "verified",
                                   received_at=due_at - timedelta(days=15), due_at=due_at,
                                   hard_due_at=due_at + timedelta(days=15), completed_at=completed_at))

    def breach(self, discovered_at: datetime, *, serious: bool, reported_after_h: float | None) -> None:
        self.db.add(Breach(id=new_id("brc"), title="t", status="closed", serious=serious, discovered_at=discovered_at,
                           occurred_from=discovered_at, occurred_to=discovered_at, categories=["user.name"],
                           cause="c", harm="h", measures="m", advice="a", contact="dpo", opened_by="staff:x",
                           authority_due_at=discovered_at + timedelta(hours=4) if serious else None,
                           authority_reported_at=discovered_at + timedelta(hours=reported_after_h)
                           if reported_after_h is not None else None))

    def sanction(self, decided_at: datetime, kind: str, status: str = "active") -> None:
        self.db.add(Sanction(id=new_id("san"), violation_id="vio_1", offender_id="W2", kind=kind, starts_at=decided_at,
                             status=status, decided_by="staff:hr", decided_at=decided_at))


def seed(db: Session, period: periods.Period) -> History:
    h = History(db, period)
    start, now = period.start, utcnow()
    # Screening. W1 cleared before the quarter, active all along. W2 cleared in it, then suspended in it. W3
    # active since long before, its re-screening overdue past the grace. W4 joined after the quarter (on
    # today's roster only); W5 left before it; W6 was rejected in it.
    h.worker("W1", "driver", [(start - timedelta(days=10), "decision", "clear"),
                              (start - timedelta(days=10), "status.active", None)],
             cleared_at=start - timedelta(days=10))
    h.worker("W2", "courier", [(h.at(5), "decision", "clear"), (h.at(5), "status.active", None),
                               (h.at(20), "decision", "reject"), (h.at(20, 11), "status.suspended", None)],
             cleared_at=h.at(5))
    h.worker("W3", "driver", [(start - timedelta(days=400), "status.active", None)],
             cleared_at=start - timedelta(days=400))
    h.worker("W4", "driver", [(now - timedelta(hours=1), "status.active", None)], cleared_at=now - timedelta(hours=1))
    h.worker("W5", "courier", [(start - timedelta(days=50), "status.active", None),
                               (start - timedelta(days=5), "status.offboarded", None)],
             cleared_at=start - timedelta(days=50))
    h.worker("W6", "driver", [(h.at(8), "status.rejected", None)])
    # Training. The driver course existed all quarter; the courier course only after W2 left. W1 passed it; W3's
    # pass expired in the quarter. Two ratings in the quarter (5, 2), one before it.
    h.course("drv", "driver", start - timedelta(days=30))
    h.course("cou", "courier", h.at(30))
    h.passed("W1", "drv", start - timedelta(days=5), rating=1, rated_at=start - timedelta(days=5))
    h.passed("W3", "drv", h.at(1), expires_at=h.at(10), rating=5, rated_at=h.at(2))
    h.passed("W4", "drv", now - timedelta(minutes=30), rating=2, rated_at=h.at(3))  # a rating dated in the quarter
    # Devices, no snapshots: V1 (device since before the quarter), V2 registered in it without one, V3 registered
    # and fitted today.
    db.add_all([Vehicle(id="V1", plate="粤B1", colour="white", model="Qin", created_at=start - timedelta(days=20),
                        updated_at=now),
                Vehicle(id="V2", plate="粤B2", colour="white", model="Qin", created_at=h.at(10), updated_at=now),
                Vehicle(id="V3", plate="粤B3", colour="white", model="Qin", created_at=now - timedelta(hours=2),
                        updated_at=now),
                Device(id="D1", vehicle_id="V1", installed_at=start - timedelta(days=10), last_heartbeat_at=now),
                Device(id="D3", vehicle_id="V3", installed_at=now - timedelta(hours=1), last_heartbeat_at=now)])
    # Trips: T1 shared, T2 with a contact verified before it, T3 an SOS, T4 nothing, T5 a check-in answered;
    # T6 today. Alerts: two in the quarter.
    for n, trip_id in enumerate(("T1", "T2", "T3", "T4", "T5"), start=1):
        h.trip(trip_id, h.at(n), f"P{n}")
    h.trip("T6", now - timedelta(hours=1), "P6")
    db.add(TripShare(id=new_id("shr"), trip_id="T1", token_hash=new_id("h"), created_by="subject:P1",
                     created_at=h.at(1, 11)))
    db.add(EmergencyContact(id=new_id("con"), subject_id="P2", slot=1, verified_at=start - timedelta(days=1),
                            created_at=start - timedelta(days=1)))
    db.add(CheckIn(id=new_id("chk"), alert_id="alt_x", trip_id="T5", subject_id="P5", role="passenger", status="ok",
                   sent_at=h.at(5, 11), answer_by=h.at(5, 12), answered_at=h.at(5, 11.5)))
    for kind, day in (("route_deviation", 1), ("long_stop", 2)):
        db.add(TripAlert(id=new_id("alt"), trip_id=f"T{day}", kind=kind, severity="high", ts=h.at(day, 11),
                         evidence={}, received_at=h.at(day, 11)))
    # SOS: three presses acknowledged in 30, 60 and 200 s (T3's and two without a trip).
    h.sos("T3", h.at(3), 30, outcome="genuine")
    h.sos("T9", h.at(6), 60)
    h.sos("T9", h.at(7), 200)
    # Subject requests due in the quarter: one on time, one late, one never answered.
    h.request(h.at(10), h.at(9))
    h.request(h.at(11), h.at(12))
    h.request(h.at(12), None)
    # Deletions: the install began on day 80 (its first audit entry); runs finished on three of its days.
    first = audit.record(db, actor=TEST_ACTOR, action="staff.create", target_type="staff", target_id="first")
    db.flush()
    db.execute(update(AuditEntry).where(AuditEntry.id == first.id).values(ts=h.at(INSTALL_DAY, 9)))
    for day in (80, 82, 85):
        db.add(RetentionRun(id=new_id("ret"), started_at=h.at(day, 2), finished_at=h.at(day, 3), dry_run=False,
                            actor="system:tests", report={}))
    db.add(DeletionRecord(id=new_id("del"), subject_id="P9", categories=["user.name"], reason="retention",
                          actor="system:tests", erased_at=h.at(82, 3)))
    # Breaches: two serious (one reported within 4 h, one after 6 h) and a minor one.
    h.breach(h.at(5), serious=True, reported_after_h=2)
    h.breach(h.at(6), serious=True, reported_after_h=6)
    h.breach(h.at(7), serious=False, reported_after_h=None)
    # Complaints: answered in time, answered late, unanswered past its deadline.
    h.complaint(h.at(1), h.at(3), h.at(2))
    h.complaint(h.at(2), h.at(4), h.at(5))
    h.complaint(h.at(3), h.at(5), None)
    # Sanctions: a warning and a fine; one overturned.
    h.sanction(h.at(2), "warning")
    h.sanction(h.at(3), "fine")
    h.sanction(h.at(4), "fine", status="overturned")
    db.commit()
    return h


def values(results: list[kpis.Result]) -> dict[str, tuple[float | None, float | None, float | None]]:
    return {r.kpi.key: (r.value.value, r.value.numerator, r.value.denominator) for r in results}


def test_every_kpi_of_a_finished_quarter_is_measured_from_its_own_records(db: Session, app: FastAPI) -> None:
    period = last_quarter()
    seed(db, period)
    days = (period.end - period.start) // timedelta(days=1) - INSTALL_DAY
    got = values(kpis.compute(db, period=period, now=utcnow(), ack_seconds=60, timezone=ZONE))
    expected: dict[str, tuple[float | None, float | None, float | None]] = {
        "screening.pass_rate": (0.5, 1, 2),  # W2 passed, W6 rejected
        "screening.coverage": (2 / 3, 2, 3),  # W1, W2 (judged before it left), not W3 (overdue); not W4, W5
        "devices.install_rate": (0.5, 1, 2),  # V1 and V2 at the quarter's end; V3 came later
        "devices.operating_rate": (None, None, None),  # no snapshot: the registry has no heartbeat history
        "safety.use_rate": (0.8, 4, 5),
        "safety.share_rate": (0.2, 1, 5),
        "safety.contact_rate": (0.2, 1, 5),
        "sos.count": (3.0, None, None),
        "sos.ack_p50_s": (60.0, None, None),
        "sos.ack_p90_s": (200.0, None, None),
        "alerts.per_1000_trips": (400.0, 2, 5),
        "training.coverage": (1 / 3, 1, 3),  # W1; W3's pass expired; W2 had no courier course yet
        "training.satisfaction": (3.5, None, 2),
        "privacy.requests_on_time": (1 / 3, 1, 3),
        "privacy.deletions_on_schedule": (3 / days, 3, days),  # from the install's first day, not the quarter's
        "privacy.breaches": (3.0, 1, 2),
        "complaints.answered_in_time": (1 / 3, 1, 3),
        "discipline.sanctions": (2.0, None, None),
    }
    assert set(expected) == set(kpis.BY_KEY)  # every KPI has its definition checked here
    assert got == pytest.approx(expected)
    for key, (_, numerator, denominator) in expected.items():  # a definition test shows each part
        assert numerator is None or denominator is None or numerator != denominator, key


def test_the_quarter_under_way_reads_todays_roster_and_registry(db: Session, app: FastAPI) -> None:
    seed(db, last_quarter())
    period = periods.parse(periods.current_quarter(utcnow(), ZONE), ZONE)
    got = values(kpis.compute(db, period=period, now=utcnow(), ack_seconds=60, timezone=ZONE,
                              keys=["screening.coverage", "devices.install_rate", "training.coverage"]))
    assert got == pytest.approx({
        "screening.coverage": (2 / 3, 2, 3),  # W1, W4; W3 overdue (W2 suspended, W5 gone)
        "devices.install_rate": (2 / 3, 2, 3),
        "training.coverage": (2 / 3, 2, 3),  # W1 and W4 passed the driver course; W3's pass expired
    })


def test_snapshots_of_the_quarter_win_over_the_registry(db: Session, app: FastAPI) -> None:
    period = last_quarter()
    seed(db, period)
    day = period.start.astimezone(ZoneInfo(ZONE)).date()
    db.add_all([DeviceDay(day=day, vehicles=2, with_device=1, installed=1, heard=1, taken_at=period.start),
                DeviceDay(day=day + timedelta(days=1), vehicles=2, with_device=2, installed=2, heard=1,
                          taken_at=period.start)])
    db.commit()
    got = values(kpis.compute(db, period=period, now=utcnow(), ack_seconds=60, timezone=ZONE,
                              keys=["devices.install_rate", "devices.operating_rate"]))
    assert got == pytest.approx({"devices.install_rate": (0.75, 3, 4), "devices.operating_rate": (2 / 3, 2, 3)})


def test_a_quarter_before_anything_existed_is_no_data(client: TestClient, db: Session, app: FastAPI, act_as,  # type: ignore[no-untyped-def]
                                                      tmp_path: Path) -> None:
    """The finding: on a fresh install, a quarter before any data showed today's roster and registry."""
    h = History(db, last_quarter())
    now = utcnow()
    h.worker("W1", "driver", [(now - timedelta(hours=2), "status.active", None)], cleared_at=now - timedelta(hours=2))
    h.worker("W2", "courier", [(now - timedelta(hours=2), "status.active", None)], cleared_at=now - timedelta(hours=2))
    h.course("basics", "worker", now - timedelta(hours=3))
    h.passed("W1", "basics", now - timedelta(hours=1))
    db.add_all([Vehicle(id=f"V{n}", plate="粤B1", colour="white", model="Qin", created_at=now, updated_at=now)
                for n in range(3)] + [Device(id=f"D{n}", vehicle_id=f"V{n}", installed_at=now) for n in range(3)])
    db.commit()
    act_as(Role.SUPERVISOR)
    before = periods.parse(periods.current_quarter(now, ZONE), ZONE).previous(ZONE).previous(ZONE)
    answer = client.get("/api/v1/reports/kpis", params={"period": before.label})
    assert answer.status_code == 200, answer.text
    figures = {k["key"]: k for k in answer.json()["kpis"]}
    for key in ("screening.coverage", "training.coverage", "devices.install_rate", "devices.operating_rate",
                "privacy.deletions_on_schedule"):
        assert figures[key]["value"] is None and figures[key]["no_data"] is True, (key, figures[key])
    current = client.get("/api/v1/reports/kpis", params={"period": periods.current_quarter(now, ZONE)}).json()
    assert {k["key"]: k["value"] for k in current["kpis"]}["screening.coverage"] == 1.0  # today's figures stay today's
    page = client.get("/console/reports", params={"period": before.label}, headers={"accept-language": "en"})
    row = page.text.split('data-kpi="screening.coverage"')[1].split("</tr>")[0]
    assert "no data" in row
    # the quarterly report of that quarter, and the trend drawn in a later one
    settings = app.state.settings
    old = quarterly.build(db, settings=settings, keys=key_source(settings), quarter=before.label, now=utcnow())
    pdf = tmp_path / "old.pdf"
    pdf.write_bytes(render.to_pdf(old, "en", ZONE))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    coverage = next(line for line in text.splitlines() if "Active workers with a current clear screening" in line)
    assert "no data" in coverage, coverage
    later = quarterly.build(db, settings=settings, keys=key_source(settings),
                            quarter=periods.current_quarter(now, ZONE), now=utcnow())
    trend = dict(later.trends["screening.coverage"])
    assert trend[before.label] is None and trend[periods.current_quarter(now, ZONE)] == 1.0
    assert "no data" in render.to_html(later, "en", ZONE).decode().split('data-testid="chart-targets"')[1]


def test_training_coverage_needs_a_course_for_the_workers_audience(db: Session, app: FastAPI) -> None:
    """The finding: drivers counted as covered while no course for drivers existed."""
    h = History(db, last_quarter())
    now = utcnow()
    h.worker("D1", "driver", [(now - timedelta(hours=2), "status.active", None)], cleared_at=now - timedelta(hours=2))
    h.worker("C1", "courier", [(now - timedelta(hours=2), "status.active", None)], cleared_at=now - timedelta(hours=2))
    h.course("couriers", "courier", now - timedelta(hours=3))
    h.passed("C1", "couriers", now - timedelta(hours=1))
    db.commit()
    period = periods.parse(periods.current_quarter(now, ZONE), ZONE)
    got = values(kpis.compute(db, period=period, now=now, ack_seconds=60, timezone=ZONE, keys=["training.coverage"]))
    assert got["training.coverage"] == (0.5, 1, 2)  # the courier; the driver has no course to have passed


def test_a_complaint_not_yet_due_is_not_late(db: Session, app: FastAPI) -> None:
    """The finding: an open complaint whose deadline is still ahead counted as answered late."""
    h = History(db, last_quarter())
    now = utcnow()
    h.complaint(now - timedelta(hours=3), now + timedelta(days=2), None)  # open, due in two days
    h.complaint(now - timedelta(hours=3), now + timedelta(days=2), now - timedelta(hours=1))  # answered in time
    h.complaint(now - timedelta(hours=50), now - timedelta(hours=2), None)  # past due, unanswered: late
    db.commit()
    period = periods.parse(periods.current_quarter(now, ZONE), ZONE)
    results = kpis.compute(db, period=period, now=now, ack_seconds=60, timezone=ZONE,
                           keys=["complaints.answered_in_time"])
    assert values(results)["complaints.answered_in_time"] == (0.5, 1, 2)
    assert results[0].value.detail["pending"] == 1 and results[0].value.detail["received"] == 3
    late = kpis.records(db, period=period, key="complaints.answered_in_time", now=now, ack_seconds=60, timezone=ZONE)
    assert len(late) == 1 and late[0]["answered_at"] is None


def test_deletions_count_no_day_before_the_install(db: Session, app: FastAPI) -> None:
    """The finding: on a fresh install, the days of the quarter before the install counted as missed runs."""
    now = utcnow()
    audit.record(db, actor=TEST_ACTOR, action="staff.create", target_type="staff", target_id="first")
    db.add(RetentionRun(id=new_id("ret"), started_at=now, finished_at=now, dry_run=False, actor="system:tests",
                        report={}))
    db.commit()
    period = periods.parse(periods.current_quarter(now, ZONE), ZONE)
    got = values(kpis.compute(db, period=period, now=utcnow(), ack_seconds=60, timezone=ZONE,
                              keys=["privacy.deletions_on_schedule"]))
    assert got["privacy.deletions_on_schedule"] == (1.0, 1, 1)  # today, the install's only day, had its run


def test_the_roster_uses_the_gates_grace() -> None:
    from tripguard.screening import roster, workers

    assert roster.RESCREEN_GRACE == workers.RESCREEN_GRACE  # coverage and the dispatch gate agree on "current"
