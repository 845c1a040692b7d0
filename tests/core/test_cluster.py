"""`tripguard cluster up`: one command starts the scaled-out set, which takes events end to end; a
process that dies is restarted while the others keep answering; Ctrl-C stops every process of it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import BACKEND
from tests.processes import TRIPGUARD, drop_stream, free_port, scale_env, trips_ended, wait_healthy
from tripguard.app import create_app
from tripguard.audit.actor import CLI_ACTOR
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.security import service as security
from tripguard.security.permissions import Permission

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="a cluster shares one PostgreSQL")


def test_cluster_up_runs_the_set_restarts_a_killed_worker_while_the_api_answers_and_stops_it(
        cli_site: Settings, tmp_path: Path) -> None:
    create_app(cli_site)  # the keys
    engine = make_engine(cli_site.database_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        _, api_key = security.create_api_key(session, settings=cli_site, actor=CLI_ACTOR, name="cluster test",
                                             scopes={Permission.TELEMATICS_INGEST})
    bus_name = f"c{uuid.uuid4().hex[:8]}"
    ports = (free_port(), free_port())
    log = tmp_path / "cluster.log"
    cluster = subprocess.Popen([TRIPGUARD, "cluster", "up", "--ports", f"{ports[0]},{ports[1]}",
                                "--run-dir", str(tmp_path / "run")],
                               env=scale_env(cli_site, bus_name, 4), stdout=log.open("w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        for port in ports:
            wait_healthy(f"http://127.0.0.1:{port}", cluster, log, 120)  # six processes start at once on 2 cores
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
        assert trips_ended(make_sessionmaker(engine), 1, 30) == 1, log.read_text()[-3000:]  # a worker stored it
        assert set(_spawned(log)) == {"api1", "api2", "monitor1", "monitor2", "outbox", "scheduler"}, \
            log.read_text()[-3000:]
        assert "exited:" not in log.read_text()  # none died

        # A monitor worker killed: supervisord starts it again, the others are left alone, the API answers.
        deadline = time.monotonic() + 30
        while "success: monitor1 entered RUNNING" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        before = _spawned(log)
        os.kill(before["monitor1"][-1], signal.SIGKILL)
        answered, deadline = 0, time.monotonic() + 30
        while len(_spawned(log)["monitor1"]) < 2:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            for port in ports:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
                answered += 1
            time.sleep(0.1)
        after = _spawned(log)
        for name in ("api1", "api2", "monitor2", "outbox", "scheduler"):
            assert after[name] == before[name], log.read_text()[-3000:]
        assert cluster.poll() is None and answered > 0
        assert "exited: monitor1 (terminated by SIGKILL" in log.read_text()
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


def _spawned(log: Path) -> dict[str, list[int]]:
    """supervisord's "spawned: 'NAME' with pid N" lines: every pid each process has had, in order."""
    pids: dict[str, list[int]] = {}
    for name, pid in re.findall(r"spawned: '(\w+)' with pid (\d+)", log.read_text()):
        pids.setdefault(name, []).append(int(pid))
    return pids
