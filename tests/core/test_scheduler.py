"""The scheduler: one leader at a time on PostgreSQL, each job on its own interval, a standby takes over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.conftest import BACKEND, SUBJECT_SECRET
from tripguard.app import Job, create_app
from tripguard.core.leader import Leadership
from tripguard.core.scheduler import run_jobs
from tripguard.core.settings import Settings

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))
postgres_only = pytest.mark.skipif(BACKEND != "postgres", reason="leadership is contested only on PostgreSQL")


def test_sqlite_is_one_process_and_always_leads(engine: Engine) -> None:
    if BACKEND != "sqlite":
        pytest.skip("the SQLite case")
    one, other = Leadership(engine), Leadership(engine)
    assert not one.exclusive and one.lead() and other.lead()


@postgres_only
def test_one_leader_at_a_time_and_a_lost_connection_loses_the_lead(engine: Engine) -> None:
    first, second = Leadership(engine, key=4242), Leadership(engine, key=4242)
    try:
        assert first.lead() and first.lead()  # taken, then kept
        assert not second.lead()
        first.release()
        assert second.lead() and not first.lead()
        pid = second._connection.execute(text("SELECT pg_backend_pid()")).scalar()  # type: ignore[union-attr]
        with engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert not second.lead()  # its connection is gone, and the lock with it
        assert first.lead()
    finally:
        first.release()
        second.release()


class _Fixed:
    def __init__(self, leading: bool) -> None:
        self.leading = leading
        self.released = False

    def lead(self) -> bool:
        return self.leading

    def release(self) -> None:
        self.released = True


def _counting(every: float) -> tuple[Job, list[float]]:
    runs: list[float] = []
    return Job(every, lambda: runs.append(time.monotonic()), f"count.{every}"), runs


def test_each_job_runs_on_its_own_interval_while_leading() -> None:
    (fast, fast_runs), (slow, slow_runs) = _counting(0.05), _counting(10.0)
    leading, stop = _Fixed(True), threading.Event()
    worker = threading.Thread(target=run_jobs, args=([fast, slow], leading), kwargs={"poll": 0.05, "stop": stop})
    worker.start()
    time.sleep(0.6)
    stop.set()
    worker.join(5)
    assert not worker.is_alive() and leading.released
    assert len(slow_runs) == 1 and 5 <= len(fast_runs) <= 14
    assert all(b - a >= 0.045 for a, b in zip(fast_runs, fast_runs[1:], strict=False))


def test_a_standby_runs_nothing() -> None:
    job, runs = _counting(0.01)
    stop = threading.Event()
    worker = threading.Thread(target=run_jobs, args=([job], _Fixed(False)), kwargs={"poll": 0.05, "stop": stop})
    worker.start()
    time.sleep(0.3)
    stop.set()
    worker.join(5)
    assert runs == []


def _started(log: Path) -> bool:
    """The scheduler has said whether it leads or stands by."""
    return '"msg": "leading"' in log.read_text(errors="replace") or '"msg": "standing by"' in log.read_text(
        errors="replace")


def _job_runs(log: Path) -> int:
    runs = 0
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        runs += entry.get("msg") == "job ran" and entry.get("event") == "audit.sequence"
    return runs


@postgres_only
def test_two_scheduler_processes_run_each_job_once_and_a_standby_takes_over(cli_site: Settings,
                                                                             tmp_path: Path) -> None:
    env = {**os.environ, "TRIPGUARD_DATABASE_URL": cli_site.database_url, "TRIPGUARD_KEY_DIR": str(cli_site.key_dir),
           "TRIPGUARD_ENV": "test", "TRIPGUARD_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
           "TRIPGUARD_SUBJECT_TOKEN_SECRET": SUBJECT_SECRET, "TRIPGUARD_LOG_LEVEL": "DEBUG",
           "TRIPGUARD_AUDIT_SEQUENCE_INTERVAL_SECONDS": "0.2", "TRIPGUARD_AUDIT_HEAD_INTERVAL_SECONDS": "0",
           "TRIPGUARD_RETENTION_INTERVAL_SECONDS": "0", "TRIPGUARD_OUTBOX_INTERVAL_SECONDS": "0",
           "TRIPGUARD_INCIDENT_INTERVAL_SECONDS": "0", "TRIPGUARD_CHECK_IN_INTERVAL_SECONDS": "0"}
    create_app(cli_site)  # the keys exist before two processes start (each would create them)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [subprocess.Popen([TRIPGUARD, "scheduler", "--poll", "0.2"], env=env, stderr=log.open("w"),
                                  stdout=subprocess.DEVNULL) for log in logs]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not all(map(_started, logs)) or max(map(_job_runs, logs)) < 5):
            time.sleep(0.2)
        time.sleep(1.0)  # both are running: a second leader would have run jobs by now
        runs = [_job_runs(log) for log in logs]
        assert all(process.poll() is None for process in processes), [log.read_text()[-500:] for log in logs]
        assert sorted(runs)[0] == 0 and sorted(runs)[1] >= 5, runs  # one leads, the other stands by
        leader = runs.index(max(runs))
        standby = 1 - leader
        processes[leader].send_signal(signal.SIGKILL)  # no goodbye: PostgreSQL drops its lock
        processes[leader].wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _job_runs(logs[standby]) < 3:
            time.sleep(0.2)
        assert _job_runs(logs[standby]) >= 3  # the standby took over
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(10)
