"""Events as columns (the batched monitor's input), and the line parser that builds them.

`parse_ndjson_columns` reads lines as `events.parse_ndjson` does (a property test holds the two equal)
without making a Ping per line; `reader.read_ndjson` hands it the lines Arrow does not take.
"""

from __future__ import annotations

import json
import json.scanner
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tripguard.core.identifiers import is_identifier
from tripguard.telematics.ingest.events import (
    _NUMBER,
    _TS_CACHE,
    BadEvent,
    DeviceHeartbeat,
    Event,
    LineError,
    Ping,
    _in_gcj,
    _remember_gcj,
    _why,
    far_from_batch,
    parse_event,
    parse_ts,
)
from tripguard.telematics.ingest.starts import StartColumns, plain, start_columns

PING_COLUMNS = ("ts", "lon", "lat", "speed", "accel", "accuracy", "stationary", "heading")


@dataclass
class EventColumns:
    """Events as columns: pings as numbers (NaN where absent; `stationary` 1.0 or 0.0), every other
    event as an object by position, or (the replay's batches) a plain trip start in `starts`.

    The batched monitor's input (it does not read `heading`, which is kept for the stored track);
    `parse_ndjson_columns` and `reader.read_ndjson` build it without making a Ping per line.
    """

    trip_ids: list[str]  # a heartbeat's slot holds its vehicle id (not read)
    ts: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    speed: np.ndarray
    accel: np.ndarray
    accuracy: np.ndarray
    stationary: np.ndarray
    heading: np.ndarray
    others: dict[int, Event]
    # Each event's trip as a number (an index into group_names); the reader fills them, else on first use.
    groups: np.ndarray | None = None
    group_names: list[str] | None = None
    starts: StartColumns | None = None  # trip starts as columns, at positions none of `others` holds

    def __len__(self) -> int:
        return len(self.trip_ids)

    def trip_groups(self) -> tuple[np.ndarray, list[str]]:
        """Each event's trip as a number, and the trips so numbered (some may have no event here)."""
        if self.groups is None or self.group_names is None:
            codes = {t: n for n, t in enumerate(dict.fromkeys(self.trip_ids))}
            self.groups = np.fromiter(map(codes.__getitem__, self.trip_ids), dtype=np.int64, count=len(self))
            self.group_names = list(codes)
        return self.groups, self.group_names

    @classmethod
    def of(cls, events: Sequence[Event]) -> EventColumns:
        builder = ColumnBuilder()
        for event in events:
            builder.add(event)
        return builder.build()

    @classmethod
    def of_pings(cls, trip_ids: list[str], ts: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                 **optional: np.ndarray) -> EventColumns:
        """Pings only; optional columns (speed, accel, accuracy, stationary, heading) default to absent."""
        absent = np.full(len(trip_ids), _NAN)
        return cls._make(trip_ids, [ts, lon, lat, *(optional.get(name, absent) for name in PING_COLUMNS[3:])], {})

    @classmethod
    def _make(cls, trip_ids: list[str], c: list[np.ndarray], others: dict[int, Event], groups: np.ndarray | None = None,
              group_names: list[str] | None = None, starts: StartColumns | None = None) -> EventColumns:
        return cls(trip_ids, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], others, groups, group_names, starts)

    def _columns(self) -> list[np.ndarray]:
        return [getattr(self, name) for name in PING_COLUMNS]

    def take(self, index: np.ndarray) -> EventColumns:
        """The events at these positions (ascending), renumbered from 0."""
        where = {int(k): n for n, k in enumerate(index.tolist())} if self.others else {}
        return EventColumns._make([self.trip_ids[k] for k in index.tolist()], [c[index] for c in self._columns()],
                                  {where[k]: e for k, e in self.others.items() if k in where},
                                  None if self.groups is None else self.groups[index], self.group_names,
                                  self._starts_at(index))

    def slice(self, start: int, stop: int) -> EventColumns:
        return EventColumns._make(self.trip_ids[start:stop], [c[start:stop] for c in self._columns()],
                                  {k - start: e for k, e in self.others.items() if start <= k < stop},
                                  None if self.groups is None else self.groups[start:stop], self.group_names,
                                  self._starts_at(np.arange(start, min(stop, len(self)))))

    def _starts_at(self, index: np.ndarray) -> StartColumns | None:
        """The starts among the events at these positions (ascending), renumbered as they are."""
        if self.starts is None:
            return None
        positions = np.full(len(self), -1, dtype=np.int64)
        positions[index] = np.arange(len(index))
        return self.starts.moved(positions)

    def with_start_columns(self) -> EventColumns:
        """The same batch with its trip starts in WGS-84 without place names as `starts` (none may be there)."""
        if self.starts is not None:
            raise ValueError("the batch holds start columns already")
        moved = {k: e for k, e in self.others.items() if plain(e)}
        if not moved:
            return self
        others = {k: e for k, e in self.others.items() if k not in moved}
        return EventColumns._make(self.trip_ids, self._columns(), others, self.groups, self.group_names,
                                  start_columns(moved))  # type: ignore[arg-type]

    def with_start_objects(self) -> EventColumns:
        """The same batch with its trip starts among `others`, as objects."""
        if self.starts is None:
            return self
        others = {**self.others, **self.starts.events(self.trip_ids, self.ts)}
        return EventColumns._make(self.trip_ids, self._columns(), others, self.groups, self.group_names)

    def events(self) -> list[Event]:
        """Every event as an object, in order (what the trip store and the live feed take)."""
        others = self.with_start_objects().others
        rows = zip(self.trip_ids, *(c.tolist() for c in self._columns()), strict=True)
        return [others[k] if k in others else
                Ping(trip_id, ts, lon, lat, optional(speed), optional(heading), optional(accuracy), optional(accel),
                     None if math.isnan(stationary) else stationary == 1.0)
                for k, (trip_id, ts, lon, lat, speed, accel, accuracy, stationary, heading) in enumerate(rows)]


