"""The event contract: validation with line numbers, and GCJ-02 input converted."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripguard.telematics.ingest.events import (
    BadEvent,
    LineError,
    Ping,
    TripStarted,
    format_ts,
    parse_event,
    parse_ndjson,
    parse_ts,
)
from tripguard.telematics.ingest.geo import gcj02_to_wgs84, haversine_m, wgs84_to_gcj02

pytestmark = pytest.mark.no_database


def test_bad_lines_are_named_and_good_ones_kept() -> None:
    lines = [
        json.dumps({"type": "ping", "trip_id": "T1", "ts": "2026-03-01T08:00:15Z", "lon": -8.61, "lat": 41.14}),
        "{not json",
        json.dumps({"type": "ping", "trip_id": "T1", "ts": "2026-03-01T08:00:30", "lon": -8.61, "lat": 41.14}),
        json.dumps({"type": "ping", "trip_id": "T1", "ts": "2026-03-01T08:00:45Z", "lon": 200, "lat": 41.14}),
        "",
        json.dumps({"type": "teleport", "ts": "2026-03-01T08:01:00Z"}),
        json.dumps({"type": "ping", "trip_id": "", "ts": "2026-03-01T08:01:00Z", "lon": 1, "lat": 1}),
    ]
    results = list(parse_ndjson(lines))
    assert isinstance(results[0][1], Ping)
    errors = {number: item.reason for number, item in results if isinstance(item, LineError)}
    assert set(errors) == {2, 3, 4, 6, 7}
    assert "not JSON" in errors[2] and "time zone" in errors[3] and "lon/lat" in errors[4]
    assert "type must be" in errors[6] and "trip_id" in errors[7]


def test_timestamps_round_trip() -> None:
    assert format_ts(parse_ts("2026-03-01T08:00:15Z")) == "2026-03-01T08:00:15Z"
    assert format_ts(parse_ts("2026-03-01T16:00:15.250+08:00")) == "2026-03-01T08:00:15.250Z"


def test_gcj02_trip_is_converted_on_ingest() -> None:
    wgs = (116.397428, 39.90923)  # Tiananmen, WGS-84
    gcj = wgs84_to_gcj02(*wgs)
    assert 300 < haversine_m(*wgs, *gcj) < 700  # the datum's offset is hundreds of metres
    back = gcj02_to_wgs84(*gcj)
    assert haversine_m(*wgs, *back) < 0.05
    lines = [
        json.dumps({"type": "trip_started", "trip_id": "T9", "ts": "2026-03-01T08:00:00Z", "crs": "gcj02",
                    "pickup": list(gcj), "dropoff": list(gcj), "route": [list(gcj)]}),
        json.dumps({"type": "ping", "trip_id": "T9", "ts": "2026-03-01T08:00:15Z", "lon": gcj[0], "lat": gcj[1]}),
    ]
    started, ping = (item for _, item in parse_ndjson(lines))
    assert isinstance(started, TripStarted) and isinstance(ping, Ping)
    assert haversine_m(*started.pickup, *wgs) < 0.05  # type: ignore[misc]
    assert haversine_m(ping.lon, ping.lat, *wgs) < 0.05


@pytest.mark.parametrize("outside", [(-8.61, 41.14), (2.35, 48.85)])
def test_outside_china_no_conversion(outside: tuple[float, float]) -> None:
    assert gcj02_to_wgs84(*outside) == outside


weird = st.sampled_from([0, 1, -8.61, 41.14, 180, -180.5, 91, True, None, "1", [1], 1e308, float("nan")])


@given(lon=weird, lat=weird, trip=st.sampled_from(["T1", "", "x" * 65, 5, None, "tab\there"]),
       speed=st.sampled_from([None, 3.5, -1, 151, "fast", False]))
def test_the_fast_ping_path_agrees_with_the_general_one(lon: object, lat: object, trip: object,
                                                        speed: object) -> None:
    obj = {"type": "ping", "trip_id": trip, "ts": "2026-03-01T08:00:00Z", "lon": lon, "lat": lat}
    if speed is not None:
        obj["speed_mps"] = speed
    results = []
    for candidate in (obj, {**obj, "crs": "wgs84"}):  # the second goes the general way
        try:
            results.append(parse_event(candidate))
        except BadEvent as exc:
            results.append(type(exc))
    assert results[0] == results[1]


lines = st.one_of(
    st.builds(lambda trip, lon, lat, ts: json.dumps({"type": "ping", "trip_id": trip, "ts": ts, "lon": lon,
                                                      "lat": lat}),
              st.sampled_from(["T1", "T1", "T2", "", [1]]),
              st.sampled_from([-8.61, -8.61, 180, 180.5, True, None, "x"]),
              st.sampled_from([41.14, 41.14, -90, 90.5, False, [1, 2]]),
              st.sampled_from(["2026-03-01T08:00:00Z", "2026-03-01T08:00:15Z", "noon", 5])),
    st.builds(lambda speed: json.dumps({"type": "ping", "trip_id": "T1", "ts": "2026-03-01T08:00:30Z",
                                        "lon": 1.5, "lat": 2.5, "speed_mps": speed, "accel_g": 3.0}),
              st.sampled_from([None, 4.0, -1])),
    st.builds(lambda route, crs: json.dumps({"type": "trip_started", "trip_id": "T2", "ts": "2026-03-01T08:00:00Z",
                                             "route": route, "crs": crs}),
              st.sampled_from([[[116.4, 39.9], [116.41, 39.91]], [[1, 2], [3]], [[1, 200]], [], "no"]),
              st.sampled_from(["wgs84", "gcj02"])),
    st.just('{"type": "trip_ended", "trip_id": "T1", "ts": "2026-03-01T08:05:00Z"}'),
    st.just('{"type": "device_heartbeat", "device_id": "D", "vehicle_id": "V", "ts": "2026-03-01T08:05:00Z"}'),
    st.sampled_from(["not json", "[1]", "", '{"type": "ping"} trailing',
                     ' {"type": "x", "ts": "2026-03-01T08:00:00Z"}']),
)


@settings(max_examples=300)
@given(st.lists(lines, max_size=30))
def test_parsing_into_columns_is_parsing_into_events(batch: list[str]) -> None:
    from tripguard.telematics.ingest.columns import EventColumns, parse_ndjson_columns

    parsed = list(parse_ndjson(batch))
    expected = EventColumns.of([item for _, item in parsed if not isinstance(item, LineError)])
    columns, errors = parse_ndjson_columns(batch)
    assert errors == [item for _, item in parsed if isinstance(item, LineError)]
    assert columns.trip_ids == expected.trip_ids and columns.others == expected.others
    for name in ("ts", "lon", "lat", "speed", "accel"):
        assert np.array_equal(getattr(columns, name), getattr(expected, name), equal_nan=True), name


def test_a_trip_id_that_is_not_a_string_is_a_line_error_not_a_crash() -> None:
    line = '{"type": "ping", "trip_id": [1], "ts": "2026-03-01T08:00:00Z", "lon": 1, "lat": 1}'
    assert isinstance(next(parse_ndjson([line]))[1], LineError)


def test_place_names_are_optional_printable_text() -> None:
    base = {"type": "trip_started", "trip_id": "T1", "ts": "2026-03-01T08:00:00Z"}
    started = parse_event({**base, "pickup_name": " 国贸地铁站 A 口 ", "dropoff_name": "Gate 3"})
    assert isinstance(started, TripStarted)
    assert (started.pickup_name, started.dropoff_name) == ("国贸地铁站 A 口", "Gate 3")
    assert parse_event(base).pickup_name is None  # type: ignore[union-attr]
    for bad in ("", "   ", "x" * 101, 5, ["a"], "tab\there", "\ud800"):
        with pytest.raises(BadEvent, match="pickup_name"):
            parse_event({**base, "pickup_name": bad})
