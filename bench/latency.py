"""Ping-to-alert latency in the running server: from sending a batch to a safety agent's live map.

    .venv/bin/python -m bench.latency [--trips 1000] [--rounds 40] [--period 1.0]

Starts `tripguard serve` (SQLite, the embedded default) on a fresh database, signs a safety agent
in (password and TOTP, as a person would), opens the live map's event stream, and posts one ping
per trip every `period` seconds as the operator's backend would. A tenth of the trips leave their
route. Latency is measured from just before the POST of the batch holding the ping that crosses
the threshold to the moment the alert arrives on the agent's stream.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pyotp

from bench.report import machine_line, write_section
from tripguard.audit.actor import CLI_ACTOR
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.migrations import upgrade
from tripguard.core.settings import Settings, with_generated_secrets
from tripguard.security import credentials
from tripguard.security import service as security
from tripguard.security.permissions import Permission, Role

PASSWORD = secrets.token_urlsafe(24)  # the bench agent's, on the run's own fresh database
ROUTE = [[-8.61 + i * 0.0008, 41.14] for i in range(200)]


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def bench_site(directory: Path, database_url: str | None = None) -> tuple[dict[str, str], Settings]:
    """The environment of a `tripguard serve` on a fresh database, and its settings, migrated."""
    env = {**os.environ, "TRIPGUARD_DATABASE_URL": database_url or f"sqlite:///{directory}/bench.db",
           "TRIPGUARD_KEY_DIR": str(directory / "keys"), "TRIPGUARD_ENV": "development",
           "TRIPGUARD_DEMO_CITY": "false", "TRIPGUARD_LOG_LEVEL": "WARNING",
           # The simulated drivers are not screened: the safety net would make every trip an alert and a case.
           "TRIPGUARD_TRIP_START_GATE": "false"}
    # As `tripguard serve` will see them: the session secret (which keys API keys) generated into the key folder.
    settings = with_generated_secrets(Settings(database_url=env["TRIPGUARD_DATABASE_URL"], key_dir=directory / "keys"))
    upgrade(settings.database_url)
    return env, settings


def prepare(directory: Path, database_url: str | None = None) -> tuple[dict[str, str], str]:
    env, settings = bench_site(directory, database_url)
    with unit_of_work(make_sessionmaker(make_engine(settings.database_url))) as session:
        security.create_staff(session, actor=CLI_ACTOR, username="agent", display_name="Agent", password=PASSWORD,
                              roles={Role.SAFETY_AGENT})
        _, secret = security.create_api_key(session, settings=settings, actor=CLI_ACTOR, name="bench",
                                            scopes={Permission.TELEMATICS_INGEST})
    return env, secret


@contextlib.contextmanager
def served(env: dict[str, str], port: int, command: list[str] | None = None, ready_path: str = "/healthz",
           ) -> Iterator[str]:
    """`tripguard serve` (or `command`) on a fresh database in a child process; yields its base URL."""
    argv = command or [str(Path(sys.executable).with_name("tripguard")), "serve"]
    server = subprocess.Popen([*argv, "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        ready_by = time.monotonic() + 180  # a loaded machine: a minute to start is seen
        while True:
            try:
                if httpx.get(f"{base}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
            if server.poll() is not None or time.monotonic() > ready_by:
                raise RuntimeError(f"the server did not start (exit code {server.poll()})")
        yield base
    finally:
        server.terminate()  # an open event stream keeps uvicorn waiting: do not wait long
        try:
            server.wait(3)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class StreamRefused(RuntimeError):
    """The agent's live stream was refused or ended: every latency measured through it would be missing."""


def sign_in(base: str) -> httpx.Client:
    """The safety agent signed in (password and TOTP) and bound by the confidentiality agreement in force, as a
    person would be before the live map opens for them."""
    client = httpx.Client(base_url=base, timeout=30)
    first = client.post("/api/v1/auth/sign-in", json={"username": "agent", "password": PASSWORD}).json()
    secret = credentials.totp_secret_from_uri(first["totp_uri"])
    done = client.post("/api/v1/auth/totp", json={"ticket": first["ticket"], "code": pyotp.TOTP(secret).now()})
    done.raise_for_status()
    sign_agreement(client)
    return client


def sign_agreement(client: httpx.Client) -> None:
    """Read the agreement in force and sign that version (by the hash of its text), unless already signed."""
    agreement = client.get("/api/v1/me/agreement")
    agreement.raise_for_status()
    if agreement.json()["signed_at"] is None:
        client.post("/api/v1/me/agreement/signature", json={"sha256": agreement.json()["sha256"]}).raise_for_status()


def follow(client: httpx.Client, ready: threading.Event, handle: Callable[[dict[str, object]], None],
           refused: list[str] | None = None, path: str = "/console/live/stream") -> None:
    """The agent's live stream, each item handed to `handle` as it arrives (the stream's own events as
    `stream_hello`, `stream_resync`, ...); `ready` set once the server's `hello` came. A refusal (403: say,
    an agreement not signed) or a stream that breaks is put in `refused` and raised: it is never taken for
    a quiet stream."""
    problems = refused if refused is not None else []
    try:
        with client.stream("GET", path, timeout=httpx.Timeout(30, read=None)) as response:
            if response.status_code != 200:
                response.read()
                problems.append(f"the live stream answered {response.status_code}: {refusal(response)}")
                raise StreamRefused(problems[-1])
            kind = ""  # the event's name (hello, heartbeat, resync, closing); none for the feed's items
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                    if kind == "hello":
                        ready.set()
                elif line.startswith("data: "):
                    item = json.loads(line[6:])
                    handle({**item, "type": f"stream_{kind}"} if kind else item)
                    kind = ""
            problems.append("the live stream ended")  # the server closed it: nothing more will be seen
    except httpx.HTTPError as exc:
        problems.append(f"the live stream broke: {type(exc).__name__}: {exc}")
        raise StreamRefused(problems[-1]) from exc
    finally:
        ready.set()  # whoever waits for the stream looks at `refused` now


