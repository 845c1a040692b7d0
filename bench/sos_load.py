"""SOS beside bulk work: ingest at shares of the set-up's capacity, an agent on the live map, a slow webhook
receiver with a long queue. Run through `python -m bench.sos --beside-ingest` (see bench/sos.py).

Per set-up (embedded: one `tripguard serve` on SQLite; cluster: the `tripguard cluster up` set on PostgreSQL
and NATS, started as bench/scale starts it):
1. `--webhooks` webhooks are queued to a receiver on 127.0.0.1 that takes `--webhook-seconds` to answer each,
   before the processes start; alerts raised during the run add theirs.
2. Capacity: ingest as fast as the set-up takes it (bench/scale's capacity phase).
3. For each share of that capacity (`--loads`): ingest paced at that rate for `--seconds` (503s counted as
   shed, not retried), and SOS presses at `--sos-rate`, each a new passenger with a position. Each press is
   timed from just before its request to its HTTP answer, and to its incident on a signed-in safety
   agent's cases stream (the one that sounds the console's alarm), while the same agent also watches the
   live map (its own stream, carrying every position: the load a browser puts on the server).
4. After the last phase, from the database: which presses have a case (a press without one, or without a
   2xx answer, is lost), when each case's emergency-gateway message was sent (the recording channel marks
   it sent), and how late each escalation was (escalated_at - ack_due_at; cases are left unacknowledged,
   the acknowledgement window at its 5 s minimum).
Only 127.0.0.1 is contacted; every loop is bounded by `--seconds`.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2 as httpx
import numpy as np
from sqlalchemy import select

from bench.latency import StreamRefused, follow, opened, prepare, sign_in
from bench.report import machine_line, write_section
from bench.scale import (
    BATCH,
    Stream,
    capacity,
    each_set_up,
    fresh_postgres,
    processes,
    set_up,
    start_trips,
    wait_healthy,
)
from bench.sos import SECRET, token
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.notify import service as notify
from tripguard.notify.models import OutboxMessage
from tripguard.safety.models import Incident

ACK_SECONDS = 5  # the settings' minimum: escalations come within the run


@dataclass
class Press:
    started: float  # perf_counter, just before the request
    wall: float  # the same moment, wall clock (compared with the database's times)
    status: int = 0  # 0: no answer (an error or a timeout)
    http_ms: float = float("nan")
    incident_id: str | None = None


@dataclass
class Phase:
    load: float
    target: float  # pings/s asked for
    seconds: float = 0.0
    accepted: int = 0  # pings the server took
    shed: int = 0  # batches answered 503
    failed: int = 0  # batches answered otherwise (or not at all)
    presses: list[Press] = field(default_factory=list)


@dataclass
class Watch:
    """What the agent's live stream brought: each case's first arrival, and the times it told the viewer to
    resync (a viewer that fell behind loses what was queued for it)."""

    arrivals: dict[str, float] = field(default_factory=dict)
    resyncs: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def handle(self, item: dict[str, object]) -> None:
        if item.get("type") == "incident":
            self.arrivals.setdefault(str(item["id"]), time.perf_counter())
        elif item.get("type") == "stream_resync":
            self.resyncs.append(time.perf_counter())


class _SlowReceiver(BaseHTTPRequestHandler):
    delay = 2.0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


@contextlib.contextmanager
def slow_receiver(delay: float) -> Iterator[str]:
    """An operator's webhook endpoint on 127.0.0.1 that takes `delay` seconds to answer each call."""
    handler = type("Receiver", (_SlowReceiver,), {"delay": delay})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    finally:
        server.shutdown()
        server.server_close()


def queue_webhooks(database_url: str, url: str, count: int) -> None:
    with unit_of_work(make_sessionmaker(make_engine(database_url))) as session:
        for n in range(count):
            notify.enqueue_webhook(session, url=url, event="bench.backlog", payload={"n": n},
                                   idempotency_key=f"bench-backlog-{n}")


