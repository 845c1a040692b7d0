"""NDJSON bytes into event columns with Arrow's native JSON reader; the line parser for the rest.

The same contract as `columns.parse_ndjson_columns` (a property test holds the two equal: the same
events, the same line errors with their numbers), at native speed on the lines that make up a
stream: the pings, starts and ends of WGS-84 trips.

1. Lines are split on "\\n" (a "\\r" before it is whitespace). A line is read by Arrow only when it is
   one JSON object of plain values and shallow lists: its first byte is `{`, its last `}`, it holds no
   other brace, its lists nest at most two deep (a route), and it is printable ASCII without the words
   Arrow reads otherwise than Python ("Inf", "NaN"). Nothing else reaches Arrow; that keeps it away from
   the shapes its reader mishandles (a top-level `null` crashes it, apache/arrow#47409; deep nesting
   would recurse; lists are validated after reading, apache/arrow#51305).
2. Arrow parses those lines against a fixed schema. When it refuses a batch (a value of the wrong
   type, a duplicate key, broken JSON) or returns another number of rows, the batch is halved until
   the lines it refuses are found; those go to the line parser, which names the error.
3. A row Arrow read is taken only when every rule of its kind holds on it, checked on whole columns
   (`arrow_rows`). Any other row goes to the line parser, in line order with the lines of step 1 left
   out; a trip that starts in GCJ-02 on the way has its later rows re-read there too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

from tripguard.telematics.ingest.arrow_rows import LIST_COLUMNS, SCHEMA, Taken, take_rows
from tripguard.telematics.ingest.columns import ColumnBuilder, EventColumns, drop_far, parse_lines
from tripguard.telematics.ingest.events import Event, LineError, TripStarted

_PARSE = pa_json.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
SMALLEST_HALF = 16  # lines Arrow refuses are looked for down to pieces of this size
_OPEN, _CLOSE, _NEWLINE = (ord(c) for c in "{}\n")


def read_ndjson(data: bytes, gcj_trips: dict[str, None] | None = None, first_line: int = 1, *,
                starts_as_columns: bool = False) -> tuple[EventColumns, list[LineError]]:
    """Every line of `data` (numbered from `first_line`) as `parse_ndjson_columns` would read it (see
    `read_ndjson_numbered` for `starts_as_columns`)."""
    columns, _, errors = read_ndjson_numbered(data, gcj_trips, first_line, starts_as_columns=starts_as_columns)
    return columns, errors


def read_ndjson_numbered(data: bytes, gcj_trips: dict[str, None] | None = None, first_line: int = 1, *,
                         starts_as_columns: bool = False) -> tuple[EventColumns, list[int], list[LineError]]:
    """`read_ndjson`, with the line of each event; the trip starts Arrow read left in columns
    (`EventColumns.starts`) when asked, the monitor's input (replay)."""
    gcj = gcj_trips if gcj_trips is not None else {}
    scanned = scan_lines(data)
    starts, stops, ends, flat = scanned.starts, scanned.stops, scanned.ends, scanned.flat
    rows, refused = _arrow_rows(data, starts, ends, flat)
    fast = take_rows(rows.table, rows.lines, gcj) if rows.lines.size else None

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
    columns, lines, errors = drop_far(columns, lines, sorted(errors, key=lambda e: e.line))
    return (columns if starts_as_columns else columns.with_start_objects()), lines, errors


@dataclass
class Lines:
    """Where each line of a batch lies, and which of them Arrow may read."""

    starts: np.ndarray  # its first byte
    stops: np.ndarray  # its newline (or the end of the batch)
    ends: np.ndarray  # where its content ends: a "\\r" before the newline left out
    flat: np.ndarray  # one JSON object Arrow may read (`scan_lines`)


