"""A shard's checkpoint: the monitor saved mid-stream and loaded again raises what it would have raised."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import fresh_database, make_settings
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.settings import Settings
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics.detection import checkpoints, fast_monitor
from tripguard.telematics.detection.fast_monitor import BatchMonitor
from tripguard.telematics.detection.monitor import MonitorConfig
from tripguard.telematics.ingest.reader import read_ndjson
from tripguard.telematics.models import MonitorCheckpoint
from tripguard.vault.models import DataKey


def test_a_monitor_loaded_from_its_checkpoint_goes_on_as_if_never_stopped(
        settings: Settings, session_factory: sessionmaker[Session]) -> None:
    vault = create_app(settings, session_factory=session_factory).state.vault
    events, _ = build_stream(load_trips()[:40], stagger_s=20,
                             inject={"off_route": 2, "long_stop": 2, "gps_lost": 2, "possible_crash": 2})
    data = "\n".join(json.dumps(e) for e in events).encode()
    columns, errors = read_ndjson(data)
    assert not errors
    cut = len(columns) // 2
    head, tail = columns.take(np.arange(cut)), columns.take(np.arange(cut, len(columns)))

    straight = BatchMonitor()
    expected = straight.process_columns(head) + straight.process_columns(tail)
    tail_expected = expected[len(BatchMonitor().process_columns(head)):]
    assert tail_expected, "the second half must raise alerts for this test to mean anything"

    first = checkpoints.ShardState(BatchMonitor(), {"G1": None}, 0)
    first.monitor.process_columns(head)
    first.seq = 41
    checkpoints.save(session_factory, vault=vault, stream="TEST_EVENTS", shard=3, state=first)
    loaded = checkpoints.load(session_factory, vault=vault, stream="TEST_EVENTS", shard=3, config=MonitorConfig())
    assert loaded.seq == 41 and loaded.gcj_trips == {"G1": None}
    assert loaded.monitor.process_columns(tail) == tail_expected
    with session_factory() as session:
        row = session.get(MonitorCheckpoint, ("TEST_EVENTS", 3))
        assert row is not None and row.state is not None
        assert b"trip" not in row.state and row.trips == len(first.monitor.slot_of)  # sealed, not plain pickle
        session.delete(row)
        session.commit()


def test_a_shard_without_a_checkpoint_starts_from_the_stream_s_first_message(
        settings: Settings, session_factory: sessionmaker[Session]) -> None:
    vault = create_app(settings, session_factory=session_factory).state.vault
    state = checkpoints.load(session_factory, vault=vault, stream="NONE_EVENTS", shard=0, config=MonitorConfig())
    assert state.seq == 0 and state.monitor.slot_of == {} and state.gcj_trips == {}


def test_a_checkpoint_of_another_state_layout_starts_the_shard_afresh(
        settings: Settings, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    vault = create_app(settings, session_factory=session_factory).state.vault
    state = checkpoints.ShardState(BatchMonitor(), {"G1": None}, 17)
    checkpoints.save(session_factory, vault=vault, stream="OLD_EVENTS", shard=1, state=state)
    monkeypatch.setattr(checkpoints, "layout", lambda: "a-newer-release")
    loaded = checkpoints.load(session_factory, vault=vault, stream="OLD_EVENTS", shard=1, config=MonitorConfig())
    assert loaded.seq == 0 and loaded.gcj_trips == {}  # replay from the stream's start


def test_a_checkpoint_of_a_release_whose_monitor_lived_elsewhere_starts_the_shard_afresh(
        settings: Settings, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint pickled before the monitor moved (`tripguard.telematics.fast_monitor`, before #29) names a
    module this release has not: the worker taking the shard over replays the stream instead of stopping."""
    vault = create_app(settings, session_factory=session_factory).state.vault
    with monkeypatch.context() as before_the_move:
        before_the_move.setitem(sys.modules, "tripguard.telematics.fast_monitor", fast_monitor)
        before_the_move.setattr(BatchMonitor, "__module__", "tripguard.telematics.fast_monitor")
        state = checkpoints.ShardState(BatchMonitor(), {"G1": None}, 17)
        checkpoints.save(session_factory, vault=vault, stream="MOVED_EVENTS", shard=2, state=state)
    loaded = checkpoints.load(session_factory, vault=vault, stream="MOVED_EVENTS", shard=2, config=MonitorConfig())
    assert loaded.seq == 0 and loaded.gcj_trips == {}  # replay from the stream's start


def test_shards_making_the_checkpoint_key_at_once_all_go_on(tmp_path: Path) -> None:
    """A new deployment's shards save their first checkpoints at once: the one system key is made once, and the
    shard that finds another's key being made goes on (on PostgreSQL its insert waits, then meets the key)."""
    url = fresh_database("tg_ckpt_key", tmp_path)
    settings = make_settings(url, tmp_path / "keys")
    vault = create_app(settings).state.vault
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    first = factory()
    try:
        vault.data_key(first, checkpoints.SUBJECT, create=True)
        first.flush()  # the key's row written, not committed: another shard's insert of it waits on this one
        outcome: list[object] = []

        def second_shard() -> None:
            try:
                checkpoints.ensure_key(factory, vault=vault)
                outcome.append("went on")
            except SQLAlchemyError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=second_shard)
        thread.start()
        time.sleep(0.5)
        first.commit()  # a test's transaction, standing for the first shard's
    finally:
        first.close()
    thread.join(30)
    assert outcome == ["went on"]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(DataKey).where(
            DataKey.subject_id == checkpoints.SUBJECT)) == 1
    engine.dispose()