def run_phase(phase: Phase, stream: Stream, bases: list[str], api_key: str, first_round: int, seconds: float,
              sos_rate: float) -> int:
    """Ingest paced at `phase.target` pings/s and SOS at `sos_rate` for `seconds`; returns the next round."""
    ingest = [httpx.Client(base_url=b, timeout=30, headers={"Authorization": f"Bearer {api_key}",
                                                             "Content-Type": "application/x-ndjson"}) for b in bases]
    sos = httpx.Client(base_url=bases[0], timeout=30, limits=httpx.Limits(max_connections=64))
    lock = threading.Lock()
    run = uuid.uuid4().hex[:6]

    def post_batch(n: int, body: str) -> None:
        try:
            answer = ingest[n % len(ingest)].post("/api/v1/telematics/events", content=body)
        except httpx.HTTPError:
            answer = None
        with lock:
            if answer is not None and answer.status_code == 200:
                phase.accepted += answer.json()["accepted"]
            elif answer is not None and answer.status_code == 503:
                phase.shed += 1
            else:
                phase.failed += 1

    def press(n: int) -> None:
        record = Press(started=time.perf_counter(), wall=time.time())
        phase.presses.append(record)
        try:
            answer = sos.post("/api/v1/sos", json={"lon": 116.397, "lat": 39.909},
                              headers={"Authorization": f"Bearer {token(f'psg_{run}_{n}')}",
                                       "Idempotency-Key": f"load-{run}-{n}"})
        except httpx.HTTPError:
            return
        record.http_ms = (time.perf_counter() - record.started) * 1000
        record.status = answer.status_code
        if answer.status_code in (200, 201):
            record.incident_id = answer.json()["incident_id"]

    jobs = iter((r, b) for r in range(first_round, 1 << 30) for b in range(stream.batches_per_round))
    batch_interval, press_interval = BATCH / phase.target, 1 / sos_rate
    begin = time.perf_counter()
    batches = presses = 0
    last_round = first_round
    with ThreadPoolExecutor(8) as bulk, ThreadPoolExecutor(32) as emergency:
        while (now := time.perf_counter()) < begin + seconds:
            next_batch, next_press = begin + batches * batch_interval, begin + presses * press_interval
            if next_press <= now:
                emergency.submit(press, presses)
                presses += 1
            elif next_batch <= now:
                r, b = next(jobs)
                last_round = r
                bulk.submit(post_batch, batches, stream.batch(r, b))
                batches += 1
            else:
                time.sleep(min(next_batch, next_press) - now)
        bulk.shutdown(wait=True, cancel_futures=True)  # batches the server did not keep up with are not sent
    phase.seconds = time.perf_counter() - begin
    return last_round + 1


def stored_outcomes(database_url: str, incident_ids: list[str]) -> tuple[set[str], dict[str, datetime],
                                                                          dict[str, float], set[str]]:
    """(cases stored, gateway message sent at by case, escalation lateness in seconds by case, cases not
    escalated yet)."""
    stored: set[str] = set()
    waiting: set[str] = set()
    late: dict[str, float] = {}
    sent: dict[str, datetime] = {}
    with unit_of_work(make_sessionmaker(make_engine(database_url))) as session:
        for start in range(0, len(incident_ids), 500):
            part = incident_ids[start:start + 500]
            for incident_id, due, escalated in session.execute(
                    select(Incident.id, Incident.ack_due_at, Incident.escalated_at).where(Incident.id.in_(part))):
                stored.add(incident_id)
                # Not escalated yet: late by at least the time since it was due (negative: not due yet).
                late[incident_id] = ((escalated or utcnow()) - due).total_seconds()
                if escalated is None:
                    waiting.add(incident_id)
            keys = {f"sos:{i}:gateway": i for i in part}
            for key, at in session.execute(select(OutboxMessage.idempotency_key, OutboxMessage.sent_at)
                                           .where(OutboxMessage.idempotency_key.in_(list(keys)))):
                if at is not None:
                    sent[keys[key]] = at
    return stored, sent, late, waiting


