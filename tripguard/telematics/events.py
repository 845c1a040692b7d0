"""The trip-monitoring event contract (DESIGN.md §4): parse and validate, one line at a time.

Parsing is hand-written rather than a Pydantic model per line: replay must sustain hundreds of
thousands of events a second. A bad line is reported with its number and reason; the rest go on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from tripguard.telematics.geo import gcj02_to_wgs84

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class TripStarted:
    trip_id: str
    ts: float
    vehicle_id: str | None
    driver_id: str | None
    pickup: Point | None
    dropoff: Point | None
    route: tuple[Point, ...] | None
    passenger_id: str | None = None
    crs: str = "wgs84"


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


@dataclass(frozen=True, slots=True)
class TripEnded:
    trip_id: str
    ts: float
    lon: float | None
    lat: float | None


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
    return parsed.timestamp()


def format_ts(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = int(round((seconds - math.floor(seconds)) * 1000))
    return f"{text}.{millis:03d}Z" if millis and millis < 1000 else f"{text}Z"


def _id(obj: dict[str, object], key: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.isprintable():
        raise BadEvent(f"{key} must be a string of 1 to 64 printable characters")
    return value


def _number(obj: dict[str, object], key: str, low: float, high: float, *, required: bool = True) -> float | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadEvent(f"{key} must be a number from {low} to {high}")
    return float(value)


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
    if type(trip_id) is not str or not 1 <= len(trip_id) <= 64 or not trip_id.isprintable():
        _id(obj, "trip_id")
    speed = heading = accuracy = accel = None
    if len(obj) > 5:
        speed = _number(obj, "speed_mps", 0, 150, required=False)
        heading = _number(obj, "heading", 0, 360, required=False)
        accuracy = _number(obj, "accuracy_m", 0, 10_000, required=False)
        accel = _number(obj, "accel_g", 0, 50, required=False)
    return Ping(trip_id, ts, float(lon), float(lat), speed, heading, accuracy, accel)  # type: ignore[arg-type]


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
                    accel_g=_number(obj, "accel_g", 0, 50, required=False))
    if kind == "trip_started":
        trip_crs = obj.get("crs", "wgs84")
        if trip_crs not in ("wgs84", "gcj02"):
            raise BadEvent("crs must be wgs84 or gcj02")
        gcj = trip_crs == "gcj02"
        route_value = obj.get("route")
        route = None
        if route_value is not None:
            if not isinstance(route_value, list) or not 1 <= len(route_value) <= 20_000:
                raise BadEvent("route must be a list of 1 to 20000 [lon, lat] points")
            route = tuple(_point(p, "route point", gcj) for p in route_value)
        return TripStarted(
            trip_id=str(_id(obj, "trip_id")), ts=ts, vehicle_id=_id(obj, "vehicle_id", required=False),
            driver_id=_id(obj, "driver_id", required=False),
            pickup=_point(obj["pickup"], "pickup", gcj) if obj.get("pickup") is not None else None,
            dropoff=_point(obj["dropoff"], "dropoff", gcj) if obj.get("dropoff") is not None else None,
            route=route, passenger_id=_id(obj, "passenger_id", required=False), crs=str(trip_crs))
    if kind == "trip_ended":
        lon = lat = None
        if obj.get("lon") is not None or obj.get("lat") is not None:
            lon, lat = _point([obj.get("lon"), obj.get("lat")], "lon/lat", obj.get("crs", crs) == "gcj02")
        return TripEnded(trip_id=str(_id(obj, "trip_id")), ts=ts, lon=lon, lat=lat)
    if kind == "device_heartbeat":
        for key in ("camera_ok", "storage_ok", "tampered"):
            if not isinstance(obj.get(key, True), bool):
                raise BadEvent(f"{key} must be true or false")
        return DeviceHeartbeat(device_id=str(_id(obj, "device_id")), vehicle_id=str(_id(obj, "vehicle_id")), ts=ts,
                               camera_ok=bool(obj.get("camera_ok", True)), storage_ok=bool(obj.get("storage_ok", True)),
                               tampered=bool(obj.get("tampered", False)))
    raise BadEvent("type must be trip_started, ping, trip_ended or device_heartbeat")


GCJ_MEMORY = 1_000_000  # trips remembered as GCJ-02, oldest forgotten first


def parse_ndjson(lines: Iterable[str | bytes], gcj_trips: dict[str, None] | None = None,
                 ) -> Iterator[tuple[int, Event | LineError]]:
    """Yield (line number, event or error) for every non-blank line; GCJ-02 trips stay converted.

    `gcj_trips` carries the trips that started in GCJ-02 across batches (the live monitor keeps it),
    so their later pings are converted even when the trip_started line came in an earlier batch.
    """
    gcj = gcj_trips if gcj_trips is not None else {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            crs = "gcj02" if isinstance(obj, dict) and obj.get("trip_id") in gcj else "wgs84"
            event = parse_event(obj, crs=crs)
        except (ValueError, BadEvent) as exc:
            yield number, LineError(number, str(exc) if isinstance(exc, BadEvent) else f"not JSON: {exc}")
            continue
        if isinstance(event, TripStarted) and event.crs == "gcj02":
            gcj[event.trip_id] = None
            if len(gcj) > GCJ_MEMORY:
                del gcj[next(iter(gcj))]
        yield number, event
