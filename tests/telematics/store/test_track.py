"""Packed trajectories: exact round trips, duplicates dropped, order restored, corruption refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripguard.telematics.ingest.events import Ping
from tripguard.telematics.store.track import CorruptTrack, Track

pings = st.lists(st.builds(
    Ping, trip_id=st.just("T1"),
    ts=st.integers(1_700_000_000_000, 1_800_000_000_000).map(lambda ms: ms / 1000),
    lon=st.integers(-180_000_000, 180_000_000).map(lambda v: v / 1e6),
    lat=st.integers(-90_000_000, 90_000_000).map(lambda v: v / 1e6),
    speed_mps=st.none() | st.integers(0, 15_000).map(lambda v: v / 100),
    heading=st.none() | st.integers(0, 360).map(float),
    accuracy_m=st.none() | st.integers(0, 100_000).map(lambda v: v / 10),
), max_size=60)

pytestmark = pytest.mark.no_database


@given(pings)
def test_pack_then_unpack_gives_every_distinct_ping_back_in_time_order(batch: list[Ping]) -> None:
    track = Track.unpack(Track.from_pings(batch).pack())
    first_of_each_time: dict[int, Ping] = {}
    for ping in batch:
        first_of_each_time.setdefault(round(ping.ts * 1000), ping)
    expected = [first_of_each_time[t] for t in sorted(first_of_each_time)]
    rows = track.rows()
    assert len(rows) == len(expected)
    for row, ping in zip(rows, expected, strict=True):
        assert (row["lon"], row["lat"]) == (ping.lon, ping.lat)
        assert row["speed_mps"] == ping.speed_mps and row["accuracy_m"] == ping.accuracy_m
        assert row["heading"] == ping.heading


@given(pings, pings)
def test_chunks_merge_in_any_order_to_the_same_track(first: list[Ping], second: list[Ping]) -> None:
    a, b = Track.from_pings(first), Track.from_pings(second)
    one = Track.concat([a, b])
    other = Track.concat([b, a])
    assert list(one.t_ms) == list(other.t_ms) and len(set(one.t_ms.tolist())) == len(one)


def test_porto_like_pings_pack_to_a_few_bytes_each() -> None:
    batch = [Ping("T1", 1_700_000_000 + 15 * n, -8.61 + n * 0.0007, 41.14 + n * 0.0004) for n in range(240)]
    packed = Track.from_pings(batch).pack()
    assert len(packed) / len(batch) < 12


def test_corrupt_bytes_are_refused() -> None:
    packed = Track.from_pings([Ping("T1", 1_700_000_000, 1.0, 2.0)]).pack()
    for bad in (b"nope", packed[:4] + b"\x05\x00\x00\x00" + packed[8:], packed[:-3]):
        with pytest.raises(CorruptTrack):
            Track.unpack(bad)


def test_csv_has_a_header_and_one_line_a_ping() -> None:
    csv_text = Track.from_pings([Ping("T1", 1_700_000_000, -8.61, 41.14, speed_mps=8.2)]).to_csv()
    assert csv_text.splitlines() == ["ts,lon,lat,speed_mps,heading,accuracy_m",
                                     "2023-11-14T22:13:20Z,-8.61,41.14,8.2,,"]


@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 50),
                          st.floats(-180, 180, allow_nan=False), st.floats(-90, 90, allow_nan=False),
                          st.one_of(st.none(), st.floats(0, 80)), st.one_of(st.none(), st.floats(0, 359)),
                          st.one_of(st.none(), st.floats(0, 500))), max_size=60))
@settings(max_examples=200, deadline=None)
def test_many_tracks_packed_at_once_are_packed_as_one_by_one(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    """The monitor workers' bulk path writes exactly the bytes the per-trip path writes."""
    pings = [Ping(trip, 1_772_352_000 + t * 0.5, lon, lat, speed, heading, accuracy)
             for trip, t, lon, lat, speed, heading, accuracy in rows]
    names = sorted({p.trip_id for p in pings})
    groups = np.array([names.index(p.trip_id) for p in pings], dtype=np.int64)
    nan = float("nan")
    table = Track.int_columns(*(np.array([nan if v is None else v for v in column], dtype=float) for column in (
        [p.ts for p in pings], [p.lon for p in pings], [p.lat for p in pings], [p.speed_mps for p in pings],
        [p.heading for p in pings], [p.accuracy_m for p in pings])))
    packed = {names[g]: (n, first, last, data) for g, n, first, last, data in Track.pack_groups(groups, table)}
    for trip in names:
        one = Track.from_pings([p for p in pings if p.trip_id == trip])
        assert packed[trip] == (len(one), int(one.t_ms[0]), int(one.t_ms[-1]), one.pack())
