"""Trip-monitor benchmark on the real Porto trips: throughput, memory, and two libraries beside it.

    .venv/bin/python -m bench.monitor [--repeat 3] [--city 32] [--live-trips 100000]

One core throughout. Workloads, all from the 318 real Porto trajectories:
- "live city": N trips under way at once, each sending one ping per batch (what the server sees
  every 15 s from a city of N cars), as pre-parsed columns; all detectors on, routes included;
- "Porto x K": every trip K times with its own id, re-timed so K times as many run at once, as a
  stream of event objects (starts, pings, ends) and as NDJSON lines (the replay command's path);
- the reference monitor on the same stream, for comparison.
Memory is the monitor's own allocation (tracemalloc) with 100,000 trips under way.
The stop detection of movingpandas and trackintel runs on the same Porto points when the
`bench` dependency group is installed (`uv sync --group bench`).
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
import warnings
from collections.abc import Callable
from datetime import timedelta

import numpy as np

from bench.report import best_of, machine_line, write_section
from tripguard.sim.porto import PortoTrip, build_stream, copies, load_trips
from tripguard.telematics.detection.fast_monitor import BatchMonitor
from tripguard.telematics.detection.monitor import Monitor
from tripguard.telematics.ingest.columns import EventColumns, parse_ndjson_columns
from tripguard.telematics.ingest.events import Ping, TripStarted, parse_event
from tripguard.telematics.ingest.reader import read_ndjson

T0 = 1_772_352_000.0


def start_live_city(monitor: BatchMonitor, trips: list[PortoTrip], n: int) -> list[str]:
    ids = [f"C{k}" for k in range(n)]
    monitor.process([TripStarted(ids[k], T0, f"V{k}", f"D{k}", trips[k % len(trips)].points[0],
                                 trips[k % len(trips)].points[-1], tuple(trips[k % len(trips)].points))
                     for k in range(n)])
    return ids


def live_batches(trips: list[PortoTrip], ids: list[str], rounds: int) -> list[EventColumns]:
    n = len(ids)
    batches = []
    for r in range(1, rounds + 1):
        points = [trips[k % len(trips)].points[min(r, len(trips[k % len(trips)].points) - 1)] for k in range(n)]
        xy = np.asarray(points)
        batches.append(EventColumns.of_pings(ids, np.full(n, T0 + 15 * r), xy[:, 0].copy(), xy[:, 1].copy()))
    return batches


def live_city_rate(trips: list[PortoTrip], n: int, rounds: int, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        monitor = BatchMonitor()
        ids = start_live_city(monitor, trips, n)
        batches = live_batches(trips, ids, rounds)
        started = time.perf_counter()
        for batch in batches:
            monitor.process_columns(batch)
        best = max(best, n * rounds / (time.perf_counter() - started))
    return best


def memory_per_trip(trips: list[PortoTrip], n: int) -> tuple[float, float]:
    """Bytes per trip under way: the monitor's state without routes, and the routes alone."""
    tracemalloc.start()
    monitor = BatchMonitor()
    ids = start_live_city(monitor, trips, n)
    monitor.process_columns(live_batches(trips, ids, 1)[0])
    total = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    routes = monitor.points.nbytes  # every live route's points (two numbers each), with room to grow
    return (total - routes) / n, routes / n