def optional(value: float) -> float | None:
    """A column's number as an event field: NaN (absent) is None."""
    return None if math.isnan(value) else float(value)


_NAN = float("nan")


class ColumnBuilder:
    def __init__(self) -> None:
        self.trip_ids: list[str] = []
        self.ts: list[float] = []
        self.lon: list[float] = []
        self.lat: list[float] = []
        self.speed: list[float] = []
        self.accel: list[float] = []
        self.accuracy: list[float] = []
        self.stationary: list[float] = []
        self.heading: list[float] = []
        self.others: dict[int, Event] = {}
        self.line_numbers: list[int] = []  # filled by parse_lines

    def ping(self, trip_id: str, ts: float, lon: float, lat: float, speed: float = _NAN, accel: float = _NAN,
             accuracy: float = _NAN, stationary: float = _NAN, heading: float = _NAN) -> None:
        self.trip_ids.append(trip_id)
        self.ts.append(ts)
        self.lon.append(lon)
        self.lat.append(lat)
        self.speed.append(speed)
        self.accel.append(accel)
        self.accuracy.append(accuracy)
        self.stationary.append(stationary)
        self.heading.append(heading)

    def add(self, event: Event) -> None:
        if isinstance(event, Ping):
            self.ping(event.trip_id, event.ts, event.lon, event.lat,
                      _NAN if event.speed_mps is None else event.speed_mps,
                      _NAN if event.accel_g is None else event.accel_g,
                      _NAN if event.accuracy_m is None else event.accuracy_m,
                      _NAN if event.stationary is None else float(event.stationary),
                      _NAN if event.heading is None else event.heading)
        else:
            self.other(event)

    def other(self, event: Event) -> None:
        self.others[len(self.trip_ids)] = event
        self.trip_ids.append(event.trip_id if not isinstance(event, DeviceHeartbeat) else event.vehicle_id)
        self.ts.append(event.ts)
        for column in (self.lon, self.lat, self.speed, self.accel, self.accuracy, self.stationary, self.heading):
            column.append(_NAN)

    def build(self) -> EventColumns:
        return EventColumns._make(self.trip_ids, [np.array(getattr(self, name), dtype=np.float64)
                                                  for name in PING_COLUMNS], self.others)


