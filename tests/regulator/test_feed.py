"""Producing (watermarks moved with what they queued), back-fill (idempotent by key), sending (in sequence,
paused in a planned outage), planned outages (72 h notice) and the reconciliation."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.regulator.fakes import T0, pack_for_test, ticking_exporter, unpack_for_test
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.regulator import feed, outages, reports, service
from tripguard.regulator.feed import Sender
from tripguard.regulator.models import Feed, PlannedOutage
from tripguard.regulator.transports import RecordingTransport
from tripguard.vault.service import Vault

EXPORTERS = {"positionVehicle": ticking_exporter("positionVehicle", timedelta(seconds=10)),
             "ratedDriverPunish": ticking_exporter("ratedDriverPunish", timedelta(minutes=7))}
OFFICER = Actor("staff", "stf_OFFICER")


def test_produce_moves_each_watermark_with_what_it_queued(committed: sessionmaker[Session],
                                                          committed_vault: Vault) -> None:
    queued = feed.produce(committed, vault=committed_vault, since=T0, exporters=EXPORTERS,
                          now=T0 + timedelta(minutes=25), lateness=timedelta(minutes=1), step=timedelta(minutes=10))
    assert queued == {"positionVehicle": 144, "ratedDriverPunish": 4}  # [00:00, 00:24): 0, 7, 14, 21 minutes
    again = feed.produce(committed, vault=committed_vault, since=T0, exporters=EXPORTERS,
                         now=T0 + timedelta(minutes=31), lateness=timedelta(minutes=1))
    assert again == {"positionVehicle": 36, "ratedDriverPunish": 1}  # only [00:24, 00:30)
    with unit_of_work(committed) as session:
        assert session.get(Feed, "positionVehicle").watermark == T0 + timedelta(minutes=30)  # type: ignore[union-attr]
        assert service.sequences(session, kind="positionVehicle") == list(range(1, 181))


def test_backfill_queues_only_what_is_missing_and_sends_it_in_sequence(committed: sessionmaker[Session],
                                                                       committed_vault: Vault) -> None:
    feed.produce(committed, vault=committed_vault, since=T0, exporters=EXPORTERS, now=T0 + timedelta(minutes=10))
    with unit_of_work(committed) as session:  # an operator lost a stretch: say uploads 20..39 never were queued
        session.execute(service.QueuedUpload.__table__.delete().where(  # type: ignore[attr-defined]
            service.QueuedUpload.kind == "positionVehicle", service.QueuedUpload.sequence.between(20, 39)))
    added = feed.backfill(committed, vault=committed_vault, kinds=["positionVehicle"], start=T0,
                          end=T0 + timedelta(minutes=10), exporters=EXPORTERS)
    assert added == {"positionVehicle": 20}
    assert feed.backfill(committed, vault=committed_vault, kinds=None, start=T0, end=T0 + timedelta(minutes=10),
                         exporters=EXPORTERS) == {"positionVehicle": 0, "ratedDriverPunish": 0}
    transport = RecordingTransport()
    Sender(committed, committed_vault, transport, pack_for_test, batch=25).drain()
    sent = [(b.kind, b.first_sequence, b.last_sequence) for b in transport.batches]
    assert [s for s in sent if s[0] == "positionVehicle"] == [  # the numbers lost stay unused: never sent
        ("positionVehicle", 1, 45), ("positionVehicle", 46, 70), ("positionVehicle", 71, 80)]
    keys = [item["key"] for b in transport.batches if b.kind == "positionVehicle"
            for item in unpack_for_test(b.payload)]
    assert len(keys) == len(set(keys)) == 60


def test_backfill_refuses_unknown_types_and_empty_ranges(committed: sessionmaker[Session],
                                                        committed_vault: Vault) -> None:
    with pytest.raises(feed.UnknownType, match="operatePay"):
        feed.backfill(committed, vault=committed_vault, kinds=["operatePay"], start=T0, end=T0 + timedelta(hours=1),
                      exporters=EXPORTERS)
    with pytest.raises(ValueError, match="ends before"):
        feed.backfill(committed, vault=committed_vault, kinds=None, start=T0, end=T0, exporters=EXPORTERS)


def test_sender_pauses_in_a_planned_outage(committed: sessionmaker[Session], committed_vault: Vault) -> None:
    with unit_of_work(committed) as session:
        service.enqueue(session, vault=committed_vault,
                        uploads=EXPORTERS["ratedDriverPunish"](session, committed_vault, T0,
                                                              T0 + timedelta(hours=1)))
        now = utcnow()
        session.add(PlannedOutage(id="out_1", starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1),
                                  reason="platform maintenance", announced_at=now - timedelta(days=4),
                                  announced_by="staff:stf_OFFICER"))
    transport = RecordingTransport()
    sender = Sender(committed, committed_vault, transport, pack_for_test)
    assert sender.drain().acknowledged == 0 and not transport.batches
    with unit_of_work(committed) as session:
        session.get(PlannedOutage, "out_1").ends_at = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
    assert sender.drain().acknowledged == 9


def test_planned_outages_need_72_hours_notice(db: Session) -> None:
    now = utcnow()
    with pytest.raises(outages.OutageRefused, match="72 hours") as refused:
        outages.announce(db, starts_at=now + timedelta(hours=71), ends_at=now + timedelta(hours=75),
                         reason="upgrade", actor=OFFICER, now=now)
    assert refused.value.status == 422 and refused.value.errors[0].field == "starts_at"  # type: ignore[index]
    with pytest.raises(outages.OutageRefused, match="ends before"):
        outages.announce(db, starts_at=now + timedelta(hours=80), ends_at=now + timedelta(hours=80),
                         reason="upgrade", actor=OFFICER, now=now)
    outage = outages.announce(db, starts_at=now + timedelta(hours=72), ends_at=now + timedelta(hours=74),
                              reason="database upgrade", actor=OFFICER, now=now)
    assert outages.listed(db)[0].id == outage.id and outage.announced_by == "staff:stf_OFFICER"
    from tripguard.audit.models import AuditEntry

    assert db.scalars(select(AuditEntry.action).where(AuditEntry.target_id == outage.id)).one() == \
        "regulator.outage_announce"


def test_reconciliation_per_local_day_and_type(db: Session, vault: Vault) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    # T0 is 08:00 in Shanghai on 2 March; 16:00 UTC is midnight there: the next day.
    service.enqueue(db, vault=vault, uploads=ticking_exporter("ratedPassengerComplaint", timedelta(hours=4))(
        db, vault, T0, T0 + timedelta(hours=20)))  # 00, 04, 08, 12 | 16 UTC
    claim = service.claim_batch(db, vault=vault, kind="ratedPassengerComplaint", limit=2,
                                claim_for=timedelta(minutes=2))
    assert claim is not None
    service.record_outcome(db, claim=claim, error=None, max_backoff=timedelta(minutes=10))
    claim = service.claim_batch(db, vault=vault, kind="ratedPassengerComplaint", limit=1,
                                claim_for=timedelta(minutes=2))
    assert claim is not None
    service.record_outcome(db, claim=claim, error="HTTP 503", max_backoff=timedelta(minutes=10))
    rows = reports.reconcile(db, first=date(2026, 3, 2), last=date(2026, 3, 3), zone=shanghai)
    assert [(r.day.day, r.produced, r.sent, r.acknowledged, r.due, r.balanced) for r in rows] == [
        (2, 4, 3, 2, 2, True), (3, 1, 0, 0, 1, True)]
    states = reports.feed_state(db, now=T0 + timedelta(hours=10))
    [state] = [s for s in states if s.kind == "ratedPassengerComplaint"]
    assert (state.kind, state.backlog, state.failing, state.lag_seconds) == ("ratedPassengerComplaint", 3, 1, 2 * 3600)
    assert state.last_error == "HTTP 503" and state.last_acknowledged_at is not None
