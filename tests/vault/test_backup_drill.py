"""The restore drill an operator runs against the live install (`tripguard backup drill FILE`): it restores into
a scratch database it then drops, counts every table, and records the drill in the LIVE audit log, so that
`tripguard security check`'s backup controls pass on a fresh install after `make run`, one backup and one
drill. (A `backup restore` records itself in the database it restored, never in the live one.)"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, select, text
from typer.testing import CliRunner

from tests.conftest import BACKEND, POSTGRES_ADMIN_URL, fresh_database
from tests.vault.metadata_rows import rows_for
from tripguard.app import background_jobs, create_app, ingest_options
from tripguard.audit.models import AuditEntry
from tripguard.cli import app as cli
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.settings import Settings, get_settings
from tripguard.reporting.models import DeviceDay
from tripguard.reporting.security_check import assess
from tripguard.sim.demo import DemoCity
from tripguard.telematics.models import Trip
from tripguard.vault.keys import key_source

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
BACKUP_CONTROLS = ("backup.recent", "backup.restore_drill")


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "250", **(env or {})})
    return result.exit_code, result.output


def make_run(settings: Settings, tmp_path: Path) -> None:
    """What `make run` leaves in the database: the demo accounts and notice, a lap of the demo city's trips
    (alerts, automatic shares), and one round of every scheduled job (the day's device snapshot among them)."""
    served = settings.model_copy(update={name: 3600 for name in (
        "audit_head_interval_seconds", "audit_sequence_interval_seconds", "retention_interval_seconds",
        "incident_interval_seconds", "check_in_interval_seconds", "supervision_interval_seconds",
        "digest_interval_seconds", "delivery_interval_seconds")})
    app = create_app(served)  # its keyring first: the bootstrap's people are sealed under the same keys
    code, output = run("demo", "bootstrap", "--credentials-file", str(tmp_path / "creds.txt"), "--trips", "6",
                       env={"TRIPGUARD_ENV": "development"})
    assert code == 0, output
    DemoCity(app.state.sessionmaker, app.state.live_monitor, app.state.vault, ingest_options(app),
             speed=100_000, trips=6).run_lap(1)
    for job in background_jobs(app):
        job.run()
    with app.state.sessionmaker() as session:
        assert session.scalar(select(func.count()).select_from(DeviceDay)) == 1
        assert session.scalar(select(func.count()).select_from(Trip)) == 6


def controls(settings: Settings) -> dict[str, bool]:
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        results = {c.key: e.passed
                   for c, e in assess(session, settings=settings, keys=key_source(settings), now=utcnow()).results}
    engine.dispose()
    return {key: results[key] for key in BACKUP_CONTROLS}


def scratch_databases(settings: Settings) -> list[str]:
    if BACKEND == "postgres":
        admin = create_engine(POSTGRES_ADMIN_URL)
        with admin.connect() as connection:
            names = list(connection.execute(text(
                "SELECT datname FROM pg_database WHERE datname LIKE 'tripguard_drill_%'")).scalars())
        admin.dispose()
        return names
    return [p.name for p in Path(settings.database_url.split("///", 1)[1]).parent.glob("tripguard-drill-*")]


def audit_actions(settings: Settings) -> list[str]:
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("backup.%"))
                                       .order_by(AuditEntry.id)))
    engine.dispose()
    return actions


def test_after_make_run_a_backup_and_a_drill_pass_the_backup_controls(cli_site: Settings, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    make_run(cli_site, tmp_path)
    assert controls(cli_site) == {"backup.recent": False, "backup.restore_drill": False}
    file = tmp_path / "site.tgbk"
    code, output = run("backup", "create", str(file))
    assert code == 0, output
    backed_up = int(re.search(r": (\d+) rows", output).group(1))  # type: ignore[union-attr]
    assert controls(cli_site) == {"backup.recent": True, "backup.restore_drill": False}

    # The old way: a restore into another database proves nothing to the live one.
    url = fresh_database(f"tg_dr_{WORKER}", tmp_path / "elsewhere")
    code, output = run("backup", "restore", str(file), env={"TRIPGUARD_DATABASE_URL": url})
    assert code == 0, output
    assert controls(cli_site)["backup.restore_drill"] is False

    before = scratch_databases(cli_site)
    code, output = run("backup", "drill", str(file))
    assert code == 0, output
    assert "restore drill passed" in output and "scratch database dropped" in output
    assert f"passed: {backed_up} rows in" in output
    assert scratch_databases(cli_site) == before  # dropped
    assert audit_actions(cli_site) == ["backup.create", "backup.drill"]
    assert controls(cli_site) == {"backup.recent": True, "backup.restore_drill": True}

    code, output = run("security", "check")
    for key in BACKUP_CONTROLS:  # the table may cut a long name short (`backup.restore…`) on a narrow terminal
        assert re.search(rf"{re.escape(key[:14])}\S*\s.*\bpass\b", output), output


def test_a_drill_that_fails_is_recorded_as_failed_and_does_not_count(cli_site: Settings, tmp_path: Path) -> None:
    file = tmp_path / "site.tgbk"
    code, output = run("backup", "create", str(file))
    assert code == 0, output
    data = bytearray(file.read_bytes())
    data[-20] ^= 0x01
    file.write_bytes(bytes(data))
    before = scratch_databases(cli_site)
    code, output = run("backup", "drill", str(file))
    assert code == 2 and "restore drill failed" in output and "altered" in output, output
    assert scratch_databases(cli_site) == before
    assert audit_actions(cli_site) == ["backup.create", "backup.drill_failed"]
    assert controls(cli_site)["backup.restore_drill"] is False


def test_a_drill_whose_counts_do_not_match_fails(cli_site: Settings, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The drill counts the scratch database itself, after the restore committed: a row that is not the
    backup's (here slipped in behind the restore's back) fails it."""
    from tripguard.vault import drill

    file = tmp_path / "site.tgbk"
    code, output = run("backup", "create", str(file))
    assert code == 0, output
    real = drill.backup.restore_backup

    def restore_then_add_a_row(engine, *args, **kwargs):  # type: ignore[no-untyped-def]
        summary = real(engine, *args, **kwargs)
        with engine.begin() as connection:
            connection.execute(insert(DeviceDay.__table__), rows_for(DeviceDay.__table__, {})[:1])
        return summary

    monkeypatch.setattr(drill.backup, "restore_backup", restore_then_add_a_row)
    code, output = run("backup", "drill", str(file))
    assert code == 2 and "drill failed: table reporting_device_days holds 1 rows" in output, output
    assert audit_actions(cli_site)[-1] == "backup.drill_failed"
