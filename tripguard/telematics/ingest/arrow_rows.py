"""Which rows Arrow read are taken as they are, checked on whole columns, and those rows as events.

A row is taken only when every rule `events.parse_event` applies to its kind holds; any other row goes
to the line parser, which names the error. Pings become columns, and so do trip starts (`StartColumns`:
the routes as Arrow's values, all in one array); trip ends become objects. A start is taken only in WGS-84
(`"crs": "wgs84"`), a ping or an end only without `crs` and of a trip not in GCJ-02.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tripguard.core.identifiers import ID_PATTERN
from tripguard.telematics.ingest.events import (
    EARLIEST_TS,
    LATEST_TS,
    BadEvent,
    Event,
    TripEnded,
    parse_ts,
)
from tripguard.telematics.ingest.starts import StartColumns

_POINT = pa.list_(pa.float64())
SCHEMA = pa.schema([
    ("type", pa.string()), ("trip_id", pa.string()), ("ts", pa.string()), ("lon", pa.float64()),
    ("lat", pa.float64()), ("speed_mps", pa.float64()), ("heading", pa.float64()), ("accuracy_m", pa.float64()),
    ("accel_g", pa.float64()), ("stationary", pa.bool_()), ("crs", pa.string()),
    ("vehicle_id", pa.string()), ("driver_id", pa.string()), ("passenger_id", pa.string()),
    ("pickup", _POINT), ("dropoff", _POINT), ("route", pa.list_(_POINT)),
    ("pickup_name", pa.string()), ("dropoff_name", pa.string()),
])
LIST_COLUMNS = ("pickup", "dropoff", "route")
# The same bounds as events.parse_event.
OPTIONAL_RANGES = {"speed_mps": (0.0, 150.0), "heading": (0.0, 360.0), "accuracy_m": (0.0, 10_000.0),
                   "accel_g": (0.0, 50.0)}
MAX_ROUTE_POINTS = 20_000


@dataclass
class Taken:
    """The rows taken: pings and starts as columns, ends as objects (by row); and the rows refused."""

    lines: np.ndarray  # each taken row's line
    trip_ids: list[str]
    columns: list[np.ndarray]  # as columns.PING_COLUMNS
    others: dict[int, Event]
    rejected: np.ndarray  # lines
    groups: np.ndarray  # each taken row's trip as an index into group_names
    group_names: list[str]
    starts: StartColumns | None = None  # by taken row

    def after_gcj_start(self, started: dict[str, int], first_line: int) -> np.ndarray:
        """Rows of trips that started in GCJ-02 at an earlier line of this batch."""
        return np.array([k for k, (trip_id, line) in enumerate(zip(self.trip_ids, self.lines.tolist(), strict=True))
                         if trip_id in started and first_line + line > started[trip_id]], dtype=np.int64)

    def without(self, rows: np.ndarray) -> Taken:
        keep = np.ones(len(self.lines), dtype=bool)
        keep[rows] = False
        index = np.flatnonzero(keep)
        renumber = {int(k): n for n, k in enumerate(index.tolist())}
        positions = np.full(len(self.lines), -1, dtype=np.int64)
        positions[index] = np.arange(len(index))
        return Taken(self.lines[index], [self.trip_ids[k] for k in index.tolist()], [c[index] for c in self.columns],
                     {renumber[k]: e for k, e in self.others.items() if k in renumber}, self.rejected,
                     self.groups[index], self.group_names,
                     None if self.starts is None else self.starts.moved(positions))


def take_rows(table: pa.Table, lines: np.ndarray, gcj: dict[str, None]) -> Taken:
    """Check every row of `table` (read from `lines`) against the rules of its kind."""
    table = table.combine_chunks()
    kind = table.column("type")
    is_ping, is_end, is_start = (_true(pc.equal(kind, name)) for name in ("ping", "trip_ended", "trip_started"))
    crs = table.column("crs")
    no_crs = _true(pc.is_null(crs))

    trip_codes, trip_names, good_trip = _encoded(table.column("trip_id"))
    if gcj:
        good_trip &= np.array([t not in gcj for t in trip_names], dtype=bool)
    common = (trip_codes >= 0) & _take(good_trip, trip_codes)
    ts = _times(table.column("ts"))
    common &= ~np.isnan(ts)

    lon, lon_null = _numbers(table, "lon")
    lat, lat_null = _numbers(table, "lat")
    placed = ~lon_null & ~lat_null & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)  # NaN is never in range
    optional_ok = np.ones(len(lines), dtype=bool)
    optional: dict[str, np.ndarray] = {}
    for name, (low, high) in OPTIONAL_RANGES.items():
        values, null = _numbers(table, name)
        optional_ok &= null | ((values >= low) & (values <= high))
        optional[name] = values
    ping_ok = common & no_crs & is_ping & placed & optional_ok
    end_ok = common & no_crs & is_end & (placed | (lon_null & lat_null))  # a position: both or neither
    start_ok = common & is_start & _true(pc.equal(crs, "wgs84"))
    starts = _Starts(table, start_ok) if start_ok.any() else None
    if starts is not None:
        start_ok &= starts.ok

    taken = np.flatnonzero(ping_ok | end_ok | start_ok)
    names = np.array(trip_names, dtype=object)
    trip_ids = names[trip_codes[taken]].tolist() if taken.size else []
    others: dict[int, Event] = {}
    for n in np.flatnonzero(end_ok[taken]).tolist():
        k = int(taken[n])
        others[n] = TripEnded(trip_ids[n], float(ts[k]), None if lon_null[k] else float(lon[k]),
                              None if lat_null[k] else float(lat[k]))
    plans = None
    if starts is not None:
        at = np.flatnonzero(start_ok[taken])
        plans = starts.columns(taken[at], at) if at.size else None
    pings_only = np.where(ping_ok[taken], 1.0, np.nan)  # another event's slots are NaN, as ColumnBuilder.other
    columns = [ts[taken], lon[taken] * pings_only, lat[taken] * pings_only,
               optional["speed_mps"][taken] * pings_only, optional["accel_g"][taken] * pings_only,
               optional["accuracy_m"][taken] * pings_only, _stationary(table)[taken] * pings_only,
               optional["heading"][taken] * pings_only]
    return Taken(lines[taken], trip_ids, columns, others, lines[~(ping_ok | end_ok | start_ok)], trip_codes[taken],
                 trip_names, plans)


class _Starts:
    """The start rows' own fields: optional ids, pickup, drop-off and route, checked as parse_event checks them."""

    def __init__(self, table: pa.Table, rows: np.ndarray) -> None:
        self.ok = rows.copy()
        self.ids: dict[str, np.ndarray] = {}
        for name in ("vehicle_id", "driver_id", "passenger_id"):
            codes, values, good = _encoded(table.column(name))
            self.ok &= (codes < 0) | _take(good, codes)
            self.ids[name] = np.array([*values, None], dtype=object)[codes]  # -1 (null) picks None
        self.points: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in ("pickup", "dropoff"):
            null, good, lonlat = _point_column(table.column(name).chunk(0))
            self.ok &= null | good
            self.points[name] = (null, lonlat)
        self.route_null, good, self.route_values, self.route_bounds = _route_column(table.column("route").chunk(0))
        self.ok &= self.route_null | good
        for name in ("pickup_name", "dropoff_name"):  # rare: a start naming its places goes to the line parser
            self.ok &= _true(pc.is_null(table.column(name)))

    def columns(self, rows: np.ndarray, at: np.ndarray) -> StartColumns:
        """These start rows (ascending), at positions `at` of the batch."""
        pickup, dropoff = (lonlat[rows] for _, lonlat in (self.points["pickup"], self.points["dropoff"]))
        places = np.column_stack([pickup, dropoff])
        places[self.points["pickup"][0][rows], :2] = np.nan  # not given
        places[self.points["dropoff"][0][rows], 2:] = np.nan
        bounds = self.route_bounds[rows]
        routed = ~self.route_null[rows]
        return StartColumns(at, self.ids["vehicle_id"][rows].tolist(), self.ids["driver_id"][rows].tolist(),
                            self.ids["passenger_id"][rows].tolist(), places, np.where(routed, bounds[:, 0], -1),
                            np.where(routed, bounds[:, 1], -1), self.route_values)


