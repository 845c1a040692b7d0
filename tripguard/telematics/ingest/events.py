"""The trip-monitoring event contract (DESIGN.md §4): parse and validate, one line at a time.

Parsing is hand-written rather than a Pydantic model per line: replay must sustain hundreds of
thousands of events a second. A bad line is reported with its number and reason; the rest go on.
"""

from __future__ import annotations

import json
import json.scanner
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np

from tripguard.core.identifiers import is_identifier
from tripguard.telematics.ingest.geo import gcj02_to_wgs84

Point = tuple[float, float]


class Points(Sequence[Point]):
    """A route's points as one read-only (n, 2) float64 array; reads as, and equals, the tuple of its
    (lon, lat) points. Parsing builds it without a Python object per point, and the monitor reads the
    array as it is."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.asarray(array, dtype=np.float64).reshape(-1, 2)
        self.array.flags.writeable = False

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Points(self.array[index])
        lon, lat = self.array[index].tolist()
        return (lon, lat)

    def __iter__(self) -> Iterator[Point]:
        return iter([(lon, lat) for lon, lat in self.array.tolist()])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Points):
            return bool(np.array_equal(self.array, other.array))
        if isinstance(other, (tuple, list)):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Points({self.array.tolist()})"

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return _points_of, (self.array.tobytes(),)  # bytes pickle fast: replay sends batches between processes


def _points_of(data: bytes) -> Points:
    return Points(np.frombuffer(data, dtype=np.float64))


@dataclass(frozen=True, slots=True)
class TripStarted:
    trip_id: str
    ts: float
    vehicle_id: str | None
    driver_id: str | None
    pickup: Point | None
    dropoff: Point | None
    route: Sequence[Point] | None  # Points when parsed
    passenger_id: str | None = None
    crs: str = "wgs84"
    pickup_name: str | None = None  # optional place names for people (the share page); sealed with the plan
    dropoff_name: str | None = None

    def __reduce__(self) -> tuple[Any, tuple[object, ...]]:  # positional: several times faster to pickle
        return TripStarted, (self.trip_id, self.ts, self.vehicle_id, self.driver_id, self.pickup, self.dropoff,
                             self.route, self.passenger_id, self.crs, self.pickup_name, self.dropoff_name)


@dataclass(frozen=True, slots=True)
class Ping:
    trip_id: str
    ts: float
    lon: float
    lat: float
    speed_mps: float | None = None
    heading: float | None = None
    accuracy_m: float | None = None
    accel_g: float | None = None
    stationary: bool | None = None  # the device's own motion state (ACC off, a motion sensor), when it has one


@dataclass(frozen=True, slots=True)
class TripEnded:
    trip_id: str
    ts: float
    lon: float | None
    lat: float | None

    def __reduce__(self) -> tuple[Any, tuple[object, ...]]:
        return TripEnded, (self.trip_id, self.ts, self.lon, self.lat)


@dataclass(frozen=True, slots=True)
class DeviceHeartbeat:
    device_id: str
    vehicle_id: str
    ts: float
    camera_ok: bool
    storage_ok: bool
    tampered: bool = False  # the device's own tamper switch (casing opened, camera covered, unplugged)


Event = TripStarted | Ping | TripEnded | DeviceHeartbeat


class BadEvent(ValueError):
    pass


def _why(exc: Exception) -> str:
    if isinstance(exc, BadEvent):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "not JSON: nested too deeply"
    return f"not JSON: {exc}"


@dataclass(frozen=True)
class LineError:
    line: int
    reason: str


_TS_CACHE: dict[str, float] = {}  # a city's pings share their few timestamps: parse each string once


def parse_ts(value: object) -> float:
    if type(value) is str:
        cached = _TS_CACHE.get(value)
        if cached is not None:
            return cached
    seconds = _parse_ts(value)
    if len(_TS_CACHE) >= 65_536:
        _TS_CACHE.clear()
    _TS_CACHE[value] = seconds  # type: ignore[index]
    return seconds


def _parse_ts(value: object) -> float:
    if not isinstance(value, str):
        raise BadEvent("ts must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadEvent(f"ts is not RFC 3339: {value[:40]!r}") from exc
    if parsed.tzinfo is None:
        raise BadEvent("ts needs a time zone (use Z for UTC)")
    offset = parsed.utcoffset()
    if offset is None or abs(offset) > MAX_OFFSET:
        raise BadEvent("ts has a time-zone offset beyond -14:00 to +14:00")
    try:
        seconds = parsed.timestamp()
    except (OverflowError, ValueError) as exc:
        raise BadEvent("ts is out of range") from exc
    if not EARLIEST_TS <= seconds < LATEST_TS:
        raise BadEvent("ts must lie between 1970 and 2200")
    return seconds


MAX_OFFSET = timedelta(hours=14)
EARLIEST_TS, LATEST_TS = 0.0, datetime(2200, 1, 1, tzinfo=UTC).timestamp()
# A batch is one stretch of a stream: an event a day ahead of the rest of its batch is a broken clock,
# and taking it would move the watermark a day on (every other trip would look silent). Late events
# are fine: the watermark never goes back.
MAX_AHEAD_OF_BATCH_SECONDS = 86_400.0


def far_from_batch(ts: np.ndarray) -> np.ndarray:
    """Which events lie more than a day ahead of their batch's median time (the median shrugs off outliers)."""
    if len(ts) == 0:
        return np.zeros(0, dtype=bool)
    return ts - float(np.median(ts)) > MAX_AHEAD_OF_BATCH_SECONDS


