"""The hot queries have the indexes they need, checked with EXPLAIN on PostgreSQL (issue 11).

With sequential scans priced out (`enable_seqscan = off`), PostgreSQL still plans one where no index
can serve the query; so a plan without "Seq Scan" proves an index fits it, however small the tables.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, Select, delete, select, text
from sqlalchemy.dialects import postgresql

from tests.conftest import BACKEND
from tripguard.audit.models import AuditEntry
from tripguard.notify.models import OutboxMessage
from tripguard.safety.models import Incident
from tripguard.telematics.models import CheckIn, IngestBatch, TrackChunk, Trip, TripAlert
from tripguard.vault.models import DataKey

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="the plans are PostgreSQL's")
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

HOT = {
    # every ingest batch: is this alert stored already; the batch's trips; their keys
    "alert already stored": select(TripAlert.id).where(TripAlert.trip_id == "T1", TripAlert.kind == "long_stop",
                                                       TripAlert.ts == NOW),
    "a trip's alerts, newest first": select(TripAlert).where(TripAlert.trip_id == "T1").order_by(TripAlert.ts.desc())
    .limit(100),
    "the batch's trips": select(Trip).where(Trip.id.in_(["T1", "T2"])),
    "the batch's trip keys": select(DataKey).where(DataKey.subject_id.in_(["trip#T1", "trip#T2"])),
    "a trip's positions": select(TrackChunk).where(TrackChunk.trip_id == "T1").order_by(TrackChunk.first_ts),
    # restart: the trips under way
    "trips under way": select(Trip.id).where(Trip.status == "active", Trip.updated_at >= NOW),
    # the outbox dispatcher, every second
    "messages due": select(OutboxMessage.id).where(OutboxMessage.status == "pending",
                                                   OutboxMessage.next_attempt_at <= NOW)
    .order_by(OutboxMessage.next_attempt_at).limit(50),
    # the safety centre's queue and check-ins
    "the SOS queue": select(Incident.id).where(Incident.status == "open").order_by(Incident.created_at.desc()),
    "a trip's incidents": select(Incident.id).where(Incident.trip_id == "T1"),
    "check-ins due": select(CheckIn.id).where(CheckIn.status == "pending"),
    "an ingest retry": select(IngestBatch).where(IngestBatch.key == "k:1"),
    # the audit explorer
    "audit by target": select(AuditEntry.seq).where(AuditEntry.target_type == "trip", AuditEntry.target_id == "T1"),
}
HOT_WRITES = {
    "expired ingest keys": delete(IngestBatch).where(IngestBatch.created_at < NOW),
}


def _plan(engine: Engine, statement: object) -> str:
    sql = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    with engine.connect() as connection:
        connection.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {sql}")))
        connection.rollback()
    return plan


@pytest.mark.parametrize("name", [*HOT, *HOT_WRITES])
def test_a_hot_query_is_served_by_an_index(engine: Engine, name: str) -> None:
    statement: Select[object] | object = HOT[name] if name in HOT else HOT_WRITES[name]
    plan = _plan(engine, statement)
    assert "Seq Scan" not in plan, f"{name}: no index serves it\n{plan}"
