"""The live feed behind the console's map: trips, positions and alerts, pushed to viewers (SSE).

In-process fan-out for the embedded default: ingest (in a worker thread) publishes, each viewer's
queue receives on its event loop. A slow viewer loses the oldest updates, never blocks ingest.
Scale-out carries the same items over NATS so any replica can serve any viewer (issue #4).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from tripguard.telematics.events import Event, Ping, TripEnded, TripStarted, format_ts
from tripguard.telematics.monitor import Alert

QUEUE_SIZE = 1000
ALERTS_KEPT = 100


@dataclass
class _Viewer:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, object]]


def _offer(queue: asyncio.Queue[dict[str, object]], item: dict[str, object]) -> None:
    if queue.full():
        queue.get_nowait()  # drop the oldest update
    queue.put_nowait(item)


@dataclass
class LiveFeed:
    trips: dict[str, dict[str, object]] = field(default_factory=dict)
    alerts: list[dict[str, object]] = field(default_factory=list)
    _viewers: list[_Viewer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {"trips": list(self.trips.values()), "alerts": list(self.alerts)}

    def publish_batch(self, events: list[Event], alerts: list[Alert]) -> None:
        """Apply a processed batch: trip starts and ends, the newest position per trip, new alerts."""
        items: list[dict[str, object]] = []
        latest: dict[str, Ping] = {}
        with self._lock:
            for event in events:
                if isinstance(event, TripStarted):
                    trip: dict[str, object] = {"trip_id": event.trip_id, "vehicle_id": event.vehicle_id,
                            "route": [list(p) for p in event.route] if event.route else [], "position": None}
                    self.trips[event.trip_id] = trip
                    items.append({"type": "trip_started", **trip})
                elif isinstance(event, Ping):
                    latest[event.trip_id] = event
                elif isinstance(event, TripEnded) and self.trips.pop(event.trip_id, None) is not None:
                    latest.pop(event.trip_id, None)
                    items.append({"type": "trip_ended", "trip_id": event.trip_id})
            for trip_id, ping in latest.items():
                position = {"lon": ping.lon, "lat": ping.lat, "ts": format_ts(ping.ts)}
                if trip_id in self.trips:
                    self.trips[trip_id]["position"] = position
                items.append({"type": "position", "trip_id": trip_id, **position})
            for alert in alerts:
                record = {"type": "alert", **alert.as_dict()}
                self.alerts = [record, *self.alerts][:ALERTS_KEPT]
                items.append(record)
            viewers = list(self._viewers)
        for viewer in viewers:
            for item in items:
                viewer.loop.call_soon_threadsafe(_offer, viewer.queue, item)

    def publish(self, item: dict[str, object]) -> None:
        """One update outside a batch (a check-in answered or gone unanswered)."""
        self.publish_many([item])

    def publish_many(self, items: list[dict[str, object]]) -> None:
        """Updates outside a batch (new cases), in order."""
        with self._lock:
            viewers = list(self._viewers)
        for viewer in viewers:
            for item in items:
                viewer.loop.call_soon_threadsafe(_offer, viewer.queue, item)

    def open_viewer(self) -> asyncio.Queue[dict[str, object]]:
        """A queue the caller awaits on its own event loop; close it with `close_viewer`."""
        viewer = _Viewer(asyncio.get_running_loop(), asyncio.Queue(QUEUE_SIZE))
        with self._lock:
            self._viewers.append(viewer)
        return viewer.queue

    def close_viewer(self, queue: asyncio.Queue[dict[str, object]]) -> None:
        with self._lock:
            self._viewers = [v for v in self._viewers if v.queue is not queue]
