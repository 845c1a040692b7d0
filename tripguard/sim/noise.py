"""A seedable model of what real GPS receivers send, laid over clean trajectories (`--noise urban`).

What a city does to fixes (../shared/reference/gps_stops.md §2, and issue 10):
- Standing still, fixes scatter around the true spot: each trip draws its RMS error from
  `standing_scatter_m` (5-25 m), each fix an independent 2-D normal error of that size.
- Some chipsets clamp instead ("static navigation"): while standing they repeat the first position,
  then jump to the true one when the vehicle moves. A share `clamp_share` of trips do this.
- Multipath: a fix starts a jump of `multipath_m` (30-150 m) in a random direction with probability
  `multipath_rate`; the jump lasts one or two fixes.
- Moving, fixes wander about `moving_lateral_m` (10 m) across the direction of travel and half that
  along it.
- Delivery: a share `duplicate_rate` of fixes arrive twice, and `late_rate` arrive up to `late_max_s`
  (20 s) late, behind fixes sent after them.
- Speeds the device reports (when the stream carries them) are off by `speed_error_mps` (RMS).
The same seed gives the same stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tripguard.telematics.ingest.geo import haversine_m

METRES_PER_DEGREE_LAT = 111_320.0


@dataclass(frozen=True)
class NoiseModel:
    name: str
    standing_scatter_m: tuple[float, float] = (5.0, 25.0)
    clamp_share: float = 0.2
    multipath_rate: float = 0.02
    multipath_m: tuple[float, float] = (30.0, 150.0)
    moving_lateral_m: float = 10.0
    duplicate_rate: float = 0.02
    late_rate: float = 0.03
    late_max_s: float = 20.0
    speed_error_mps: float = 0.3
    standing_below_mps: float = 1.0  # true speed under which the vehicle counts as standing


MODELS = {"none": None, "urban": NoiseModel("urban")}


@dataclass(frozen=True)
class Fix:
    lon: float
    lat: float
    ts: float
    arrives: float  # when it reaches the server (the stream's order)
    speed: float | None


def _true_speeds(points: list[tuple[float, float]], times: list[float]) -> list[float]:
    speeds = []
    for k in range(len(points)):
        a, b = max(0, k - 1), min(len(points) - 1, k + 1)
        dt = times[b] - times[a]
        speeds.append(haversine_m(*points[a], *points[b]) / dt if dt > 0 else 0.0)
    return speeds


def apply(model: NoiseModel, points: list[tuple[float, float]], times: list[float], rng: np.random.Generator,
          speeds: list[float] | None = None) -> list[Fix]:
    """The fixes a device in this city would send along these true positions, in arrival order."""
    true_speed = _true_speeds(points, times)
    scatter = rng.uniform(*model.standing_scatter_m) / math.sqrt(2)  # per axis
    clamps = rng.random() < model.clamp_share
    kx = METRES_PER_DEGREE_LAT * math.cos(math.radians(points[0][1]))
    fixes: list[Fix] = []
    clamped: tuple[float, float] | None = None
    jump_left, jump = 0, (0.0, 0.0)
    for k, ((lon, lat), ts) in enumerate(zip(points, times, strict=True)):
        standing = true_speed[k] < model.standing_below_mps
        if standing:
            if clamps:
                clamped = clamped or (lon + rng.normal(0, scatter) / kx,
                                      lat + rng.normal(0, scatter) / METRES_PER_DEGREE_LAT)
                east, north = (clamped[0] - lon) * kx, (clamped[1] - lat) * METRES_PER_DEGREE_LAT
            else:
                east, north = rng.normal(0, scatter), rng.normal(0, scatter)
        else:
            clamped = None
            a, b = points[max(0, k - 1)], points[min(len(points) - 1, k + 1)]
            heading = math.atan2((b[1] - a[1]) * METRES_PER_DEGREE_LAT, (b[0] - a[0]) * kx)
            across, along = rng.normal(0, model.moving_lateral_m), rng.normal(0, model.moving_lateral_m / 2)
            east = along * math.cos(heading) - across * math.sin(heading)
            north = along * math.sin(heading) + across * math.cos(heading)
        if jump_left == 0 and rng.random() < model.multipath_rate:
            size, angle = rng.uniform(*model.multipath_m), rng.uniform(0, 2 * math.pi)
            jump, jump_left = (size * math.cos(angle), size * math.sin(angle)), int(rng.integers(1, 3))
        if jump_left:
            east, north = east + jump[0], north + jump[1]
            jump_left -= 1
        speed = None
        if speeds is not None:
            speed = max(0.0, speeds[k] + rng.normal(0, model.speed_error_mps)) if speeds[k] > 0 else 0.0
        late = rng.uniform(0, model.late_max_s) if rng.random() < model.late_rate else 0.0
        fix = Fix(lon + east / kx, lat + north / METRES_PER_DEGREE_LAT, ts, ts + late, speed)
        fixes.append(fix)
        if rng.random() < model.duplicate_rate:
            fixes.append(Fix(fix.lon, fix.lat, ts, ts + rng.uniform(0, model.late_max_s), speed))
    fixes.sort(key=lambda f: f.arrives)
    return fixes