_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _loads_line(line: str | bytes) -> object:
    """`json.loads` for one line, minus its per-call overhead; anything unusual goes to `json.loads`."""
    if type(line) is str:
        try:
            value, end = _scan(line, 0)
        except (StopIteration, ValueError):
            return json.loads(line)  # raises the proper error
        if end == len(line) or not line[end:].strip():
            return value
    return json.loads(line)


def parse_ndjson_columns(lines: Iterable[str | bytes], gcj_trips: dict[str, None] | None = None,
                         first_line: int = 1) -> tuple[EventColumns, list[LineError]]:
    """`parse_ndjson` straight into columns: plain WGS-84 pings never become objects.

    Same rules and the same errors as `parse_ndjson` (a property test holds the two equal).
    """
    builder = ColumnBuilder()
    errors: list[LineError] = []
    parse_lines(enumerate(lines, start=first_line), gcj_trips if gcj_trips is not None else {}, builder, errors)
    columns, _, errors = drop_far(builder.build(), builder.line_numbers, errors)
    return columns, errors


def parse_lines(numbered: Iterable[tuple[int, str | bytes]], gcj: dict[str, None], builder: ColumnBuilder,
                errors: list[LineError]) -> None:
    """Numbered lines, in order, into `builder` (with their numbers) and `errors`; blank lines are skipped."""
    loads, cache, number_types = _loads_line, _TS_CACHE, _NUMBER
    trip_ids, times, lons, lats = builder.trip_ids.append, builder.ts.append, builder.lon.append, builder.lat.append
    speeds, accels, headings = builder.speed.append, builder.accel.append, builder.heading.append
    accuracies, stationaries = builder.accuracy.append, builder.stationary.append
    numbers = builder.line_numbers.append
    for number, line in numbered:
        if not line.strip():
            continue
        try:
            obj = loads(line)
            if type(obj) is dict and len(obj) == 5 and obj.get("type") == "ping":
                # The canonical ping (type, trip_id, ts, lon, lat): checked inline, never an object.
                trip_id, lon, lat, ts_text = obj.get("trip_id"), obj.get("lon"), obj.get("lat"), obj.get("ts")
                ts = (cache.get(ts_text) or parse_ts(ts_text)) if type(ts_text) is str else None
                if (ts is not None and type(trip_id) is str and type(lon) in number_types
                        and type(lat) in number_types and -180 <= lon <= 180 and -90 <= lat <= 90  # type: ignore[operator]
                        and trip_id not in gcj and is_identifier(trip_id)):
                    trip_ids(trip_id)
                    times(ts)
                    lons(float(lon))  # type: ignore[arg-type]
                    lats(float(lat))  # type: ignore[arg-type]
                    speeds(_NAN)
                    accels(_NAN)
                    accuracies(_NAN)
                    stationaries(_NAN)
                    headings(_NAN)
                    numbers(number)
                    continue
            crs = "gcj02" if isinstance(obj, dict) and _in_gcj(obj, gcj) else "wgs84"
            event = parse_event(obj, crs=crs)
        except (ValueError, BadEvent, RecursionError) as exc:
            errors.append(LineError(number, _why(exc)))
            continue
        _remember_gcj(event, gcj)
        builder.add(event)
        numbers(number)


def drop_far(columns: EventColumns, line_numbers: list[int], errors: list[LineError],
             ) -> tuple[EventColumns, list[int], list[LineError]]:
    """The batch's events less those a day ahead of the rest (`far_from_batch`), with their lines."""
    return reject_rows(columns, line_numbers, errors, far_from_batch(columns.ts),
                       "ts is more than a day ahead of the rest of the batch")


def reject_rows(columns: EventColumns, line_numbers: list[int], errors: list[LineError], rejected: np.ndarray,
                reason: str) -> tuple[EventColumns, list[int], list[LineError]]:
    """The rows where `rejected` holds become errors of their lines (errors kept in line order)."""
    if not rejected.any():
        return columns, line_numbers, errors
    errors = sorted([*errors, *(LineError(line_numbers[k], reason) for k in np.flatnonzero(rejected).tolist())],
                    key=lambda error: error.line)
    kept = np.flatnonzero(~rejected)
    return columns.take(kept), [line_numbers[k] for k in kept.tolist()], errors
