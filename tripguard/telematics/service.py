"""Ingest: events in, through the in-process monitor, alerts stored and sent to the operator.

The monitor keeps its per-trip state in memory (the embedded default). One lock serialises it:
detection is a pure function of the event sequence, so requests must not interleave inside it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.notify import service as notify
from tripguard.telematics import checkins, registry, trips
from tripguard.telematics.events import DeviceHeartbeat, LineError, parse_ndjson
from tripguard.telematics.feed import LiveFeed
from tripguard.telematics.models import TripAlert
from tripguard.telematics.monitor import Alert, Monitor
from tripguard.vault.service import Vault

MAX_EVENTS_PER_BATCH = 10_000


@dataclass
class LiveMonitor:
    monitor: Monitor = field(default_factory=Monitor)
    lock: threading.Lock = field(default_factory=threading.Lock)
    feed: LiveFeed = field(default_factory=LiveFeed)
    gcj_trips: dict[str, None] = field(default_factory=dict)  # trips whose positions arrive in GCJ-02


@dataclass(frozen=True)
class IngestOptions:
    webhook_url: str | None = None
    check_in_minutes: int = 3


@dataclass
class IngestResult:
    accepted: int
    rejected: list[LineError]
    alerts: list[TripAlert]  # newly stored (one already kept is not counted again)


def ingest(session: Session, live: LiveMonitor, vault: Vault, lines: list[str], *,
           options: IngestOptions) -> IngestResult:
    """Validate, keep trips and positions, run the monitor, store alerts and open check-ins."""
    parsed = list(parse_ndjson(lines, live.gcj_trips))
    rejected = [item for _, item in parsed if isinstance(item, LineError)]
    events = [item for _, item in parsed if not isinstance(item, LineError)]
    tampered = registry.record_heartbeats(session, [e for e in events if isinstance(e, DeviceHeartbeat)])
    for device in tampered:
        if options.webhook_url:
            notify.enqueue_webhook(session, url=options.webhook_url, event="device_tampered",
                                   payload={"device_id": device.id, "vehicle_id": device.vehicle_id,
                                            "reason": device.tamper_reason},
                                   idempotency_key=f"device_tampered:{device.id}:{device.tampered_at}")
    trips.record(session, vault, events)
    alerts: list[Alert] = []
    with live.lock:
        for event in events:
            alerts.extend(live.monitor.process(event))
        live.feed.publish_batch(events, alerts)
    stored = [row for alert in alerts
              if (row := store_alert(session, alert, webhook_url=options.webhook_url)) is not None]
    for row in stored:
        checkins.open_for_alert(session, vault, alert=row, minutes=options.check_in_minutes,
                                webhook_url=options.webhook_url)
    return IngestResult(accepted=len(events), rejected=rejected, alerts=stored)


def store_alert(session: Session, alert: Alert, *, webhook_url: str | None) -> TripAlert | None:
    """Keep the alert once (a replayed batch raises it again: same trip, kind and time) and tell the operator."""
    ts = datetime.fromtimestamp(alert.ts, UTC)
    exists = session.scalar(select(TripAlert.id).where(TripAlert.trip_id == alert.trip_id,
                                                       TripAlert.kind == alert.kind, TripAlert.ts == ts))
    if exists:
        return None
    row = TripAlert(id=new_id("alt"), trip_id=alert.trip_id, kind=alert.kind, severity=alert.severity, ts=ts,
                    lon=alert.lon, lat=alert.lat, evidence=alert.evidence, received_at=utcnow())
    session.add(row)
    session.flush()
    if webhook_url:
        notify.enqueue_webhook(session, url=webhook_url, event="alert", payload=alert.as_dict(),
                               idempotency_key=f"alert:{row.id}")
    return row


def recent_alerts(session: Session, *, trip_id: str | None, limit: int) -> list[TripAlert]:
    statement = select(TripAlert).order_by(TripAlert.ts.desc()).limit(limit)
    if trip_id:
        statement = statement.where(TripAlert.trip_id == trip_id)
    return list(session.scalars(statement))
