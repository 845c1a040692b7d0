"""A trip's start: its plan (pickup, drop-off, planned route) into the batched monitor's columns.

The reference (`monitor.Monitor`) starts one trip at a time; here a round's starts (each of another
trip) are taken together, with the same outcome: a trip already started is left alone, a trip first
heard of by a ping gets a fresh slot, and every route's segments are `Route.from_lonlat`'s, to the bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tripguard.telematics.ingest.events import Point, Points, TripStarted
from tripguard.telematics.ingest.geo import route_segments

if TYPE_CHECKING:
    from tripguard.telematics.detection.fast_monitor import BatchMonitor

NAN = float("nan")


def start_rows(monitor: BatchMonitor, starts: list[tuple[int, TripStarted]]) -> None:
    """Start these trips (position in the run, event); each trip at most once."""
    started, slot_of = monitor.b["started"], monitor.slot_of
    fresh: list[tuple[int, TripStarted]] = []
    again: list[str] = []
    for position, event in starts:
        known = slot_of.get(event.trip_id)
        if known is not None and started[known]:
            continue
        if known is not None:
            again.append(event.trip_id)  # pings came before its start: it starts afresh
        fresh.append((position, event))
    if not fresh:
        return
    if again:
        monitor._release_many(again)
    events = [event for _, event in fresh]
    slots = monitor._allocate_many([event.trip_id for event in events])
    f, b = monitor.f, monitor.b
    b["started"][slots] = True
    for slot, event in zip(slots.tolist(), events, strict=True):
        monitor.vehicle_of[slot] = event.vehicle_id
    ends = [(event.pickup or (event.route[0] if event.route else None),
             event.dropoff or (event.route[-1] if event.route else None)) for event in events]
    for k, names in enumerate((("pickup_lon", "pickup_lat"), ("dropoff_lon", "dropoff_lat"))):
        points = np.array([end[k] if end[k] is not None else (NAN, NAN) for end in ends], dtype=np.float64)
        f[names[0]][slots], f[names[1]][slots] = points[:, 0], points[:, 1]
    routed = [n for n, event in enumerate(events) if event.route]
    if routed:
        segments, lengths, frames = route_segments([_array(events[n].route) for n in routed])  # type: ignore[arg-type]
        where = slots[routed]
        monitor.store_routes(where, segments, lengths)
        b["has_route"][where] = True
        f["lon0"][where], f["lat0"][where], f["kx"][where] = frames.T
    times = np.array([event.ts for event in events], dtype=np.float64)
    f["last_ts"][slots], b["has_last"][slots] = times, True
    monitor._set_at[slots] = np.array([position for position, _ in fresh], dtype=np.int64) + 1
    monitor._next_deadline = min(monitor._next_deadline, float(times.min()) + monitor.config.gps_lost_seconds)


def _array(route: Sequence[Point]) -> np.ndarray:
    return route.array if isinstance(route, Points) else np.asarray(route, dtype=np.float64).reshape(-1, 2)
