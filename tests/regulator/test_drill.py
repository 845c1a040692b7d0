"""The outage drill: the platform's receiver down (connection refused) while the feed keeps producing, then
back. Every upload arrives exactly once, each type in sequence, and the reconciliation balances with nothing
still due. On SQLite and, in its pass, PostgreSQL; the sender runs on its own thread as in `tripguard serve`."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from tests.regulator.fakes import T0, pack_for_test, ticking_exporter
from tests.regulator.receiver import SIGNING_KEY, PlatformReceiver
from tripguard.core.db import unit_of_work
from tripguard.regulator import feed, reports
from tripguard.regulator.feed import Sender, SenderThread
from tripguard.regulator.transports import HttpTransport
from tripguard.vault.service import Vault

EXPORTERS = {"positionVehicle": ticking_exporter("positionVehicle", timedelta(seconds=10)),
             "ratedDriverPunish": ticking_exporter("ratedDriverPunish", timedelta(minutes=3))}


def wait_for(condition: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_outage_drill_every_upload_once_in_sequence(committed: sessionmaker[Session], committed_vault: Vault) -> None:
    platform = PlatformReceiver()
    platform.up()
    transport = HttpTransport(url=platform.url, company_id="3301TESTCO", signing_key=SIGNING_KEY,
                              ack_field="code", ack_value="0", timeout_seconds=5)
    sender = Sender(committed, committed_vault, transport, pack_for_test, batch=40, poll=0.05,
                    max_backoff=timedelta(milliseconds=500))
    thread = SenderThread(sender)
    thread.start()
    try:
        def produce_until(minutes: int) -> None:
            feed.produce(committed, vault=committed_vault, since=T0, exporters=EXPORTERS,
                         now=T0 + timedelta(minutes=minutes))
            sender.wake.set()

        produce_until(5)
        wait_for(lambda: sum(len(b.items) for b in platform.batches) == 30 + 2)
        platform.down()  # the platform is away: connection refused
        for minutes in (10, 15, 20):
            produce_until(minutes)
            time.sleep(0.3)
        with unit_of_work(committed) as session:
            during = {s.kind: s for s in reports.feed_state(session)}
        assert during["positionVehicle"].backlog == 90 and during["positionVehicle"].last_error
        assert "ConnectError" in (during["positionVehicle"].last_error or "")
        platform.up()  # back, on the same address
        produce_until(25)
        wait_for(lambda: sum(len(b.items) for b in platform.batches) == 150 + 9)
    finally:
        thread.stop()
        platform.down()
    received = [(b.kind, item["key"]) for b in platform.batches for item in b.items]
    assert not [key for key, n in Counter(received).items() if n > 1]  # exactly once
    for kind in EXPORTERS:
        batches = [b for b in platform.batches if b.kind == kind]
        numbers = [n for b in batches for n in range(b.first, b.last + 1)]
        assert numbers == list(range(1, len(numbers) + 1))  # in sequence, none skipped, none repeated
        times = [item["at"] for b in batches for item in b.items]
        assert times == sorted(times)
    with unit_of_work(committed) as session:
        rows = reports.reconcile(session, first=T0.date(), last=T0.date(), zone=ZoneInfo("Asia/Shanghai"))
        state = reports.feed_state(session)
    assert {(r.kind, r.produced, r.acknowledged, r.due, r.balanced) for r in rows} == {
        ("positionVehicle", 150, 150, 0, True), ("ratedDriverPunish", 9, 9, 0, True)}
    assert all(s.backlog == 0 and s.lag_seconds == 0 for s in state)
