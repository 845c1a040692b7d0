"""NDJSON bytes into event columns with Arrow's native JSON reader; the line parser for the rest.

The same contract as `events.parse_ndjson_columns` (a property test holds the two equal: the same
events, the same line errors with their numbers), at native speed on the lines that make up a
stream: pings and trip ends of WGS-84 trips.

1. Lines are split on "\\n" (a "\\r" before it is whitespace). A line is read by Arrow only when it is
   one flat JSON object: its first byte is `{`, its last `}`, and it holds no other brace and no `[`.
   Nothing else reaches Arrow; that keeps it away from the shapes its reader mishandles (a top-level
   `null` crashes it, apache/arrow#47409; nested lists, apache/arrow#51305).
2. Arrow parses those lines against a fixed schema. When it refuses a batch (a value of the wrong
   type, a duplicate key, broken JSON) or returns another number of rows, the batch is halved until
   the lines it refuses are found; those go to the line parser, which names the error.
3. A row Arrow read is taken only when every rule holds on it, checked on whole columns: its type,
   its ids and time, its position and each optional field in range, and its trip not in GCJ-02. Any
   other row goes to the line parser, in line order with the lines of step 1 it left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from tripguard.core.types import is_identifier
from tripguard.telematics.events import (
    BadEvent,
    ColumnBuilder,
    Event,
    EventColumns,
    LineError,
    TripEnded,
    TripStarted,
    drop_far,
    parse_lines,
    parse_ts,
)

SCHEMA = pa.schema([
    ("type", pa.string()), ("trip_id", pa.string()), ("ts", pa.string()), ("lon", pa.float64()),
    ("lat", pa.float64()), ("speed_mps", pa.float64()), ("heading", pa.float64()), ("accuracy_m", pa.float64()),
    ("accel_g", pa.float64()), ("stationary", pa.bool_()), ("crs", pa.string()),
])
# The same bounds as events.parse_event.
OPTIONAL_RANGES = {"speed_mps": (0.0, 150.0), "heading": (0.0, 360.0), "accuracy_m": (0.0, 10_000.0),
                   "accel_g": (0.0, 50.0)}
_PARSE = pa_json.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
SMALLEST_HALF = 16  # lines Arrow refuses are looked for down to pieces of this size
_OPEN, _CLOSE, _BRACKET, _NEWLINE, _RETURN = (ord(c) for c in "{}[\n\r")


def read_ndjson(data: bytes, gcj_trips: dict[str, None] | None = None, first_line: int = 1,
                use_threads: bool = False) -> tuple[EventColumns, list[LineError]]:
    """Every line of `data` (numbered from `first_line`) as `parse_ndjson_columns` would read it."""
    gcj = gcj_trips if gcj_trips is not None else {}
    raw = np.frombuffer(data, dtype=np.uint8)
    starts, stops, ends = line_bounds(raw)
    flat = flat_objects(raw, starts, ends)
    rows, refused = _arrow_rows(data, starts, ends, flat, use_threads)
    fast = _fast_rows(rows.table, rows.lines, gcj) if rows.lines.size else None

    slow = np.flatnonzero(~flat)
    slow = np.union1d(slow, refused) if refused.size else slow
    if fast is not None and fast.rejected.size:
        slow = np.union1d(slow, fast.rejected)
    builder = ColumnBuilder()
    errors: list[LineError] = []
    started_gcj: dict[str, int] = {}
    numbered = ((first_line + k, data[starts[k]:stops[k]]) for k in slow.tolist())
    _parse_watching_gcj(numbered, gcj, builder, errors, started_gcj)
    if fast is not None and started_gcj:
        # A trip that started in GCJ-02 in this batch: its later pings are converted, so Arrow's rows
        # of them go to the line parser too (gcj now knows the trip).
        late = fast.after_gcj_start(started_gcj, first_line)
        if late.size:
            parse_lines(((first_line + k, data[starts[k]:stops[k]]) for k in fast.lines[late].tolist()),
                        gcj, builder, errors)
            fast = fast.without(late)
    columns, lines = _merge(fast, builder, first_line)
    return drop_far(columns, lines, sorted(errors, key=lambda e: e.line))


def line_bounds(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each line's first byte, its newline, and where its content ends (a "\r" before the newline left out)."""
    newlines = np.flatnonzero(raw == _NEWLINE)
    ends = newlines if len(raw) and raw[-1] == _NEWLINE else np.append(newlines, len(raw))
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    carriage = np.zeros(len(ends), dtype=bool)
    nonempty = ends > starts
    carriage[nonempty] = raw[ends[nonempty] - 1] == _RETURN
    return starts, ends, ends - carriage


