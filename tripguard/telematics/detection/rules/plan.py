"""A trip's start: its plan (pickup, drop-off, planned route) into the batched monitor's columns.

The reference (`monitor.Monitor`) starts one trip at a time; here a round's starts (each of another
trip) are taken together, with the same outcome: a trip already started is left alone, a trip first
heard of by a ping gets a fresh slot, and every route's segments are `Route.from_lonlat`'s, to the bit.
The starts come as objects or, from the reader, as columns (`StartColumns`): both become one `Plans`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tripguard.telematics.ingest.columns import EventColumns
from tripguard.telematics.ingest.events import Point, Points, TripStarted
from tripguard.telematics.ingest.geo import route_points

if TYPE_CHECKING:
    from tripguard.telematics.detection.fast_monitor import BatchMonitor

NAN = float("nan")
_NOWHERE = (NAN, NAN)


@dataclass
class Plans:
    """A round's trip starts, in stream order."""

    at: list[int]  # each start's position in the run
    trip_ids: list[str]
    vehicle_ids: list[str | None]
    places: list[tuple[float, float, float, float]]  # pickup lon, lat, drop-off lon, lat; NaN where not given
    routes: list[np.ndarray | None]  # (n, 2) lon, lat; None: no route


def round_plans(positions: np.ndarray, columns: EventColumns) -> Plans:
    """The starts among the events at these positions (ascending): objects in `others`, or `starts`."""
    others, starts = columns.others, columns.starts
    plans = Plans([], [], [], [], [])
    rows: list[int] = []
    row_at: list[int] = []
    if starts is not None:
        found = np.searchsorted(starts.at, positions)
        hit = found < len(starts)
        hit[hit] = starts.at[found[hit]] == positions[hit]
        rows, row_at = found[hit].tolist(), positions[hit].tolist()
    places = starts.places[rows].tolist() if starts is not None else []
    taken = 0
    for k in positions.tolist():
        event = others.get(k)
        if isinstance(event, TripStarted):
            plans.at.append(k)
            plans.trip_ids.append(event.trip_id)
            plans.vehicle_ids.append(event.vehicle_id)
            plans.places.append((*(event.pickup or _NOWHERE), *(event.dropoff or _NOWHERE)))
            plans.routes.append(_array(event.route) if event.route else None)
        elif taken < len(rows) and row_at[taken] == k:
            row = rows[taken]
            plans.at.append(k)
            plans.trip_ids.append(columns.trip_ids[k])
            plans.vehicle_ids.append(starts.vehicle_ids[row])  # type: ignore[union-attr]
            plans.places.append(places[taken])
            plans.routes.append(starts.route(row))  # type: ignore[union-attr]
            taken += 1
    return plans


def start_rows(monitor: BatchMonitor, plans: Plans, times: np.ndarray) -> None:
    """Start these trips (`times`: the run's event times); each trip at most once."""
    started, slot_of = monitor.b["started"], monitor.slot_of
    fresh: list[int] = []
    again: list[str] = []
    for n, trip_id in enumerate(plans.trip_ids):
        known = slot_of.get(trip_id)
        if known is not None and started[known]:
            continue
        if known is not None:
            again.append(trip_id)  # pings came before its start: it starts afresh
        fresh.append(n)
    if not fresh:
        return
    if again:
        monitor._release_many(again)
    slots = monitor._allocate_many([plans.trip_ids[n] for n in fresh])
    f, b = monitor.f, monitor.b
    b["started"][slots] = True
    for slot, n in zip(slots.tolist(), fresh, strict=True):
        monitor.vehicle_of[slot] = plans.vehicle_ids[n]
    routes = [plans.routes[n] for n in fresh]
    places = np.array([plans.places[n] for n in fresh], dtype=np.float64).reshape(-1, 4)
    for n, route in enumerate(routes):  # no pickup: the route's first point; no drop-off: its last
        if route is not None and places[n, 0] != places[n, 0]:
            places[n, :2] = route[0]
        if route is not None and places[n, 2] != places[n, 2]:
            places[n, 2:] = route[-1]
    f["pickup_lon"][slots], f["pickup_lat"][slots] = places[:, 0], places[:, 1]
    f["dropoff_lon"][slots], f["dropoff_lat"][slots] = places[:, 2], places[:, 3]
    routed = [n for n, route in enumerate(routes) if route is not None]
    if routed:
        points, lengths, frames = route_points([routes[n] for n in routed])  # type: ignore[misc]
        where = slots[routed]
        monitor.store_routes(where, points, lengths)
        b["has_route"][where] = True
        f["lon0"][where], f["lat0"][where], f["kx"][where] = frames.T
    positions = np.array([plans.at[n] for n in fresh], dtype=np.int64)
    start_times = times[positions]
    f["last_ts"][slots], b["has_last"][slots] = start_times, True
    monitor._set_at[slots] = positions + 1
    monitor._next_deadline = min(monitor._next_deadline,
                                 float(start_times.min()) + monitor.config.gps_lost_seconds)


def _array(route: Sequence[Point]) -> np.ndarray:
    return route.array if isinstance(route, Points) else np.asarray(route, dtype=np.float64).reshape(-1, 2)
