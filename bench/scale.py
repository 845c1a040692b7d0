"""Scale-out under load: sustained HTTP ingest, ping-to-alert and SOS latency, cluster and embedded.

    .venv/bin/python -m bench.scale [--trips 20000] [--seconds 20] [--senders 4] [--mode both]

cluster: the set `tripguard cluster up` starts (2 API replicas with TRIPGUARD_BUS_URL=nats://…,
2 `tripguard worker monitor` processes with 4 shards each, the outbox worker and the scheduler) on
a fresh PostgreSQL database and the local NATS JetStream. embedded: one `tripguard serve` on SQLite,
the README's default. Both run on this machine beside the load generator (same cores).

Phase 1, capacity: `--senders` threads post batches of 1,000 pings (each trip one ping every 3 s of
event time, persistence and detection on) as fast as the servers answer, for `--seconds`. The
sustained rate is the pings the monitor stored (trip store and alerts committed), divided by the time
from the first post until the last was stored.
Phase 2, latency at shares of that rate (`--loads`): the same stream paced, one trip in 50 leaving its route
(each alert timed from the POST of the batch holding the ping it is dated by, to the alert on a safety
agent's live stream, on the other replica), and 20 SOS presses a second (timed to the incident on
that stream).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json
from sqlalchemy import create_engine, func, select, text

from bench.latency import StreamRefused, follow, iso, opened, prepare, sign_in
from bench.report import machine_line, write_section
from bench.sos import SECRET, token
from tripguard.core.cluster import procfile
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.telematics.ingest.arrow_rows import SCHEMA
from tripguard.telematics.ingest.events import parse_ts
from tripguard.telematics.models import Trip, TripAlert

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))
POSTGRES_ADMIN = os.environ.get("TRIPGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BATCH = 1000
PERIOD = 3.0  # seconds of event time between a trip's pings
LON0, STEP = -8.61, 0.0003  # a trip drives east along its route, ~25 m a ping


@dataclass
class Stream:
    """The trips' pings, batch by batch: round r holds every trip's r-th ping."""

    trips: int
    t0: float
    deviating_from: dict[int, int] = field(default_factory=dict)  # trip -> first round off its route
    sent_at: dict[tuple[int, int], float] = field(default_factory=dict)  # (round, batch) -> POST time
    sent_wall: dict[tuple[int, int], float] = field(default_factory=dict)  # the same, wall clock

    def starts(self) -> list[str]:
        route = f"[[{LON0},41.14],[{LON0 + STEP * 2000:.4f},41.14]]"
        return [f'{{"type":"trip_started","trip_id":"S{k}","ts":"{iso(self.t0)}","vehicle_id":"V{k}",'
                f'"pickup":[{LON0},41.14],"dropoff":[{LON0 + STEP * 2000:.4f},41.14],"route":{route}}}'
                for k in range(self.trips)]

    def batch(self, r: int, b: int) -> str:
        ts = iso(self.t0 + PERIOD * r)
        lon = f"{LON0 + STEP * r:.5f}"
        lines = []
        for k in range(b * BATCH, min(self.trips, (b + 1) * BATCH)):
            off = r >= self.deviating_from.get(k, 1 << 30)
            lines.append(f'{{"type":"ping","trip_id":"S{k}","ts":"{ts}","lon":{lon},"lat":{41.146 if off else 41.14}}}')
        return "\n".join(lines)

    @property
    def batches_per_round(self) -> int:
        return -(-self.trips // BATCH)


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def backends_of(database_url: str) -> list[int]:
    """The PostgreSQL backends serving this run's database (not the server's other clients, nor its own
    background processes, which every database on the machine shares)."""
    name = database_url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_ADMIN)
    try:
        with admin.connect() as connection:
            return sorted(connection.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                                             {"name": name}).scalars())
    finally:
        admin.dispose()


@dataclass
class CpuMeter:
    """CPU seconds of each part, counted per process from a start: a process that began after it counts
    whole, one that ended before the reading is lost (the cluster's pooled connections live for the run)."""

    parts: dict[str, Callable[[], list[int]]]
    start: dict[str, dict[int, float]] = field(default_factory=dict)

    def begin(self) -> None:
        self.start = {part: {pid: cpu_seconds([pid]) for pid in pids()} for part, pids in self.parts.items()}

    def spent(self) -> dict[str, float]:
        return {part: sum(cpu_seconds([pid]) - self.start[part].get(pid, 0.0) for pid in pids())
                for part, pids in self.parts.items()}


def roles(started: list[subprocess.Popen[bytes]], commands: list[tuple[list[str], dict[str, str]]],
          database_url: str, nats: subprocess.Popen[bytes] | None) -> dict[str, Callable[[], list[int]]]:
    """Each part's processes, listed when asked (PostgreSQL starts a backend per new connection). Only this
    run's: its own NATS server, the backends of its own database, never another user's."""
    by_role: dict[str, list[int]] = {"API": [], "monitor workers": [], "outbox + scheduler": []}
    for process, (command, _) in zip(started, commands, strict=True):
        role = "API" if "serve" in command else "monitor workers" if "monitor" in command else "outbox + scheduler"
        by_role[role].append(process.pid)
    listed: dict[str, Callable[[], list[int]]] = {role: pids.copy for role, pids in by_role.items()}
    if nats is not None:
        listed["PostgreSQL"] = lambda: backends_of(database_url)
        listed["NATS"] = lambda: [nats.pid]
    listed["load generator"] = lambda: [os.getpid()]
    return listed


@contextlib.contextmanager
def processes(commands: list[tuple[list[str], dict[str, str]]], log_dir: Path,
              ) -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=(log_dir / f"p{n}.log").open("w"))
               for n, (command, env) in enumerate(commands)]
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(base: str) -> None:
    for _ in range(300):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{base} did not come up")