# Byte classes: 1 "{", 2 "}", 3 a byte that sends its line to the line parser ("[", a control byte,
# anything beyond ASCII), 4 the first letter of Arrow's number words ("Inf", "NaN": Arrow also takes
# "Inf" and "-NaN", which Python's json refuses).
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[ord("{")], _CLASS[ord("}")], _CLASS[ord("I")], _CLASS[ord("N")] = 1, 2, 4, 4
_CLASS[:0x20] = _CLASS[0x80:] = _CLASS[ord("[")] = 3
_CLASS[_NEWLINE], _CLASS[_RETURN] = 0, 5  # a newline is never inside a line; "\r" only at its end
_WORDS = (b"Inf", b"NaN")


def flat_objects(raw: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which lines Arrow may read: one flat JSON object (`{` first, `}` last, no other brace, no `[`),
    printable ASCII, no word Arrow reads otherwise than Python."""
    n = len(starts)
    flat = ends - starts >= 2
    flat[flat] = (raw[starts[flat]] == _OPEN) & (raw[ends[flat] - 1] == _CLOSE)
    if not flat.any():
        return flat
    kind = _CLASS[raw]
    candidates = np.count_nonzero(flat)
    for byte_class in (1, 2):
        where = np.flatnonzero(kind == byte_class)
        if len(where) != candidates:  # a brace elsewhere than first and last: count them per line
            flat &= (np.searchsorted(where, ends) - np.searchsorted(where, starts)) == 1
    odd = np.flatnonzero(kind == 3)
    returns = np.flatnonzero(kind == 5)
    if returns.size:  # a "\r" that is not the one before a line's newline
        odd = np.union1d(odd, returns[ends[np.searchsorted(ends, returns).clip(max=n - 1)] != returns])
    letters = np.flatnonzero(kind == 4)
    if letters.size:
        letters = letters[[bytes(raw[k:k + 3]) in _WORDS for k in letters.tolist()]]
    for where in (odd, letters):
        if where.size:
            flat[np.searchsorted(ends, where, side="right").clip(max=n - 1)] = False
    return flat


@dataclass
class _Rows:
    table: pa.Table
    lines: np.ndarray  # the line (0-based in the batch) of each row


def _arrow_rows(data: bytes, starts: np.ndarray, ends: np.ndarray, flat: np.ndarray,
                use_threads: bool) -> tuple[_Rows, np.ndarray]:
    """Arrow's rows of the flat lines, and the flat lines it refused."""
    lines = np.flatnonzero(flat)
    if not lines.size:
        return _Rows(SCHEMA.empty_table(), lines), lines
    if lines.size == len(starts):
        buffer: bytes | bytearray = data
    else:  # the other lines become blank (Arrow skips blank lines), so rows and flat lines pair up
        writable = bytearray(data)
        for k in np.flatnonzero(~flat).tolist():
            writable[starts[k]:ends[k]] = b" " * (ends[k] - starts[k])
        buffer = writable
    table = _read(buffer, len(lines), use_threads)
    if table is not None:
        return _Rows(table, lines), np.zeros(0, dtype=np.int64)
    pieces: list[_Rows] = []
    refused: list[np.ndarray] = []
    _bisect(data, starts, ends, lines, pieces, refused)
    tables = [p.table for p in pieces]
    return (_Rows(pa.concat_tables(tables) if tables else SCHEMA.empty_table(),
                  np.concatenate([p.lines for p in pieces]) if pieces else np.zeros(0, dtype=np.int64)),
            np.concatenate(refused) if refused else np.zeros(0, dtype=np.int64))


def _read(buffer: bytes | bytearray, rows: int, use_threads: bool) -> pa.Table | None:
    """Arrow's table of exactly `rows` rows, or None when it refuses the buffer or counts otherwise."""
    options = pa_json.ReadOptions(use_threads=use_threads, block_size=max(1 << 20, len(buffer) // 2 + 1))
    try:
        table = pa_json.read_json(pa.BufferReader(pa.py_buffer(buffer)), read_options=options, parse_options=_PARSE)
    except (pa.ArrowException, ValueError):
        return None
    return table if table.num_rows == rows else None


def _bisect(data: bytes, starts: np.ndarray, ends: np.ndarray, lines: np.ndarray, pieces: list[_Rows],
            refused: list[np.ndarray]) -> None:
    if lines.size <= SMALLEST_HALF:
        refused.append(lines)
        return
    for half in np.array_split(lines, 2):
        buffer = b"\n".join(data[starts[k]:ends[k]] for k in half.tolist())
        table = _read(buffer, len(half), use_threads=False)
        if table is not None:
            pieces.append(_Rows(table, half))
        else:
            _bisect(data, starts, ends, half, pieces, refused)


@dataclass
class _Fast:
    """The rows taken as they are: pings as columns, trip ends as objects; and the rows refused."""
    lines: np.ndarray
    trip_ids: list[str]
    columns: list[np.ndarray]  # as events.PING_COLUMNS
    ended: dict[int, Event]  # trip ends, by row
    rejected: np.ndarray  # lines

    def after_gcj_start(self, started: dict[str, int], first_line: int) -> np.ndarray:
        """Rows of trips that started in GCJ-02 at an earlier line of this batch."""
        return np.array([k for k, (trip_id, line) in enumerate(zip(self.trip_ids, self.lines.tolist(), strict=True))
                         if trip_id in started and first_line + line > started[trip_id]], dtype=np.int64)

    def without(self, rows: np.ndarray) -> _Fast:
        keep = np.ones(len(self.lines), dtype=bool)
        keep[rows] = False
        index = np.flatnonzero(keep)
        renumber = {int(k): n for n, k in enumerate(index.tolist())}
        return _Fast(self.lines[index], [self.trip_ids[k] for k in index.tolist()], [c[index] for c in self.columns],
                     {renumber[k]: e for k, e in self.ended.items() if k in renumber}, self.rejected)


def _fast_rows(table: pa.Table, lines: np.ndarray, gcj: dict[str, None]) -> _Fast:
    table = table.combine_chunks()
    kind = table.column("type").chunk(0) if table.num_rows else pa.array([], pa.string())
    is_ping = _true(pc.equal(kind, "ping"))
    is_end = _true(pc.equal(kind, "trip_ended"))
    ok = (is_ping | is_end) & _true(pc.is_null(table.column("crs")))

    trip_codes, trip_names = _encoded(table.column("trip_id"))
    good_trip = np.array([is_identifier(t) and t not in gcj for t in trip_names], dtype=bool)
    ok &= (trip_codes >= 0) & _take(good_trip, trip_codes)

    ts_codes, ts_texts = _encoded(table.column("ts"))
    ts_values = np.array([_seconds(text) for text in ts_texts], dtype=np.float64)
    ts = _take(ts_values, ts_codes, missing=np.nan)
    ok &= ~np.isnan(ts)

    lon, lon_null = _numbers(table, "lon")
    lat, lat_null = _numbers(table, "lat")
    placed = ~lon_null & ~lat_null & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)  # NaN is never in range
    optional_ok = np.ones(len(lines), dtype=bool)
    optional: dict[str, np.ndarray] = {}
    for name, (low, high) in OPTIONAL_RANGES.items():
        values, null = _numbers(table, name)
        optional_ok &= null | ((values >= low) & (values <= high))
        optional[name] = values
    ping_ok = ok & is_ping & placed & optional_ok
    # A trip end reads no optional field; its position is optional, but both or neither.
    end_ok = ok & is_end & (placed | (lon_null & lat_null))

    stationary_column = table.column("stationary")
    stationary = pc.fill_null(pc.cast(stationary_column, pa.float64()), np.nan).to_numpy() \
        if stationary_column.null_count < len(stationary_column) else np.full(len(lines), np.nan)
    taken = np.flatnonzero(ping_ok | end_ok)
    names = np.array(trip_names, dtype=object)
    trip_ids = names[trip_codes[taken]].tolist() if taken.size else []
    ended: dict[int, Event] = {n: TripEnded(trip_ids[n], float(ts[k]), None if lon_null[k] else float(lon[k]),
                          None if lat_null[k] else float(lat[k]))
             for n, k in enumerate(taken.tolist()) if end_ok[k]}
    pings_only = np.where(ping_ok[taken], 1.0, np.nan)  # a trip end's slots are NaN, as ColumnBuilder.other
    columns = [ts[taken], lon[taken] * pings_only, lat[taken] * pings_only,
               optional["speed_mps"][taken] * pings_only, optional["accel_g"][taken] * pings_only,
               optional["accuracy_m"][taken] * pings_only, stationary[taken] * pings_only,
               optional["heading"][taken] * pings_only]
    return _Fast(lines[taken], trip_ids, columns, ended, lines[~(ping_ok | end_ok)])


def _true(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as numpy, null as False."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _encoded(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Each row's index into the column's distinct values (-1 for null), and those values."""
    encoded = pc.dictionary_encode(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def _take(values: np.ndarray, codes: np.ndarray, missing: object = False) -> np.ndarray:
    """values[codes], with `missing` where a code is -1."""
    padded = np.append(values, np.array([missing], dtype=values.dtype))
    return padded[codes]  # -1 picks the padding


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


def _parse_watching_gcj(numbered: object, gcj: dict[str, None], builder: ColumnBuilder, errors: list[LineError],
                        started_gcj: dict[str, int]) -> None:
    """`parse_lines`, noting each trip that starts in GCJ-02 and at which line."""
    before = len(builder.trip_ids)
    parse_lines(numbered, gcj, builder, errors)  # type: ignore[arg-type]
    for position, event in builder.others.items():
        if position >= before and isinstance(event, TripStarted) and event.crs == "gcj02":
            line = builder.line_numbers[position]
            started_gcj.setdefault(event.trip_id, line)


def _merge(fast: _Fast | None, builder: ColumnBuilder, first_line: int) -> tuple[EventColumns, list[int]]:
    """The fast rows and the line parser's events, in line order."""
    slow = builder.build()
    if fast is None or not len(fast.lines):
        return slow, builder.line_numbers
    fast_numbers = fast.lines + first_line
    fast_columns = EventColumns._make(fast.trip_ids, fast.columns, dict(fast.ended))
    if not len(slow):
        return fast_columns, fast_numbers.tolist()
    numbers = np.concatenate([fast_numbers, np.asarray(builder.line_numbers, dtype=np.int64)])
    order = np.argsort(numbers, kind="stable")
    n_fast = len(fast_numbers)
    trip_ids = (np.array(fast.trip_ids + slow.trip_ids, dtype=object)[order]).tolist()
    columns = [np.concatenate([f, s])[order] for f, s in zip(fast.columns, slow._columns(), strict=True)]
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    others: dict[int, Event] = {int(where[k]): e for k, e in fast.ended.items()}
    others.update({int(where[n_fast + k]): e for k, e in slow.others.items()})
    return EventColumns._make(trip_ids, columns, others), numbers[order].tolist()
