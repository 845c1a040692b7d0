"""The dispatch gate under load: `GET /api/v1/workers/{id}/eligibility` as the operator's dispatch asks it.

    .venv/bin/python -m bench.eligibility [--workers 20000] [--seconds 10] [--connections 32]
                                          [--database-url postgresql+psycopg://…] [--read-cache on|off|both]
                                          [--ceiling]

Starts `tripguard serve` (one process; SQLite unless `--database-url`) on a fresh database holding
`--workers` screened workers in every status, a required course the active ones passed, their
signatures of the workers' agreement, a vehicle with a working device per driver, and an integration
API key scoped to the gate. Drivers are asked about with their vehicle, so every blocker source runs. A load
generator in this second process (asyncio, keep-alive connections, raw HTTP/1.1) asks about random
workers for `--seconds` after a warm-up, and times each request from write to the end of its response.
Every request goes the whole way: API key, permission, the database read, the JSON answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import numpy as np

from bench.latency import bench_site, served
from bench.report import machine_line, write_section
from tripguard.audit.actor import CLI_ACTOR
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.screening.models import Applicant
from tripguard.security import service as security
from tripguard.security.permissions import Permission
from tripguard.telematics.models import Device, Vehicle
from tripguard.workforce import clearance
from tripguard.workforce.models import Attempt, Course, Signature

STATUSES = ["active"] * 8 + ["screening", "review", "suspended", "rejected", "offboarded"]


def prepare(directory: Path, workers: int, database_url: str | None) -> tuple[dict[str, str], str]:
    env, settings = bench_site(directory, database_url)
    engine = make_engine(settings.database_url)
    now = utcnow()
    with unit_of_work(make_sessionmaker(engine)) as session:
        for model in (Applicant, Course, Attempt, Signature, Device, Vehicle):
            session.query(model).delete()  # a PostgreSQL database is reused between runs
        _, secret = security.create_api_key(session, settings=settings, actor=CLI_ACTOR, name="dispatch",
                                            scopes={Permission.ELIGIBILITY_READ})
        rows = [{"id": f"wrk_{n}", "role": "driver" if n % 2 else "courier", "status": STATUSES[n % len(STATUSES)],
                 "locale": "zh_CN", "notice_version": "bench", "consented_at": now, "created_at": now,
                 "updated_at": now, "cleared_at": now, "rescreen_due_at": now + timedelta(days=300),
                 "identity_blocked_at": now if n % 97 == 0 else None} for n in range(workers)]
        session.bulk_insert_mappings(Applicant, rows)
        session.add(Course(id="safety-basics", kind="safety", audience="worker", title_zh="安全", title_en="Safety",
                           modules=[], quiz=[], pass_mark=80, required=True, refresher_months=12, version=1,
                           created_at=now, updated_at=now))
        active = [row["id"] for row in rows if row["status"] == "active"]
        session.bulk_insert_mappings(Attempt, [
            {"id": f"att_{w}", "worker_id": w, "course_id": "safety-basics", "course_version": 1, "score": 100,
             "passed": True, "at": now, "expires_at": now + timedelta(days=365)} for w in active])
        sha256 = clearance.built_in("worker").sha256
        session.bulk_insert_mappings(Signature, [
            {"id": f"sig_{w}", "signer_type": "subject", "signer_id": w, "audience": "worker",
             "version": clearance.BUILT_IN_VERSION, "sha256": sha256, "signed_at": now} for w in active])
        drivers = [row["id"] for row in rows if row["role"] == "driver"]
        session.bulk_insert_mappings(Vehicle, [
            {"id": f"veh_{w}", "plate": "B1", "colour": "white", "model": "Qin", "created_at": now,
             "updated_at": now} for w in drivers])
        session.bulk_insert_mappings(Device, [
            {"id": f"dev_{w}", "vehicle_id": f"veh_{w}", "installed_at": now, "camera_ok": True, "storage_ok": True,
             "last_heartbeat_at": now + timedelta(hours=2)} for w in drivers])
    engine.dispose()
    return env, secret


async def _connection(host: str, port: int, key: str, workers: int, until: float, measure_from: float,
                      latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    rng = random.Random()
    try:
        while True:
            started = time.perf_counter()
            if started >= until:
                return
            number = rng.randrange(workers + workers // 20)  # one in 21 unknown
            vehicle = f"?vehicle_id=veh_wrk_{number}" if number % 2 else ""  # drivers name their vehicle
            writer.write(f"GET /api/v1/workers/wrk_{number}/eligibility{vehicle} HTTP/1.1\r\nHost: {host}\r\n"
                         f"Authorization: Bearer {key}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            status = int(head.split(b" ", 2)[1])
            if started >= measure_from:
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


async def _load(base: str, key: str, workers: int, seconds: float, connections: int) -> tuple[list[float], list[int],
                                                                                             float]:
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors: list[int] = []
    warm = 2.0
    start = time.perf_counter()
    measure_from, until = start + warm, start + warm + seconds
    await asyncio.gather(*(_connection(host, int(port), key, workers, until, measure_from, latencies, errors)
                           for _ in range(connections)))
    return latencies, errors, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--port", type=int, default=8771)
    parser.add_argument("--ceiling", action="store_true",
                        help="also measure an empty FastAPI app (bench/ceiling_app.py) the same way")
    parser.add_argument("--read-cache", choices=("on", "off", "both"), default="on",
                        help="the server's read cache (TRIPGUARD_READ_CACHE); both: off, then on, in this run")
    args = parser.parse_args()
    backend = "postgres" if args.database_url else "sqlite"
    section_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env, key = prepare(Path(tmp), args.workers, args.database_url)
        for cache in ("off", "on") if args.read_cache == "both" else (args.read_cache,):
            with served({**env, "TRIPGUARD_READ_CACHE": str(cache == "on").lower()}, args.port) as base:
                _check_the_path(base, key)
                latencies, errors, seconds = asyncio.run(_load(base, key, args.workers, args.seconds,
                                                               args.connections))
            label = backend if args.read_cache == "on" else f"{backend}, read cache {cache}"
            section_rows.append(_row(label, latencies, errors, seconds))
    if args.ceiling:
        uvicorn = [str(Path(sys.executable).with_name("uvicorn")), "bench.ceiling_app:app", "--log-level", "warning"]
        with served(os.environ.copy(), args.port + 1, uvicorn, "/api/v1/workers/x/eligibility") as base:
            latencies, errors, seconds = asyncio.run(_load(base, "-", args.workers, args.seconds, args.connections))
        section_rows.append(_row("ceiling: empty FastAPI app", latencies, errors, seconds))
    previous = [row for row in _previous_rows(backend) if not (args.ceiling and row.startswith("| ceiling"))]
    body = "\n".join([
        "## Dispatch gate (`bench/eligibility.py`)", "",
        (f"Command: `.venv/bin/python -m bench.eligibility --workers {args.workers} --seconds {args.seconds:g} "
        f"--connections {args.connections} --read-cache {args.read_cache} --ceiling` (and `--database-url` for "
        f"PostgreSQL). {machine_line()} "
        "One `tripguard serve` process; the load generator (asyncio, keep-alive) runs beside it on the same two "
        "cores. Every request carries the API key and asks every blocker source (screening, training, the "
        "agreement, discipline, and for a driver the vehicle's device)."), "",
        "| backend | requests/s | p50 | p99 | errors | target |", "| --- | ---: | ---: | ---: | ---: | ---: |",
        *sorted(previous + section_rows)])
    write_section("eligibility", body)


def _check_the_path(base: str, key: str) -> None:
    """An active driver in their vehicle is eligible, and one who never signed is not: the load below
    runs every blocker source to its end, not an early refusal."""
    def ask(path: str) -> dict[str, object]:
        answer = httpx.get(base + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    if ask("/api/v1/workers/wrk_1/eligibility?vehicle_id=veh_wrk_1")["eligible"] is not True:
        raise SystemExit("the active driver in their vehicle is not eligible")
    blockers = ask("/api/v1/workers/wrk_1/eligibility")["blockers"]
    if blockers != [{"code": "vehicle.unknown", "since": None, "ref": None}]:
        raise SystemExit(f"the driver with no vehicle is refused for {blockers}, not only vehicle.unknown")


def _row(label: str, latencies: list[float], errors: list[int], seconds: float) -> str:
    times = np.array(latencies) * 1000
    rate = len(times) / seconds
    p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
    print(f"{label}: {rate:,.0f} requests/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, errors {len(errors)}")
    return f"| {label} | {rate:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {len(errors)} | ≥ 5,000/s, p99 < 10 ms |"


def _previous_rows(backend: str) -> list[str]:
    """Keep the other backend's row when only one is measured."""
    from bench.report import REPORT

    text = REPORT.read_text() if REPORT.exists() else ""
    start, end = "<!-- bench:eligibility -->", "<!-- /bench:eligibility -->"
    if start not in text:
        return []
    section = text.split(start, 1)[1].split(end, 1)[0]
    return [line for line in section.splitlines()
            if line.startswith("| ") and not line.startswith(f"| {backend}") and "requests/s" not in line
            and not line.startswith("| ---")]


if __name__ == "__main__":
    main()
