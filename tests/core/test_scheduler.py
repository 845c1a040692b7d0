"""The scheduler: each job on its own timer and thread; one leader at a time on PostgreSQL (a lease); a
standby takes over from a leader that died or stopped, and a stopped leader that wakes is fenced."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from tests.conftest import BACKEND, SUBJECT_SECRET
from tests.processes import process_env
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.leader import Fenced
from tripguard.core.models import Lease
from tripguard.core.scheduler import Job, run_jobs
from tripguard.core.settings import Settings
from tripguard.safety.models import Incident, IncidentEvent

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))
postgres_only = pytest.mark.skipif(BACKEND != "postgres", reason="leadership is contested only on PostgreSQL")


class _Fixed:
    """A leader that leads or not as the test says; a fenced job makes it lose the lead for good."""

    def __init__(self, leading: bool) -> None:
        self.leading = leading
        self.released = False
        self.lost = False

    def lead(self) -> bool:
        return self.leading and not self.lost

    def holds(self) -> bool:
        return self.lead()

    def lose(self) -> None:
        self.lost = True

    def release(self) -> None:
        self.released = True


def _running(jobs: list[Job], leader: _Fixed, **options: float) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    worker = threading.Thread(target=run_jobs, args=(jobs, leader), kwargs={"poll": 0.05, "renew_every": 0.05,
                                                                           "stop": stop, **options})
    worker.start()
    return worker, stop


def _stopped(worker: threading.Thread, stop: threading.Event) -> None:
    stop.set()
    worker.join(15)
    assert not worker.is_alive()


def _counting(every: float) -> tuple[Job, list[float]]:
    runs: list[float] = []
    return Job(every, lambda: runs.append(time.monotonic()), f"count.{every}"), runs


def test_each_job_runs_on_its_own_interval_while_leading() -> None:
    (fast, fast_runs), (slow, slow_runs) = _counting(0.05), _counting(10.0)
    leading = _Fixed(True)
    worker, stop = _running([fast, slow], leading)
    time.sleep(0.6)
    _stopped(worker, stop)
    assert leading.released
    assert len(slow_runs) == 1 and 5 <= len(fast_runs) <= 14
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(fast_runs))


def test_a_slow_job_never_delays_escalation() -> None:
    """Retention, digests or the outbox may take seconds; escalation (every 0.2 s here) keeps its beat."""
    escalate, runs = _counting(0.2)
    slow = Job(0.1, lambda: time.sleep(3), "slow.retention")
    worker, stop = _running([slow, escalate], _Fixed(True))
    time.sleep(4.5)
    _stopped(worker, stop)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert len(runs) >= 15 and max(gaps) - escalate.every < 2.0, gaps  # never more than 2 s late (0.05 s seen)


def test_a_job_never_overlaps_itself() -> None:
    running, most = [0], [0]

    def slow() -> None:
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.3)
        running[0] -= 1

    worker, stop = _running([Job(0.01, slow, "slow")], _Fixed(True))
    time.sleep(1.0)
    _stopped(worker, stop)
    assert most == [1]


def test_no_job_starts_once_the_lease_may_have_run_out_by_this_processs_clock() -> None:
    """Woken from a stop, the job threads may see their due time before the main loop has asked the database."""

    class RanOut(_Fixed):
        def holds(self) -> bool:
            return False

    job, runs = _counting(0.01)
    worker, stop = _running([job], RanOut(True), renew_every=30)
    time.sleep(0.3)
    _stopped(worker, stop)
    assert runs == []


def test_a_fenced_job_makes_the_scheduler_stand_by_at_once(caplog: pytest.LogCaptureFixture) -> None:
    fenced_runs: list[float] = []
    (other, other_runs) = _counting(0.05)

    def fenced() -> None:
        fenced_runs.append(time.monotonic())
        raise Fenced("lease 'scheduler' token 1 is no longer the current one")

    leader = _Fixed(True)
    logger = logging.getLogger("tripguard")  # once configured by an app, it does not propagate to the root
    logger.addHandler(caplog.handler)
    try:
        worker, stop = _running([Job(0.05, fenced, "fenced"), other], leader, renew_every=30)
        time.sleep(0.5)
        before = len(other_runs)
        time.sleep(0.3)
        _stopped(worker, stop)
    finally:
        logger.removeHandler(caplog.handler)
    assert leader.lost and len(fenced_runs) == 1  # the lead lost at the first refusal, not at the next renewal
    assert len(other_runs) == before <= 2  # and no other job started since
    assert "lost the lease: a job's transaction was fenced; standing by" in caplog.text


def test_the_embedded_servers_jobs_do_not_queue_for_the_request_thread_pool(cli_site: Settings) -> None:
    """Requests may hold every thread of the shared pool; escalation still runs, on a thread of its own."""
    app = create_app(cli_site.model_copy(update={"incident_interval_seconds": 0.1}))
    factory = app.state.sessionmaker
    blocker = threading.Event()

    async def hold_the_request_pool() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        await run_in_threadpool(blocker.wait)

    with TestClient(app) as client:
        try:
            client.portal.start_task_soon(hold_the_request_pool)
            time.sleep(0.3)  # the pool is held, the jobs' first runs are over
            with unit_of_work(factory) as session:
                session.add(_overdue_incident("inc_POOL"))
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not _escalated(factory, "inc_POOL"):
                time.sleep(0.05)
            assert _escalated(factory, "inc_POOL")
        finally:
            blocker.set()


def _overdue_incident(id: str) -> Incident:
    now = datetime.now(UTC)
    return Incident(id=id, source="sos", severity="critical", status="open", silent=False, created_at=now,
                    ack_due_at=now - timedelta(seconds=30))


def _escalated(factory: sessionmaker[Session], id: str) -> int:
    """How many times the case was escalated (its timeline's entries)."""
    with unit_of_work(factory) as session:
        return int(session.scalar(select(func.count()).select_from(IncidentEvent).where(
            IncidentEvent.incident_id == id, IncidentEvent.kind == "escalated")) or 0)


def _started(log: Path) -> bool:
    """The scheduler has said whether it leads or stands by."""
    return '"msg": "leading"' in log.read_text(errors="replace") or '"msg": "standing by"' in log.read_text(
        errors="replace")


def _job_runs(log: Path, job: str | None = "audit.sequence", *, started_after: float | None = None) -> int:
    """How many runs of `job` (None: of any job) the log reports; with `started_after` (a wall-clock time),
    only the runs that started after it (a run that ended just before a SIGSTOP is logged after the SIGCONT)."""
    runs = 0
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") != "job ran" or job not in (None, entry.get("event")):
            continue
        if started_after is not None:
            ended = datetime.strptime(entry["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
            if ended - entry["duration_ms"] / 1000 <= started_after:
                continue
        runs += 1
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
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not all(map(_started, logs)) or max(map(_job_runs, logs)) < 5):
            time.sleep(0.2)
        time.sleep(1.0)  # both are running: a second leader would have run jobs by now
        runs = [_job_runs(log) for log in logs]
        assert all(process.poll() is None for process in processes), [log.read_text()[-500:] for log in logs]
        assert min(runs) == 0 and sorted(runs)[1] >= 5, runs  # one leads, the other stands by
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


def _lease(factory: sessionmaker[Session]) -> tuple[str, int] | None:
    with unit_of_work(factory) as session:
        lease = session.get(Lease, "scheduler")
        return None if lease is None else (lease.holder, lease.token)


def _log_says(log: Path, msg: str) -> bool:
    return f'"msg": "{msg}"' in log.read_text(errors="replace")


def _wait(condition: Callable[[], object], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@postgres_only
def test_a_stopped_leader_is_replaced_within_its_lease_and_fenced_when_it_wakes(cli_site: Settings,
                                                                              tmp_path: Path) -> None:
    lease_seconds = 3.0
    env = process_env(cli_site, TRIPGUARD_LOG_LEVEL="DEBUG", TRIPGUARD_LEADER_LEASE_SECONDS=str(lease_seconds),
                      TRIPGUARD_INCIDENT_INTERVAL_SECONDS="0.2", TRIPGUARD_AUDIT_SEQUENCE_INTERVAL_SECONDS="0.2",
                      TRIPGUARD_AUDIT_HEAD_INTERVAL_SECONDS="0", TRIPGUARD_RETENTION_INTERVAL_SECONDS="0",
                      TRIPGUARD_OUTBOX_INTERVAL_SECONDS="0", TRIPGUARD_CHECK_IN_INTERVAL_SECONDS="0",
                      TRIPGUARD_SCREENING_INTERVAL_SECONDS="0", TRIPGUARD_SUPERVISION_INTERVAL_SECONDS="0",
                      TRIPGUARD_DIGEST_INTERVAL_SECONDS="0", TRIPGUARD_DELIVERY_INTERVAL_SECONDS="0")
    create_app(cli_site)  # the keys exist before two processes start (each would create them)
    engine = make_engine(cli_site.database_url)
    factory = make_sessionmaker(engine)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [subprocess.Popen([TRIPGUARD, "scheduler", "--poll", "0.2"], env=env, stderr=log.open("w"),
                                  stdout=subprocess.DEVNULL) for log in logs]
    try:
        _wait(lambda: all(map(_started, logs)), 120)  # (imports are slow on a busy machine)
        assert all(p.poll() is None for p in processes), [log.read_text()[-500:] for log in logs]
        leader = [_log_says(log, "leading") for log in logs].index(True)
        standby = 1 - leader
        first = _lease(factory)

        processes[leader].send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        with unit_of_work(factory) as session:  # a case nobody acknowledged, while the leader is stopped
            session.add(_overdue_incident("inc_STOPPED"))
        _wait(lambda: _escalated(factory, "inc_STOPPED"), lease_seconds + 10)
        taken_after = time.monotonic() - stopped_at
        assert _escalated(factory, "inc_STOPPED") == 1, logs[standby].read_text()[-2000:]  # the standby took over
        assert taken_after < lease_seconds + 2.5, taken_after  # within the lease (and a poll, on a busy machine)
        second = _lease(factory)
        assert first is not None and second is not None, (first, second)
        assert second[0] != first[0] and second[1] == first[1] + 1, (first, second)  # a new holder, the next token

        woken_at = time.time()
        processes[leader].send_signal(signal.SIGCONT)
        _wait(lambda: _log_says(logs[leader], "lost the lease; standing by")
              or _log_says(logs[leader], "lost the lease: a job's transaction was fenced; standing by"), 10)
        assert 'lost the lease' in logs[leader].read_text(), logs[leader].read_text()[-2000:]
        with unit_of_work(factory) as session:
            session.add(_overdue_incident("inc_AFTER"))
        _wait(lambda: _escalated(factory, "inc_AFTER"), 5)
        time.sleep(1.0)  # a second escalation, if the woken leader made one, would be in by now
        assert _escalated(factory, "inc_STOPPED") == 1 and _escalated(factory, "inc_AFTER") == 1
        assert _lease(factory) == second  # the woken leader did not take it back
        assert _job_runs(logs[leader], None, started_after=woken_at) == 0  # it ran nothing since it woke
        assert _job_runs(logs[standby]) > 0
        assert all(p.poll() is None for p in processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
                process.wait(15)
        engine.dispose()
