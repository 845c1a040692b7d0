"""`tripguard regulator status|backfill|reconcile` on a committed database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from tests.regulator.fakes import ticking_exporter
from tripguard.cli import app
from tripguard.core.settings import Settings
from tripguard.regulator import contract

runner = CliRunner(env={"COLUMNS": "80"})  # a plain terminal: a type's name must stay whole in the table


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry holds one test exporter in place of TripGuard's own (which need a configured company)."""
    monkeypatch.setattr(contract, "EXPORTERS", {"positionVehicle": ticking_exporter("positionVehicle",
                                                                                    timedelta(minutes=1))})


def test_backfill_then_status_and_reconcile(cli_site: Settings, exported: None) -> None:
    done = runner.invoke(app, ["regulator", "backfill", "positionVehicle", "--start", "2026-03-02T08:00+08:00",
                               "--end", "2026-03-02T09:00+08:00"])
    assert done.exit_code == 0, done.output
    assert "positionVehicle: 60 queued" in done.output
    again = runner.invoke(app, ["regulator", "backfill", "all", "--start", "2026-03-02T08:00+08:00",
                                "--end", "2026-03-02T09:00+08:00"])
    assert "positionVehicle: 0 queued" in again.output
    status = runner.invoke(app, ["regulator", "status"])
    assert status.exit_code == 0 and "positionVehicle" in status.output and "60" in status.output
    days = runner.invoke(app, ["regulator", "reconcile", "--first", "2026-03-02"])
    assert days.exit_code == 0, days.output
    assert "60" in days.output and "yes" in days.output
    unknown = runner.invoke(app, ["regulator", "backfill", "operatePay", "--start", "2026-03-02T08:00+08:00",
                                  "--end", "2026-03-02T09:00+08:00"])
    assert unknown.exit_code == 2 and "no exporter for operatePay" in unknown.output


def test_send_says_why_it_cannot_run(cli_site: Settings) -> None:
    result = runner.invoke(app, ["regulator", "send", "--once"])
    assert result.exit_code == 2 and "TRIPGUARD_REGULATOR_START" in result.output