# Byte classes: 1 "{", 2 "}", 3 a byte that sends its line to the line parser (a control byte, anything
# beyond ASCII), 4 the first letter of a number word Arrow reads otherwise than Python ("Inf", "NaN":
# Arrow also takes "Inf" and "-NaN", which Python's json refuses), 5 "\\r", 8 "\\n". Brackets are
# checked apart (`_badly_nested`): a route has hundreds.
_OPENS, _CLOSES, _ODD, _LETTER, _RETURNS, _NEWLINES = 1, 2, 3, 4, 5, 8
_CLASS = bytearray(256)
for _byte in [*range(0x20), *range(0x80, 0x100)]:
    _CLASS[_byte] = _ODD
for _char, _class in (("{", _OPENS), ("}", _CLOSES), ("I", _LETTER), ("N", _LETTER), ("\r", _RETURNS),
                      ("\n", _NEWLINES)):
    _CLASS[ord(_char)] = _class
_TABLE = bytes(_CLASS)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]\n")
_WORDS = (b"Inf", b"NaN")
MAX_DEPTH = 2  # of lists in a line Arrow reads: a route is a list of [lon, lat] lists


def scan_lines(data: bytes) -> Lines:
    """The lines of `data` (split on "\\n"), and which Arrow may read: one JSON object (`{` first, `}`
    last, no other brace) whose lists nest at most two deep, printable ASCII, no number word.

    One pass classifies every byte; the rest looks only at the few that matter (braces, newlines), each
    knowing its line by the newlines before it; the brackets are looked at as text (`_badly_nested`)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    kind = np.frombuffer(data.translate(_TABLE), dtype=np.uint8)
    special = np.flatnonzero(kind != 0)  # on booleans: several times faster than on bytes
    what = kind[special]
    is_newline = what == _NEWLINES
    newlines = special[is_newline]
    stops = newlines if len(raw) and raw[-1] == _NEWLINE else np.append(newlines, len(raw))
    n = len(stops)
    starts = np.empty_like(stops)
    starts[:1] = 0
    starts[1:] = stops[:-1] + 1
    line_of = np.cumsum(is_newline) - is_newline  # each special byte's line
    returns = special[what == _RETURNS]
    trailing = np.zeros(n, dtype=bool)  # the "\\r" just before a line's newline
    if returns.size:
        at_stop = stops[line_of[what == _RETURNS]] == returns + 1
        trailing[line_of[what == _RETURNS][at_stop]] = True
    ends = stops - trailing
    flat = ends - starts >= 2
    flat[flat] = (raw[starts[flat]] == _OPEN) & (raw[ends[flat] - 1] == _CLOSE)
    for brace in (_OPENS, _CLOSES):
        flat &= np.bincount(line_of[what == brace], minlength=n) == 1
    flat[line_of[what == _ODD]] = False
    if returns.size:
        flat[line_of[what == _RETURNS][~at_stop]] = False
    letters = what == _LETTER
    if letters.any():
        words = np.array([data[k:k + 3] in _WORDS for k in special[letters].tolist()], dtype=bool)
        flat[line_of[letters][words]] = False
    flat[_badly_nested(data)] = False
    return Lines(starts, stops, ends, flat)


def _badly_nested(data: bytes) -> np.ndarray:
    """The lines whose brackets go deeper than MAX_DEPTH, or close one never opened, or leave one open.

    Of each line's brackets alone, a pass that takes out every "[]" takes out its innermost lists; lists
    at most two deep, and only those, are gone after two passes."""
    brackets = data.translate(None, _NOT_BRACKETS)  # the brackets, each line's on its own line
    for _ in range(MAX_DEPTH):
        brackets = brackets.replace(b"[]", b"")
    left = np.frombuffer(brackets, dtype=np.uint8)
    newline = left == _NEWLINE
    if newline.all():
        return np.zeros(0, dtype=np.int64)
    lines: np.ndarray = np.unique((np.cumsum(newline) - newline)[~newline])
    return lines


@dataclass
class _Rows:
    table: pa.Table
    lines: np.ndarray  # the line (0-based in the batch) of each row


def _arrow_rows(data: bytes, starts: np.ndarray, ends: np.ndarray, flat: np.ndarray) -> tuple[_Rows, np.ndarray]:
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
    table = _read(buffer, len(lines))
    if table is not None:
        return _Rows(table, lines), np.zeros(0, dtype=np.int64)
    pieces: list[_Rows] = []
    refused: list[np.ndarray] = []
    _bisect(data, starts, ends, lines, pieces, refused)
    tables = [p.table for p in pieces]
    return (_Rows(pa.concat_tables(tables) if tables else SCHEMA.empty_table(),
                  np.concatenate([p.lines for p in pieces]) if pieces else np.zeros(0, dtype=np.int64)),
            np.concatenate(refused) if refused else np.zeros(0, dtype=np.int64))


def _read(buffer: bytes | bytearray, rows: int) -> pa.Table | None:
    """Arrow's table of exactly `rows` rows, or None when it refuses the buffer or counts otherwise."""
    # One thread: in replay the other core runs detection.
    options = pa_json.ReadOptions(use_threads=False, block_size=max(1 << 20, len(buffer) // 2 + 1))
    try:
        table = pa_json.read_json(pa.BufferReader(pa.py_buffer(buffer)), read_options=options, parse_options=_PARSE)
        for name in LIST_COLUMNS:  # lists as Arrow built them are sound (apache/arrow#51305)
            table.column(name).validate(full=True)
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
        table = _read(buffer, len(half))
        if table is not None:
            pieces.append(_Rows(table, half))
        else:
            _bisect(data, starts, ends, half, pieces, refused)


def _parse_watching_gcj(numbered: Iterable[tuple[int, bytes]], gcj: dict[str, None], builder: ColumnBuilder,
                        errors: list[LineError], started_gcj: dict[str, int]) -> None:
    """`parse_lines`, noting each trip that starts in GCJ-02 and at which line."""
    before = len(builder.trip_ids)
    parse_lines(numbered, gcj, builder, errors)
    for position, event in builder.others.items():
        if position >= before and isinstance(event, TripStarted) and event.crs == "gcj02":
            line = builder.line_numbers[position]
            started_gcj.setdefault(event.trip_id, line)


def _merge(fast: Taken | None, builder: ColumnBuilder, first_line: int) -> tuple[EventColumns, list[int]]:
    """The fast rows and the line parser's events, in line order."""
    slow = builder.build()
    if fast is None or not len(fast.lines):
        return slow, builder.line_numbers
    fast_numbers = fast.lines + first_line
    if not len(slow):
        return (EventColumns._make(fast.trip_ids, fast.columns, dict(fast.others), fast.groups, fast.group_names,
                                   fast.starts), fast_numbers.tolist())
    names = list(fast.group_names)
    number_of = {name: n for n, name in enumerate(names)}
    for trip_id in slow.trip_ids:
        if trip_id not in number_of:
            number_of[trip_id] = len(names)
            names.append(trip_id)
    slow_groups = np.fromiter(map(number_of.__getitem__, slow.trip_ids), dtype=np.int64, count=len(slow))
    numbers = np.concatenate([fast_numbers, np.asarray(builder.line_numbers, dtype=np.int64)])
    order = np.argsort(numbers, kind="stable")
    n_fast = len(fast_numbers)
    trip_ids = (np.array(fast.trip_ids + slow.trip_ids, dtype=object)[order]).tolist()
    columns = [np.concatenate([f, s])[order] for f, s in zip(fast.columns, slow._columns(), strict=True)]
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    others: dict[int, Event] = {int(where[k]): e for k, e in fast.others.items()}
    others.update({int(where[n_fast + k]): e for k, e in slow.others.items()})
    groups = np.concatenate([fast.groups, slow_groups])[order]
    starts = None if fast.starts is None else fast.starts.moved(where[:n_fast])
    return EventColumns._make(trip_ids, columns, others, groups, names, starts), numbers[order].tolist()

