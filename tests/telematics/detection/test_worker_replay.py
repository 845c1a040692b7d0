"""A shard replayed from its checkpoint over what its last worker had already stored (a takeover, or a bus
outage): each trip's position count and its stored positions equal the pings sent, exactly.

The worker's own apply and checkpoint steps are run here without NATS (the stream's messages are lines
handed to them in order), on a committed database of this run's backend: worker A applies, checkpoints,
applies more (trips end, their positions are stored and compacted), then dies without a checkpoint; worker
B loads the checkpoint and replays from it."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import func, select

from tripguard.app import monitor_site
from tripguard.core.db import make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics import service
from tripguard.telematics.detection import checkpoints
from tripguard.telematics.detection.contract import MonitorConfig
from tripguard.telematics.detection.worker import MonitorSite, MonitorWorker
from tripguard.telematics.models import TrackChunk, Trip
from tripguard.telematics.store import trips

MESSAGE = 40  # lines per stream message


class _Shard:
    """One worker's hold of shard 0: its checkpointed state, its monitor and its held positions."""

    def __init__(self, settings: Settings, site: MonitorSite) -> None:
        self.worker = MonitorWorker(settings, link=None, engine=site.engine, vault=site.vault,  # type: ignore[arg-type]
                                    options=site.options, feed=site.feed, config=MonitorConfig(), shards=[0],
                                    standby=[])
        assert self.worker.leases[0].lead()  # PostgreSQL: the shard's lease (SQLite: one process, always)
        self.state = checkpoints.load(self.worker.writers[0], vault=site.vault, stream=self.worker.stream, shard=0,
                                      config=MonitorConfig())
        self.live = service.LiveMonitor(monitor=self.state.monitor, feed=site.feed, gcj_trips=self.state.gcj_trips)
        self.held = service.PingBuffer()

    def apply(self, messages: list[bytes], upto: int) -> None:
        """Messages `state.seq + 1` to `upto` (1-based stream sequence), each on its own, as fetched."""
        for seq in range(self.state.seq + 1, upto + 1):
            self.worker._apply(0, self.live, self.held, messages[seq - 1])
            self.state.seq = seq

    def save(self) -> None:
        self.worker._save(0, self.state, self.held)


def _sent(events: list[dict[str, Any]], messages: int) -> dict[str, int]:
    """Distinct ping times per trip in the first `messages` messages."""
    times: dict[str, set[object]] = defaultdict(set)
    for event in events[:messages * MESSAGE]:
        if event["type"] == "ping":
            times[str(event["trip_id"])].add(event["ts"])
    return {trip_id: len(seen) for trip_id, seen in times.items()}


def _stored(site: MonitorSite) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Per trip: its `points` (what the console shows), the positions kept, and the points of its chunks."""
    with unit_of_work(make_sessionmaker(site.engine)) as session:
        counted = {trip_id: points for trip_id, points in session.execute(select(Trip.id, Trip.points))}
        chunks = {trip_id: int(points) for trip_id, points in session.execute(
            select(TrackChunk.trip_id, func.sum(TrackChunk.points)).group_by(TrackChunk.trip_id))}
        kept = {trip_id: len(trips.load_track(session, vault=site.vault, trip_id=trip_id)) for trip_id in counted}
    return counted, kept, chunks


@pytest.mark.parametrize("fail_checkpoint", [False, True], ids=["killed", "checkpoint-failed"])
def test_a_replay_over_ended_trips_counts_each_position_once(cli_site: Settings, fail_checkpoint: bool,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    events, _ = build_stream(load_trips()[:30], stagger_s=20)
    lines = [json.dumps(e).encode() for e in events]
    messages = [b"\n".join(lines[k:k + MESSAGE]) for k in range(0, len(lines), MESSAGE)]
    checkpointed, died, stopped = len(messages) // 4, len(messages) // 2, 3 * len(messages) // 4
    ended_between = {str(e["trip_id"]) for e in events[checkpointed * MESSAGE:died * MESSAGE]
                     if e["type"] == "trip_ended"}
    assert len(ended_between) >= 3, "trips must end between the checkpoint and the kill for this test to mean anything"
    site = monitor_site(cli_site)

    first = _Shard(cli_site, site)
    first.apply(messages, checkpointed)
    first.save()
    first.apply(messages, died)
    if fail_checkpoint:  # the held positions are written, but the checkpoint after them fails
        def refuse(*args: object, **kwargs: object) -> None:
            raise RuntimeError("database gone")

        monkeypatch.setattr(checkpoints, "save_in", refuse)
        with pytest.raises(RuntimeError):
            first.save()
        monkeypatch.undo()
    # The first worker dies here: its monitor and its held positions are gone, its lease runs out.
    first.worker.leases[0].release()
    second = _Shard(cli_site, site)
    assert second.state.seq == checkpointed
    second.apply(messages, stopped)
    second.save()

    sent = _sent(events, stopped)
    counted, kept, chunked = _stored(site)
    assert {t: n for t, n in counted.items() if t in sent} == sent  # the count the console shows
    assert {t: n for t, n in kept.items() if t in sent} == sent  # the positions kept
    ended = {t for t in ended_between if t in sent}
    assert {t: chunked[t] for t in ended} == {t: sent[t] for t in ended}  # no position stored twice
