"""Scale-out: live console updates fan out through NATS, so any replica serves any viewer."""

from __future__ import annotations

import asyncio
import json
import uuid

from tests.conftest import make_settings
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics.detection.feed import LiveFeed, batch_items, column_items, connect_feed
from tripguard.telematics.ingest.events import Ping, TripStarted
from tripguard.telematics.ingest.reader import read_ndjson
from tripguard.telematics.service import LiveMonitor


async def _until(check, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)


def test_an_update_published_by_one_process_reaches_the_viewers_of_every_replica(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings("sqlite://", tmp_path, bus_url="nats://127.0.0.1:4222",
                             bus_name=f"f{uuid.uuid4().hex[:8]}")

    async def scenario() -> None:
        worker_feed, replica_a, replica_b = LiveFeed(), LiveFeed(), LiveFeed()
        links = [connect_feed(worker_feed, settings, name="worker", viewers=False),
                 connect_feed(replica_a, settings), connect_feed(replica_b, settings)]
        for link in links:
            link.start()
        for link in links:
            await asyncio.wait_for(link.ready.wait(), 10)
        await asyncio.sleep(0.2)  # subscriptions registered at the server
        viewer = replica_b.open_viewer()
        # A monitor worker's batch, and an SOS taken by replica A.
        worker_feed.publish_batch([TripStarted("T1", 1000.0, "V1", "D1", None, None, ((8.6, 41.1), (8.7, 41.2))),
                                   Ping("T1", 1001.0, 8.61, 41.11)], [])
        replica_a.publish({"type": "incident", "id": "inc_1", "trip_id": "T1"})
        await _until(lambda: len(replica_a.snapshot()["trips"]) == 1 and viewer.qsize() >= 3)  # type: ignore[arg-type]
        for feed in (replica_a, replica_b):
            (trip,) = feed.snapshot()["trips"]  # type: ignore[misc]
            assert trip["route"] == [[8.6, 41.1], [8.7, 41.2]] and trip["position"]["lon"] == 8.61
            assert feed.position("T1") == (8.61, 41.11, 1001.0)
        kinds = [viewer.get_nowait()["type"] for _ in range(3)]
        # In order from each process (two processes' updates may interleave either way).
        assert sorted(kinds) == ["incident", "position", "trip_started"]
        assert kinds.index("trip_started") < kinds.index("position")
        assert worker_feed.snapshot()["trips"] == []  # a worker shows nothing itself
        # A replica started while the trip was under way learns of it from its next position.
        late = LiveFeed()
        link = connect_feed(late, settings)
        link.start()
        await asyncio.wait_for(link.ready.wait(), 10)
        await asyncio.sleep(0.2)
        worker_feed.publish_batch([Ping("T1", 1005.0, 8.62, 41.12)], [])
        await _until(lambda: late.position("T1") is not None)
        for each in (*links, link):
            await each.close()

    asyncio.run(scenario())


def test_where_the_monitor_runs_elsewhere_a_trip_s_position_comes_from_the_feed() -> None:
    """An SOS pressed without a fix, and the share page, take the trip's last position from here."""
    live = LiveMonitor()
    assert live.position("T1") is None
    live.feed.apply([{"type": "position", "trip_id": "T1", "lon": 8.61, "lat": 41.11, "ts": "2026-03-01T08:00:03Z"}])
    assert live.position("T1") is None  # a trip the map was not told of, in one process: not adopted
    live.feed.adopt_unknown_trips = True
    live.feed.apply([{"type": "position", "trip_id": "T1", "lon": 8.61, "lat": 41.11, "ts": "2026-03-01T08:00:03Z"}])
    assert live.position("T1") == (8.61, 41.11, 1772352003.0)
    live.monitor.process([TripStarted("T1", 1772352000.0, "V1", None, None, None, None),
                          Ping("T1", 1772352006.0, 8.62, 41.12)])
    assert live.position("T1") == (8.62, 41.12, 1772352006.0)  # the monitor's own, where it runs


def test_a_worker_s_feed_items_read_from_columns_match_those_read_from_events() -> None:
    events, _ = build_stream(load_trips()[:30], stagger_s=20)
    data = "\n".join(json.dumps(e) for e in events).encode()
    for start in range(0, len(events), 173):  # batches cut anywhere, ends included
        columns, _ = read_ndjson(b"\n".join(data.split(b"\n")[start:start + 173]))
        from_events = batch_items(columns.events(), [])
        from_columns = column_items(columns, [])
        assert sorted(map(repr, from_columns)) == sorted(map(repr, from_events))


def test_positions_go_out_at_most_once_an_interval_each_trip_s_newest() -> None:
    sent: list[list[dict[str, object]]] = []
    feed = LiveFeed(relay=sent.append, position_interval=1.0)
    position = {"type": "position", "lon": 8.6, "lat": 41.1, "ts": "2026-03-01T08:00:00Z"}
    feed.publish_many([{**position, "trip_id": "A"}])  # the first goes at once
    feed.publish_many([{**position, "trip_id": "A", "lon": 8.7}, {**position, "trip_id": "B"},
                       {"type": "alert", "trip_id": "B", "kind": "long_stop"}])
    feed.publish_many([{"type": "trip_ended", "trip_id": "B"}, {**position, "trip_id": "A", "lon": 8.8}])
    assert [[i["type"] for i in batch] for batch in sent] == [["position"], ["alert"], ["trip_ended"]]
    feed.flush_positions()  # held: A's newest only, B's dropped with its end
    assert sent[-1] == [{**position, "trip_id": "A", "lon": 8.8}]
