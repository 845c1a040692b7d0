"""The dispatch gate's read cache (`core.readcache`): kept per worker and per vehicle, answered again at each
call's time, dropped at once by every change to a blocker source (through its service), in this process and in
another, and bypassed while its feed of changes is down."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from bench.latency import bench_site
from tests.builders import TEST_ACTOR
from tests.conftest import BACKEND, fresh_database, make_settings, sign_agreement
from tests.processes import TRIPGUARD, free_port, wait_healthy
from tests.screening.conftest import GATE_VEHICLE, blockers
from tests.workforce.conftest import course
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.readcache import CachedReader, ReadCache
from tripguard.core.readfeed import PgListener
from tripguard.screening import gate as gate_module
from tripguard.screening import service as screening
from tripguard.screening.models import Applicant
from tripguard.security import service as security
from tripguard.security.permissions import Permission, Role
from tripguard.security.principal import Principal
from tripguard.telematics.fleet import registry
from tripguard.telematics.ingest.events import DeviceHeartbeat
from tripguard.workforce import agreements, discipline, training

# -- the cache alone ---------------------------------------------------------------------------------------


class CountingReader:
    def __init__(self) -> None:
        self.reads = 0

    async def first(self, sql: str, **params: object) -> tuple[object, ...] | None:
        self.reads += 1
        return (sql, params.get("n"))

    async def all(self, sql: str, **params: object) -> list[tuple[object, ...]]:
        self.reads += 1
        return [(sql,)]

    async def close(self) -> None:
        return None


def ask(cache: ReadCache, base: CountingReader, key: str, n: int = 1) -> None:
    reader = CachedReader(cache, base, ("worker", key))
    gate_module.run_now(reader.first("SELECT", n=n))
    reader.keep()


def test_kept_reads_are_served_only_for_the_same_sql_and_parameters() -> None:
    cache, base = ReadCache(10, cross_process=False), CountingReader()
    ask(cache, base, "a")
    ask(cache, base, "a")
    assert base.reads == 1
    ask(cache, base, "a", n=2)  # other parameters: read, and kept beside the first
    ask(cache, base, "a", n=2)
    ask(cache, base, "a")
    assert base.reads == 2


def test_least_recently_asked_goes_first() -> None:
    cache, base = ReadCache(2, cross_process=False), CountingReader()
    for key in ("a", "b", "a", "c"):  # "b" is the least recently asked when "c" comes
        ask(cache, base, key)
    assert base.reads == 3
    ask(cache, base, "a")
    ask(cache, base, "c")
    assert base.reads == 3
    ask(cache, base, "b")
    assert base.reads == 4


def test_invalidation_drops_the_key_the_scope_or_everything() -> None:
    cache, base = ReadCache(10, cross_process=False), CountingReader()
    for key in ("a", "b", "c"):
        ask(cache, base, key)
    cache.invalidate([("worker", "a")])
    ask(cache, base, "a")
    ask(cache, base, "b")
    assert base.reads == 4
    cache.invalidate([("worker", "*")])
    ask(cache, base, "b")
    assert base.reads == 5
    cache.invalidate([("*", "*")])
    ask(cache, base, "c")
    assert base.reads == 6


def test_a_read_that_raced_an_invalidation_is_not_kept() -> None:
    cache, base = ReadCache(10, cross_process=False), CountingReader()
    reader = CachedReader(cache, base, ("worker", "a"))
    gate_module.run_now(reader.first("SELECT"))
    cache.invalidate([("worker", "zzz")])  # any change while it read: what it read may predate it
    reader.keep()
    ask(cache, base, "a")
    assert base.reads == 2


def test_a_cache_whose_feed_is_down_is_bypassed_and_emptied_on_reconnection() -> None:
    cache, base = ReadCache(10, cross_process=True), CountingReader()
    ask(cache, base, "a")
    ask(cache, base, "a")
    assert base.reads == 2 and len(cache) == 0  # not connected yet: nothing kept
    cache.connected(True)
    ask(cache, base, "a")
    ask(cache, base, "a")
    assert base.reads == 3
    cache.connected(False)
    ask(cache, base, "a")
    assert base.reads == 4
    cache.connected(True)
    assert len(cache) == 0


# -- each blocker source, changed through its service, in this process --------------------------------------

def add_worker(session: Session, worker_id: str, role: str = "driver") -> None:
    now = utcnow()
    session.add(Applicant(id=worker_id, role=role, status="active", locale="zh_CN", notice_version="scr-1",
                          consented_at=now, created_at=now, updated_at=now, cleared_at=now,
                          rescreen_due_at=now + timedelta(days=300)))


@pytest.fixture
def cached_gate(gate, db: Session, screening_app: FastAPI):  # type: ignore[no-untyped-def]
    add_worker(db, "drv_c")
    db.commit()
    sign_agreement(screening_app.state.sessionmaker, Principal.for_roles("subject", "drv_c", frozenset({Role.DRIVER})))
    assert gate("drv_c")["eligible"] is True
    assert gate("drv_c")["eligible"] is True
    assert len(screening_app.state.read_cache.cache) == 2  # the worker's reads and the vehicle's
    return gate


def test_screening_status(cached_gate, db: Session, screening_app: FastAPI) -> None:  # type: ignore[no-untyped-def]
    screening.move(db, applicant=db.get(Applicant, "drv_c"), status="suspended", actor=TEST_ACTOR,
                   rules=screening.rules_from(screening_app.state.settings))
    db.commit()
    assert blockers(cached_gate("drv_c")) == ["worker.suspended"]


def test_a_required_course(cached_gate, db: Session) -> None:  # type: ignore[no-untyped-def]
    training.put_course(db, actor=TEST_ACTOR, course_id="cache-basics", content=course())
    db.commit()
    assert blockers(cached_gate("drv_c")) == ["training.missing"]


def test_a_new_agreement(cached_gate, db: Session) -> None:  # type: ignore[no-untyped-def]
    agreements.publish(db, actor=TEST_ACTOR, audience="worker", version="cache-2", title_zh="保密", title_en="Secrecy",
                       body_zh="新文本", body_en="new text")
    db.commit()
    assert blockers(cached_gate("drv_c")) == ["agreement.unsigned"]


def test_a_suspension(cached_gate, db: Session, screening_app: FastAPI) -> None:  # type: ignore[no-untyped-def]
    violation = discipline.raise_violation(db, vault=screening_app.state.vault, actor=TEST_ACTOR,
                                           offender_type="worker", offender_id="drv_c", kind="conduct",
                                           summary="辱骂顾客", evidence={"complaints": ["cmp_1"]})
    discipline.decide(db, actor=TEST_ACTOR, violation_id=violation.id, kind="suspension", days=7)
    db.commit()
    assert blockers(cached_gate("drv_c")) == ["discipline.suspension"]


def test_the_vehicles_device(cached_gate, db: Session) -> None:  # type: ignore[no-untyped-def]
    registry.record_heartbeats(db, beats=[DeviceHeartbeat("dev_gate", GATE_VEHICLE, time.time(), True, True,
                                                          tampered=True)])
    db.commit()
    assert blockers(cached_gate("drv_c")) == ["device.tampered"]


def test_time_alone_changes_the_answer(cached_gate, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    later = utcnow() + timedelta(hours=2)  # the device last heard an hour ahead: quiet for an hour by then
    monkeypatch.setattr(gate_module, "utcnow", lambda: later)
    assert blockers(cached_gate("drv_c")) == ["device.offline"]


# -- across two processes ------------------------------------------------------------------------------------

SUSPEND = """
from tripguard.audit.actor import CLI_ACTOR
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import get_settings
from tripguard.screening import service
from tripguard.screening.models import Applicant
from tripguard.wiring import wire

