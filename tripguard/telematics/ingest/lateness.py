"""Events too old to take: refused per line at ingest, as an event from the future is.

The monitor judges silence by the stream's watermark (the newest event time seen, less a few seconds). An
event far behind it was once taken as it came: a `trip_started` dated 1970-01-01 opened a trip that had
been "silent" for 56 years by the stream's clock, and raised a false `gps_lost` (issue #27). Three rules,
each a line error naming why:

- more than a day behind the rest of its batch (the median): a broken clock, as a day ahead is;
- more than the allowed lateness (`TRIPGUARD_INGEST_MAX_LATENESS_SECONDS`, an hour by default) behind the
  stream: the newest event time this process had taken before the batch, or before the line within it; a
  process that has taken nothing yet (a restart, a new replica) starts from the newest trip start the store
  holds (`stored_mark`), so a lone event from 1970 is refused after a restart too;
- a ping or trip_ended before its trip began: its trip_started in the same batch, or the stored trip.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tripguard.telematics.ingest.columns import EventColumns, reject_rows
from tripguard.telematics.ingest.events import (
    MAX_AHEAD_OF_BATCH_SECONDS,
    DeviceHeartbeat,
    LineError,
    TripStarted,
)
from tripguard.telematics.models import Trip

TripStarts = Callable[[list[str]], dict[str, float]]


def far_behind_batch(ts: np.ndarray) -> np.ndarray:
    """Which events lie more than a day behind their batch's median time."""
    if len(ts) == 0:
        return np.zeros(0, dtype=bool)
    return float(np.median(ts)) - ts > MAX_AHEAD_OF_BATCH_SECONDS


def behind_stream(ts: np.ndarray, mark: float, lateness: float) -> np.ndarray:
    """Which events lie more than `lateness` behind the stream: the newest time taken before them (the
    mark before the batch, then the batch's own running maximum)."""
    if len(ts) == 0:
        return np.zeros(0, dtype=bool)
    running = np.maximum.accumulate(np.maximum(ts, mark))
    return ts < running - lateness


def stored_mark(session: Session, *, mark: float) -> float:
    """`mark`, or for a process that has taken nothing yet, the newest trip start the store holds (one
    lookup on the index of trip starts)."""
    if mark != float("-inf"):
        return mark
    newest = session.scalar(select(func.max(Trip.started_at)))
    return newest.timestamp() if newest is not None else mark


def stored_starts(session: Session) -> TripStarts:
    """When the stored trips began, by id (trips the store does not know, or not started, are left out)."""

    def lookup(trip_ids: list[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        for start in range(0, len(trip_ids), 1000):
            chunk = trip_ids[start:start + 1000]
            for trip_id, started in session.execute(select(Trip.id, Trip.started_at).where(
                    Trip.id.in_(chunk), Trip.started_at.is_not(None))):
                if started is not None:
                    found[trip_id] = started.timestamp()
        return found

    return lookup


def before_start(columns: EventColumns, starts: TripStarts | None) -> np.ndarray:
    """Which pings and trip ends lie before their trip began (the earliest trip_started of the batch for a
    trip that starts here, else the stored trip's start)."""
    if len(columns) == 0:
        return np.zeros(0, dtype=bool)
    began: dict[str, float] = {}
    own = np.ones(len(columns), dtype=bool)  # pings and trip ends (a heartbeat's slot names its vehicle)
    for row, event in columns.others.items():
        if isinstance(event, TripStarted):
            began[event.trip_id] = min(event.ts, began.get(event.trip_id, event.ts))
        own[row] = not isinstance(event, (TripStarted, DeviceHeartbeat))
    groups, names = columns.trip_groups()
    mentioned = np.zeros(len(names), dtype=bool)
    mentioned[groups[own]] = True
    unknown = [names[g] for g in np.flatnonzero(mentioned).tolist() if names[g] not in began]
    if unknown and starts is not None:
        began.update(starts(unknown))
    if not began:
        return np.zeros(len(columns), dtype=bool)
    start = np.array([began.get(name, np.nan) for name in names], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        before: np.ndarray = own & (columns.ts < start[groups])
    return before


def refuse_late(columns: EventColumns, numbers: list[int], rejected: list[LineError], *, mark: float,
                lateness: float, starts: TripStarts | None) -> tuple[EventColumns, list[int], list[LineError]]:
    """The batch less its events too old to take (the three rules above), each an error of its line."""
    columns, numbers, rejected = reject_rows(columns, numbers, rejected, far_behind_batch(columns.ts),
                                             "ts is more than a day behind the rest of the batch")
    columns, numbers, rejected = reject_rows(
        columns, numbers, rejected, behind_stream(columns.ts, mark, lateness),
        f"ts is more than {_duration(lateness)} behind the stream (the allowed lateness)")
    return reject_rows(columns, numbers, rejected, before_start(columns, starts), "ts is before its trip began")


def newest(columns: EventColumns, mark: float) -> float:
    """The stream's mark once the batch is taken."""
    return max(mark, float(columns.ts.max())) if len(columns) else mark


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