def run_setup(mode: str, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    directory = tmp / mode
    directory.mkdir()
    env, api_key = prepare(directory, fresh_postgres("tg_bench_sos") if mode == "cluster" else None)
    database_url = env["TRIPGUARD_DATABASE_URL"]
    with slow_receiver(args.webhook_seconds) as hooks:
        queue_webhooks(database_url, hooks, args.webhooks)
        env.update({"TRIPGUARD_SUBJECT_TOKEN_SECRET": SECRET, "TRIPGUARD_WEBHOOK_URL": hooks,
                    "TRIPGUARD_WEBHOOK_SECRET": "bench-webhook-secret-0123456789",
                    "TRIPGUARD_INCIDENT_ACK_SECONDS": str(ACK_SECONDS)})
        commands, bases = set_up(mode, env, args.port)
        stream = Stream(args.trips, time.time() - 6 * 3600)
        with processes(commands, directory):
            for base in bases:
                wait_healthy(base)
            start_trips(stream, bases[0], api_key)
            watch, on_map, agent = Watch(), Watch(), sign_in(bases[-1])
            for viewer, path in ((watch, "/console/incidents/stream"), (on_map, "/console/live/stream")):
                ready = threading.Event()
                threading.Thread(target=follow, args=(agent, ready, viewer.handle, viewer.refused, path),
                                 daemon=True).start()
                opened(ready, viewer.refused)
            _, sustained, last_round, _, _ = capacity(stream, bases, api_key, args.capacity_seconds, args.senders,
                                                      database_url, drain_limit=4 * args.capacity_seconds)
            print(f"{mode}: capacity {sustained:,.0f} pings/s stored", flush=True)
            phases = []
            for load in args.loads:
                phase = Phase(load=load, target=max(1.0, load * sustained))
                last_round = run_phase(phase, stream, bases, api_key, last_round + 1, args.seconds, args.sos_rate)
                phases.append(phase)
                print(f"{mode} at {load:.0%}: {phase.accepted / phase.seconds:,.0f} pings/s, "
                      f"{len(phase.presses)} presses", flush=True)
            time.sleep(ACK_SECONDS + args.escalation_wait)  # the last cases' escalations and messages
            for viewer in (watch, on_map):
                if viewer.refused:
                    raise StreamRefused(viewer.refused[0])
            watch.resyncs += on_map.resyncs
    ids = [p.incident_id for phase in phases for p in phase.presses if p.incident_id]
    stored, sent, late, waiting = stored_outcomes(database_url, ids)
    return {"mode": mode, "sustained": sustained, "phases": phases, "watch": watch, "stored": stored, "sent": sent,
            "late": late, "waiting": waiting, "period": float(env.get("TRIPGUARD_INCIDENT_INTERVAL_SECONDS", "5"))}


def _ms(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):,.0f} ms" if values else "—"


def _escalation(lateness: list[float], period: float) -> str:
    """The longest wait from due to escalated, and what of it the job's period does not explain."""
    if not lateness:
        return "—"
    return f"{max(lateness):,.1f} s / {max(0.0, max(lateness) - period):,.1f} s"


def rows(result: dict[str, object]) -> list[str]:
    watch: Watch = result["watch"]  # type: ignore[assignment]
    stored: set[str] = result["stored"]  # type: ignore[assignment]
    sent: dict[str, datetime] = result["sent"]  # type: ignore[assignment]
    late: dict[str, float] = result["late"]  # type: ignore[assignment]
    waiting: set[str] = result["waiting"]  # type: ignore[assignment]
    period: float = result["period"]  # type: ignore[assignment]
    lines = []
    for phase in result["phases"]:  # type: ignore[attr-defined]
        presses: list[Press] = phase.presses
        answered = [p for p in presses if p.incident_id]
        on_stream = [(watch.arrivals[p.incident_id] - p.started) * 1000 for p in answered
                     if p.incident_id in watch.arrivals]
        http = [p.http_ms for p in answered]
        lost = sum(1 for p in presses if p.incident_id not in stored)
        gateway = [(sent[p.incident_id].timestamp() - p.wall) * 1000 for p in answered if p.incident_id in sent]
        unsent = sum(1 for p in answered if p.incident_id not in sent)
        lateness = [late[p.incident_id] for p in answered if p.incident_id in late]
        not_escalated = sum(1 for p in answered if p.incident_id in waiting)
        end = presses[-1].started if presses else 0.0
        resyncs = sum(1 for at in watch.resyncs if presses and presses[0].started <= at <= end + 5)
        lines.append(
            f"| {result['mode']} | {phase.load:.0%} | {phase.target:,.0f} | {phase.accepted / phase.seconds:,.0f} | "
            f"{phase.shed} / {phase.failed} | {len(presses)} | {_ms(on_stream, 50)} | {_ms(on_stream, 99)} | "
            f"{f'{max(on_stream):,.0f} ms' if on_stream else '—'} | {_ms(http, 50)} | {_ms(http, 99)} | "
            f"{f'{max(http):,.0f} ms' if http else '—'} | {lost} | {len(answered) - len(on_stream)} ({resyncs}) | "
            f"{_ms(gateway, 99)} ({unsent}) | {_escalation(lateness, period)} ({not_escalated}) |")
    return lines


