"""`tripguard cluster up`: one command starts the scaled-out set, which takes events end to end, and
Ctrl-C stops every process of it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import BACKEND
from tests.telematics.test_monitor_worker_faults import TRIPGUARD, _env, _free_port, drop_stream
from tripguard.app import create_app
from tripguard.audit.actor import CLI_ACTOR
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.security import service as security
from tripguard.security.permissions import Permission
from tripguard.telematics.models import Trip

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="a cluster shares one PostgreSQL")


def test_cluster_up_runs_the_scaled_out_set_and_stops_it(cli_site: Settings, tmp_path: Path) -> None:
    create_app(cli_site)  # the keys
    engine = make_engine(cli_site.database_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        _, api_key = security.create_api_key(session, cli_site, actor=CLI_ACTOR, name="cluster test",
                                             scopes={Permission.TELEMATICS_INGEST})
    bus_name = f"c{uuid.uuid4().hex[:8]}"
    ports = (_free_port(), _free_port())
    log = tmp_path / "cluster.log"
    cluster = subprocess.Popen([TRIPGUARD, "cluster", "up", "--ports", f"{ports[0]},{ports[1]}"],
                               env=_env(cli_site, bus_name), stdout=log.open("w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        for port in ports:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and cluster.poll() is None, log.read_text()[-3000:]
                time.sleep(0.2)
        events = [{"type": "trip_started", "trip_id": "CL1", "ts": "2026-03-01T08:00:00Z", "vehicle_id": "V1"},
                  {"type": "ping", "trip_id": "CL1", "ts": "2026-03-01T08:00:03Z", "lon": 8.6, "lat": 41.1},
                  {"type": "trip_ended", "trip_id": "CL1", "ts": "2026-03-01T08:00:06Z"}]
        deadline = time.monotonic() + 30
        while True:  # 503 until the replica's NATS link is up
            answer = httpx.post(f"http://127.0.0.1:{ports[1]}/api/v1/telematics/events",
                                content="\n".join(json.dumps(e) for e in events),
                                headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/x-ndjson"})
            if answer.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 200 and answer.json()["accepted"] == 3, answer.text
        deadline = time.monotonic() + 30
        while True:  # a monitor worker stored the trip
            with unit_of_work(make_sessionmaker(engine)) as session:
                ended = session.scalar(select(func.count()).select_from(Trip).where(Trip.status == "ended"))
            if ended == 1:
                break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        started = {line.split("|")[1].split()[0] for line in log.read_text().splitlines()
                   if "|" in line and "started (pid=" in line}
        assert started == {"api1", "api2", "monitor1", "monitor2", "outbox", "scheduler"}, log.read_text()[-3000:]
        assert "stopped" not in log.read_text()  # none died
    finally:
        cluster.send_signal(signal.SIGINT)
        try:
            cluster.wait(30)
        finally:
            if cluster.poll() is None:
                cluster.kill()
        engine.dispose()
        drop_stream(bus_name)
    leftover = subprocess.run(["pgrep", "-s", str(cluster.pid)], check=False, capture_output=True,
                              text=True).stdout.split()
    assert leftover == [], log.read_text()[-2000:]  # no process of the set outlives it
