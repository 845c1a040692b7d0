"""The ingest key's claim (telematics.ingest.batches): a live claim is 409 with Retry-After; one left by a
process that died (older than CLAIM_STALE) is taken over."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.telematics.test_ingest_api import ndjson, trip_with_deviation
from tripguard.core.clock import utcnow
from tripguard.security.permissions import Role
from tripguard.telematics.ingest.batches import CLAIM_STALE
from tripguard.telematics.models import IngestBatch


def _send(client: TestClient, key: str):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/telematics/events", content=ndjson(trip_with_deviation()),
                       headers={"content-type": "application/x-ndjson", "Idempotency-Key": key})


def test_a_live_claim_is_in_progress_and_a_dead_ones_is_taken_over(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    db.add(IngestBatch(key="key_TEST:live", report={}, created_at=utcnow()))
    db.add(IngestBatch(key="key_TEST:dead", report={}, created_at=utcnow() - CLAIM_STALE - timedelta(seconds=5)))
    db.commit()
    busy = _send(client, "live")
    assert busy.status_code == 409 and busy.headers["retry-after"] == "1"
    assert busy.json()["type"] == "/problems/idempotency-in-progress"
    taken = _send(client, "dead")
    assert taken.status_code == 200 and taken.json()["accepted"] == 13
    db.expire_all()
    assert db.get(IngestBatch, "key_TEST:dead").report == taken.json()  # type: ignore[union-attr]
    assert _send(client, "dead").json() == taken.json()