HEADER = [("| set-up | load | ingest asked (pings/s) | reached (pings/s) | shed (503) / failed batches | presses | "
           "SOS → agent's stream p50 | p99 | max | SOS HTTP p50 | p99 | max | presses lost | not on the stream "
           "(resyncs) | gateway message sent p99 (not sent) | escalation: due → escalated, max / beyond the job's "
           "period (not escalated) |"),
          "| --- |" + " ---: |" * 15]


def main_beside_ingest(args: argparse.Namespace) -> None:
    quick = args.quick
    args.seconds = args.seconds or (5.0 if quick else 20.0)
    args.trips = args.trips or (4000 if quick else 20_000)
    args.capacity_seconds = args.capacity_seconds or (5.0 if quick else 20.0)
    args.escalation_wait = args.escalation_wait if args.escalation_wait is not None else (6.0 if quick else 8.0)
    args.port = args.port or 8831
    modes = ["embedded", "cluster"] if args.mode == "both" else [args.mode]
    results = each_set_up(modes, lambda mode, tmp: run_setup(mode, args, tmp))
    command = (f".venv/bin/python -m bench.sos --beside-ingest{' --quick' if quick else ''} --mode {args.mode} "
               f"--loads {','.join(f'{x:g}' for x in args.loads)} --seconds {args.seconds:g} --trips {args.trips} "
               f"--sos-rate {args.sos_rate:g} --webhooks {args.webhooks} --webhook-seconds {args.webhook_seconds:g}")
    capacities = "; ".join(f"{r['mode']} {r['sustained']:,.0f} pings/s" for r in results)
    body = "\n".join([
        "## SOS beside ingest (`bench/sos.py --beside-ingest`)", "",
        (f"Command: `{command}`. {machine_line()} embedded: one `tripguard serve` on SQLite; cluster: the "
         "`tripguard cluster up` set (2 API replicas, 2 monitor workers, the outbox worker, the scheduler) on "
         "PostgreSQL and NATS. The load generator, the webhook receiver, PostgreSQL and NATS share the same cores. "
         f"Capacity, measured first in the same run (pings stored a second): {capacities}. Per load, for "
         f"{args.seconds:g} s: ingest paced at that share of it (batches of 1,000; a 503 counts as shed, not "
         f"retried) and {args.sos_rate:g} SOS presses a second, each a new passenger with a position; a safety "
         f"agent on the live map; {args.webhooks:,} webhooks queued before the start to a receiver on 127.0.0.1 "
         f"that takes {args.webhook_seconds:g} s each. SOS timed from just before the request to the case on the "
         "agent's cases stream (the one that sounds the console's alarm; the same agent also holds the live "
         "map's stream, whose resyncs are counted), and to the HTTP answer. Lost: no 2xx answer, or no case "
         "stored. Gateway: the "
         "emergency-gateway message marked sent (the recording channel), after the press. Escalation: "
         f"escalated_at − ack_due_at of the same cases, left unacknowledged ({ACK_SECONDS} s window; a case not "
         "escalated when the run ends counts as late by the time since it was due), and that less the escalation "
         "job's period (`TRIPGUARD_INCIDENT_INTERVAL_SECONDS`, 5 s), which bounds how late the job itself ran."), "",
        *HEADER, *(line for r in results for line in rows(r)), "",
        ("Targets (issue 25): SOS p99 < 100 ms at every load, embedded and cluster; presses lost 0; gateway message "
        "sent p99 < 1 s after the press; escalation never more than 2 s late."),
    ])
    write_section("sos-load", body)
    print(body)
