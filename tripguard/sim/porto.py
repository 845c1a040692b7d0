"""Real Porto taxi trips as a trip-monitoring event stream, optionally with injected anomalies and noise.

Data: ECML/PKDD 2015 Taxi Service Trajectory data (city of Porto), UCI Machine Learning
Repository, CC BY 4.0; see data/ATTRIBUTION.md. The trips are re-timed to start a few seconds
apart from one moment, so that they run concurrently like a city's fleet. Each trip's planned
route is its own path; pickup and drop-off its first and last points.

Injected anomalies, each on trips of its own and of a size drawn from the seed, with `onset`: the
moment the situation meets the monitor's definition of it (MonitorConfig defaults), measured on the
true positions:
- route_deviation: from 40 % of the trip on, the vehicle drives 300-1,500 m to one side of its route;
  onset: it has been farther than `deviation_m` for `deviation_seconds` (never, for the few trips whose
  offset stays within `deviation_m` of some part of the route: those carry no onset and are not counted).
- long_stop: halfway, a stop of 10-20 minutes away from pickup and drop-off; onset: it has lasted
  `stop_seconds`.
- early_end: the trip ends at the last point still 0.5-3 km from the drop-off; onset: the end.
- gps_lost: a third of the way in, 2-10 minutes without pings; onset: `gps_lost_seconds` into it.
- possible_crash: the device reports its speed; at a moment it drives 50+ km/h it stops dead within
  3 s and stays for 3 minutes, then the trip ends; onset: still for `crash_still_seconds`.
With `noise`, every trip's fixes then pass through a `sim.noise` model (the truth is unchanged).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tripguard.sim.noise import Fix, NoiseModel, apply
from tripguard.telematics.detection.contract import MonitorConfig
from tripguard.telematics.ingest.events import format_ts
from tripguard.telematics.ingest.geo import Route, haversine_m

DATA_FILE = Path(__file__).resolve().parent / "data" / "porto_trips.csv"
KINDS = ("route_deviation", "long_stop", "early_end", "gps_lost", "possible_crash")
PING_PERIOD = 15.0
METRES_PER_DEGREE_LAT = 111_320.0
DEFINITION = MonitorConfig()


@dataclass(frozen=True)
class PortoTrip:
    trip_id: str
    taxi_id: str
    points: list[tuple[float, float]]
    times: list[float]


@dataclass(frozen=True)
class Injection:
    trip_id: str
    kind: str
    onset: float | None  # None: the injected situation never met the definition
    size: float  # metres (deviation, early end) or seconds (stop, gap, crash stillness)


@dataclass
class Track:
    points: list[tuple[float, float]]
    times: list[float]
    speeds: list[float] | None = None  # reported by the device, when it reports them


def load_trips(path: Path = DATA_FILE) -> list[PortoTrip]:
    trips = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            coordinates = row["shape"].removeprefix("LINESTRING (").removesuffix(")").split(",")
            points = [(float(lon), float(lat)) for lon, lat in (c.split() for c in coordinates)]
            times = [float(t) for t in row["timestamps"].split(",")]
            if len(points) == len(times) >= 2:
                trips.append(PortoTrip(row["TRIP_ID"], row["TAXI_ID"], points, times))
    return trips


def copies(trips: list[PortoTrip], times: int) -> list[PortoTrip]:
    """Each trip `times` times, each copy its own trip id (`<id>-<k>`): a denser city on real tracks."""
    if times == 1:
        return trips
    return [replace(t, trip_id=f"{t.trip_id}-{k}") for k in range(times) for t in trips]


def _events_of(trip: PortoTrip, fixes: list[Fix], route: list[tuple[float, float]], end: Fix,
               ) -> list[tuple[float, int, dict[str, object]]]:
    start: dict[str, object] = {"type": "trip_started", "trip_id": trip.trip_id, "ts": format_ts(fixes[0].ts),
             "vehicle_id": f"V{trip.taxi_id}", "driver_id": f"D{trip.taxi_id}", "pickup": list(route[0]),
             "dropoff": list(route[-1]), "route": [list(p) for p in route], "crs": "wgs84"}
    first = min(f.ts for f in fixes)
    events: list[tuple[float, int, dict[str, object]]] = [(first, 0, start)]
    for fix in fixes:
        ping: dict[str, object] = {"type": "ping", "trip_id": trip.trip_id, "ts": format_ts(fix.ts),
                                   "lon": round(fix.lon, 6), "lat": round(fix.lat, 6)}
        if fix.speed is not None:
            ping["speed_mps"] = round(fix.speed, 2)
        events.append((fix.arrives, 1, ping))
    last = max(f.arrives for f in fixes)
    events.append((last, 2, {"type": "trip_ended", "trip_id": trip.trip_id, "ts": format_ts(end.ts),
                             "lon": round(end.lon, 6), "lat": round(end.lat, 6)}))
    return events


def _true_speeds(points: list[tuple[float, float]], times: list[float]) -> list[float]:
    return [0.0] + [haversine_m(*points[k - 1], *points[k]) / max(times[k] - times[k - 1], 1.0)
                    for k in range(1, len(points))]


def _deviation_onset(points: list[tuple[float, float]], times: list[float], route: Route) -> float | None:
    run_since = None
    for (lon, lat), ts in zip(points, times, strict=True):
        if route.distance_m(lon, lat) > DEFINITION.deviation_m:
            run_since = ts if run_since is None else run_since
            if ts - run_since >= DEFINITION.deviation_seconds:
                return run_since + DEFINITION.deviation_seconds
        else:
            run_since = None
    return None


def _deviate(track: Track, route: Route, rng: random.Random) -> tuple[Track, float | None, float] | None:
    points, times = track.points, track.times
    k = int(len(points) * 0.4)
    size = rng.uniform(300, 1500)
    for direction in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        shifted = list(points[:k])
        for j, (lon, lat) in enumerate(points[k:]):
            scale = min(1.0, (j + 1) / 2) * size / METRES_PER_DEGREE_LAT
            shifted.append((lon + direction[0] * scale * 1.33, lat + direction[1] * scale))
        onset = _deviation_onset(shifted, times, route)
        if onset is not None and times[-1] - onset >= 60:
            return Track(shifted, times), onset, size
    return Track(shifted, times), None, size


def _stop(track: Track, rng: random.Random) -> tuple[Track, float | None, float] | None:
    points, times = track.points, track.times
    for k in range(len(points) // 2, len(points) - 2):
        lon, lat = points[k]
        if min(haversine_m(lon, lat, *points[0]), haversine_m(lon, lat, *points[-1])) >= 400:
            break
    else:
        return None
    fixes = int(rng.uniform(10, 20) * 60 / PING_PERIOD)
    stop_times = [times[k] + PING_PERIOD * (i + 1) for i in range(fixes)]
    shift = PING_PERIOD * fixes
    new = Track(points[:k + 1] + [points[k]] * fixes + points[k + 1:],
                times[:k + 1] + stop_times + [t + shift for t in times[k + 1:]])
    return new, times[k] + DEFINITION.stop_seconds, shift


def _end_early(track: Track, rng: random.Random) -> tuple[Track, float | None, float] | None:
    points, times = track.points, track.times
    dropoff, short = points[-1], rng.uniform(500, 3000)
    for m in range(len(points) - 2, 1, -1):
        if haversine_m(*points[m], *dropoff) >= short:
            return Track(points[:m + 1], times[:m + 1]), times[m], short
    return None


def _lose_gps(track: Track, rng: random.Random) -> tuple[Track, float | None, float] | None:
    points, times = track.points, track.times
    k = len(points) // 3
    gap = rng.uniform(120, 600)
    keep = [i for i in range(len(points)) if not times[k] < times[i] <= times[k] + gap]
    if len(keep) < k + 5 or keep[-1] <= k + 1:
        return None
    return Track([points[i] for i in keep], [times[i] for i in keep]), times[k] + DEFINITION.gps_lost_seconds, gap


def _crash(track: Track, rng: random.Random) -> tuple[Track, float | None, float] | None:
    points, times = track.points, track.times
    speeds = _true_speeds(points, times)
    fast = [k for k in range(3, len(points) - 1) if speeds[k] >= 15.0]  # 54 km/h: clear of the 50 km/h line
    if not fast:
        return None
    k = fast[len(fast) // 2]
    at = times[k] + rng.uniform(1.0, 3.0)
    still = [at + 10.0 * n for n in range(19)]  # three minutes, a fix every 10 s
    new = Track(points[:k + 1] + [points[k]] * len(still), times[:k + 1] + still,
                speeds[:k + 1] + [0.0] * len(still))
    return new, at + DEFINITION.crash_still_seconds, 180.0


def _inject(kind: str, track: Track, route: list[tuple[float, float]], rng: random.Random,
            ) -> tuple[Track, float | None, float] | None:
    if kind == "route_deviation":
        return _deviate(track, Route.from_lonlat(route), rng)
    if kind == "long_stop":
        return _stop(track, rng)
    if kind == "early_end":
        return _end_early(track, rng)
    if kind == "gps_lost":
        return _lose_gps(track, rng)
    return _crash(track, rng)


def build_stream(trips: Iterable[PortoTrip], *, start: datetime = datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
                 stagger_s: float = 8.0, inject: dict[str, int] | None = None, seed: int = 7,
                 noise: NoiseModel | None = None) -> tuple[list[dict[str, object]], list[Injection]]:
    """Every trip's events, merged in arrival order; and the anomalies injected (ground truth).

    `inject` maps an anomaly kind to how many trips receive it (each trip at most one anomaly).
    """
    rng = random.Random(seed)  # noqa: S311 - the anomalies' sizes, repeatable from the seed
    wanted = dict(inject or {})
    injections: list[Injection] = []
    merged: list[tuple[float, int, dict[str, object]]] = []
    base = start.timestamp()
    for index, trip in enumerate(trips):
        offset = base + index * stagger_s - trip.times[0]
        track = Track(list(trip.points), [t + offset for t in trip.times])
        route = list(trip.points)
        for kind in KINDS:  # the first trips that can take an anomaly get it, one kind each
            if wanted.get(kind, 0) <= 0:
                continue
            result = _inject(kind, track, route, rng)
            if result is None:
                continue
            track, onset, size = result
            wanted[kind] -= 1
            injections.append(Injection(trip.trip_id, kind, onset, round(size, 1)))
            break
        if noise is None:
            fixes = [Fix(lon, lat, ts, ts, None if track.speeds is None else track.speeds[k])
                     for k, ((lon, lat), ts) in enumerate(zip(track.points, track.times, strict=True))]
            end = fixes[-1]
        else:
            fixes = apply(noise, track.points, track.times, np.random.default_rng([seed, index]), track.speeds)
            end = max(fixes, key=lambda f: f.ts)
        merged.extend(_events_of(trip, fixes, route, end))
    merged.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in merged], injections
