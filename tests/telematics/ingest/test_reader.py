"""The Arrow reader reads every batch as the line parser does: the same events, the same line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripguard.telematics.ingest.columns import PING_COLUMNS, parse_ndjson_columns
from tripguard.telematics.ingest.events import LineError, Ping, TripStarted
from tripguard.telematics.ingest.reader import read_ndjson, scan_lines

pytestmark = pytest.mark.no_database

TS = ["2026-03-01T08:00:00Z", "2026-03-01T08:00:15Z", "2026-03-01T09:00:15+08:00", "2026-03-03T08:00:00Z",
      "2026-03-01T08:00:00", "noon", "1969-12-31T23:59:59Z", "2026-03-01T08:00:00+14:30"]
TRIPS = ["T1", "T2", "G1", "G2", "", "x" * 65, "a b", "é", "-x", "T.1:2_3-4"]
NUMBERS = [0, -8.61, 41.14, 180, -180, 90, -90, 180.5, -90.5, 150, 150.01, 360, 10_000, 50, 1e308, -0.0,
           1.7976931348623157e308, 5e-324, 0.1, 1234567890123456789012]
ODD = [None, True, False, "1", [1], {"a": 1}]


def _value(values: list[object]) -> st.SearchStrategy[object]:
    return st.one_of(st.sampled_from(values), st.sampled_from(ODD),
                     st.floats(-200, 200, allow_nan=False), st.integers(-200, 200))


def _ping(draw: st.DrawFn) -> dict[str, object]:
    event: dict[str, object] = {"type": "ping", "trip_id": draw(st.sampled_from(TRIPS)),
                                "ts": draw(st.sampled_from(TS)), "lon": draw(_value(NUMBERS)),
                                "lat": draw(_value(NUMBERS))}
    for name in ("speed_mps", "heading", "accuracy_m", "accel_g", "stationary", "crs", "extra"):
        if draw(st.integers(0, 3)) == 0:
            event[name] = draw(_value([*NUMBERS, "gcj02", "wgs84"]))
    return event


@st.composite
def event_line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["ping"] * 6 + ["trip_ended", "trip_started", "device_heartbeat", "other"]))
    if kind == "ping":
        event = _ping(draw)
    elif kind == "trip_ended":
        event = {"type": "trip_ended", "trip_id": draw(st.sampled_from(TRIPS)), "ts": draw(st.sampled_from(TS))}
        if draw(st.booleans()):
            event |= {"lon": draw(_value(NUMBERS)), "lat": draw(_value(NUMBERS))}
        if draw(st.booleans()):
            event["speed_mps"] = draw(_value(NUMBERS))  # a trip end does not read it
    elif kind == "trip_started":
        event = {"type": "trip_started", "trip_id": draw(st.sampled_from(TRIPS)), "ts": draw(st.sampled_from(TS)),
                 "crs": draw(st.sampled_from(["gcj02", "wgs84", "wgs84", None, 5]))}
        if draw(st.integers(0, 4)):
            event["crs"] = draw(st.sampled_from(["wgs84", "gcj02"]))
        for name in ("vehicle_id", "driver_id", "passenger_id"):
            if draw(st.booleans()):
                event[name] = draw(st.sampled_from([*TRIPS, None, 7]))
        for name in ("pickup", "dropoff"):
            if draw(st.booleans()):
                event[name] = draw(st.sampled_from([[116.4, 39.9], [-8.6, 41.1], [1, 2, 3], [200, 1], [1, None], [],
                                                    None, "x", [[1, 2]]]))
        for name in ("pickup_name", "dropoff_name"):  # optional place names: text, or a wrong type
            if draw(st.integers(0, 3)) == 0:
                event[name] = draw(st.sampled_from(["Gate A", "国贸地铁站 A 口", "", " ", "x" * 101, 5, None, ["a"],
                                                    "tab\there", "\u2028"]))
        if draw(st.integers(0, 3)):
            event["route"] = draw(st.one_of(
                st.lists(st.tuples(_value(NUMBERS), _value(NUMBERS)).map(list), min_size=0, max_size=5),
                st.sampled_from([[[116.4, 39.9], [116.41, 39.91]], [[1, 2, 3]], [[1]], [1, 2], None, [[None, 1]]])))
    elif kind == "device_heartbeat":
        event = {"type": "device_heartbeat", "device_id": "D1", "vehicle_id": "V1", "ts": draw(st.sampled_from(TS))}
    else:
        event = {"type": draw(st.sampled_from(["Ping", "x", None, 5])), "ts": draw(st.sampled_from(TS))}
    return json.dumps(event, separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))


HOSTILE = ["{", "}", "[", "]", '"', ",", ":", "\\", "\\u0000", "\\ud800", "\\u0041", " ", "\t", "\r", "\x00", "\x0b",
           "\x1c", "\xa0", "é", "\ufeff", "Inf", "-Inf", "NaN", "-NaN", "Infinity", "null", "true", "1e400", "01",
           '"type":"ping",', '"lon":1,', ',"lon":2', '"x":[null,1],', "}{", "}null", "\u2028", "[[[", "]]", "[null]",
           '"route":[[1,2]],', '"pickup":[1,2,3],', '"route":[[1,null]],', '"route":[],', '"crs":"gcj02",']


@st.composite
def hostile_line(draw: st.DrawFn) -> bytes:
    """An event line with a few pieces cut out or put in, anywhere (bytes: invalid UTF-8 too)."""
    text = draw(event_line())
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.sampled_from(HOSTILE)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 4)):]
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        data += draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
    return data


batches = st.lists(st.one_of(event_line().map(str.encode), event_line().map(str.encode), hostile_line(),
                             st.sampled_from([b"", b"   ", b"\r", b"\x0c", b"null", b"[]", b"{}", b'"x"'])),
                   max_size=40)


def _same(data: bytes, gcj: dict[str, None], first_line: int = 1) -> None:
    reference_gcj, reader_gcj = dict(gcj), dict(gcj)
    expected, expected_errors = parse_ndjson_columns(data.split(b"\n"), reference_gcj, first_line=first_line)
    columns, errors = read_ndjson(data, reader_gcj, first_line=first_line)
    assert errors == expected_errors
    assert columns.trip_ids == expected.trip_ids
    assert columns.others == expected.others
    for name in PING_COLUMNS:
        assert np.array_equal(getattr(columns, name), getattr(expected, name), equal_nan=True), name
    assert list(reader_gcj) == list(reference_gcj)
    groups, names = columns.trip_groups()  # the trip numbers the reader hands the monitor
    assert [names[g] for g in groups.tolist()] == columns.trip_ids


@settings(max_examples=400, deadline=None)
@given(batches, st.sampled_from([b"\n", b"\r\n"]), st.booleans(), st.sampled_from([{}, {"G1": None}]))
def test_the_reader_reads_as_the_line_parser(lines: list[bytes], newline: bytes, trailing: bool,
                                             gcj: dict[str, None]) -> None:
    _same(newline.join(lines) + (newline if trailing else b""), gcj, first_line=7)


@settings(max_examples=60, deadline=None)
@given(st.lists(event_line().map(str.encode), min_size=40, max_size=120), st.lists(hostile_line(), max_size=3),
       st.randoms())
def test_a_few_lines_arrow_refuses_in_a_long_batch(good: list[bytes], bad: list[bytes], rng: object) -> None:
    """Arrow refuses the whole batch; halving finds the lines it refuses, the rest it still reads."""
    lines = list(good)
    for line in bad:
        lines.insert(rng.randrange(len(lines) + 1), line)  # type: ignore[attr-defined]
    _same(b"\n".join(lines), {})


def _ping_line(k: int, trip: str = "T1", **extra: object) -> bytes:
    return json.dumps({"type": "ping", "trip_id": trip, "ts": f"2026-03-01T08:{k // 60:02d}:{k % 60:02d}Z",
                       "lon": -8.61 + k * 1e-4, "lat": 41.14, **extra}).encode()


@pytest.mark.parametrize("poison", [b"null", b'{"type":"ping"}null', b'{"a":1}{"b":2}', b'{"type":"ping","lon":"x"}',
                                    b'{"type":"ping","lon":1,"lon":2}', b'{"type":"ping","x":Inf}',
                                    b'{"type":"ping","x":"\xff"}', b'{"type":"ping","x":[null,1]}'])
def test_lines_that_trip_up_arrow_are_line_errors(poison: bytes) -> None:
    lines = [_ping_line(k) for k in range(100)]
    lines.insert(50, poison)
    data = b"\n".join(lines)
    _same(data, {})
    columns, errors = read_ndjson(data)
    assert len(columns) == 100 and [e.line for e in errors] == [51]


def test_a_trip_that_starts_in_gcj02_mid_batch_is_converted_from_there_on() -> None:
    start = json.dumps({"type": "trip_started", "trip_id": "G9", "ts": "2026-03-01T08:00:01Z", "crs": "gcj02"})
    before = json.dumps({"type": "ping", "trip_id": "G9", "ts": "2026-03-01T08:00:00Z", "lon": 116.4, "lat": 39.9})
    after = json.dumps({"type": "ping", "trip_id": "G9", "ts": "2026-03-01T08:00:02Z", "lon": 116.4, "lat": 39.9})
    gcj: dict[str, None] = {}
    columns, errors = read_ndjson(f"{before}\n{start}\n{after}".encode(), gcj)
    assert not errors and "G9" in gcj
    events = columns.events()
    assert isinstance(events[1], TripStarted)
    assert (events[0].lon, events[0].lat) == (116.4, 39.9)  # type: ignore[union-attr]
    assert isinstance(events[2], Ping) and (events[2].lon, events[2].lat) != (116.4, 39.9)


def test_every_optional_field_is_kept() -> None:
    line = _ping_line(3, speed_mps=12.5, heading=90, accuracy_m=8, accel_g=0.2, stationary=False)
    [ping] = read_ndjson(line)[0].events()
    assert ping == Ping("T1", ping.ts, -8.6097, 41.14, 12.5, 90.0, 8.0, 0.2, False)


def test_which_lines_arrow_may_read() -> None:
    data = (b'{"a":1}\r\n{"a":"{"}\n {"a":1}\n{"a":[[1]]}\n{"a":"\tb"}\n{"a":Inf}\n\n{"a":"Info"}\n{"a":"r\rb"}\n'
            b'{"b":2}\n{"a":[[[1]]]}\n{"a":]1[}\n{"a":[1}\n{"a":[1]],"b":[[2]}')
    lines = scan_lines(data)
    assert [data[s:e] for s, e in zip(lines.starts, lines.stops, strict=True)] == data.split(b"\n")
    assert [data[s:e] for s, e in zip(lines.starts, lines.ends, strict=True)] == [
        line.rstrip(b"\r") for line in data.split(b"\n")]
    assert lines.flat.tolist() == [True, False, False, True, False, False, False, False,
                                                        False, True, False, False, False, False]


def test_far_ahead_and_blank_lines_keep_their_numbers() -> None:
    far = json.dumps({"type": "ping", "trip_id": "T1", "ts": "2026-03-05T08:00:00Z", "lon": 1, "lat": 1}).encode()
    data = b"\n".join([_ping_line(1), b"", far, b"  ", _ping_line(2), b"oops"])
    columns, errors = read_ndjson(data, first_line=10)
    assert errors == [LineError(12, "ts is more than a day ahead of the rest of the batch"),
                      LineError(15, errors[1].reason)]
    assert len(columns) == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 1969, 1970, 2000, 2024, 2199, 2200, 9999]), st.integers(0, 13),
                          st.integers(0, 32), st.integers(0, 25), st.integers(0, 61), st.integers(0, 61),
                          st.sampled_from(["", ".5", ".123", ".123456", ".1234567"]),
                          st.sampled_from(["Z", "z", "+00:00", "+08:00", ""]), st.sampled_from(["T", " ", "t"])),
                min_size=1, max_size=50))
def test_canonical_times_on_whole_columns_are_parse_ts(parts: list[tuple[object, ...]]) -> None:
    import pyarrow as pa

    from tripguard.telematics.ingest.arrow_rows import utc_times
    from tripguard.telematics.ingest.events import BadEvent, parse_ts

    texts = [f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{zone}"
             for y, mo, d, h, mi, s, frac, zone, sep in parts]
    seconds, canonical = utc_times(pa.array(texts))
    for text, value, is_canonical in zip(texts, seconds.tolist(), canonical.tolist(), strict=True):
        if not is_canonical:
            continue  # parse_ts reads it
        try:
            expected = parse_ts(text)
        except BadEvent:
            assert np.isnan(value), text
        else:
            assert value == expected, text


def test_deep_nesting_never_reaches_arrow() -> None:
    """Lists nested deeper than a route are the line parser's: Arrow's reader would recurse on them."""
    deep = b'{"type":"ping","trip_id":"T1","ts":"2026-03-01T08:00:00Z","lon":1,"lat":1,"x":' + b"[" * 100_000 \
        + b"]" * 100_000 + b"}"
    shallow = b'{"type":"ping","trip_id":"T1","ts":"2026-03-01T08:00:01Z","lon":1,"lat":1,"x":[[[1]]]}'
    lines = [_ping_line(k) for k in range(40)]
    data = b"\n".join([*lines[:20], deep, shallow, *lines[20:]])
    assert scan_lines(data).flat.tolist() == [True] * 20 + [False, False] + [True] * 20
    columns, errors = read_ndjson(data)
    assert [e.line for e in errors] == [21] and "nested too deeply" in errors[0].reason
    assert len(columns) == 41  # the shallow one is read by the line parser, and taken