def stored_pings(database_url: str) -> int:
    with unit_of_work(make_sessionmaker(make_engine(database_url))) as session:
        return int(session.scalar(select(func.coalesce(func.sum(Trip.points), 0))) or 0)


def capacity(stream: Stream, bases: list[str], api_key: str, seconds: float, senders: int,
             database_url: str, drain_limit: float | None = None) -> tuple[float, float, int, int, float]:
    """Post as fast as the servers take it; (accepted pings/s, stored pings/s end to end, rounds sent). The
    backlog is waited for up to `drain_limit` seconds from the start (20 times `seconds` by default)."""
    clients = [httpx.Client(base_url=b, timeout=60, headers={"Authorization": f"Bearer {api_key}",
                                                              "Content-Type": "application/x-ndjson"}) for b in bases]
    before = stored_pings(database_url)
    jobs = iter((r, b) for r in range(1, 1 << 30) for b in range(stream.batches_per_round))
    lock = threading.Lock()
    accepted = [0]
    last_round = [0]
    begin = time.perf_counter()

    def send(n: int) -> None:
        client = clients[n % len(clients)]
        while time.perf_counter() - begin < seconds:
            with lock:
                r, b = next(jobs)
                last_round[0] = max(last_round[0], r)
            body = stream.batch(r, b)
            while True:
                answer = client.post("/api/v1/telematics/events", content=body)
                if answer.status_code != 503:
                    break
                time.sleep(0.2)
            answer.raise_for_status()
            with lock:
                accepted[0] += answer.json()["accepted"]

    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, range(senders)))
    posted = time.perf_counter() - begin
    target = before + accepted[0]
    while stored_pings(database_url) < target and time.perf_counter() - begin < (drain_limit or seconds * 20):
        time.sleep(0.25)
    done = time.perf_counter() - begin
    stored = stored_pings(database_url) - before
    return accepted[0] / posted, stored / done, last_round[0], stored, done


