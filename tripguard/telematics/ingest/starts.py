"""Trip starts as columns: what the reader takes of a start, with its planned route, and never an object.

The reader reads starts on whole columns (`arrow_rows`); the routes come out of Arrow as one array of
every route's points. `StartColumns` keeps them so, by each start's position in its batch (the trip and
the time are the batch's own columns there). The monitor takes them as they are (`rules.plan`); the
replay's hand-over sends them as arrays; `event` makes the `TripStarted` the line parser would make,
for every other reader of a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tripguard.telematics.ingest.events import Points, TripStarted


@dataclass
class StartColumns:
    """Trip starts in WGS-84 without place names, as columns; the k-th at position `at[k]` of its batch."""

    at: np.ndarray  # ascending
    vehicle_ids: list[str | None]
    driver_ids: list[str | None]
    passenger_ids: list[str | None]
    places: np.ndarray  # (n, 4): pickup lon, lat, drop-off lon, lat; NaN where not given
    route_from: np.ndarray  # a route is route_values[route_from:route_to] (lon, lat in turn); -1 in both: none
    route_to: np.ndarray
    route_values: np.ndarray  # every route's numbers

    def __len__(self) -> int:
        return len(self.at)

    def event(self, k: int, trip_id: str, ts: float) -> TripStarted:
        pickup_lon, pickup_lat, dropoff_lon, dropoff_lat = self.places[k].tolist()
        route = self.route(k)
        return TripStarted(trip_id, ts, self.vehicle_ids[k], self.driver_ids[k], _point(pickup_lon, pickup_lat),
                           _point(dropoff_lon, dropoff_lat), None if route is None else Points(route),
                           passenger_id=self.passenger_ids[k], crs="wgs84")

    def events(self, trip_ids: list[str], ts: np.ndarray) -> dict[int, TripStarted]:
        """Every start as an object, by position (`trip_ids` and `ts`: the batch's columns)."""
        return {k: self.event(n, trip_ids[k], float(ts[k])) for n, k in enumerate(self.at.tolist())}

    def route(self, k: int) -> np.ndarray | None:
        """The k-th start's route as (n, 2) lon, lat."""
        start, stop = int(self.route_from[k]), int(self.route_to[k])
        return self.route_values[start:stop].reshape(-1, 2) if start >= 0 else None

    def take(self, rows: np.ndarray, at: np.ndarray) -> StartColumns:
        """These starts (ascending indices), now at positions `at`."""
        picked = rows.tolist()
        return StartColumns(at, [self.vehicle_ids[k] for k in picked], [self.driver_ids[k] for k in picked],
                            [self.passenger_ids[k] for k in picked], self.places[rows], self.route_from[rows],
                            self.route_to[rows], self.route_values)

    def moved(self, positions: np.ndarray) -> StartColumns | None:
        """The starts at their positions after the batch's rows were renumbered: `positions[old]` is a row's
        new position, -1 where it was left out."""
        new = positions[self.at]
        kept = np.flatnonzero(new >= 0)
        if not kept.size:
            return None
        return self if kept.size == len(self.at) and np.array_equal(new, self.at) else self.take(kept, new[kept])


def start_columns(starts: dict[int, TripStarted]) -> StartColumns:
    """These starts (by position; each in WGS-84 without place names) as columns."""
    at = sorted(starts)
    events = [starts[k] for k in at]
    routes = [None if e.route is None else np.asarray(e.route.array if isinstance(e.route, Points) else e.route,
                                                      dtype=np.float64).reshape(-1) for e in events]
    sizes = np.array([0 if r is None else len(r) for r in routes], dtype=np.int64)
    bounds = np.r_[0, np.cumsum(sizes)]
    has_route = np.array([r is not None for r in routes], dtype=bool)
    values = [r for r in routes if r is not None]
    places = [(*(e.pickup or (np.nan, np.nan)), *(e.dropoff or (np.nan, np.nan))) for e in events]
    return StartColumns(np.array(at, dtype=np.int64), [e.vehicle_id for e in events], [e.driver_id for e in events],
                        [e.passenger_id for e in events], np.array(places, dtype=np.float64).reshape(-1, 4),
                        np.where(has_route, bounds[:-1], -1), np.where(has_route, bounds[1:], -1),
                        np.concatenate(values) if values else np.zeros(0))


def plain(event: object) -> bool:
    """A start `StartColumns` holds as it is: in WGS-84, without place names."""
    return (type(event) is TripStarted and event.crs == "wgs84" and event.pickup_name is None
            and event.dropoff_name is None)


def _point(lon: float, lat: float) -> tuple[float, float] | None:
    return None if math.isnan(lon) else (lon, lat)  # NaN: not given