def refusal(response: httpx.Response) -> str:
    """What a refused stream says: the problem's detail, or the console error page's message."""
    if response.headers.get("content-type", "").startswith(("application/problem+json", "application/json")):
        return str(response.json().get("detail") or response.json().get("title"))
    found = (re.search(r"<main.*?</main>", response.text, re.DOTALL)
             or re.search(r"<title>(.*?)</title>", response.text, re.DOTALL))
    text = re.sub(r"<[^>]+>", " ", found.group(0) if found else response.text)
    return " ".join(text.split())[:300]


def listen(client: httpx.Client, arrivals: dict[str, float], ready: threading.Event, kind: str,
           refused: list[str] | None = None) -> None:
    """Record when each item of `kind` first arrives on the agent's live stream (route deviations by
    trip id, incidents by id)."""
    def handle(item: dict[str, object]) -> None:
        if kind == "route_deviation" and item.get("type") == "alert" and item["kind"] == kind:
            arrivals.setdefault(str(item["trip_id"]), time.perf_counter())
        elif kind == "incident" and item.get("type") == "incident":
            arrivals.setdefault(str(item["id"]), time.perf_counter())

    follow(client, ready, handle, refused)


def listen_ready(client: httpx.Client, arrivals: dict[str, float], *, kind: str) -> list[str]:
    """Open the stream in a daemon thread and wait until it is connected; raises StreamRefused if it was
    not. The list returned gets a line if the stream breaks later (check it before reporting)."""
    ready = threading.Event()
    refused: list[str] = []
    threading.Thread(target=listen, args=(client, arrivals, ready, kind, refused), daemon=True).start()
    opened(ready, refused)
    return refused


def opened(ready: threading.Event, refused: list[str], timeout: float = 15) -> None:
    """Raise unless the stream said hello within `timeout` seconds."""
    if not ready.wait(timeout):
        raise StreamRefused(f"the live stream did not open within {timeout:g} s")
    if refused:
        raise StreamRefused(refused[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env, api_key = prepare(Path(tmp))
        with served(env, args.port) as base:
            arrivals: dict[str, float] = {}
            refused = listen_ready(sign_in(base), arrivals, kind="route_deviation")
            feeder = httpx.Client(base_url=base, timeout=30,
                                  headers={"Authorization": f"Bearer {api_key}",
                                           "Content-Type": "application/x-ndjson"})
            t0 = time.time()
            ids = [f"LAT{k}" for k in range(args.trips)]
            starts = [{"type": "trip_started", "trip_id": i, "ts": iso(t0), "vehicle_id": f"V{k}",
                       "pickup": ROUTE[0], "dropoff": ROUTE[-1], "route": ROUTE} for k, i in enumerate(ids)]
            feeder.post("/api/v1/telematics/events", content="\n".join(json.dumps(s) for s in starts))
            deviating = {i: 5 + k % (args.rounds - 10) for k, i in enumerate(ids) if k % 10 == 0}
            sent_at: dict[str, float] = {}
            batch_ms = []
            for r in range(1, args.rounds + 1):
                tick = time.perf_counter()
                lines = []
                for i in ids:
                    off = i in deviating and r >= deviating[i]
                    lines.append(json.dumps({"type": "ping", "trip_id": i, "ts": iso(t0 + 15 * r),
                                             "lon": ROUTE[min(r, len(ROUTE) - 1)][0],
                                             "lat": 41.14 + (0.006 if off else 0.0)}))
                    if off and r == deviating[i] + 2:  # deviation_seconds = 30: the third ping off the route
                        sent_at[i] = tick
                feeder.post("/api/v1/telematics/events", content="\n".join(lines)).raise_for_status()
                batch_ms.append((time.perf_counter() - tick) * 1000)
                time.sleep(max(0.0, args.period - (time.perf_counter() - tick)))
            time.sleep(2)
            if refused:
                raise StreamRefused(refused[0])
    latencies = np.array([(arrivals[i] - sent_at[i]) * 1000 for i in sent_at if i in arrivals])
    missing = len(sent_at) - len(latencies)
    body = "\n".join([
        "## Ping-to-alert latency in the server (`bench/latency.py`)", "",
        (f"Command: `.venv/bin/python -m bench.latency --trips {args.trips} --rounds {args.rounds} "
        f"--period {args.period}`. {machine_line()} `tripguard serve` on SQLite, one batch of {args.trips:,} pings "
        f"every {args.period:g} s over HTTP, a safety agent's live stream open; {len(sent_at)} route deviations, "
        "timed from just before the POST to the alert on the agent's stream."), "",
        "| p50 | p90 | p99 | max | alerts missed | batch of pings, POST to response (p50) | target |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        (f"| {np.percentile(latencies, 50):,.0f} ms | {np.percentile(latencies, 90):,.0f} ms | "
        f"{np.percentile(latencies, 99):,.0f} ms | {latencies.max():,.0f} ms | {missing} | "
        f"{np.percentile(batch_ms, 50):,.0f} ms | p99 < 1 s |"),
    ])
    write_section("latency", body)
    print(body)


if __name__ == "__main__":
    main()
