"""Positions in monthly partitions (PostgreSQL): retention drops a month past the trip-data period whole,
after moving out what a legal hold keeps; a row no month covered is moved into its month when it is made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import literal, select, text

from tests.conftest import BACKEND
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.telematics.ingest.events import Ping
from tripguard.telematics.models import TrackChunk, Trip
from tripguard.telematics.store import partitions, trips
from tripguard.telematics.store.retention import expired_trips
from tripguard.telematics.store.track import Track

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="partitions are PostgreSQL's")
NOW = datetime.now(UTC)
LONG_AGO = NOW - timedelta(days=3 * 365)


def _where(session, chunk_id: str) -> str:  # type: ignore[no-untyped-def]
    return str(session.execute(text("SELECT tableoid::regclass::text FROM telematics_track_chunks WHERE id = :id"),
                               {"id": chunk_id}).scalar())


def _trip(session, vault, trip_id: str, ended: datetime) -> str:  # type: ignore[no-untyped-def]
    session.add(Trip(id=trip_id, status="ended", crs="wgs84", points=1, started_at=ended - timedelta(minutes=20),
                     ended_at=ended, updated_at=ended))
    session.flush()
    row = trips._chunk_row(session, vault, trip_id, Track.from_pings([Ping(trip_id, ended.timestamp(), 8.6, 41.1)]),
                           ended)
    trips._insert_chunks(session, [row])
    return str(row["id"])


def test_retention_drops_a_month_whole_and_keeps_what_a_hold_keeps(cli_site: Settings) -> None:
    site = create_app(cli_site)
    factory, vault = make_sessionmaker(make_engine(cli_site.database_url)), site.state.vault
    with unit_of_work(factory) as session:
        connection = session.connection()
        assert partitions.partitioned(connection)
        assert {partitions.month_start(NOW, k) for k in range(4)} <= set(partitions.months(connection))
        partitions.make_month(connection, partitions.month_start(LONG_AGO))
        free, held = _trip(session, vault, "TFREE", LONG_AGO), _trip(session, vault, "THELD", LONG_AGO)
        recent = _trip(session, vault, "TNEW", NOW - timedelta(days=3))
        old_month = partitions.partition_name(partitions.month_start(LONG_AGO))
        assert _where(session, free) == old_month == _where(session, held)

    rule = expired_trips(timedelta(days=730), lambda: select(literal("trip:THELD")))
    with unit_of_work(factory) as session:
        assert rule(session, vault, NOW, True) == (1, 1)  # a dry run drops nothing
        assert partitions.partition_name(partitions.month_start(LONG_AGO)) in {
            partitions.partition_name(m) for m in partitions.months(session.connection())}
    with unit_of_work(factory) as session:
        assert rule(session, vault, NOW, False) == (1, 1)
    with unit_of_work(factory) as session:
        assert partitions.month_start(LONG_AGO) not in partitions.months(session.connection())  # dropped whole
        chunks = {c.trip_id: c for c in session.scalars(select(TrackChunk))}
        assert set(chunks) == {"THELD", "TNEW"}
        assert _where(session, chunks["THELD"].id) == partitions.partition_name(partitions.month_start(NOW))
        assert len(trips.load_track(session, vault=vault, trip_id="THELD")) == 1  # still opens: held, not erased
        assert session.get(Trip, "TFREE") is None and vault.is_erased(session, "trip:TFREE")
        assert _where(session, recent) == partitions.partition_name(partitions.month_start(NOW - timedelta(days=3)))


def test_a_row_no_month_covered_moves_into_its_month_when_it_is_made(cli_site: Settings) -> None:
    site = create_app(cli_site)
    factory, vault = make_sessionmaker(make_engine(cli_site.database_url)), site.state.vault
    later = NOW + timedelta(days=400)  # beyond the months made ahead: the DEFAULT partition takes it
    with unit_of_work(factory) as session:
        stray = _trip(session, vault, "TLATE", later)
        assert _where(session, stray) == partitions.DEFAULT
    with unit_of_work(factory) as session:
        made = partitions.ensure(session.connection(), later)
        assert partitions.partition_name(partitions.month_start(later)) in made
        assert _where(session, stray) == partitions.partition_name(partitions.month_start(later))
        assert len(trips.load_track(session, vault=vault, trip_id="TLATE")) == 1
