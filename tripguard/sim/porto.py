"""Real Porto taxi trips as a trip-monitoring event stream, optionally with injected anomalies.

Data: ECML/PKDD 2015 Taxi Service Trajectory data (city of Porto), UCI Machine Learning
Repository, CC BY 4.0; see data/ATTRIBUTION.md. The trips are re-timed to start a few seconds
apart from one moment, so that they run concurrently like a city's fleet. Each trip's planned
route is its own path; pickup and drop-off its first and last points.

Injected anomalies, each on trips of its own, with the moment the anomaly is complete (`onset`):
- route_deviation: from 40 % of the trip on, the vehicle drives 700 m to one side of its route;
  onset: the first ping at least 500 m off the route.
- long_stop: halfway, a 12-minute stop (jittering by a few metres) away from pickup and drop-off;
  onset: the stop has lasted 10 minutes.
- early_end: the trip ends at the last point still at least 1.2 km from the drop-off; onset: the end.
- gps_lost: a third of the way in, 4 minutes without pings; onset: 3 minutes into the silence.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tripguard.telematics.events import format_ts
from tripguard.telematics.geo import Route, haversine_m

DATA_FILE = Path(__file__).resolve().parent / "data" / "porto_trips.csv"
KINDS = ("route_deviation", "long_stop", "early_end", "gps_lost")
PING_PERIOD = 15.0
METRES_PER_DEGREE_LAT = 111_320.0


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
    onset: float


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


def _events_of(trip: PortoTrip, points: list[tuple[float, float]], times: list[float],
               route: list[tuple[float, float]]) -> list[tuple[float, int, dict[str, object]]]:
    start: dict[str, object] = {"type": "trip_started", "trip_id": trip.trip_id, "ts": format_ts(times[0]),
             "vehicle_id": f"V{trip.taxi_id}", "driver_id": f"D{trip.taxi_id}", "pickup": list(route[0]),
             "dropoff": list(route[-1]), "route": [list(p) for p in route], "crs": "wgs84"}
    events: list[tuple[float, int, dict[str, object]]] = [(times[0], 0, start)]
    for (lon, lat), ts in zip(points, times, strict=True):
        events.append((ts, 1, {"type": "ping", "trip_id": trip.trip_id, "ts": format_ts(ts), "lon": round(lon, 6),
                               "lat": round(lat, 6)}))
    events.append((times[-1], 2, {"type": "trip_ended", "trip_id": trip.trip_id, "ts": format_ts(times[-1]),
                                  "lon": round(points[-1][0], 6), "lat": round(points[-1][1], 6)}))
    return events


def _deviate(points: list[tuple[float, float]], times: list[float], route: Route) -> tuple[list, list, float] | None:
    k = int(len(points) * 0.4)
    for direction in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        shifted = list(points[:k])
        onset = None
        for j, (lon, lat) in enumerate(points[k:]):
            scale = min(1.0, (j + 1) / 2) * 700 / METRES_PER_DEGREE_LAT
            point = (lon + direction[0] * scale * 1.33, lat + direction[1] * scale)
            shifted.append(point)
            if onset is None and route.distance_m(*point) >= 500:
                onset = times[k + j]
        if onset is not None and times[-1] - onset >= 60:
            return shifted, times, onset
    return None


def _stop(points: list[tuple[float, float]], times: list[float], rng: random.Random):  # type: ignore[no-untyped-def]
    for k in range(len(points) // 2, len(points) - 2):
        lon, lat = points[k]
        if min(haversine_m(lon, lat, *points[0]), haversine_m(lon, lat, *points[-1])) >= 400:
            break
    else:
        return None
    stop_points = [(lon + rng.uniform(-3e-5, 3e-5), lat + rng.uniform(-3e-5, 3e-5)) for _ in range(48)]
    stop_times = [times[k] + PING_PERIOD * (i + 1) for i in range(48)]
    shift = PING_PERIOD * 48
    new_points = points[:k + 1] + stop_points + points[k + 1:]
    new_times = times[:k + 1] + stop_times + [t + shift for t in times[k + 1:]]
    return new_points, new_times, times[k] + 600


def _end_early(points: list[tuple[float, float]], times: list[float]):  # type: ignore[no-untyped-def]
    dropoff = points[-1]
    for m in range(len(points) - 2, 1, -1):
        if haversine_m(*points[m], *dropoff) >= 1200:
            return points[:m + 1], times[:m + 1], times[m]
    return None


def _lose_gps(points: list[tuple[float, float]], times: list[float]):  # type: ignore[no-untyped-def]
    k = len(points) // 3
    if len(points) < k + 20:
        return None
    keep = [i for i in range(len(points)) if not k < i <= k + 16]
    return [points[i] for i in keep], [times[i] for i in keep], times[k] + 180


def _inject(kind: str, points: list[tuple[float, float]], times: list[float], route: list[tuple[float, float]],
            rng: random.Random):  # type: ignore[no-untyped-def]
    if kind == "route_deviation":
        return _deviate(points, times, Route.from_lonlat(route))
    if kind == "long_stop":
        return _stop(points, times, rng)
    if kind == "early_end":
        return _end_early(points, times)
    return _lose_gps(points, times)


def build_stream(trips: Iterable[PortoTrip], *, start: datetime = datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
                 stagger_s: float = 8.0, inject: dict[str, int] | None = None,
                 seed: int = 7) -> tuple[list[dict[str, object]], list[Injection]]:
    """Every trip's events, merged in event-time order; and the anomalies injected (ground truth).

    `inject` maps an anomaly kind to how many trips receive it (each trip at most one anomaly).
    """
    rng = random.Random(seed)  # the stop's jitter
    wanted = dict(inject or {})
    injections: list[Injection] = []
    merged: list[tuple[float, int, dict[str, object]]] = []
    base = start.timestamp()
    for index, trip in enumerate(trips):
        offset = base + index * stagger_s - trip.times[0]
        times = [t + offset for t in trip.times]
        points = list(trip.points)
        route = list(trip.points)
        for kind in KINDS:  # the first trips that can take an anomaly get it, one kind each
            if wanted.get(kind, 0) <= 0:
                continue
            result = _inject(kind, points, times, route, rng)
            if result is None:
                continue
            points, times, onset = result
            wanted[kind] -= 1
            injections.append(Injection(trip.trip_id, kind, onset))
            break
        merged.extend(_events_of(trip, points, times, route))
    merged.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in merged], injections
