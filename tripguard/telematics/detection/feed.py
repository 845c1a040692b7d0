"""The live feed behind the console's map: trips, positions and alerts, pushed to viewers (SSE).

In-process fan-out for the embedded default (`core.fanout`): ingest (in a worker thread) publishes, each
viewer's queue receives on its event loop. A viewer too slow to keep up never blocks ingest: its queue is
emptied and it is told to resync (reload the map, catch up on cases) instead.
Scale-out carries the same items over NATS (core subjects, no JetStream: a lost position is
superseded by the next), so any replica can serve any viewer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from nats.aio.msg import Msg

from tripguard.core.fanout import Fanout, Item
from tripguard.core.messaging import NatsLink, feed_subject
from tripguard.core.settings import Settings
from tripguard.telematics.detection.monitor import Alert
from tripguard.telematics.ingest.columns import EventColumns
from tripguard.telematics.ingest.events import (
    Event,
    Ping,
    TripEnded,
    TripStarted,
    format_ts,
    parse_ts,
)

ALERTS_KEPT = 100


def batch_items(events: list[Event], alerts: list[Alert]) -> list[Item]:
    """What a processed batch shows: trip starts and ends, the newest position per trip, new alerts (without
    where they happened: the trip's marker is there, and an alert's own position opens with the trajectory)."""
    items: list[Item] = []
    latest: dict[str, Ping] = {}
    for event in events:
        if isinstance(event, TripStarted):
            items.append({"type": "trip_started", "trip_id": event.trip_id, "vehicle_id": event.vehicle_id,
                          "route": [list(p) for p in event.route] if event.route else [], "position": None})
        elif isinstance(event, Ping):
            latest[event.trip_id] = event
        elif isinstance(event, TripEnded):
            latest.pop(event.trip_id, None)
            items.append({"type": "trip_ended", "trip_id": event.trip_id})
    items.extend({"type": "position", "trip_id": trip_id, "lon": ping.lon, "lat": ping.lat, "ts": format_ts(ping.ts)}
                 for trip_id, ping in latest.items())
    items.extend({"type": "alert", **alert.without_position()} for alert in alerts)
    return items


def column_items(columns: EventColumns, alerts: list[Alert]) -> list[Item]:
    """`batch_items` read from columns, making no Ping object (a monitor worker's batches); a trip that
    ends in the batch shows no position."""
    others = [columns.others[k] for k in sorted(columns.others)]
    items = batch_items(others, [])
    ended = {e.trip_id for e in others if isinstance(e, TripEnded)}
    is_ping = np.ones(len(columns), dtype=bool)
    is_ping[list(columns.others)] = False
    rows = np.flatnonzero(is_ping)
    if rows.size:
        groups, _ = columns.trip_groups()
        _, last = np.unique(groups[rows][::-1], return_index=True)
        rows = np.sort(rows[rows.size - 1 - last])
        times: dict[float, str] = {}  # devices report on the same seconds: each time formatted once
        for row, lon, lat, ts in zip(rows.tolist(), columns.lon[rows].tolist(), columns.lat[rows].tolist(),
                                     columns.ts[rows].tolist(), strict=True):
            trip_id = columns.trip_ids[row]
            if trip_id not in ended:
                text = times.get(ts) or times.setdefault(ts, format_ts(ts))
                items.append({"type": "position", "trip_id": trip_id, "lon": lon, "lat": lat, "ts": text})
    items.extend({"type": "alert", **alert.without_position()} for alert in alerts)
    return items


@dataclass
class LiveFeed(Fanout):
    """The map's state and its viewers (a fan-out whose lock guards the state too). With a `relay`
    (scale-out) updates go to NATS instead, and every API replica `apply`s what NATS brings back, its own
    included."""

    trips: dict[str, Item] = field(default_factory=dict)
    alerts: list[Item] = field(default_factory=list)
    relay: Callable[[list[Item]], None] | None = None
    # A replica that starts while trips are under way learns of them from their next position.
    adopt_unknown_trips: bool = False
    # Positions sent at most this often (seconds; 0: with every batch). A monitor worker applies
    # several batches a second per shard; a map needs a trip's newest position about once a second.
    position_interval: float = 0.0
    _pending: dict[str, Item] = field(default_factory=dict)
    _positions_sent_at: float = float("-inf")

    def snapshot(self) -> Item:
        with self._lock:
            return {"trips": list(self.trips.values()), "alerts": list(self.alerts)}

    def trip_ids(self) -> list[str]:
        """The trips on the map now (a viewer opening its stream is sent their positions)."""
        with self._lock:
            return list(self.trips)

    def position(self, trip_id: str) -> tuple[float, float, float] | None:
        """The trip's newest position on the map and its time (epoch seconds), if any."""
        with self._lock:
            trip = self.trips.get(trip_id)
            known = trip.get("position") if trip else None
        if not isinstance(known, dict):
            return None
        return float(known["lon"]), float(known["lat"]), parse_ts(str(known["ts"]))

    def publish_batch(self, events: list[Event], alerts: list[Alert]) -> None:
        self.publish_many(batch_items(events, alerts))

    def publish(self, item: Item) -> None:
        """One update outside a batch (a check-in answered or gone unanswered)."""
        self.publish_many([item])

    def publish_many(self, items: list[Item]) -> None:
        """Updates in order: here, or through the relay to every replica."""
        if self.position_interval > 0 and (items or self._pending):
            items = self._coalesce(items)
        if not items:
            return
        if self.relay is not None:
            self.relay(items)
        else:
            self.apply(items)

    def _coalesce(self, items: list[Item], *, now: float | None = None) -> list[Item]:
        """Hold positions back, each trip's newest only, and let them out once `position_interval` has passed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            passing: list[Item] = []
            for item in items:
                if item.get("type") == "position":
                    self._pending[str(item["trip_id"])] = item
                    continue
                if item.get("type") == "trip_ended":
                    self._pending.pop(str(item["trip_id"]), None)
                passing.append(item)
            if self._pending and now - self._positions_sent_at >= self.position_interval:
                passing.extend(self._pending.values())
                self._pending, self._positions_sent_at = {}, now
        return passing

    def flush_positions(self) -> None:
        """Send the positions held back now (a worker with nothing more to apply for a while)."""
        with self._lock:
            self._positions_sent_at = float("-inf")
        self.publish_many([])

    def apply(self, items: list[Item]) -> None:
        """Take updates into the map's state and pass them to every viewer."""
        shown: list[Item] = []
        with self._lock:
            for item in items:
                kind, trip_id = item.get("type"), str(item.get("trip_id"))
                if kind == "trip_started":
                    self.trips[trip_id] = {k: v for k, v in item.items() if k != "type"}
                elif kind == "trip_ended":
                    if self.trips.pop(trip_id, None) is None:
                        continue
                elif kind == "position":
                    position = {"lon": item["lon"], "lat": item["lat"], "ts": item["ts"]}
                    if trip_id in self.trips:
                        self.trips[trip_id]["position"] = position
                    elif self.adopt_unknown_trips:
                        self.trips[trip_id] = {"trip_id": trip_id, "vehicle_id": None, "route": [],
                                               "position": position}
                elif kind == "alert":
                    self.alerts = [item, *self.alerts][:ALERTS_KEPT]
                shown.append(item)
            viewers = list(self._viewers)
        self._pass(viewers, shown)


def connect_feed(feed: LiveFeed, settings: Settings, *, name: str = "tripguard-api", viewers: bool = True) -> NatsLink:
    """Scale-out: the feed's updates go out over NATS, and (`viewers`) what NATS brings, from every
    process, is shown here. Start the returned link on the process's event loop."""
    link = NatsLink(settings.bus_url, name=name)
    subject = feed_subject(settings.bus_name)
    feed.relay = lambda items: link.publish_threadsafe(subject, json.dumps(items, default=str).encode())
    if viewers:
        feed.adopt_unknown_trips = True

        async def show(message: Msg) -> None:
            try:
                items = json.loads(message.data)
            except ValueError:
                return
            if isinstance(items, list):
                feed.apply([item for item in items if isinstance(item, dict)])

        link.subscribe(subject, show)
    return link
