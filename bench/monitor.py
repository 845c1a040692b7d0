"""Trip-monitor benchmark on the real Porto trips (reference implementation).

    .venv/bin/python -m bench.monitor [--repeat 5]

Measures, on one core: replay from NDJSON end to end (parse + detect), and detection alone on
pre-parsed events. Writes its section of docs/benchmarks.md, with the issue's targets beside.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

from bench.report import machine_line, write_section
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics.events import Ping, TripEnded, parse_event, parse_ndjson
from tripguard.telematics.monitor import Monitor


def best_of(repeat: int, work) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    events, _ = build_stream(load_trips())
    lines = [json.dumps(e, separators=(",", ":")) for e in events]
    parsed = [parse_event(e) for e in events]
    pings = sum(1 for e in parsed if isinstance(e, Ping))

    def replay() -> None:
        monitor = Monitor()
        for _, item in parse_ndjson(lines):
            monitor.process(item)  # type: ignore[arg-type]

    def detect() -> None:
        monitor = Monitor()
        for event in parsed:
            monitor.process(event)

    replay_s = best_of(args.repeat, replay)
    detect_s = best_of(args.repeat, detect)
    tracemalloc.start()
    monitor = Monitor()
    for event in parsed:  # every trip started, none ended: the state of all trips at once
        if not isinstance(event, TripEnded):
            monitor.process(event)
    active = len(monitor.trips)
    per_trip = tracemalloc.get_traced_memory()[0] / max(active, 1)
    tracemalloc.stop()

    body = "\n".join([
        "## Trip monitor (`bench/monitor.py`)", "",
        f"Command: `.venv/bin/python -m bench.monitor --repeat {args.repeat}`. {machine_line()} One core; the "
        f"318 Porto trips re-timed into one stream ({len(events):,} events, {pings:,} pings); best of {args.repeat}.",
        "This is the plain reference implementation; the batched numpy core the issue asks for is not built yet.", "",
        "| measure | reference today | target (issue 4) |", "| --- | ---: | ---: |",
        f"| detection on pre-parsed events | {pings / detect_s:,.0f} pings/s | 1,000,000 pings/s |",
        f"| replay from NDJSON, end to end | {pings / replay_s:,.0f} pings/s | 300,000 pings/s |",
        f"| memory per active trip, route included (Porto routes: ~45 points) | {per_trip / 1024:,.1f} KB "
        f"({active} trips) | ≤ 2 KB plus its route, at 100,000 trips |",
    ])
    write_section("monitor", body)
    print(body)


if __name__ == "__main__":
    main()
