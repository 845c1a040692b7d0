"""A shard's monitor state, saved by the monitor worker that owns it and read by the one taking it over.

The state is the `BatchMonitor` with the shard's memory of GCJ-02 trips, as of one message of the
events stream (`seq`): a worker taking the shard over loads it and replays the stream from `seq + 1`,
so the monitor sees each event once, in order, and raises each alert exactly as it would have.
It holds positions of trips under way, so it is sealed by the vault like a trip's track.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.telematics.detection import fast_monitor
from tripguard.telematics.detection.contract import MonitorConfig
from tripguard.telematics.detection.fast_monitor import BatchMonitor
from tripguard.telematics.models import MonitorCheckpoint
from tripguard.vault.service import Vault

SUBJECT = "system:monitor-checkpoints"
logger = logging.getLogger("tripguard.worker.monitor")


def layout() -> str:
    """The monitor's state layout: a checkpoint written by a release with another one is not loaded."""
    fields = (fast_monitor._FLOAT_COLUMNS, fast_monitor._BOOL_COLUMNS, fast_monitor._INT_COLUMNS,
              sorted(BatchMonitor(MonitorConfig()).__getstate__()))
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:16]


@dataclass
class ShardState:
    monitor: BatchMonitor
    gcj_trips: dict[str, None] = field(default_factory=dict)
    seq: int = 0  # the last stream message applied


def _row_id(stream: str, shard: int) -> str:
    return f"{stream}:{shard}"


def ensure_key(factory: sessionmaker[Session], *, vault: Vault) -> None:
    """The checkpoints' system key, made in a transaction of its own before a shard's first save: the shards of
    a new deployment saving their first checkpoints at once would each make it, and all but one would fail
    (and start again from their checkpoints)."""
    try:
        with unit_of_work(factory) as session:
            vault.data_key(session, SUBJECT, create=True)
    except IntegrityError:
        logger.info("checkpoint key made by another shard first", extra={"event": SUBJECT})


def save(factory: sessionmaker[Session], *, vault: Vault, stream: str, shard: int, state: ShardState) -> None:
    """Keep the shard's state as of `state.seq` (its own transaction: the batches are committed already)."""
    with unit_of_work(factory) as session:
        save_in(session, vault=vault, stream=stream, shard=shard, state=state)


def save_in(session: Session, *, vault: Vault, stream: str, shard: int, state: ShardState) -> None:
    """`save` in the caller's transaction (with the positions it covers: both kept, or neither)."""
    _write(session, vault=vault, stream=stream, shard=shard, seq=state.seq, trips=len(state.monitor.slot_of),
           data=dump(state))


def dump(state: ShardState) -> bytes:
    """The state as `save_dumped` keeps it (taken while nothing changes the monitor)."""
    return pickle.dumps((layout(), state.monitor, state.gcj_trips), protocol=pickle.HIGHEST_PROTOCOL)


def save_dumped(factory: sessionmaker[Session], *, vault: Vault, stream: str, shard: int, seq: int, trips: int,
                data: bytes) -> None:
    """`save`, the state already dumped."""
    with unit_of_work(factory) as session:
        _write(session, vault=vault, stream=stream, shard=shard, seq=seq, trips=trips, data=data)


def _write(session: Session, *, vault: Vault, stream: str, shard: int, seq: int, trips: int, data: bytes) -> None:
    sealed = vault.seal_bytes(session, subject_id=SUBJECT, table=MonitorCheckpoint.__tablename__, column="state",
                              row_id=_row_id(stream, shard), data=data)
    row = session.get(MonitorCheckpoint, (stream, shard))
    if row is None:
        row = MonitorCheckpoint(stream=stream, shard=shard)
        session.add(row)
    row.seq, row.subject_id, row.state = seq, SUBJECT, sealed
    row.trips, row.saved_at = trips, utcnow()


def load(factory: sessionmaker[Session], *, vault: Vault, stream: str, shard: int, config: MonitorConfig) -> ShardState:
    """The shard's last saved state; a new monitor (from the stream's first message) if it has none."""
    with unit_of_work(factory) as session:
        row = session.get(MonitorCheckpoint, (stream, shard))
        if row is None or row.state is None:
            return ShardState(BatchMonitor(config))
        data = vault.open_bytes(session, subject_id=row.subject_id, table=MonitorCheckpoint.__tablename__,
                                column="state", row_id=_row_id(stream, shard), blob=row.state)
        seq = row.seq
    # Sealed by this deployment's own key (authenticated encryption), so it is ours to unpickle.
    try:
        written_by, monitor, gcj_trips = pickle.loads(data)  # noqa: S301 - see above
        if written_by != layout():
            raise ValueError(f"state layout {written_by}, this release {layout()}")
    except (ValueError, TypeError, AttributeError, ImportError, pickle.UnpicklingError) as exc:
        # Another release's state (its classes elsewhere too: ImportError): start the shard afresh from the
        # oldest event the stream still holds (alerts raised again are stored once; trips begun before it are
        # seen from their next ping).
        logger.error("checkpoint not loadable; replaying the stream from its start",
                     extra={"event": f"{stream} shard {shard}", "error": str(exc)[:200]})
        return ShardState(BatchMonitor(config))
    return ShardState(monitor, gcj_trips, seq)
