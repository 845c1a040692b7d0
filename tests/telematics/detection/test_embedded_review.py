"""The embedded monitor under attack: appends racing the monitor on both backends, the backlog's count when
the monitor is quicker than the request's commit, a clean stop in the middle of a big row."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.builders import drain
from tests.conftest import fresh_database, make_settings
from tests.telematics.detection.test_embedded import _app, _outcome, _post, _stream
from tripguard.core.db import unit_of_work
from tripguard.security.auth import resolve_principal
from tripguard.telematics.ingest import inbox
from tripguard.telematics.models import InboxBatch, Trip

pytestmark = pytest.mark.drain_by_hand


def test_appends_racing_the_reader_are_all_read_in_id_order(tmp_path: Path) -> None:
    """Concurrent appends, each holding its transaction open a while after its insert, and a reader that
    moves past every id it sees: no id is ever committed behind the reader (it would be skipped for good)."""
    from tripguard.app import create_app

    app = create_app(make_settings(fresh_database("tg_emb_race", tmp_path), tmp_path / "keys-race",
                                   monitor_thread=False))
    factory = app.state.sessionmaker
    committed: list[int] = []
    seen: list[int] = []
    done = threading.Event()

    def writer(n: int) -> None:
        rng = random.Random(n)  # noqa: S311 - jitter, not secrets
        for _ in range(15):
            with unit_of_work(factory) as session:
                row = inbox.append(session, data=b"{}", lines=1)
                time.sleep(rng.random() * 0.01)  # the request's transaction goes on after its append
            committed.append(row)

    def reader() -> None:
        seq = 0
        while not done.is_set() or seq < max(committed, default=0):
            with unit_of_work(factory) as session:
                rows = inbox.rows_after(session, seq=seq, limit=4)
            for row in rows:
                seen.append(row.id)
                seq = row.id
            time.sleep(0.001)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    consumer = threading.Thread(target=reader)
    consumer.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    consumer.join(30)
    assert sorted(committed) == seen


def test_the_backlog_stays_exact_when_the_monitor_applies_a_row_before_its_commit_is_told(tmp_path: Path) -> None:
    """The after-commit hook runs after the commit: the monitor thread may have applied the row already."""
    app = _app(tmp_path, "tg_emb_count")
    with TestClient(app):
        monitor = app.state.embedded_monitor
        with unit_of_work(app.state.sessionmaker) as session:
            row = inbox.append(session, data=b'{"type":"device_heartbeat","device_id":"D1","vehicle_id":"V1",'
                                              b'"ts":"2026-03-01T08:00:00Z"}', lines=1)
        assert monitor.step() == 1  # the monitor, quicker than the request's thread
        monitor.appended(row, 1)
        assert monitor.backlog() == 0  # else it creeps up until ingest answers 503 for good


def test_a_clean_stop_in_the_middle_of_a_row_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    from tripguard.app import create_app

    whole = _app(tmp_path, "tg_emb_stop_whole")
    with TestClient(whole) as client:
        for batch in _stream():
            _post(client, batch)
        drain(whole)
    stopped = _app(tmp_path, "tg_emb_stopped", monitor_slice_lines=5, monitor_checkpoint_seconds=3600)
    with TestClient(stopped) as client:
        for batch in _stream():
            _post(client, batch)
        monitor = stopped.state.embedded_monitor
        for _ in range(3):  # rows of 23 lines, slices of 5: the third slice ends inside the first row
            monitor.step()
        assert monitor.seq == 0 and monitor._rows[0].at  # a row applied in part
    after = create_app(stopped.state.settings)
    after.dependency_overrides[resolve_principal] = whole.dependency_overrides[resolve_principal]
    with TestClient(after):
        drain(after)
        with unit_of_work(after.state.sessionmaker) as session:
            assert session.scalar(select(func.count()).select_from(InboxBatch)) == 0
    assert _outcome(after) == _outcome(whole)


@pytest.mark.parametrize("where", ["between_position_parts", "before_checkpoint", "before_delete"])
@pytest.mark.parametrize("restart", [True, False])
def test_a_crash_inside_the_checkpoint_loses_nothing_and_stores_nothing_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, restart: bool) -> None:
    """Killed (a new process) or failed (the thread recovers in place) between the held positions' parts, after
    them and before the checkpoint, or after it and before the covered rows are deleted."""
    from tripguard.app import create_app
    from tripguard.telematics.detection import checkpoints
    from tripguard.telematics.store import trips

    whole = _app(tmp_path, "tg_emb_cr_whole")
    with TestClient(whole) as client:
        for batch in _stream():
            _post(client, batch)
        drain(whole)
    crashed = _app(tmp_path, "tg_emb_cr", monitor_slice_lines=2, monitor_checkpoint_seconds=3600)
    with TestClient(crashed) as client:
        batches = _stream()
        _post(client, batches[0])
        drain(crashed)
        for batch in batches[1:]:
            _post(client, batch)
        monitor = crashed.state.embedded_monitor
        while monitor.step():  # everything applied, positions held, no checkpoint since
            pass
        assert len(monitor.held)

        class Killed(Exception):
            pass

        written: list[int] = []
        record = trips.record_positions

        def record_then_die(*args, **kwargs):  # type: ignore[no-untyped-def]
            if where == "between_position_parts" and written:
                raise Killed
            written.append(1)
            return record(*args, **kwargs)

        def die(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise Killed

        monkeypatch.setattr(trips, "record_positions", record_then_die)
        if where == "before_checkpoint":
            monkeypatch.setattr(checkpoints, "save_dumped", die)
        if where == "before_delete":
            monkeypatch.setattr(inbox, "delete_through", die)
        with pytest.raises(Killed):
            monitor.checkpoint()
        monkeypatch.undo()
        if not restart:
            monitor.recover()
            drain(crashed)
            assert _outcome(crashed) == _outcome(whole)
            return
        monitor.stop = lambda: None  # killed: no clean stop
    after = create_app(crashed.state.settings)
    after.dependency_overrides[resolve_principal] = whole.dependency_overrides[resolve_principal]
    with TestClient(after):
        drain(after)
        with unit_of_work(after.state.sessionmaker) as session:
            assert session.scalar(select(func.count()).select_from(InboxBatch)) == 0
    assert _outcome(after) == _outcome(whole)


def test_a_trip_erased_while_its_lines_wait_in_the_inbox_is_dropped_and_the_monitor_goes_on(tmp_path: Path) -> None:
    """Its key shredded, its waiting positions can't be sealed: they are dropped, and the other trips' stored
    (it used to fail the slice again and again: the monitor stuck for every trip, ingest soon answering 503)."""
    from tripguard.telematics.store.trips import trip_key

    app = _app(tmp_path, "tg_emb_erase")
    with TestClient(app) as client:
        batches = _stream()
        _post(client, batches[0])
        drain(app)
        for batch in batches[1:]:
            _post(client, batch)
        with unit_of_work(app.state.sessionmaker) as session:
            assert app.state.vault.shred(session, subject_id=trip_key("E2"), reason="erased")
        drain(app)
        assert app.state.embedded_monitor.backlog() == 0
        with unit_of_work(app.state.sessionmaker) as session:
            assert session.scalar(select(func.count()).select_from(InboxBatch)) == 0
            assert session.get(Trip, "E3").points == 14
