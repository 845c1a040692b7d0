"""The embedded default's trip monitor: a thread of the server applying the inbox (`ingest.inbox`) in order.

It runs exactly the cluster worker's apply path (`service.apply` with a `PingBuffer`: positions held and
written in bulk at checkpoints, no Ping object per line, alerts stored per batch), on the inbox instead of
a NATS shard, with the inbox id as the checkpoint's `seq`:

1. at start, the checkpoint (`checkpoints.load`; none yet: the trips under way rebuilt from the trip store,
   as before the inbox) and the rows after it;
2. the rows in slices of at most `TRIPGUARD_MONITOR_SLICE_LINES` lines (a big batch is cut; small ones go
   together), each slice its own transaction through the bulk lane;
3. every `TRIPGUARD_MONITOR_CHECKPOINT_SECONDS` (at the end of a row), the held positions written, again a
   slice of trips per transaction, then the checkpoint, then the rows it covers deleted; so on a clean stop.

Killed at any point, it resumes from the checkpoint and applies the rows after it again: the store keeps each
alert and each ping once. A failure while applying drops the state in memory and starts again from the
checkpoint, so the monitor never runs ahead of what was stored.

An SOS never waits behind the backlog: no transaction holds the SQLite writer for more than a slice (and the
SOS goes first in the writer queue), the monitor's lock is held for one slice's detection only, and the
backlog itself is bounded (ingest answers 503 past it).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.db import unit_of_work
from tripguard.telematics import service
from tripguard.telematics.detection import checkpoints
from tripguard.telematics.detection.contract import MonitorConfig
from tripguard.telematics.ingest import inbox
from tripguard.telematics.ingest.reader import read_ndjson_numbered
from tripguard.telematics.models import MonitorCheckpoint, TripAlert
from tripguard.telematics.service import IngestOptions, LiveMonitor, PingBuffer
from tripguard.telematics.store import trips
from tripguard.vault.service import Vault

logger = logging.getLogger("tripguard.monitor.embedded")
STREAM, SHARD = "embedded-inbox", 0  # the checkpoint's row (the cluster's are "<stream>", shard n)
FETCH_ROWS = 16  # inbox rows read at a time
HELD_PER_SLICE = 4  # held positions written per transaction: this many times the slice's lines


@dataclass
class _Row:
    id: int
    lines: list[bytes]
    at: int = 0  # lines of the row already applied


class EmbeddedMonitor:
    def __init__(self, factory: sessionmaker[Session], *, live: LiveMonitor, vault: Vault,
                 options: Callable[[], IngestOptions], config: MonitorConfig, slice_lines: int,
                 checkpoint_seconds: float, poll: float = 0.5) -> None:
        self.factory, self.live, self.vault, self.options, self.config = factory, live, vault, options, config
        self.slice_lines, self.checkpoint_seconds, self.poll = slice_lines, checkpoint_seconds, poll
        self.seq = 0  # the last inbox row wholly applied
        self.saved_seq = 0
        self.saved_at = time.monotonic()
        self.held = PingBuffer()
        self._rows: deque[_Row] = deque()
        # Rows committed to the inbox and not yet applied, by id (ingest tells of a row after its commit, perhaps
        # after the monitor applied it: counted by id, a row is never counted twice nor left counted for good).
        self._waiting = 0  # their lines
        self._pending: dict[int, int] = {}
        self._pending_ids: list[int] = []  # a heap of the same ids
        self._counted_seq = 0  # rows up to here are applied: told of later, they are not counted
        # Rows up to here may be applied a second time (after a kill or a failure): their positions may be in the
        # store already, so the trips they touch are compacted as they are written (each timestamp counted once).
        self._replay_through = 0
        self._count_lock = threading.Lock()
        self._step_lock = threading.Lock()  # one consumer at a time: the thread, or a test's drain()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what ingest asks (inbox.Consumer) ----------------------------------------------------------------

    def backlog(self) -> int:
        return self._waiting

    def appended(self, row_id: int, lines: int) -> None:
        with self._count_lock:
            self._count(row_id, lines)
        self._wake.set()

    def _count(self, row_id: int, lines: int) -> None:
        if row_id > self._counted_seq and row_id not in self._pending:
            self._pending[row_id] = lines
            heapq.heappush(self._pending_ids, row_id)
            self._waiting += lines

    def _applied_through(self, seq: int) -> None:
        with self._count_lock:
            self._counted_seq = max(self._counted_seq, seq)
            while self._pending_ids and self._pending_ids[0] <= seq:
                self._waiting -= self._pending.pop(heapq.heappop(self._pending_ids))

    def _recount(self) -> None:
        """The backlog read again from the inbox (at start, and after a failure sent `seq` back)."""
        with unit_of_work(self.factory) as session:
            waiting = inbox.waiting_after(session, seq=self.seq)
        with self._count_lock:
            self._waiting, self._pending, self._pending_ids = 0, {}, []
            self._counted_seq = self.seq
            self._replay_through = max(waiting, default=self.seq)
            for row_id, lines in waiting.items():
                self._count(row_id, lines)

    # -- start, run, stop ---------------------------------------------------------------------------------

    def start_state(self) -> None:
        """The monitor as of its checkpoint, and the backlog after it. Without a checkpoint (a first start,
        or an upgrade from the synchronous path) the trips under way are rebuilt from the trip store, and
        that state saved at once, so the inbox is only ever replayed over a checkpoint."""
        with unit_of_work(self.factory) as session:
            saved = session.get(MonitorCheckpoint, (STREAM, SHARD)) is not None
        state = checkpoints.load(self.factory, vault=self.vault, stream=STREAM, shard=SHARD, config=self.config)
        if not saved:
            service.restore(self.factory, live=self.live, vault=self.vault)
            with unit_of_work(self.factory) as session:
                first = inbox.rows_after(session, seq=0, limit=1)
            state.seq = first[0].id - 1 if first else 0
            self._install(checkpoints.ShardState(self.live.monitor, self.live.gcj_trips, state.seq))
            self._save_checkpoint()
        else:
            self._install(state)
            with unit_of_work(self.factory) as session:  # killed after its checkpoint, before this delete
                inbox.delete_through(session, seq=self.seq)
        self._recount()

    def start(self) -> None:
        self.start_state()
        self._thread = threading.Thread(target=self._run, name="tripguard monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A clean stop: what is applied is checkpointed (the rows after it are applied at the next start).
        A row applied in part is finished first (at most a batch, `MAX_EVENTS_PER_BATCH` lines): the state
        saved must be that of whole rows, else the part would be applied twice after the restart."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self._finish_row()
        except Exception:
            logger.exception("monitor stop: the row under way failed; the next start replays it from the checkpoint")
            return  # the state may be ahead of the store: no checkpoint of it
        with self._step_lock:
            self._rows.clear()  # rows not begun are applied at the next start
            if self.seq > self.saved_seq or len(self.held):
                self._checkpoint()

    def _finish_row(self) -> None:
        with self._step_lock:
            if not self._rows or not self._rows[0].at:
                return
            self._rows = deque([self._rows[0]])
        while self._rows:
            self.step()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                applied = self.step()
                if applied == 0 and time.monotonic() - self.saved_at >= self.checkpoint_seconds:
                    self.checkpoint()  # nothing waits: what is held goes to the store once the interval passed
            except Exception:
                logger.exception("monitor slice failed; starting again from the checkpoint")
                self.recover()
                self._stop.wait(self.poll)
                continue
            if applied == 0:
                self._wake.wait(self.poll)
                self._wake.clear()

    def drain(self) -> list[TripAlert]:
        """Apply the whole inbox now, in this thread, and checkpoint (tests: what ingest took is then stored).
        The alerts newly stored."""
        stored: list[TripAlert] = []
        while True:
            found: list[TripAlert] = []
            if self.step(found) == 0:
                break
            stored.extend(found)
        self.checkpoint()
        return stored

    # -- one slice ----------------------------------------------------------------------------------------

    def step(self, stored: list[TripAlert] | None = None) -> int:
        """Apply the next slice of the inbox in one transaction; the lines applied (0: nothing waits)."""
        with self._step_lock:
            if not self._rows:
                self._fetch()
            if not self._rows:
                return 0
            data, count, done = self._slice()
            with unit_of_work(self.factory) as session:
                columns, _, rejected = read_ndjson_numbered(data, self.live.gcj_trips)
                if rejected:  # the API checked every line; only a change of rules between versions gets here
                    logger.warning("lines refused by the monitor", extra={"event": f"{len(rejected)} lines"})
                result = service.apply(session, live=self.live, vault=self.vault, columns=columns, rejected=[],
                                       options=self.options(), held=self.held)
            for _ in range(done):
                self.seq = self._rows.popleft().id
            self._applied_through(self.seq)
            if stored is not None:
                stored.extend(result.alerts)
            if done and self.seq > self.saved_seq and time.monotonic() - self.saved_at >= self.checkpoint_seconds:
                self._checkpoint()
            return count

    def _fetch(self) -> None:
        with unit_of_work(self.factory) as session:
            rows = inbox.rows_after(session, seq=self.seq, limit=FETCH_ROWS)
        self._rows.extend(_Row(row.id, row.data.split(b"\n")) for row in rows)

    def _slice(self) -> tuple[bytes, int, int]:
        """The next lines to apply: whole rows while they fit in a slice, else the next part of a big row.
        The NDJSON, how many lines, and how many rows it finishes."""
        parts: list[bytes] = []
        count = done = 0
        for row in self._rows:
            left = len(row.lines) - row.at
            if count and count + left > self.slice_lines:
                break
            take = min(left, self.slice_lines - count)
            parts.extend(row.lines[row.at:row.at + take])
            row.at += take
            count += take
            if row.at < len(row.lines):
                break
            done += 1
        return b"\n".join(parts), count, done

    # -- checkpoints --------------------------------------------------------------------------------------

    def checkpoint(self) -> None:
        with self._step_lock:
            if self.seq > self.saved_seq or len(self.held):
                self._checkpoint()
            else:
                self.saved_at = time.monotonic()

    def _checkpoint(self) -> None:
        """The held positions to the trip store (a slice of trips per transaction), then the state as of
        `seq`, then the rows it covers deleted. Only at the end of a row: the state is then the rows' own."""
        if any(row.at for row in self._rows):
            return
        trip_ids, table = self.held.drain()
        replayed = self.saved_seq < self._replay_through
        for part_ids, part in _trip_slices(trip_ids, table, self.slice_lines * HELD_PER_SLICE):
            with unit_of_work(self.factory) as session:
                trips.record_positions(session, self.vault, part_ids, part)
                if replayed:  # written before the kill too, perhaps: kept and counted once
                    trips.compact_many(session, vault=self.vault, trip_ids=[
                        t for t in dict.fromkeys(part_ids) if not self.vault.is_erased(session, trips.trip_key(t))])
        self._save_checkpoint()

    def _save_checkpoint(self) -> None:
        state = checkpoints.ShardState(self.live.monitor, self.live.gcj_trips, self.seq)
        with self.live.lock:  # only the pickling: the demo city's ingest changes the monitor too
            data = checkpoints.dump(state)
        checkpoints.save_dumped(self.factory, vault=self.vault, stream=STREAM, shard=SHARD, seq=self.seq,
                                trips=len(state.monitor.slot_of), data=data)
        with unit_of_work(self.factory) as session:
            inbox.delete_through(session, seq=self.seq)
        self.saved_seq, self.saved_at = self.seq, time.monotonic()
        self.live.feed.flush_positions()

    def _install(self, state: checkpoints.ShardState) -> None:
        with self.live.lock:
            self.live.monitor, self.live.gcj_trips = state.monitor, state.gcj_trips
            self.live.unstored = []
        self.seq = self.saved_seq = state.seq
        self.saved_at = time.monotonic()

    def recover(self) -> None:
        """After a failure: the state in memory may be ahead of the store; take the checkpoint's again."""
        with self._step_lock:
            self._rows.clear()
            self.held = PingBuffer()
            self._install(checkpoints.load(self.factory, vault=self.vault, stream=STREAM, shard=SHARD,
                                           config=self.config))
            self._recount()


def _trip_slices(trip_ids: list[str], table: np.ndarray, size: int) -> list[tuple[list[str], np.ndarray]]:
    """Held positions cut into parts of about `size` pings, each trip's pings in one part."""
    if not trip_ids:
        return []
    names = list(dict.fromkeys(trip_ids))
    number = {name: n for n, name in enumerate(names)}
    groups = np.fromiter(map(number.__getitem__, trip_ids), dtype=np.int64, count=len(trip_ids))
    per_trip = np.bincount(groups, minlength=len(names))
    part_of_trip = np.cumsum(per_trip) // max(1, size)  # a trip goes wholly into the part where it ends
    part = part_of_trip[groups]
    order = np.argsort(part, kind="stable")
    cuts = np.flatnonzero(np.diff(part[order])) + 1
    ids = np.array(trip_ids, dtype=object)
    return [(ids[rows].tolist(), table[:, rows]) for rows in np.split(order, cuts)]