wire()
settings = get_settings()
with unit_of_work(make_sessionmaker(make_engine(settings.database_url))) as session:
    service.move(session, applicant=session.get(Applicant, "drv_x"), status="suspended", actor=CLI_ACTOR,
                 rules=service.rules_from(settings))
"""


def test_a_worker_suspended_by_another_process_is_refused_within_a_second(tmp_path: Path) -> None:
    url = fresh_database("tg_gate_cache", tmp_path)
    env, settings = bench_site(tmp_path, url)  # as `tripguard serve` will see it (its secrets generated)
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        add_worker(session, "drv_x")
        _, key = security.create_api_key(session, settings=settings, actor=TEST_ACTOR, name="dispatch",
                                         scopes={Permission.ELIGIBILITY_READ})
    sign_agreement(make_sessionmaker(engine), Principal.for_roles("subject", "drv_x", frozenset({Role.DRIVER})))
    engine.dispose()
    port, log = free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([TRIPGUARD, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=log.open("w"))
    try:
        wait_healthy(base, server, log, 90)  # a bound, not a target: imports are slow on a busy machine

        def codes() -> list[str]:
            answer = httpx.get(f"{base}/api/v1/workers/drv_x/eligibility", timeout=5,
                               headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200, answer.text
            return [b["code"] for b in answer.json()["blockers"]]

        for _ in range(3):  # kept now
            assert codes() == ["vehicle.unknown"]
        subprocess.run([sys.executable, "-c", SUSPEND], env=env, check=True, timeout=60)
        deadline = time.monotonic() + 1.0
        while (answer := codes()) != ["worker.suspended", "vehicle.unknown"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert answer == ["worker.suspended", "vehicle.unknown"]
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.skipif(BACKEND != "postgres", reason="the LISTEN connection is PostgreSQL's")
def test_the_listener_down_reads_the_database_and_recovers(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tripguard.app import create_app

    url = fresh_database("tg_gate_listen", tmp_path)
    settings = make_settings(url, tmp_path / "keys")
    app = create_app(settings)
    with unit_of_work(app.state.sessionmaker) as session:
        add_worker(session, "drv_l")
        _, key = security.create_api_key(session, settings=settings, actor=TEST_ACTOR, name="dispatch",
                                         scopes={Permission.ELIGIBILITY_READ})
    sign_agreement(app.state.sessionmaker, Principal.for_roles("subject", "drv_l", frozenset({Role.DRIVER})))
    feed = app.state.read_cache
    listener: PgListener = feed.listener
    conninfo = listener.conninfo

    def wait_for(condition) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 5
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert condition()

    with TestClient(app) as client:
        def codes() -> list[str]:
            answer = client.get("/api/v1/workers/drv_l/eligibility", headers={"Authorization": f"Bearer {key}"})
            return [b["code"] for b in answer.json()["blockers"]]

        wait_for(lambda: feed.cache.live)
        assert codes() == codes() == ["vehicle.unknown"]
        assert len(feed.cache) == 1
        killed = listener.backend_pid
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (killed,))
            wait_for(lambda: listener.backend_pid != killed)
            # A change no notification tells of (as one sent while nobody listened): read, not served stale.
            admin.execute("UPDATE screening_applicants SET status = 'suspended' WHERE id = 'drv_l'")
        assert codes() == ["worker.suspended", "vehicle.unknown"]
        wait_for(lambda: feed.cache.live and listener.backend_pid is not None)
        assert codes() == codes() == ["worker.suspended", "vehicle.unknown"]
        assert len(feed.cache) == 1  # kept again
