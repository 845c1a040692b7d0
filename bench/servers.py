"""The HTTP server, chosen by measurement: uvicorn (httptools, uvloop) against Granian, side by side.

    .venv/bin/python -m bench.servers [--rounds 3] [--seconds 5] [--connections 32] [--workers 20000]

Needs the `bench` dependency group (`uv sync --group bench`: Granian). Each server runs, one process each, in
turn within every round (so both meet the same machine): the empty FastAPI app (`bench/ceiling_app.py`, the
framework's own ceiling) and TripGuard's dispatch gate (`tripguard.app:create_app` on the SQLite database
`bench.eligibility` prepares, every blocker source asked). The load is `bench.eligibility`'s: asyncio keep-alive
connections in this process, on the same cores. Reported: the median over the rounds of requests a second and
of the p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import numpy as np

from bench.eligibility import _check_the_path, _load, prepare
from bench.report import machine_line, write_section

BIN = Path(sys.executable).parent
PORT = 8901


def commands(app: str, factory: bool) -> dict[str, list[str]]:
    return {
        "uvicorn (httptools, uvloop)": [str(BIN / "uvicorn"), app, *(["--factory"] if factory else []),
                                        "--port", str(PORT), "--log-level", "warning", "--http", "httptools",
                                        "--loop", "uvloop"],
        "Granian (ASGI, uvloop)": [str(BIN / "granian"), "--interface", "asgi", *(["--factory"] if factory else []),
                                   "--port", str(PORT), "--log-level", "warning", "--loop", "uvloop", app],
    }


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], ready: str) -> Iterator[None]:
    server = subprocess.Popen(command, env=env, cwd=Path(__file__).parent.parent, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            if server.poll() is not None:
                raise SystemExit(f"{command[0]} ended: {server.stderr.read().decode()[-800:] if server.stderr else ''}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{PORT}{ready}", timeout=1).status_code < 500:
                    break
            time.sleep(0.1)
        else:
            raise SystemExit(f"{command[0]} did not answer within 30 s")
        yield
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def measure(key: str, workers: int, seconds: float, connections: int) -> tuple[float, float]:
    latencies, errors, elapsed = asyncio.run(_load(f"http://127.0.0.1:{PORT}", key, workers, seconds, connections))
    if errors or not latencies:
        raise SystemExit(f"{len(errors)} requests failed ({sorted(set(errors))}): no figure from a failing server")
    return len(latencies) / elapsed, float(np.percentile(np.array(latencies) * 1000, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=20000)
    args = parser.parse_args()
    if importlib.util.find_spec("granian") is None:
        raise SystemExit("Granian is not installed: `python3 -m uv sync --group bench` first")
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env, key = prepare(Path(tmp), args.workers, None)
        apps = {"empty FastAPI app": ("bench.ceiling_app:app", False, os.environ.copy(), "-"),
                "TripGuard's dispatch gate (SQLite)": ("tripguard.app:create_app", True, env, key)}
        for round_ in range(args.rounds):
            for app_name, (app, factory, app_env, app_key) in apps.items():
                for server, command in commands(app, factory).items():
                    with running(command, app_env, "/api/v1/workers/x/eligibility"):
                        if app_key != "-":
                            _check_the_path(f"http://127.0.0.1:{PORT}", app_key)
                        rate, p99 = measure(app_key, args.workers, args.seconds, args.connections)
                    results.setdefault((app_name, server), []).append((rate, p99))
                    print(f"round {round_ + 1}: {app_name}, {server}: {rate:,.0f}/s, p99 {p99:.1f} ms", flush=True)
    rows = [f"| {app_name} | {server} | {statistics.median(r for r, _ in runs):,.0f} | "
            f"{statistics.median(p for _, p in runs):.1f} ms | {', '.join(f'{r:,.0f}' for r, _ in runs)} |"
            for (app_name, server), runs in results.items()]
    body = "\n".join([
        "## HTTP server (`bench/servers.py`)", "",
        (f"Command: `.venv/bin/python -m bench.servers --rounds {args.rounds} --seconds {args.seconds:g} "
         f"--connections {args.connections}` (after `uv sync --group bench`). {machine_line()} One server process "
         "each, in turn within every round; the load generator (asyncio, keep-alive) beside it on the same cores."),
        "", "| app | server | requests/s (median) | p99 (median) | each round |", "| --- | --- | ---: | ---: | --- |",
        *rows])
    write_section("servers", body)
    print(body)


if __name__ == "__main__":
    main()
