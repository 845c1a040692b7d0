"""The replay parser's batches through a pipe as raw buffers: no event is pickled on the way.

A batch is a header (JSON: the arrays that follow, their types and lengths, the line errors), then each
array's bytes (one `send_bytes` each, read back with `np.frombuffer`, no copy), then the names, joined by
newlines (an identifier holds none). Events go as columns: pings as the ping columns (a column all
absent is not sent), each event's trip as a number into the batch's trip names, trip starts as the
reader's `StartColumns` (the planned routes as one array of numbers, each start's bounds in it), trip
ends as columns of their own. The receiver makes only the end objects. Events of other shapes
(heartbeats, the few starts the line parser read) are pickled, few as they are; so is an error of the
parser, to be raised in the receiver.
"""

from __future__ import annotations

import json
import math
import pickle
from multiprocessing.connection import Connection

import numpy as np

from tripguard.telematics.ingest.columns import PING_COLUMNS, EventColumns
from tripguard.telematics.ingest.events import Event, LineError, TripEnded
from tripguard.telematics.ingest.starts import StartColumns

Parsed = tuple[EventColumns, list[LineError]]
_ID_TEXTS = ("vehicle_id", "driver_id", "passenger_id")


def send_batch(connection: Connection, parsed: Parsed) -> None:
    columns, errors = parsed
    groups, names = columns.trip_groups()
    arrays: dict[str, np.ndarray] = {"groups": groups.astype(np.int64, copy=False)}
    for name in PING_COLUMNS:
        column = getattr(columns, name)
        if name == "ts" or not np.isnan(column).all():
            arrays[name] = column.astype(np.float64, copy=False)
    ends, rare = _sorted_others(columns.others)
    texts = {"names": names}
    starts = columns.starts
    if starts is not None:
        arrays.update({"start_at": starts.at, "start_places": starts.places.reshape(-1),
                       "route_from": starts.route_from, "route_to": starts.route_to,
                       "route_values": starts.route_values})
        texts.update({name: [value or "" for value in getattr(starts, name + "s")] for name in _ID_TEXTS})
    if ends:
        ended: list[TripEnded] = [columns.others[k] for k in ends]  # type: ignore[misc]
        arrays["end_at"] = np.array(ends, dtype=np.int64)
        arrays["end_lonlat"] = np.array([(_nan(e.lon), _nan(e.lat)) for e in ended], dtype=np.float64).reshape(-1)
    joined = {name: "\n".join(values).encode() for name, values in texts.items()}
    if any(text.count(b"\n") != max(len(texts[name]) - 1, 0) for name, text in joined.items()):
        connection.send_bytes(json.dumps({"pickled": True}).encode())  # a name with a newline: never from the reader
        connection.send_bytes(pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL))
        return
    header = {"rows": len(columns), "arrays": [(name, a.dtype.str, len(a)) for name, a in arrays.items()],
              "texts": list(joined), "rare": bool(rare), "errors": [(e.line, e.reason) for e in errors]}
    pickled = pickle.dumps(rare, protocol=pickle.HIGHEST_PROTOCOL) if rare else b""
    connection.send_bytes(json.dumps(header).encode())  # all made before the first byte goes
    for array in arrays.values():
        connection.send_bytes(np.ascontiguousarray(array).view(np.uint8).data)
    for text in joined.values():
        connection.send_bytes(text)
    if rare:
        connection.send_bytes(pickled)


def send_end(connection: Connection) -> None:
    connection.send_bytes(json.dumps({"end": True}).encode())


def send_error(connection: Connection, error: BaseException) -> None:
    connection.send_bytes(json.dumps({"error": True}).encode())
    connection.send_bytes(pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL))


def receive_batch(connection: Connection) -> Parsed | None:
    """The next batch; None after the last. Raises the parser's error, or EOFError when it went away."""
    header = json.loads(connection.recv_bytes())
    if header.get("end"):
        return None
    if header.get("error"):
        raise pickle.loads(connection.recv_bytes())  # noqa: S301 - from our own forked child
    if header.get("pickled"):
        parsed: Parsed = pickle.loads(connection.recv_bytes())  # noqa: S301
        return parsed
    arrays = {name: np.frombuffer(connection.recv_bytes(), dtype=np.dtype(dtype), count=count)
              for name, dtype, count in header["arrays"]}
    texts = {name: connection.recv_bytes().decode().split("\n") for name in header["texts"]}
    others: dict[int, Event] = pickle.loads(connection.recv_bytes()) if header["rare"] else {}  # noqa: S301
    rows = header["rows"]
    names = texts["names"] if rows else []
    groups = arrays["groups"]
    trip_ids: list[str] = np.array(names, dtype=object)[groups].tolist() if rows else []
    absent = np.full(rows, np.nan)
    columns = [arrays.get(name, absent) for name in PING_COLUMNS]
    starts = None
    if "start_at" in arrays:
        vehicle_ids, driver_ids, passenger_ids = (_ids(texts[name]) for name in _ID_TEXTS)
        starts = StartColumns(arrays["start_at"], vehicle_ids, driver_ids, passenger_ids,
                              arrays["start_places"].reshape(-1, 4), arrays["route_from"], arrays["route_to"],
                              arrays["route_values"])
    if "end_at" in arrays:
        at = arrays["end_at"]
        lonlat = arrays["end_lonlat"].reshape(-1, 2).tolist()
        for k, ts, (lon, lat) in zip(at.tolist(), arrays["ts"][at].tolist(), lonlat, strict=True):
            others[k] = TripEnded(trip_ids[k], ts, _none(lon), _none(lat))
    errors = [LineError(line, reason) for line, reason in header["errors"]]
    return EventColumns._make(trip_ids, columns, others, groups, names, starts), errors


def _sorted_others(others: dict[int, Event]) -> tuple[list[int], dict[int, Event]]:
    """The positions of the ends that go as columns, and the other events."""
    ends: list[int] = []
    rare: dict[int, Event] = {}
    for k, event in others.items():
        if type(event) is TripEnded and _plain_end(event):
            ends.append(k)
        else:
            rare[k] = event
    return ends, rare


def _plain_end(event: TripEnded) -> bool:
    return all(v is None or (type(v) is float and not math.isnan(v)) for v in (event.lon, event.lat))  # NaN: None


def _ids(values: list[str]) -> list[str | None]:
    return [value or None for value in values]


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def _none(value: float) -> float | None:
    return None if math.isnan(value) else value
