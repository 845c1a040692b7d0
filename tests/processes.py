"""Helpers for tests that run `tripguard` commands as processes (scale-out, shutdown): their settings, a
free port, waiting for them, and leaving the machine's NATS as it was."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import nats
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import SUBJECT_SECRET
from tripguard.core.db import unit_of_work
from tripguard.core.messaging import stream_name
from tripguard.core.settings import Settings
from tripguard.telematics.models import Trip

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """A `tripguard` process pointed at the test's database and keys, with the test's secrets."""
    return {**os.environ, "TRIPGUARD_DATABASE_URL": settings.database_url, "TRIPGUARD_KEY_DIR": str(settings.key_dir),
            "TRIPGUARD_ENV": "test", "TRIPGUARD_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
            "TRIPGUARD_SUBJECT_TOKEN_SECRET": SUBJECT_SECRET,
            # The test processes' drivers are not screened, as in the suite's own app (tests/conftest.py): the
            # trip-start gate's own tests turn it on.
            "TRIPGUARD_TRIP_START_GATE": "true" if settings.trip_start_gate else "false", **extra}


def scale_env(settings: Settings, bus_name: str, shards: int) -> dict[str, str]:
    """Scaled out on the machine's NATS, checkpoints every 0.3 s, webhooks queued (nobody sends them)."""
    return process_env(settings, TRIPGUARD_WEBHOOK_SECRET="webhook-secret-0123456789",
                       TRIPGUARD_WEBHOOK_URL="http://127.0.0.1:9/hooks", TRIPGUARD_BUS_URL="nats://127.0.0.1:4222",
                       TRIPGUARD_BUS_NAME=bus_name, TRIPGUARD_BUS_SHARDS=str(shards),
                       TRIPGUARD_MONITOR_CHECKPOINT_SECONDS="0.3")


def start_monitor_worker(env: dict[str, str], shards: str, standby: str, log: Path, metrics_port: int = 0,
                         grace: float = 1.0) -> subprocess.Popen[bytes]:
    """A monitor worker; `grace` is how long it leaves its standby shards to their own worker at start."""
    return subprocess.Popen([TRIPGUARD, "worker", "monitor", "--shards", shards, "--standby", standby,
                             "--batch", "4", "--poll", "0.2", "--grace", str(grace),
                             "--metrics-port", str(metrics_port)],
                            env=env, stderr=log.open("w"), stdout=subprocess.DEVNULL)


def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    """Until `base` answers /healthz; fails with the log's tail if the process dies or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)


def trips_ended(factory: sessionmaker[Session], count: int, seconds: float) -> int:
    """Wait until `count` trips have ended (a shard applies in order: all before them is stored too);
    returns how many had when it stopped waiting."""
    deadline = time.monotonic() + seconds
    while True:
        with unit_of_work(factory) as session:
            ended = int(session.scalar(select(func.count()).select_from(Trip).where(Trip.status == "ended")) or 0)
        if ended == count or time.monotonic() > deadline:
            return ended
        time.sleep(0.2)


def drop_stream(bus_name: str) -> None:
    """Leave the machine's NATS as it was."""
    async def drop() -> None:
        client = await nats.connect("nats://127.0.0.1:4222")
        try:
            await client.jetstream().delete_stream(stream_name(bus_name))
        except Exception as exc:  # noqa: BLE001 - never made
            print("no stream to drop:", exc)
        await client.close()

    asyncio.run(drop())
