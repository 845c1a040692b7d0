"""A monitor worker holds positions back until its checkpoint and writes them in bulk: the trip store ends up
exactly as if every batch had been written at once (same tracks, counters, newest position time)."""

from __future__ import annotations

import json

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.app import create_app
from tripguard.core.db import unit_of_work
from tripguard.core.settings import Settings
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics import service
from tripguard.telematics.ingest.events import Ping, TripEnded, TripStarted
from tripguard.telematics.ingest.reader import read_ndjson_numbered
from tripguard.telematics.models import TrackChunk, Trip
from tripguard.telematics.service import IngestOptions, LiveMonitor, PingBuffer
from tripguard.telematics.store import trips
from tripguard.telematics.store.track import COLUMNS, Track


def _store(settings: Settings, factory: sessionmaker[Session], batches: list[bytes], *, hold: bool, flush_every: int,
           ) -> dict[str, tuple[int, int, str, str | None]]:
    vault = create_app(settings, session_factory=factory).state.vault
    live, held = LiveMonitor(), PingBuffer()
    for n, data in enumerate(batches, 1):
        with unit_of_work(factory) as session:
            columns, _, rejected = read_ndjson_numbered(data, live.gcj_trips)
            assert not rejected
            service.apply(session, live=live, vault=vault, columns=columns, rejected=[], options=IngestOptions(),
                          held=held if hold else None)
        if hold and n % flush_every == 0:
            with unit_of_work(factory) as session:
                trips.record_positions(session, vault, *held.drain())
    if hold:
        with unit_of_work(factory) as session:
            trips.record_positions(session, vault, *held.drain())
    with unit_of_work(factory) as session:
        found = {}
        for trip in session.query(Trip).filter(Trip.id.like(f"{'H' if hold else 'D'}%")):
            track = trips.load_track(session, vault=vault, trip_id=trip.id)
            found[trip.id[1:]] = (len(track), trip.points, trip.status,
                                  trip.last_ping_at.isoformat() if trip.last_ping_at else None)
        return found


def test_held_positions_are_stored_as_if_written_batch_by_batch(settings: Settings,
                                                                session_factory: sessionmaker[Session]) -> None:
    events, _ = build_stream(load_trips()[:25], stagger_s=30, inject={"gps_lost": 1, "off_route": 1})
    streams = {}
    for prefix in "HD":  # the same trips under two names, stored both ways side by side
        lines = [json.dumps({**e, "trip_id": prefix + str(e["trip_id"])}) if "trip_id" in e else json.dumps(e)
                 for e in events]
        streams[prefix] = [("\n".join(lines[k:k + 97])).encode() for k in range(0, len(lines), 97)]
    held = _store(settings, session_factory, streams["H"], hold=True, flush_every=4)
    direct = _store(settings, session_factory, streams["D"], hold=False, flush_every=0)
    assert held and held == direct
    assert {status for _, _, status, _ in held.values()} == {"ended"}


def test_positions_sent_again_after_their_trip_ended_are_counted_once(settings: Settings,
                                                                      session_factory: sessionmaker[Session]) -> None:
    """Both ways of storing them (a batch, as the API does; held, as a worker does at its checkpoint)."""
    vault = create_app(settings, session_factory=session_factory).state.vault
    pings = [Ping("RESENT", 1_800_000_000.0 + 15 * k, -8.61 + k / 1e4, 41.15) for k in range(5)]

    def stored() -> tuple[int, int, int]:
        with unit_of_work(session_factory) as session:
            trip = session.get(Trip, "RESENT")
            assert trip is not None
            return (trip.points,
                    int(session.scalar(select(func.sum(TrackChunk.points)).where(TrackChunk.trip_id == "RESENT")) or 0),
                    len(trips.load_track(session, vault=vault, trip_id="RESENT")))

    with unit_of_work(session_factory) as session:
        trips.record(session, vault=vault, events=[TripStarted("RESENT", pings[0].ts, None, None, None, None, None),
                                                   *pings, TripEnded("RESENT", pings[-1].ts, None, None)])
    with unit_of_work(session_factory) as session:
        trips.record(session, vault=vault, events=pings[2:])  # a batch sent again (or late)
    assert stored() == (5, 5, 5)
    with unit_of_work(session_factory) as session:
        table = Track.from_pings(pings[1:4])
        trips.record_positions(session, vault, ["RESENT"] * 3, np.stack([getattr(table, c) for c in COLUMNS]))
    assert stored() == (5, 5, 5)
