"""Regulator feed benchmark: positions for a fleet at a 10 s cadence queued (numbered, sealed) without falling
behind, CPU per message; then the sender draining a backlog, and what back-filling a day after a 2-hour outage
takes at the rates measured.

    .venv/bin/python -m bench.regulator [--vehicles 100000] [--rounds 2] [--drain 200000] [--backend postgres]

Writes its section of docs/benchmarks.md. The bodies are random bytes of a PositionVehicle message's size
(about 90 bytes) until the envelope (tripguard.regulator.envelope) is merged; packing is a concatenation.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.report import machine_line, write_section
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.migrations import upgrade
from tripguard.core.settings import Settings
from tripguard.regulator import contract, service
from tripguard.regulator.feed import Sender
from tripguard.regulator.transports import RecordingTransport
from tripguard.vault.keys import build_vault

CADENCE = 10  # seconds between two positions of a vehicle
BODY_BYTES = 90  # a PositionVehicle with CompanyId, plate, region, time, lon/lat, speed, direction, status words
CHUNK = 5000  # uploads queued per transaction
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def database(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'regulator.db'}"
    admin_url = os.environ.get("TRIPGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = os.environ.get("TRIPGUARD_TEST_DB_TAG", "") + "bench_regulator"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def positions(vehicles: int, at: datetime) -> list[contract.Upload]:
    return [contract.Upload("positionVehicle", f"V{v}:{at:%Y%m%d%H%M%S}", at, os.urandom(BODY_BYTES))
            for v in range(vehicles)]


def concatenated(uploads: Sequence[contract.Upload]) -> bytes:
    return b"".join(u.body for u in uploads)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--drain", type=int, default=200_000, help="uploads the sender drains (acknowledged)")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = database(args.backend, Path(folder))
        upgrade(url)
        settings = Settings(env="test", database_url=url, key_dir=Path(folder) / "keys")
        vault, factory = build_vault(settings), make_sessionmaker(make_engine(url))
        rounds = []
        for r in range(args.rounds):
            uploads = positions(args.vehicles, T0 + timedelta(seconds=CADENCE * r))
            wall, cpu = time.perf_counter(), time.process_time()
            for start in range(0, len(uploads), CHUNK):
                with unit_of_work(factory) as session:
                    service.enqueue(session, vault=vault, uploads=uploads[start:start + CHUNK])
            rounds.append((time.perf_counter() - wall, time.process_time() - cpu))
        sender = Sender(factory, vault, RecordingTransport(), concatenated, batch=500)
        wall = time.perf_counter()
        sent = 0
        while sent < args.drain:
            result = sender.round()
            if result.acknowledged == 0:
                break
            sent += result.acknowledged
        drain_seconds = time.perf_counter() - wall
    per_round = args.vehicles
    queue_rate = per_round / (sum(w for w, _ in rounds) / len(rounds))
    cpu_us = sum(c for _, c in rounds) / len(rounds) / per_round * 1e6
    send_rate = sent / drain_seconds
    produced_per_second = args.vehicles / CADENCE
    outage_backlog = produced_per_second * 2 * 3600
    day = produced_per_second * 86_400
    # After the outage the sender drains the backlog while new positions keep arriving.
    catch_up = outage_backlog / (send_rate - produced_per_second) if send_rate > produced_per_second else float("inf")
    lines = [
        "## Regulator feed (`bench/regulator.py`)",
        "",
        (f"Command: `.venv/bin/python -m bench.regulator --vehicles {args.vehicles} --rounds {args.rounds} "
         f"--drain {args.drain} --backend {args.backend}`. {machine_line()} The database on the same cores. "
         f"Bodies: random bytes of a PositionVehicle's size ({BODY_BYTES} B) and packing by concatenation, as the "
         "envelope (`tripguard.regulator.envelope`) was not merged yet; queueing seals each body (AES-256-GCM), "
         f"numbers it under the type's lock and inserts {CHUNK:,} per transaction; the sender uses the recording "
         "transport (no network)."),
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| positions produced at a {CADENCE} s cadence | {produced_per_second:,.0f} /s |",
    ]
    for n, (w, c) in enumerate(rounds, 1):
        lines.append(f"| round {n}: {per_round:,} positions queued in | {w:.1f} s (CPU {c:.1f} s) |")
    lines += [
        f"| queued per second (mean) | {queue_rate:,.0f} |",
        f"| keeps up with the cadence | {'yes' if queue_rate >= produced_per_second else 'no'} |",
        f"| CPU per message (this process) | {cpu_us:.0f} µs |",
        f"| sender: acknowledged per second | {send_rate:,.0f} ({sent:,} in {drain_seconds:.1f} s) |",
        f"| backlog after a 2-hour outage | {outage_backlog:,.0f} |",
        f"| catching up after it, while positions keep coming | {catch_up / 3600:.1f} h |",
        (f"| back-filling one whole day again ({day:,.0f} positions) at the queueing rate "
        f"| {day / queue_rate / 3600:.1f} h |"),
    ]
    write_section(f"regulator-{args.backend}", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
