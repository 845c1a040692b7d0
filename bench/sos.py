"""SOS latency: from the app's request to the case on a safety agent's live queue, alone or beside bulk work.

    .venv/bin/python -m bench.sos [--rates 50,200] [--seconds 10]
    .venv/bin/python -m bench.sos --beside-ingest [--quick] [--mode both|embedded|cluster]

Alone: starts `tripguard serve` (the embedded default: SQLite, in-process bus) on a fresh database, signs a
safety agent in, opens the queue's event stream, then presses SOS from this second process over
loopback at each rate (every press a different passenger, so none is a double tap), and measures
each press from just before its request to the incident arriving on the stream.

Beside ingest (`bench/sos_load.py`): the same presses while ingest runs at 50 %, 100 % and 150 % of the
set-up's capacity (measured first, in the same run), embedded and on the cluster, with an agent on the
live map and a thousand webhooks queued to a receiver that takes 2 s each. `--quick` is a smoke run of
about two minutes; the defaults are the full run.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import jwt
import numpy as np

from bench.latency import listen_ready, prepare, served, sign_in
from bench.report import machine_line, write_section

SECRET = secrets.token_hex(32)  # signs the bench's app tokens; the servers it starts are given it


def token(subject: str) -> str:
    now = datetime.now(UTC)
    return jwt.encode({"sub": subject, "role": "passenger", "aud": "tripguard", "iat": now,
                       "exp": now + timedelta(minutes=10)}, SECRET, algorithm="HS256")


def run_rate(base: str, rate: int, seconds: float, arrivals: dict[str, float]) -> tuple[np.ndarray, int]:
    sent: dict[str, float] = {}
    lock = threading.Lock()
    tokens = [token(f"psg_{rate}_{n}") for n in range(int(rate * seconds))]
    client = httpx.Client(base_url=base, timeout=30, limits=httpx.Limits(max_connections=64))

    def press(n: int) -> None:
        started = time.perf_counter()
        response = client.post("/api/v1/sos", json={"lon": 116.397, "lat": 39.909},
                               headers={"Authorization": f"Bearer {tokens[n]}", "Idempotency-Key": f"b{rate}-{n}"})
        if response.status_code == 201:
            with lock:
                sent[response.json()["incident_id"]] = started

    with ThreadPoolExecutor(max_workers=64) as pool:
        begin = time.perf_counter()
        for n in range(len(tokens)):
            time.sleep(max(0.0, begin + n / rate - time.perf_counter()))
            pool.submit(press, n)
    time.sleep(2)
    latencies = np.array([(arrivals[i] - t) * 1000 for i, t in sent.items() if i in arrivals])
    return latencies, len(tokens) - len(latencies)


def group_totals(base: str) -> tuple[float, float]:
    """(transactions, presses) stored so far, from the server's Prometheus metrics."""
    # Served to this host by default (TRIPGUARD_METRICS_ALLOW): a 403 here is a setting, not a zero.
    text = httpx.get(f"{base}/metrics", timeout=10).raise_for_status().text
    values = dict(line.split(" ", 1) for line in text.splitlines()
                  if line.startswith(("tripguard_sos_group_size_count", "tripguard_sos_group_size_sum")))
    return float(values.get("tripguard_sos_group_size_count", 0)), float(values.get("tripguard_sos_group_size_sum", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200")
    parser.add_argument("--seconds", type=float, default=None,
                        help="alone: per rate (10); beside ingest: per load (20)")
    parser.add_argument("--port", type=int, default=None)
    beside = parser.add_argument_group("beside ingest")
    beside.add_argument("--beside-ingest", action="store_true")
    beside.add_argument("--quick", action="store_true", help="a smoke run: fewer trips, shorter phases")
    beside.add_argument("--mode", choices=["embedded", "cluster", "both"], default="both")
    beside.add_argument("--loads", type=lambda text: [float(x) for x in text.split(",")], default=[0.5, 1.0, 1.5],
                        help="shares of the measured capacity")
    beside.add_argument("--trips", type=int, default=None, help="trips under way (20,000; quick 4,000)")
    beside.add_argument("--capacity-seconds", type=float, default=None, help="the capacity phase (20; quick 5)")
    beside.add_argument("--senders", type=int, default=4)
    beside.add_argument("--sos-rate", type=float, default=20, help="presses a second")
    beside.add_argument("--webhooks", type=int, default=1000, help="queued to the slow receiver before the run")
    beside.add_argument("--webhook-seconds", type=float, default=2.0, help="the receiver's time per webhook")
    beside.add_argument("--escalation-wait", type=float, default=None,
                        help="after the last phase, beyond the 5 s acknowledgement window (8; quick 6)")
    args = parser.parse_args()
    if args.beside_ingest:
        from bench.sos_load import main_beside_ingest

        main_beside_ingest(args)
        return
    args.seconds = 10 if args.seconds is None else args.seconds
    args.port = args.port or 8766
    rates = [int(r) for r in args.rates.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env, _ = prepare(Path(tmp))
        env["TRIPGUARD_SUBJECT_TOKEN_SECRET"] = SECRET
        with served(env, args.port) as base:
            arrivals: dict[str, float] = {}
            listen_ready(sign_in(base), arrivals, kind="incident")
            for rate in rates:
                groups_before, presses_before = group_totals(base)
                latencies, missed = run_rate(base, rate, args.seconds, arrivals)
                groups, presses = (a - b for a, b in zip(group_totals(base), (groups_before, presses_before),
                                                         strict=True))
                rows.append(f"| {rate}/s | {len(latencies):,} | {np.percentile(latencies, 50):,.0f} ms | "
                            f"{np.percentile(latencies, 99):,.0f} ms | {latencies.max():,.0f} ms | {missed} | "
                            f"{presses / max(groups, 1):.1f} |")
    body = "\n".join([
        "## SOS to the safety centre's queue (`bench/sos.py`)", "",
        (f"Command: `.venv/bin/python -m bench.sos --rates {args.rates} --seconds {args.seconds:g}`. {machine_line()} "
        "`tripguard serve` on SQLite (the embedded default); presses from a second process over loopback, each a "
        "different passenger with a position; timed from just before the request to the incident on a signed-in "
        "agent's event stream. Target: p99 < 100 ms at 200/s. Presses per transaction: the group commit "
        "(`safety/intake.py`), from the server's `tripguard_sos_group_size` metric."), "",
        "| rate | presses | p50 | p99 | max | not seen | presses per transaction |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |", *rows,
    ])
    write_section("sos", body)
    print(body)


if __name__ == "__main__":
    main()
