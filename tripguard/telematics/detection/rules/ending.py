"""early_end: the trip ends farther than `early_end_m` from the planned drop-off.

Where the trip ended is looked at twice: the newest position (the end event's own, when it carries
one, else the last trusted fix), and the low median of the last `RECENT` positions. It alerts only
when both are far: one wild fix at the end neither makes nor hides an early end on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tripguard.telematics.detection.contract import Alert
from tripguard.telematics.detection.rules.common import low_median
from tripguard.telematics.ingest.events import TripEnded, format_ts
from tripguard.telematics.ingest.geo import haversine_m, haversine_rows

if TYPE_CHECKING:
    from tripguard.telematics.detection.fast_monitor import BatchMonitor

RECENT = 3


def where_it_ended(recent: list[tuple[float, float]], lon: float | None, lat: float | None,
                   dropoff: tuple[float, float]) -> tuple[float, float, float] | None:
    """(distance to the drop-off, lon, lat) of the nearer of the newest position and the recent median."""
    points = [*recent, (lon, lat)] if lon is not None and lat is not None else list(recent)
    points = points[-RECENT:]
    if not points:
        return None
    middle = (low_median([p[0] for p in points]), low_median([p[1] for p in points]))
    return min((haversine_m(x, y, dropoff[0], dropoff[1]), x, y) for x, y in (points[-1], middle))


def remember_rows(monitor: BatchMonitor, s: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> None:
    """Keep each trip's last RECENT trusted positions (a ring)."""
    w, i = monitor.w, monitor.i
    n = i["recent_n"][s]
    w["recent_x"][s, n % RECENT], w["recent_y"][s, n % RECENT] = lon, lat
    i["recent_n"][s] = n + 1


def recent_of(monitor: BatchMonitor, slot: int) -> list[tuple[float, float]]:
    """A trip's last positions, oldest first, as the reference keeps them."""
    n = int(monitor.i["recent_n"][slot])
    return [(float(monitor.w["recent_x"][slot, k % RECENT]), float(monitor.w["recent_y"][slot, k % RECENT]))
            for k in range(max(0, n - RECENT), n)]


def end_rows(monitor: BatchMonitor, ends: list[TripEnded], alerts: list[Alert]) -> None:
    """End these trips (each at most once; one never heard of is ignored): forget them, and alert where one
    ended farther than `early_end_m` from its drop-off.

    `where_it_ended` alerts only when the newest position is far too, so it runs only on the trips whose
    newest position is (on whole columns, with a metre to spare for rounding): the figures are its own."""
    ends = [event for event in ends if event.trip_id in monitor.slot_of]
    if not ends:
        return
    slots = np.array([monitor.slot_of[event.trip_id] for event in ends], dtype=np.int64)
    f, w, i = monitor.f, monitor.w, monitor.i
    counts = i["recent_n"][slots]
    newest = np.maximum(counts - 1, 0) % RECENT
    at_end = np.array([(np.nan, np.nan) if e.lon is None or e.lat is None else (e.lon, e.lat) for e in ends])
    given = ~np.isnan(at_end[:, 0])
    rows = np.arange(len(ends))
    lon = np.where(given, at_end[:, 0], w["recent_x"][slots, newest])
    lat = np.where(given, at_end[:, 1], w["recent_y"][slots, newest])
    with np.errstate(invalid="ignore"):
        far = (given | (counts > 0)) & (haversine_rows(lon, lat, f["dropoff_lon"][slots], f["dropoff_lat"][slots])
                                         > monitor.config.early_end_m - 1.0)  # NaN (no drop-off): never far
    candidates = rows[far].tolist()
    recent = {k: recent_of(monitor, int(slots[k])) for k in candidates}
    dropoffs = {k: (float(f["dropoff_lon"][slots[k]]), float(f["dropoff_lat"][slots[k]])) for k in candidates}
    monitor._release_many([event.trip_id for event in ends])
    ended = monitor._ended
    for event in ends:
        ended[event.trip_id] = None
        if len(ended) > monitor.ended_memory:
            del ended[next(iter(ended))]
    for k in candidates:
        event = ends[k]
        where = where_it_ended(recent[k], event.lon, event.lat, dropoffs[k])
        if where is not None and where[0] > monitor.config.early_end_m:
            alerts.append(Alert(event.trip_id, "early_end", event.ts, where[1], where[2],
                                {"distance_to_dropoff_m": round(where[0]), "since": format_ts(event.ts)}))