def format_ts(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = round((seconds - math.floor(seconds)) * 1000)
    return f"{text}.{millis:03d}Z" if millis and millis < 1000 else f"{text}Z"


def _id(obj: dict[str, object], key: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not is_identifier(value):
        raise BadEvent(f"{key} must be an id: 1 to 64 of A-Z a-z 0-9 _ . : -, starting with a letter or digit")
    return str(value)


def _number(obj: dict[str, object], key: str, low: float, high: float, *, required: bool = True) -> float | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadEvent(f"{key} must be a number from {low} to {high}")
    return float(value)


def _flag(obj: dict[str, object], key: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise BadEvent(f"{key} must be true or false")


MAX_PLACE_NAME = 100


def _place_name(obj: dict[str, object], key: str) -> str | None:
    """An optional place name people read ("国贸地铁站 A 口"): printable text of 1 to 100 characters."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_PLACE_NAME or not value.isprintable() \
            or not value.strip() or any("\ud800" <= ch <= "\udfff" for ch in value):
        raise BadEvent(f"{key} must be printable text of 1 to {MAX_PLACE_NAME} characters")
    return value.strip()


def _point(value: object, key: str, gcj: bool) -> Point:
    if (not isinstance(value, list) or len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                                              for v in value)):
        raise BadEvent(f"{key} must be [lon, lat]")
    lon, lat = float(value[0]), float(value[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadEvent(f"{key} is outside the globe")
    return gcj02_to_wgs84(lon, lat) if gcj else (lon, lat)


_NUMBER = (int, float)


def _plain_ping(obj: dict[str, object], ts: float) -> Ping:
    """The common case (WGS-84, few optional fields), checked inline: same rules as the general path."""
    trip_id, lon, lat = obj.get("trip_id"), obj.get("lon"), obj.get("lat")
    if type(lon) not in _NUMBER or type(lat) not in _NUMBER or not (-180 <= lon <= 180 and -90 <= lat <= 90):  # type: ignore[operator]
        _point([lon, lat], "lon/lat", False)  # raises the general path's error
    if not is_identifier(trip_id):
        _id(obj, "trip_id")
    speed = heading = accuracy = accel = stationary = None
    if len(obj) > 5:
        speed = _number(obj, "speed_mps", 0, 150, required=False)
        heading = _number(obj, "heading", 0, 360, required=False)
        accuracy = _number(obj, "accuracy_m", 0, 10_000, required=False)
        accel = _number(obj, "accel_g", 0, 50, required=False)
        stationary = _flag(obj, "stationary")
    return Ping(trip_id, ts, float(lon), float(lat), speed, heading, accuracy, accel, stationary)  # type: ignore[arg-type]


def _route(value: object, gcj: bool) -> Points:
    """A route's points checked in bulk; the first bad one is named as `_point` names it."""
    if not isinstance(value, list) or not 1 <= len(value) <= 20_000:
        raise BadEvent("route must be a list of 1 to 20000 [lon, lat] points")
    lonlat = _plain_route(value)
    if lonlat is None:
        lonlat = _checked_route(value, gcj)
    if gcj:
        return Points(np.array([gcj02_to_wgs84(lon, lat) for lon, lat in lonlat.tolist()], dtype=np.float64))
    return Points(lonlat)


_NUMBER_TYPES = frozenset(_NUMBER)


def _plain_route(value: list[object]) -> np.ndarray | None:
    """The common case checked in C loops: pairs of finite numbers on the globe; None otherwise."""
    try:
        if set(map(type, value)) != {list} or set(map(len, value)) != {2}:  # type: ignore[arg-type]
            return None
        flat: list[float] = list(chain.from_iterable(value))  # type: ignore[arg-type]
        if not set(map(type, flat)) <= _NUMBER_TYPES or not math.isfinite(sum(flat)):  # NaN and inf: not plain
            return None
    except (OverflowError, TypeError):
        return None
    lonlat = np.array(flat, dtype=np.float64).reshape(-1, 2)
    if not (lonlat[:, 0].min() >= -180 and lonlat[:, 0].max() <= 180
            and lonlat[:, 1].min() >= -90 and lonlat[:, 1].max() <= 90):
        return None
    return lonlat


def _checked_route(value: list[object], gcj: bool) -> np.ndarray:
    numbers = _NUMBER
    for point in value:
        if type(point) is not list or len(point) != 2 or type(point[0]) not in numbers \
                or type(point[1]) not in numbers:
            _point(point, "route point", gcj)  # raises
    lonlat = np.asarray(value, dtype=np.float64)
    inside = (lonlat[:, 0] >= -180) & (lonlat[:, 0] <= 180) & (lonlat[:, 1] >= -90) & (lonlat[:, 1] <= 90)
    if not inside.all():
        _point(value[int(np.argmin(inside))], "route point", gcj)  # raises
    return lonlat


def parse_event(obj: object, *, crs: str = "wgs84") -> Event:
    """Validate one decoded JSON object. `crs` applies to pings of a trip that started in GCJ-02."""
    if not isinstance(obj, dict):
        raise BadEvent("an event is a JSON object")
    kind = obj.get("type")
    ts = parse_ts(obj.get("ts"))
    if kind == "ping" and crs == "wgs84" and "crs" not in obj:
        return _plain_ping(obj, ts)
    if kind == "ping":
        gcj = obj.get("crs", crs) == "gcj02"
        lon, lat = _point([obj.get("lon"), obj.get("lat")], "lon/lat", gcj)
        return Ping(trip_id=str(_id(obj, "trip_id")), ts=ts, lon=lon, lat=lat,
                    speed_mps=_number(obj, "speed_mps", 0, 150, required=False),
                    heading=_number(obj, "heading", 0, 360, required=False),
                    accuracy_m=_number(obj, "accuracy_m", 0, 10_000, required=False),
                    accel_g=_number(obj, "accel_g", 0, 50, required=False), stationary=_flag(obj, "stationary"))
    if kind == "trip_started":
        trip_crs = obj.get("crs", "wgs84")
        if trip_crs not in ("wgs84", "gcj02"):
            raise BadEvent("crs must be wgs84 or gcj02")
        gcj = trip_crs == "gcj02"
        route_value = obj.get("route")
        route = None
        if route_value is not None:
            route = _route(route_value, gcj)
        return TripStarted(
            trip_id=str(_id(obj, "trip_id")), ts=ts, vehicle_id=_id(obj, "vehicle_id", required=False),
            driver_id=_id(obj, "driver_id", required=False),
            pickup=_point(obj["pickup"], "pickup", gcj) if obj.get("pickup") is not None else None,
            dropoff=_point(obj["dropoff"], "dropoff", gcj) if obj.get("dropoff") is not None else None,
            route=route, passenger_id=_id(obj, "passenger_id", required=False), crs=str(trip_crs),
            pickup_name=_place_name(obj, "pickup_name"), dropoff_name=_place_name(obj, "dropoff_name"))
    if kind == "trip_ended":
        end_lon: float | None = None
        end_lat: float | None = None
        if obj.get("lon") is not None or obj.get("lat") is not None:
            end_lon, end_lat = _point([obj.get("lon"), obj.get("lat")], "lon/lat", obj.get("crs", crs) == "gcj02")
        return TripEnded(trip_id=str(_id(obj, "trip_id")), ts=ts, lon=end_lon, lat=end_lat)
    if kind == "device_heartbeat":
        for key in ("camera_ok", "storage_ok", "tampered"):
            if not isinstance(obj.get(key, True), bool):
                raise BadEvent(f"{key} must be true or false")
        return DeviceHeartbeat(device_id=str(_id(obj, "device_id")), vehicle_id=str(_id(obj, "vehicle_id")), ts=ts,
                               camera_ok=bool(obj.get("camera_ok", True)), storage_ok=bool(obj.get("storage_ok", True)),
                               tampered=bool(obj.get("tampered", False)))
    raise BadEvent("type must be trip_started, ping, trip_ended or device_heartbeat")


GCJ_MEMORY = 1_000_000  # trips remembered as GCJ-02, oldest forgotten first


def _remember_gcj(event: Event, gcj: dict[str, None]) -> None:
    if isinstance(event, TripStarted) and event.crs == "gcj02":
        gcj[event.trip_id] = None
        if len(gcj) > GCJ_MEMORY:
            del gcj[next(iter(gcj))]


def _in_gcj(obj: dict[str, object], gcj: dict[str, None]) -> bool:
    trip_id = obj.get("trip_id")
    return type(trip_id) is str and trip_id in gcj


def parse_ndjson(lines: Iterable[str | bytes], gcj_trips: dict[str, None] | None = None,
                 ) -> Iterator[tuple[int, Event | LineError]]:
    """Yield (line number, event or error) for every non-blank line; GCJ-02 trips stay converted.

    `gcj_trips` carries the trips that started in GCJ-02 across batches (the live monitor keeps it),
    so their later pings are converted even when the trip_started line came in an earlier batch.
    An event more than a day from the rest of its batch is an error of its line (far_from_batch).
    """
    gcj = gcj_trips if gcj_trips is not None else {}
    parsed: list[tuple[int, Event | LineError]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            crs = "gcj02" if isinstance(obj, dict) and _in_gcj(obj, gcj) else "wgs84"
            event = parse_event(obj, crs=crs)
        except (ValueError, BadEvent, RecursionError) as exc:
            parsed.append((number, LineError(number, _why(exc))))
            continue
        _remember_gcj(event, gcj)
        parsed.append((number, event))
    events = [(k, item) for k, (_, item) in enumerate(parsed) if not isinstance(item, LineError)]
    far = far_from_batch(np.array([item.ts for _, item in events], dtype=np.float64))
    for (k, _), is_far in zip(events, far.tolist(), strict=True):
        if is_far:
            parsed[k] = (parsed[k][0], LineError(parsed[k][0], "ts is more than a day ahead of the rest of the batch"))
    yield from parsed
