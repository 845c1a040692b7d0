"""The platform acts on the domains' data through what each domain registers (`tripguard.wiring`): every
start registers it all, the registered rules and checks are the ones that run, and an empty registry
refuses instead of running without the domains."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tripguard import wiring
from tripguard.audit.actor import SYSTEM
from tripguard.core.blockers import Blocker
from tripguard.core.clock import utcnow
from tripguard.core.errors import AccessSuspended, AgreementUnsigned, NotClearedToWork
from tripguard.core.settings import Settings
from tripguard.privacy import access, retention, service
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.telematics.models import CheckIn, Trip
from tripguard.vault import backup

STAFF = Principal.for_roles("staff", "stf_WIRING", frozenset({Role.SAFETY_AGENT}), name="Test")
DRIVER = Principal.for_roles("subject", "drv_WIRING", frozenset({Role.DRIVER}), name="Test")


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(wiring, "wire", lambda: calls.append(1))
    return calls


@pytest.mark.no_database
def test_every_command_but_the_file_readers_starts_wired(monkeypatch: pytest.MonkeyPatch) -> None:
    from tripguard.cli import app

    calls = _counting(monkeypatch)
    for command in (["retention", "--help"], ["worker", "--help"], ["backup", "--help"], ["scheduler", "--help"]):
        assert CliRunner().invoke(app, command).exit_code == 0
    assert len(calls) == 4
    assert CliRunner().invoke(app, ["monitor", "--help"]).exit_code == 0  # replays a file: nothing to register
    assert len(calls) == 4


def test_the_app_starts_wired(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    from tripguard import app as app_module

    calls: list[int] = []
    monkeypatch.setattr(app_module, "wire", lambda: calls.append(1))
    app_module.create_app(settings)
    assert calls == [1]


def test_retention_runs_the_rules_the_domains_registered(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                          app: FastAPI) -> None:
    rules = {rule.name: rule for rule in retention.rules(app.state.settings)}
    assert list(rules) == ["delivery_contacts", "delivery_orders", "ride_subjects", "trips", "case_positions",
                           "recordings", "ingest_keys", "complaints", "sent_messages"]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    events = trip_with_deviation("T1")
    events.append({"type": "trip_ended", "trip_id": "T1", "ts": "2026-03-01T08:03:00Z"})
    post(client, ndjson(events))
    later = utcnow() + timedelta(days=731)
    assert rules["trips"].run(db, app.state.vault, later, False) == (1, 0)  # telematics' rule deletes its rows
    assert db.scalars(select(Trip)).all() == []


def test_retention_refuses_without_the_domains(monkeypatch: pytest.MonkeyPatch, db: Session, app: FastAPI) -> None:
    monkeypatch.setattr(retention, "_busy_sources", {})
    ride_subjects = {rule.name: rule for rule in retention.rules(app.state.settings)}["ride_subjects"]
    with pytest.raises(RuntimeError, match="no domain registered"):  # it would erase people mid-order
        ride_subjects.run(db, app.state.vault, utcnow(), False)


def test_the_access_gate_refuses_when_a_registered_clearance_says_no(monkeypatch: pytest.MonkeyPatch,
                                                                     db: Session) -> None:
    asked: list[tuple[str, str]] = []

    def unsigned(session: Session, person_id: str, audience: str) -> str | None:
        asked.append((person_id, audience))
        return "agreement.unsigned"

    monkeypatch.setattr(access._checks, "person", unsigned)
    with pytest.raises(AgreementUnsigned):
        access.check_clearance(db, principal=STAFF)
    assert asked == [("stf_WIRING", "staff")]
    monkeypatch.setattr(access._checks, "person", lambda session, person_id, audience: "access.suspended")
    with pytest.raises(AccessSuspended):
        access.check_clearance(db, principal=STAFF)
    monkeypatch.setattr(access._checks, "person", lambda session, person_id, audience: None)
    access.check_clearance(db, principal=STAFF)  # cleared

    monkeypatch.setattr(access._checks, "worker", lambda session, worker_id: (Blocker("training.missing"),))
    with pytest.raises(NotClearedToWork) as refused:
        access.check_clearance(db, principal=DRIVER)
    assert refused.value.extensions["blockers"][0]["code"] == "training.missing"


def test_the_access_gate_refuses_with_no_check_registered(monkeypatch: pytest.MonkeyPatch, db: Session) -> None:
    monkeypatch.setattr(access._checks, "person", None)
    monkeypatch.setattr(access._checks, "worker", None)
    with pytest.raises(RuntimeError, match="no clearance check"):
        access.check_clearance(db, principal=STAFF)
    with pytest.raises(RuntimeError, match="no dispatch-gate check"):
        access.check_clearance(db, principal=DRIVER)


def test_an_erasure_refuses_without_the_domains(monkeypatch: pytest.MonkeyPatch, db: Session) -> None:
    monkeypatch.setattr(service._domains, "erasure", {})
    with pytest.raises(RuntimeError, match="no domain is registered"):
        service.erase_footprint(db, actor=SYSTEM, subject_id="psg_WIRING", at=utcnow(), record_id=None,
                                reason="test")


def test_a_lower_domain_refuses_without_what_the_higher_one_registers(monkeypatch: pytest.MonkeyPatch,
                                                                       db: Session) -> None:
    """What telematics, screening and workforce ask of the domains above them (`tripguard.wiring`):
    nothing registered, they refuse rather than go on without it."""
    from tripguard.screening import gate, workers
    from tripguard.telematics import cases
    from tripguard.workforce import supervision

    monkeypatch.setattr(cases, "_safety", cases._Safety())
    with pytest.raises(RuntimeError, match="call for help"):  # a "help" answered with no case opened
        cases.open_for_help(db, check_in=CheckIn(id="chk_WIRING", trip_id="T_WIRING", role="passenger",
                                                  status="help"), ack_seconds=60)
    with pytest.raises(RuntimeError, match="evidence"):
        cases.note_evidence(db, principal=STAFF, incident_id="inc_WIRING", trip_id="T_WIRING")
    monkeypatch.setattr(workers, "_safety", workers._Safety())
    with pytest.raises(RuntimeError, match="identity mismatch"):  # a worker blocked with no case to work
        workers._open_mismatch_case(db, worker_id="drv_WIRING", check_id="idc_WIRING", score=0.1, ack_seconds=60)
    monkeypatch.setattr(gate, "BLOCKERS", [])
    with pytest.raises(RuntimeError, match="dispatch gate"):  # cleared without training, agreement, discipline
        gate.refusal(db, worker_id="drv_WIRING")
    monkeypatch.setattr(supervision, "_feedback", supervision._Feedback())
    with pytest.raises(RuntimeError, match="complaints"):  # every support agent's read flagged
        supervision._holds_complaint(db, staff_id="stf_WIRING", order_id="O_WIRING")


def test_every_start_registers_what_the_domains_ask_of_each_other() -> None:
    """In a fresh interpreter: `wire()` fills every registry between two business domains."""
    program = ("from tripguard.wiring import wire; wire(); wire(); "  # twice: nothing registered twice
               "from tripguard.screening import gate, workers; from tripguard.telematics import cases; "
               "from tripguard.workforce import supervision; from tripguard.safety import recordings; "
               "print(len(gate.BLOCKERS), workers._safety.open_case is not None, "
               "None not in (cases._safety.open_for_help, cases._safety.note_evidence), "
               "supervision._feedback.holds_complaint is not None, 'complaint' in recordings.LONGER_HOLDS)")
    printed = subprocess.run([sys.executable, "-c", program],
                             capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert printed == ["1", "True", "True", "True", "True"]


@pytest.mark.no_database
def test_a_backup_refuses_a_table_it_has_no_model_for() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(text("CREATE TABLE audit_entries (id INTEGER)"))
        backup.check_metadata_complete(connection)  # every table known
        connection.execute(text("CREATE TABLE forgotten_domain_rows (id INTEGER)"))
        with pytest.raises(backup.BackupError, match="forgotten_domain_rows"):
            backup.check_metadata_complete(connection)


def test_every_start_registers_the_regulators_exporters() -> None:
    """In a fresh interpreter (no test has imported an exporter): what `wire()` registers, nothing else."""
    program = ("from tripguard.wiring import wire; wire(); "
               "from tripguard.regulator.contract import EXPORTERS; print(' '.join(sorted(EXPORTERS)))")
    listed = subprocess.run([sys.executable, "-c", program],
                            capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert {"baseInfoDriver", "baseInfoDriverEducate", "baseInfoVehicle", "positionVehicle", "positionDriver",
            "ratedPassengerComplaint", "ratedDriverPunish", "operateDepart", "operateArrive",
            "orderMatch"} <= set(listed)