def latency(stream: Stream, bases: list[str], api_key: str, rate: float, seconds: float, first_round: int,
            agent: httpx.Client, database_url: str) -> tuple[np.ndarray, int, np.ndarray, int, np.ndarray]:
    """Paced at `rate` pings/s, a tenth of the trips deviating, 20 SOS/s: (alert ms, missed, SOS ms, missed)."""
    alerts: dict[str, tuple[float, float]] = {}  # trip -> (arrival, the alert's own time)
    incidents: dict[str, float] = {}
    listening = threading.Event()
    refused: list[str] = []
    threading.Thread(target=listen, args=(agent, alerts, incidents, listening, refused), daemon=True).start()
    opened(listening, refused)
    rounds = max(20, int(rate * seconds / stream.trips))
    # One trip in 50 (others each phase) leaves its route, spread over the phase: with 10,000 trips about
    # ten alerts a second, some 25 times what the Porto trips raise (3.5 % of trips, once in ~15 minutes).
    # Every alert opens a case (~5 ms of a worker, one after another), so a storm of them is another
    # measure. The alert comes ~13 pings after leaving (confirmation, then 30 s held).
    phase = len({k % 50 for k in stream.deviating_from})
    chosen = range(phase % 50, stream.trips, 50)
    for k in chosen:
        stream.deviating_from[k] = first_round + 2 + (k // 50) % max(1, rounds - 18)
    clients = [httpx.Client(base_url=b, timeout=60, headers={"Authorization": f"Bearer {api_key}",
                                                              "Content-Type": "application/x-ndjson"}) for b in bases]
    sos_client = httpx.Client(base_url=bases[0], timeout=30)
    presses: dict[str, float] = {}
    stop = threading.Event()

    def press_sos() -> None:
        n = 0
        while not stop.is_set():
            tick = time.perf_counter()
            answer = sos_client.post("/api/v1/sos", json={"lon": 116.397, "lat": 39.909},
                                     headers={"Authorization": f"Bearer {token(f'psg_scale_{uuid.uuid4().hex[:8]}')}",
                                              "Idempotency-Key": f"scale-{n}-{uuid.uuid4().hex[:6]}"})
            if answer.status_code == 201:
                presses[answer.json()["incident_id"]] = tick
            n += 1
            time.sleep(max(0.0, 0.05 - (time.perf_counter() - tick)))

    sos_thread = threading.Thread(target=press_sos, daemon=True)
    sos_thread.start()
    interval = BATCH / rate
    begin = time.perf_counter()
    n = 0
    with ThreadPoolExecutor(8) as pool:
        for r in range(first_round, first_round + rounds):
            for b in range(stream.batches_per_round):
                due = begin + n * interval
                time.sleep(max(0.0, due - time.perf_counter()))
                body = stream.batch(r, b)
                stream.sent_at[(r, b)] = time.perf_counter()
                stream.sent_wall[(r, b)] = time.time()
                pool.submit(clients[n % len(clients)].post, "/api/v1/telematics/events", content=body)
                n += 1
    stop.set()
    sos_thread.join()
    time.sleep(5)
    if refused:
        raise StreamRefused(refused[0])
    # Each alert timed from the POST of the batch holding the ping it is dated by.
    alert_ms = []
    for trip, (arrived, ts) in alerts.items():
        sent = stream.sent_at.get((round((ts - stream.t0) / PERIOD), int(trip[1:]) // BATCH))
        if sent is not None:
            alert_ms.append((arrived - sent) * 1000)
    expected = sum(1 for k in chosen if stream.deviating_from[k] + 13 < first_round + rounds)
    sos_ms = np.array([(incidents[i] - s) * 1000 for i, s in presses.items() if i in incidents])
    # The same alerts to the store: the row's received_at (set as the monitor stored it) against the POST.
    stored_ms = []
    wanted = {f"S{k}" for k in chosen}
    with unit_of_work(make_sessionmaker(make_engine(database_url))) as session:
        for trip_id, at, received in session.execute(select(TripAlert.trip_id, TripAlert.ts, TripAlert.received_at)
                                                     .where(TripAlert.kind == "route_deviation")):
            sent = stream.sent_wall.get((round((at.timestamp() - stream.t0) / PERIOD), int(trip_id[1:]) // BATCH))
            if trip_id in wanted and sent is not None:
                stored_ms.append((received.timestamp() - sent) * 1000)
    return (np.array(alert_ms), max(0, expected - len(alert_ms)), sos_ms, len(presses) - len(sos_ms),
            np.array(stored_ms))


def listen(client: httpx.Client, alerts: dict[str, tuple[float, float]], incidents: dict[str, float],
           ready: threading.Event, refused: list[str]) -> None:
    """The agent's live stream: route deviations (arrival and the alert's time) and new cases."""
    def handle(item: dict[str, object]) -> None:
        if item.get("type") == "alert" and item["kind"] == "route_deviation":
            alerts.setdefault(str(item["trip_id"]), (time.perf_counter(), parse_ts(item["ts"])))
        elif item.get("type") == "incident":
            incidents.setdefault(str(item["id"]), time.perf_counter())

    follow(client, ready, handle, refused)


def fresh_postgres(name: str) -> str:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


@contextlib.contextmanager
def own_nats(directory: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A NATS server with JetStream for this run alone, so its CPU is this run's (the machine's shared
    server also carries other users' streams)."""
    binary = shutil.which("nats-server")
    if binary is None:
        raise SystemExit("the cluster set-up needs nats-server on PATH")
    server = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(directory / "nats")],
                              stdout=subprocess.DEVNULL, stderr=(directory / "nats.log").open("w"))
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if server.poll() is not None:
                raise SystemExit(f"nats-server did not start: {(directory / 'nats.log').read_text()[-500:]}")
            time.sleep(0.1)
        else:
            raise SystemExit("nats-server did not listen within 10 s")
        yield server
    finally:
        server.terminate()
        server.wait(10)


def drop_postgres(database_url: str) -> None:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def set_up(mode: str, env: dict[str, str], port: int, bus_url: str = "",
           ) -> tuple[list[tuple[list[str], dict[str, str]]], list[str]]:
    """The processes of a set-up and its API base URLs. cluster: what `tripguard cluster up` starts (2 API
    replicas on NATS, 2 monitor workers of 4 shards each, the outbox worker, the scheduler); embedded: one
    `tripguard serve`. `env` is updated for the cluster."""
    ports = [port, port + 1] if mode == "cluster" else [port]
    if mode == "cluster":
        env.update({"TRIPGUARD_BUS_URL": bus_url, "TRIPGUARD_BUS_NAME": f"bench{uuid.uuid4().hex[:6]}",
                    "TRIPGUARD_RUN_JOBS": "false"})
        # The commands `tripguard cluster up` runs (its supervisor aside: a process that dies here fails the run).
        commands = [(shlex.split(line), env) for line in procfile(shards=8, ports=(ports[0], ports[1])).values()]
    else:
        commands = [([TRIPGUARD, "serve", "--port", str(ports[0])], env)]
    return commands, [f"http://127.0.0.1:{p}" for p in ports]


def start_trips(stream: Stream, base: str, api_key: str) -> None:
    feeder = httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {api_key}",
                                                               "Content-Type": "application/x-ndjson"})
    starts = stream.starts()
    for k in range(0, len(starts), BATCH):
        feeder.post("/api/v1/telematics/events", content="\n".join(starts[k:k + BATCH])).raise_for_status()


def run_mode(mode: str, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    directory = tmp / mode
    directory.mkdir()
    with contextlib.ExitStack() as stack:
        nats = None
        postgres = None
        if mode == "cluster":
            nats = stack.enter_context(own_nats(directory, args.port + 100))
            postgres = fresh_postgres(f"tg_bench_scale_{uuid.uuid4().hex[:8]}")
            stack.callback(drop_postgres, postgres)
        env, api_key = prepare(directory, postgres)
        env.update({"TRIPGUARD_SUBJECT_TOKEN_SECRET": SECRET, "TRIPGUARD_LOG_LEVEL": "WARNING"})
        database_url = env["TRIPGUARD_DATABASE_URL"]
        commands, bases = set_up(mode, env, args.port, f"nats://127.0.0.1:{args.port + 100}")
        stream = Stream(args.trips, time.time() - 6 * 3600)
        started = stack.enter_context(processes(commands, directory))
        meter = CpuMeter(roles(started, commands, database_url, nats))
        for base in bases:
            wait_healthy(base)
        start_trips(stream, bases[0], api_key)
        meter.begin()
        accepted, sustained, last_round, pings, elapsed = capacity(stream, bases, api_key, args.seconds, args.senders,
                                                                   database_url)
        cpu = meter.spent()
        print(f"{mode}: accepted {accepted:,.0f} pings/s, stored {sustained:,.0f} pings/s", flush=True)
        loads = []
        agent = sign_in(bases[-1])
        for load in args.loads:
            alert_ms, alerts_missed, sos_ms, sos_missed, stored_ms = latency(
                stream, bases, api_key, load * sustained, args.seconds, last_round + 1, agent, database_url)
            last_round += max(20, int(load * sustained * args.seconds / stream.trips)) + 1
            loads.append({"load": load, "alert_ms": alert_ms, "stored_ms": stored_ms, "alerts_missed": alerts_missed,
                          "sos_ms": sos_ms, "sos_missed": sos_missed})
            time.sleep(5)  # the backlog drains before the next load
    return {"mode": mode, "accepted": accepted, "sustained": sustained, "pings": pings, "elapsed": elapsed, "cpu": cpu,
            "loads": loads, "arrow_us": arrow_read_us(stream)}


def arrow_read_us(stream: Stream, rounds: int = 20) -> float:
    """CPU microseconds Arrow's JSON reader alone takes per ping line of this run's stream, on one thread, read in
    one buffer (its floor: no per-call cost), measured in the same run as the servers (the machine's speed varies
    from day to day)."""
    options = pa_json.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
    read = pa_json.ReadOptions(use_threads=False, block_size=1 << 20)
    batches = [b"\n".join(stream.batch(r, b).encode() for r in range(rounds) for b in range(stream.batches_per_round))]
    best = float("inf")
    for _ in range(3):
        begin = time.process_time()
        for batch in batches:
            pa_json.read_json(pa.BufferReader(batch), parse_options=options, read_options=read)
        best = min(best, time.process_time() - begin)
    return best / sum(batch.count(b"\n") + 1 for batch in batches) * 1e6


def each_set_up(modes: list[str], run: Callable[[str, Path], dict[str, object]]) -> list[dict[str, object]]:
    """`run` for each set-up in one temporary folder; if one fails, the tail of every process's log first."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return [run(mode, Path(tmp)) for mode in modes]
        except Exception:
            for log in sorted(Path(tmp).glob("*/p*.log")):
                print(f"== {log}\n{log.read_text()[-1500:]}", file=sys.stderr)
            raise


def projection(cluster: dict[str, object], trips: int = 1_000_000, period: float = 3.0) -> str:
    """Cores for `trips` concurrent trips at one ping every `period` s, from the measured CPU per ping."""
    rate = trips / period
    cpu: dict[str, float] = cluster["cpu"]  # type: ignore[assignment]
    pings: int = cluster["pings"]  # type: ignore[assignment]
    needed = {role: seconds / pings * rate for role, seconds in cpu.items() if role != "load generator"}
    lines = [(f"Projection for {trips:,} concurrent trips at one ping every {period:g} s ({rate:,.0f} pings/s), "
             "from the CPU each part spent per ping above (cores busy, before headroom):"), "",
             "| part | cores |", "| --- | ---: |",
             *(f"| {role} | {cores:,.1f} |" for role, cores in needed.items()),
             f"| **total** | **{sum(needed.values()):,.1f}** |"]
    return "\n".join(lines)


def cpu_table(result: dict[str, object]) -> str:
    """CPU per ping stored, per part of the set-up and in all, in microseconds and as a multiple of Arrow's
    read of the same line measured in the same run."""
    cpu: dict[str, float] = result["cpu"]  # type: ignore[assignment]
    pings: int = result["pings"]  # type: ignore[assignment]
    arrow: float = result["arrow_us"]  # type: ignore[assignment]
    served = {role: seconds for role, seconds in cpu.items() if role != "load generator"}
    rows = [f"| {role} | {seconds:.1f} s | {seconds / pings * 1e6:.1f} µs | {seconds / pings * 1e6 / arrow:.1f}x |"
            for role, seconds in served.items()]
    total = sum(served.values())
    return "\n".join([
        (f"CPU in the capacity phase, {result['mode']} ({pings:,} pings stored in {result['elapsed']:.1f} s; "
         f"this run's own processes only; Arrow's JSON reader alone, one thread, on the same lines: "
         f"{arrow:.2f} µs a line; the load generator spent {cpu.get('load generator', 0.0):.1f} s):"), "",
        "| part | CPU | per ping stored | × Arrow's read |", "| --- | ---: | ---: | ---: |", *rows,
        f"| **all** | **{total:.1f} s** | **{total / pings * 1e6:.1f} µs** | **{total / pings * 1e6 / arrow:.1f}x** |"])


def _p(values: np.ndarray, q: float) -> str:
    if not len(values):  # a part refused or nothing arrived: a figure without data is no figure
        raise SystemExit("no timings for a latency column: the run measured nothing there (see the logs)")
    return f"{np.percentile(values, q):,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--mode", choices=["cluster", "embedded", "both"], default="both")
    parser.add_argument("--port", type=int, default=8811)
    parser.add_argument("--loads", type=lambda text: [float(x) for x in text.split(",")], default=[0.5, 0.8],
                        help="shares of the sustained rate the latency phases run at")
    args = parser.parse_args()
    modes = ["cluster", "embedded"] if args.mode == "both" else [args.mode]
    results = each_set_up(modes, lambda mode, tmp: run_mode(mode, args, tmp))
    rows = [f"| {r['mode']} | {r['accepted']:,.0f} | **{r['sustained']:,.0f}** | {x['load']:.0%} | "
            f"{_p(x['stored_ms'], 50)} | {_p(x['stored_ms'], 99)} | "
            f"{_p(x['alert_ms'], 50)} | {_p(x['alert_ms'], 99)} | {x['alerts_missed']} | {_p(x['sos_ms'], 50)} | "
            f"{_p(x['sos_ms'], 99)} | {x['sos_missed']} |"
            for r in results for x in cast(list[dict[str, Any]], r["loads"])]
    body = "\n".join([
        "## Scale-out under load (`bench/scale.py`)", "",
        (f"Command: `.venv/bin/python -m bench.scale --trips {args.trips} --seconds {args.seconds:g} "
        f"--senders {args.senders} --mode {args.mode} --loads {','.join(f'{x:g}' for x in args.loads)}`. "
        f"{machine_line()} cluster: 2 API replicas, 2 monitor "
        "workers (8 shards), the outbox worker and the scheduler on PostgreSQL and NATS JetStream; embedded: "
        "`tripguard serve` on SQLite. The load generator, PostgreSQL and NATS share the same cores. Latency "
        "columns: paced at the given share of the sustained rate, with 20 SOS presses a second."), "",
        ("| set-up | pings/s accepted | pings/s sustained (stored) | load | ping-to-alert stored p50 | p99 | "
         "on the agent's screen p50 | p99 | not on screen | SOS p50 | SOS p99 | SOS not seen |"),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows, "", ("Targets (issue 11): sustained ≥ 50,000 pings/s (aim 100,000); ping-to-alert p99 < 1 s; "
        "SOS p99 < 100 ms."),
    ])
    for r in results:
        body += "\n\n" + cpu_table(r)
    body += "\n\n" + projection(results[0]) if results and results[0]["mode"] == "cluster" else ""
    write_section("scale", body)
    print(body)


if __name__ == "__main__":
    main()
