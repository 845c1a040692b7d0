"""route_deviation: farther than `deviation_m` from the planned route for `deviation_seconds`.

Leaving and rejoining the route are both confirmed (`common.Held`): a multipath jump off the route
neither starts the clock nor, during a real deviation, stops it. The alert is dated when the
condition has held for `deviation_seconds` since its first fix off the route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tripguard.telematics.detection.contract import MonitorConfig
from tripguard.telematics.detection.rules.common import Held, held_rows
from tripguard.telematics.ingest.geo import LocalFrame, nearest_segment

if TYPE_CHECKING:
    from tripguard.telematics.detection.fast_monitor import BatchMonitor

_WINDOW = np.arange(-2, 6)
_KY = LocalFrame(0.0, 0.0).ky  # metres per degree of latitude, as every route's frame has it


def step(held: Held, distance: float, ts: float, config: MonitorConfig) -> bool:
    """Take one fix's distance from the route; True when the deviation alerts now."""
    off = distance > config.deviation_m
    held.update(off, ts, config)
    return held.fires(off, ts, config.deviation_seconds)


def step_rows(monitor: BatchMonitor, s: np.ndarray, ts: np.ndarray,
              distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`step` for many trips; where it alerts, and since when."""
    config = monitor.config
    return held_rows(monitor, "dev", s, ts, distance > config.deviation_m, config.deviation_seconds)


def distance_rows(monitor: BatchMonitor, s: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Each trip's distance from its route. A window of segments around the trip's progress is looked at
    first; only a position outside the deviation threshold in that window is measured against the whole
    route (the reference's own computation), so the on/off-route decision and the evidence are exact."""
    f, i = monitor.f, monitor.i
    px = (lon - f["lon0"][s]) * f["kx"][s]
    py = (lat - f["lat0"][s]) * _KY
    length = i["route_len"][s]
    window = np.clip(i["seg"][s][:, None] + _WINDOW, 0, (length - 1)[:, None])
    index = i["route_at"][s][:, None] + window
    ax, ay = np.take(monitor.points, index, axis=1)  # a segment is two neighbouring points: (trips, window) each
    bx, by = np.take(monitor.points, index + 1, axis=1)
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    rx, ry = px[:, None] - ax, py[:, None] - ay
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(length2 > 0, (rx * dx + ry * dy) / length2, 0.0)
    np.clip(t, 0.0, 1.0, out=t)
    ex, ey = rx - t * dx, ry - t * dy
    squared = ex * ex + ey * ey
    best = np.argmin(squared, axis=1)
    rows = np.arange(len(s))
    distance: np.ndarray = np.sqrt(squared[rows, best])
    i["seg"][s] = window[rows, best]
    for k in np.flatnonzero(distance > monitor.config.deviation_m).tolist():
        slot = int(s[k])
        at, count = int(i["route_at"][slot]), int(i["route_len"][slot])
        xs, ys = monitor.points[:, at:at + count + 1]
        dx, dy = xs[1:] - xs[:-1], ys[1:] - ys[:-1]
        exact, segment = nearest_segment((float(lon[k]) - float(f["lon0"][slot])) * float(f["kx"][slot]),
                                         (float(lat[k]) - float(f["lat0"][slot])) * _KY, xs[:-1], ys[:-1], dx, dy,
                                         dx * dx + dy * dy)
        distance[k] = exact
        i["seg"][slot] = segment
    return distance