def _point_column(column: pa.ListArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A [lon, lat] column: where null, where a good point, and the points ((n, 2), NaN where not)."""
    null = _true(column.is_null())
    offsets = column.offsets.to_numpy()
    values = np.append(column.values.to_numpy(zero_copy_only=False), [np.nan, np.nan])  # nulls are NaN
    pair = np.diff(offsets) == 2
    first = np.where(pair, offsets[:-1], len(values) - 2)
    lonlat = np.stack([values[first], values[first + 1]], axis=1)
    good = pair & (np.abs(lonlat[:, 0]) <= 180) & (np.abs(lonlat[:, 1]) <= 90)
    return null, good, lonlat


def _route_column(column: pa.ListArray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A route column: where null, where every point is good (1 to 20,000 of them), all the numbers, and
    where each route's lie in them (a good route's are its points' lon, lat in turn)."""
    null = _true(column.is_null())
    outer = column.offsets.to_numpy().astype(np.int64)
    points = column.values
    inner_null, inner_good, _ = _point_column(points)
    bad = np.r_[0, np.cumsum(inner_null | ~inner_good)]  # bad points before each point
    count = np.diff(outer)
    good = (count >= 1) & (count <= MAX_ROUTE_POINTS) & (bad[outer[1:]] == bad[outer[:-1]])
    inner = points.offsets.to_numpy().astype(np.int64)
    values = points.values.to_numpy(zero_copy_only=False)
    return null, good, values, np.stack([inner[outer[:-1]], inner[outer[1:]]], axis=1)


def _true(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as numpy, null as False."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _encoded(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Each row's index into the column's distinct values (-1 for null), those values, and which of them
    are identifiers (`is_identifier`, in Arrow's RE2: an ASCII class, "$" at the very end as in fullmatch)."""
    codes, values = _distinct(column)
    good = pc.match_substring_regex(values, ID_PATTERN).to_numpy(zero_copy_only=False).astype(bool)
    return codes, values.to_pylist(), good


def _distinct(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Each row's index into the column's distinct values (-1 for null), and those values as Arrow has them."""
    encoded = pc.dictionary_encode(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    return pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def _take(values: np.ndarray, codes: np.ndarray, missing: object = False) -> np.ndarray:
    """values[codes], with `missing` where a code is -1."""
    padded = np.append(values, np.array([missing], dtype=values.dtype))
    picked: np.ndarray = padded[codes]  # -1 picks the padding
    return picked


def _times(column: pa.ChunkedArray) -> np.ndarray:
    """Each row's time in seconds (NaN where null or not a valid time), each distinct text parsed once:
    the canonical UTC forms on whole columns, any other by `parse_ts`."""
    codes, texts = _distinct(column)
    seconds, canonical = utc_times(texts)
    for k in np.flatnonzero(~canonical).tolist():
        seconds[k] = _seconds(texts[k].as_py())
    return _take(seconds, codes, missing=np.nan)


# "YYYY-MM-DDTHH:MM:SSZ", with 3 or 6 digits of fraction or none: the text's length, the fraction's.
_CANONICAL = {20: 0, 24: 3, 27: 6}
_SEPARATORS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}


def utc_times(texts: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since 1970 of the texts in a canonical UTC form, exactly as `parse_ts` gives them (NaN
    where that form holds no valid time in 1970-2200); and which texts are in that form."""
    seconds = np.full(len(texts), np.nan)
    canonical = np.zeros(len(texts), dtype=bool)
    lengths = pc.binary_length(texts).to_numpy(zero_copy_only=False)
    for length, fraction in _CANONICAL.items():
        rows = np.flatnonzero(lengths == length)
        if not rows.size:
            continue
        chosen = pc.take(texts, pa.array(rows))
        first = np.frombuffer(chosen.buffers()[1], dtype=np.int32)[chosen.offset]
        chars = np.frombuffer(chosen.buffers()[2], dtype=np.uint8)[first:first + rows.size * length]
        chars = chars.reshape(rows.size, length).astype(np.int64)
        shape = np.all([chars[:, at] == ord(c) for at, c in _SEPARATORS.items()], axis=0) & (chars[:, -1] == ord("Z"))
        if fraction:
            shape &= chars[:, 19] == ord(".")
        digit_at = [k for k in range(length - 1) if k not in _SEPARATORS and k != 19]
        digits = chars[:, digit_at] - ord("0")
        shape &= np.all((digits >= 0) & (digits <= 9), axis=1)
        canonical[rows] = shape
        seconds[rows[shape]] = _civil_seconds(digits[shape], fraction)
    return seconds, canonical


def _civil_seconds(digits: np.ndarray, fraction: int) -> np.ndarray:
    """Digits (year 4, month, day, hour, minute, second 2 each, the fraction) to seconds since 1970."""
    def number(first: int, count: int) -> np.ndarray:
        return digits[:, first:first + count] @ (10 ** np.arange(count - 1, -1, -1))
    year, month, day = number(0, 4), number(4, 2), number(6, 2)
    hour, minute, second = number(8, 2), number(10, 2), number(12, 2)
    micros = number(14, fraction) * 10 ** (6 - fraction) if fraction else 0
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month - 1, 0, 11)]
    month_days = month_days + (leap & (month == 2))
    valid = ((month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days) & (hour <= 23) & (minute <= 59)
             & (second <= 59))
    # Days from 1970-01-01 to the date (H. Hinnant's days_from_civil).
    y = year - (month <= 2)
    era = y // 400
    of_era = y - era * 400
    of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146_097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year - 719_468
    seconds = ((days * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000_000 + micros) / 1e6
    inside = (seconds >= EARLIEST_TS) & (seconds < LATEST_TS)
    return np.where(valid & inside, seconds, np.nan)


def _seconds(text: str) -> float:
    try:
        return parse_ts(text)
    except BadEvent:
        return np.nan


def _numbers(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A number column as float64 (NaN where null) and where it is null."""
    column = table.column(name)
    if column.null_count == len(column):
        return np.full(len(column), np.nan), np.ones(len(column), dtype=bool)
    values = column.to_numpy()  # nulls come out as NaN
    null = _true(pc.is_null(column)) if column.null_count else np.zeros(len(column), dtype=bool)
    return values, null


def _stationary(table: pa.Table) -> np.ndarray:
    column = table.column("stationary")
    if column.null_count == len(column):
        return np.full(len(column), np.nan)
    filled: np.ndarray = pc.fill_null(pc.cast(column, pa.float64()), np.nan).to_numpy()
    return filled