def library_stop_detection(trips: list[PortoTrip]) -> list[str]:
    """movingpandas and trackintel on the same points: seconds per point, stops found."""
    try:
        import geopandas as gpd
        import movingpandas as mpd
        import pandas as pd
        import trackintel as ti
    except ImportError:
        return ["movingpandas / trackintel: not installed (`uv sync --group bench`), not measured."]
    warnings.filterwarnings("ignore")
    rows = [(t.trip_id, pd.Timestamp(ts, unit="s", tz="UTC"), lon, lat)
            for t in trips for (lon, lat), ts in zip(t.points, t.times, strict=True)]
    frame = pd.DataFrame(rows, columns=["trip", "t", "lon", "lat"])
    points = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame.lon, frame.lat), crs="EPSG:4326")
    started = time.perf_counter()
    collection = mpd.TrajectoryCollection(points.set_index("t"), "trip")
    stops = mpd.TrajectoryStopDetector(collection).get_stop_points(min_duration=timedelta(seconds=600),
                                                                   max_diameter=100)
    mpd_s = time.perf_counter() - started
    fixes = ti.Positionfixes(points.rename(columns={"trip": "user_id", "t": "tracked_at"})[
        ["user_id", "tracked_at", "geometry"]])
    started = time.perf_counter()
    _, staypoints = fixes.generate_staypoints(method="sliding", dist_threshold=50, time_threshold=10,
                                              gap_threshold=15, n_jobs=1, print_progress=False)
    ti_s = time.perf_counter() - started
    n = len(points)
    return [(f"| movingpandas {mpd.__version__} `TrajectoryStopDetector` (diameter 100 m, 10 min) | "
            f"{mpd_s / n * 1e6:,.1f} µs | {len(stops)} stops |"),
            (f"| trackintel {ti.__version__} `generate_staypoints` (sliding, 50 m, 10 min) | "
            f"{ti_s / n * 1e6:,.1f} µs | {len(staypoints)} staypoints |")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--city", type=int, default=32, help="copies of the Porto trips in the dense stream")
    parser.add_argument("--live-trips", type=int, default=100_000)
    args = parser.parse_args()
    trips = load_trips()

    porto_events, _ = build_stream(trips)
    porto = [parse_event(e) for e in porto_events]
    porto_pings = sum(1 for e in porto if isinstance(e, Ping))
    dense_events, _ = build_stream(copies(trips, args.city), stagger_s=8.0 / args.city)
    dense = [parse_event(e) for e in dense_events]
    dense_pings = sum(1 for e in dense if isinstance(e, Ping))
    lines = [json.dumps(e, separators=(",", ":")) for e in dense_events]
    chunks = ["\n".join(lines[start:start + 20_000]).encode() for start in range(0, len(lines), 20_000)]

    def reference(events: list) -> Callable[[], None]:  # type: ignore[type-arg]
        def work() -> None:
            monitor = Monitor()
            for event in events:
                monitor.process(event)
        return work

    def batched(events: list, size: int = 10_000) -> Callable[[], None]:  # type: ignore[type-arg]
        def work() -> None:
            monitor = BatchMonitor()
            for start in range(0, len(events), size):
                monitor.process(events[start:start + size])
        return work

    def replay() -> None:  # what `tripguard monitor replay` does, in one process (bench/replay.py: the command)
        monitor, gcj = BatchMonitor(), {}  # type: ignore[var-annotated]
        for number, chunk in enumerate(chunks):
            columns, _ = read_ndjson(chunk, gcj, first_line=number * 20_000 + 1)
            monitor.process_columns(columns)

    live = live_city_rate(trips, args.live_trips, 20, args.repeat)
    reference_porto = porto_pings / best_of(args.repeat, reference(porto))
    batched_porto = porto_pings / best_of(args.repeat, batched(porto))
    reference_dense = dense_pings / best_of(1, reference(dense))
    batched_dense = dense_pings / best_of(args.repeat, batched(dense))
    replay_rate = dense_pings / best_of(args.repeat, replay)
    parse_rate = len(lines) / best_of(args.repeat, lambda: parse_ndjson_columns(lines))
    read_rate = len(lines) / best_of(args.repeat, lambda: [read_ndjson(chunk) for chunk in chunks])
    state, route = memory_per_trip(trips, 100_000)
    per_point_ours = 1e6 / batched_porto
    libraries = library_stop_detection(trips)

    body = "\n".join([
        "## Trip monitor (`bench/monitor.py`)", "",
        (f"Command: `.venv/bin/python -m bench.monitor --repeat {args.repeat} --city {args.city} "
        f"--live-trips {args.live_trips}`. {machine_line()} One core; best of {args.repeat}. "
        f"Porto: the 318 real trips re-timed into one stream ({porto_pings:,} pings, about 20 under way at once); "
        f"Porto x{args.city}: each trip {args.city} times ({dense_pings:,} pings, about {20 * args.city:,} at once); "
        f"live city: {args.live_trips:,} trips under way, one ping each per batch, 20 batches."), "",
        "| measure | result | target (issue 4) |", "| --- | ---: | ---: |",
        (f"| detection on pre-parsed batches, live city (columns, all detectors, routes) | {live:,.0f} pings/s "
        f"| 1,000,000 pings/s |"),
        (f"| detection on pre-parsed event objects, Porto x{args.city}, 10,000-event batches | "
        f"{batched_dense:,.0f} pings/s | |"),
        f"| the same, reference implementation | {reference_dense:,.0f} pings/s | |",
        (f"| detection on the thin Porto stream (batched / reference) | {batched_porto:,.0f} / "
        f"{reference_porto:,.0f} pings/s | |"),
        (f"| NDJSON to alerts in one process, one core, Porto x{args.city} (read + detect) | "
        f"{replay_rate:,.0f} pings/s | 300,000 pings/s |"),
        (f"| reading and checking NDJSON alone into columns: Arrow reader / line parser | {read_rate:,.0f} / "
        f"{parse_rate:,.0f} lines/s | |"),
        (f"| memory per trip under way, 100,000 trips: state / its route (Porto routes ≈ 45 points; the shared "
        f"point array, up to a quarter more than the live routes fill) | "
        f"{state:,.0f} B / {route:,.0f} B | ≤ 2 KB in all (issue 30) |"),
        "", ("Stop detection side by side on the same 14,436 Porto points (per point; TripGuard's figure is "
        "all seven detectors at once, from the thin-stream run above):"), "",
        "| implementation | per point | found |", "| --- | ---: | ---: |",
        f"| TripGuard batched monitor, all detectors | {per_point_ours:,.1f} µs | (alerts, not stops) |",
        *libraries,
    ])
    write_section("monitor", body)
    print(body)


if __name__ == "__main__":
    main()
