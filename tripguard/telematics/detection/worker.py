"""`tripguard worker monitor`: the trip monitor of a scaled-out deployment, one shard at a time.

Each shard (an events subject, `<bus>.events.<n>`) is run by one worker at a time, which holds a
lease for it (`core.leader`: renewed from the shard's loop; a worker that stops renewing, killed or
stopped, loses it within `TRIPGUARD_LEADER_LEASE_SECONDS`, and its writes are fenced once another
has it). A worker runs its own shards (`--shards`) and takes over the `--standby` ones when no other
worker holds them (after a grace, so each starts on its own first). The workers share the shards
fairly: each announces its presence, holds at most ceil(shards / live workers), and gives up its
surplus (checkpoint saved, lease released) to a worker with room, within
`TRIPGUARD_MONITOR_REBALANCE_SECONDS` of that worker's start.

For a shard it holds, the worker
1. loads the shard's checkpoint (the monitor's state as of stream message `seq`, `checkpoints`);
2. points the shard's durable pull consumer at message `seq + 1` (recreated: the stream, not the
   consumer's acknowledgements, says where the checkpoint stands);
3. fetches messages, reads their lines, runs the monitor and stores what it says (trips, positions,
   alerts, check-ins, incidents) in one transaction, then acknowledges them;
4. saves the checkpoint every `TRIPGUARD_MONITOR_CHECKPOINT_SECONDS`, and on a clean stop.

A worker killed at any point loses nothing: whoever takes the shard over replays from the last
checkpoint. The replay raises the same alerts in the same order; the store keeps each alert once
(unique trip, kind and time), and a re-sent ping is stored once. Any failure while applying drops the
shard's state in memory and starts again from its checkpoint, so the monitor never runs ahead of
what was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tripguard.core.db import unit_of_work
from tripguard.core.leader import Fenced, Lease, Membership, fenced_sessionmaker, holder_name
from tripguard.core.messaging import NatsLink, events_subject, stream_name
from tripguard.core.settings import Settings
from tripguard.telematics import service
from tripguard.telematics.detection import checkpoints
from tripguard.telematics.detection.contract import MonitorConfig
from tripguard.telematics.detection.feed import LiveFeed
from tripguard.telematics.ingest.bus import ensure_stream
from tripguard.telematics.ingest.reader import read_ndjson_numbered
from tripguard.telematics.service import IngestOptions, LiveMonitor
from tripguard.telematics.store import trips
from tripguard.vault.service import Vault

logger = logging.getLogger("tripguard.worker.monitor")
ACK_WAIT_SECONDS = 60.0
FEED_POSITION_SECONDS = 1.0  # the live map gets each trip's newest position about once a second


def parse_shards(text: str, shards: int) -> list[int]:
    """"0-3,6" -> [0, 1, 2, 3, 6]; "all" -> every shard; "" -> none."""
    if text.strip() == "all":
        return list(range(shards))
    chosen: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError as exc:
            raise ValueError(f"not a shard or a range of shards: {part!r}") from exc
        if not 0 <= first <= last < shards:
            raise ValueError(f"shards are 0 to {shards - 1}: {part!r}")
        chosen.update(range(first, last + 1))
    return sorted(chosen)


def lease_name(bus_name: str, shard: int) -> str:
    return f"monitor.{bus_name}.{shard}"


def fair_share(shards: int, workers: int) -> int:
    """The most shards a worker holds while `workers` share them: ceil(shards / workers)."""
    return -(-shards // max(1, workers))


EVENTS = Counter("tripguard_monitor_events_total", "events applied (monitor run, stored)", ["shard"])
ALERTS = Counter("tripguard_monitor_alerts_total", "alerts newly stored", ["shard"])
REDELIVERED = Counter("tripguard_monitor_redelivered_total", "messages skipped as already applied", ["shard"])
APPLY_SECONDS = Histogram("tripguard_monitor_apply_seconds", "one fetched batch: read, monitor, store, commit",
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
OWNED = Gauge("tripguard_monitor_shard_owned", "1 while this worker runs the shard", ["shard"])
CHECKPOINT_SEQ = Gauge("tripguard_monitor_checkpoint_seq", "stream message the last checkpoint holds", ["shard"])
APPLIED_SEQ = Gauge("tripguard_monitor_applied_seq", "stream message last applied", ["shard"])


@dataclass(frozen=True)
class MonitorSite:
    """What a monitor worker runs on, built by the process's composition (the shell's app factory)."""

    engine: Engine
    vault: Vault
    feed: LiveFeed
    options: IngestOptions


class MonitorWorker:
    def __init__(self, settings: Settings, *, link: NatsLink, engine: Engine,
                 vault: Vault, options: IngestOptions, feed: LiveFeed, config: MonitorConfig,
                 shards: list[int], standby: list[int], batch: int = 32, poll: float = 1.0,
                 takeover_grace: float = 3.0) -> None:
        self.settings = settings
        self.link, self.vault, self.options, self.feed = link, vault, options, feed
        self.config = config
        self.shards, self.standby = shards, [s for s in standby if s not in shards]
        self.batch, self.poll, self.takeover_grace = batch, poll, takeover_grace
        # One lease per shard, with the writes that its holder's token fences (from the pool: a worker may
        # hold many); all under one holder name, the worker's, as its presence among the workers says it.
        self.holder = holder_name()
        self.leases = {shard: Lease(engine, lease_name(settings.bus_name, shard), own_connection=False,
                                    seconds=settings.leader_lease_seconds, holder=self.holder)
                       for shard in [*self.shards, *self.standby]}
        self.membership = Membership(engine, members=f"members.{settings.bus_name}.",
                                     leases=lease_name(settings.bus_name, 0)[:-1], holder=self.holder,
                                     seconds=settings.leader_lease_seconds)
        self.share = settings.bus_shards  # what it may hold: all until it knows of other workers
        self.unheld_since: float | None = None  # since when some shard has had no live holder
        self.leaving = {shard: asyncio.Event() for shard in self.leases}  # to give up (rebalance)
        self.writers = {shard: fenced_sessionmaker(engine, lease) for shard, lease in self.leases.items()}
        feed.position_interval = FEED_POSITION_SECONDS
        self.stream = stream_name(settings.bus_name)
        self.events = self.alerts = 0  # totals over the worker's shards, for the checkpoint log line

    async def run(self, stop: asyncio.Event) -> None:
        self.link.start()
        while not self.link.ready.is_set() and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.link.ready.wait(), self.poll)
        while not stop.is_set():
            try:
                await ensure_stream(self.link, self.settings)
                break
            except (TimeoutError, nats.errors.Error) as exc:
                logger.warning("events stream not ready", extra={"event": self.stream, "error": type(exc).__name__})
                await _sleep(stop, self.poll)
        logger.info("monitor worker started", extra={"event": f"shards {self.shards} standby {self.standby}"})
        if self.membership_on:
            await self._rebalance()  # known to the others, and knowing them, before it takes a shard
        await asyncio.gather(*(self._hold(shard, grace=0.0, stop=stop) for shard in self.shards),
                             *(self._hold(shard, grace=self.takeover_grace, stop=stop) for shard in self.standby),
                             self._balance(stop))
        if self.membership_on:
            await asyncio.to_thread(self.membership.leave)
        await self.link.close()

    @property
    def membership_on(self) -> bool:
        """Shards are shared among workers on PostgreSQL; on SQLite the one process runs them all."""
        return next(iter(self.leases.values())).exclusive if self.leases else False

    async def _balance(self, stop: asyncio.Event) -> None:
        """Every third of the lease (at most a quarter of the rebalance bound): this worker's presence renewed,
        its fair share computed, its surplus given up while another worker has room for it."""
        every = min(self.settings.leader_lease_seconds / 3, self.settings.monitor_rebalance_seconds / 4)
        while self.membership_on and not stop.is_set():
            await _sleep(stop, every)
            if stop.is_set():
                return
            await self._rebalance()

    async def _rebalance(self) -> None:
        try:
            roll = await asyncio.to_thread(self.membership.beat)
        except SQLAlchemyError as exc:  # the database away: the shards' own loops see it too, and stop
            logger.warning("worker presence not renewed", extra={"error": type(exc).__name__})
            return
        self.share = fair_share(self.settings.bus_shards, len(roll.members | {self.holder}))
        if sum(roll.held.values()) < self.settings.bus_shards:
            self.unheld_since = self.unheld_since or time.monotonic()
        else:
            self.unheld_since = None
        mine = [shard for shard, lease in self.leases.items() if lease.holds() and not self.leaving[shard].is_set()]
        room = sum(max(0, self.share - roll.held.get(other, 0)) for other in roll.members if other != self.holder)
        surplus = min(len(mine) - self.share, room)
        if surplus <= 0:
            return
        # Standby shards first, then the highest numbered of its own.
        for shard in sorted(mine, key=lambda s: (s in self.shards, -s))[:surplus]:
            logger.info("shard given up to rebalance", extra={"event": f"shard {shard} share {self.share} of "
                                                              f"{len(roll.members)} workers"})
            self.leaving[shard].set()

    def _may_take(self) -> bool:
        """Below its share; or a shard has had no live holder for the rebalance bound (no worker with room
        can run it: it is run past the share rather than not at all)."""
        if not self.membership_on:
            return True
        held = sum(1 for lease in self.leases.values() if lease.holds())
        if held < self.share:
            return True
        return self.unheld_since is not None and (
            time.monotonic() - self.unheld_since >= self.settings.monitor_rebalance_seconds)

    async def _hold(self, shard: int, *, grace: float, stop: asyncio.Event) -> None:
        """Run the shard whenever this worker can take it; until `stop`."""
        lease = self.leases[shard]
        await _sleep(stop, grace)
        while not stop.is_set():
            if not self.link.connected:  # NATS is away: nothing to do until nats-py has reconnected
                await _sleep(stop, self.poll)
                continue
            if not self._may_take():
                await _sleep(stop, self.poll)
                continue
            if await asyncio.to_thread(lease.lead):
                OWNED.labels(str(shard)).set(1)
                logger.info("shard taken", extra={"event": f"shard {shard}"})
                try:
                    await self._serve(shard, lease, stop)
                except (TimeoutError, nats.errors.Error) as exc:
                    logger.warning("shard paused: NATS unavailable; it starts again from its checkpoint",
                                   extra={"event": f"shard {shard}", "error": type(exc).__name__})
                except Fenced:
                    logger.warning("shard lost: its lease changed hands (this worker was stopped?)",
                                   extra={"event": f"shard {shard}"})
                except Exception:
                    if not lease.holds():  # stopped past its lease: PostgreSQL ended the transaction it was in
                        logger.warning("shard lost: its lease ran out while this worker could not renew it "
                                       "(stopped?)", extra={"event": f"shard {shard}"})
                    else:
                        logger.exception("shard failed; it starts again from its checkpoint",
                                         extra={"event": f"shard {shard}"})
                finally:
                    OWNED.labels(str(shard)).set(0)
                    await asyncio.to_thread(lease.release)
                    self.leaving[shard].clear()
            await _sleep(stop, self.poll)

    async def _serve(self, shard: int, lease: Lease, stop: asyncio.Event) -> None:
        await asyncio.to_thread(checkpoints.ensure_key, self.writers[shard], vault=self.vault)
        state = await asyncio.to_thread(checkpoints.load, self.writers[shard], vault=self.vault, stream=self.stream,
                                        shard=shard, config=self.config)
        durable = f"{self.settings.bus_name}_monitor_{shard}"
        await self._point_consumer(shard, durable, state.seq)
        subscription = await self.link.jetstream.pull_subscribe_bind(durable, stream=self.stream)
        live = LiveMonitor(monitor=state.monitor, feed=self.feed, gcj_trips=state.gcj_trips)
        held = service.PingBuffer()
        saved_seq, saved_at = state.seq, time.monotonic()
        clean = False
        leaving = self.leaving[shard]
        try:
            while not stop.is_set() and not leaving.is_set():  # given up: a clean stop, checkpoint saved
                try:
                    messages = await subscription.fetch(self.batch, timeout=self.poll)
                except (TimeoutError, nats.errors.TimeoutError):  # nothing came (nats-py raises either)
                    messages = []
                if not await asyncio.to_thread(lease.keep):  # renewed every third of the lease
                    logger.warning("shard lost: its lease could not be renewed", extra={"event": f"shard {shard}"})
                    return
                fresh = sorted((m for m in messages if _seq(m) > state.seq), key=_seq)
                REDELIVERED.labels(str(shard)).inc(len(messages) - len(fresh))
                if fresh:
                    with APPLY_SECONDS.time():
                        await asyncio.to_thread(self._apply, shard, live, held, b"\n".join(m.data for m in fresh))
                    state.seq = _seq(fresh[-1])
                    APPLIED_SEQ.labels(str(shard)).set(state.seq)
                for message in messages:
                    await message.ack()
                if state.seq > saved_seq and time.monotonic() - saved_at >= self.settings.monitor_checkpoint_seconds:
                    await asyncio.to_thread(self._save, shard, state, held)
                    saved_seq, saved_at = state.seq, time.monotonic()
            clean = True
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            if clean and state.seq > saved_seq:
                await asyncio.to_thread(self._save, shard, state, held)

    def _save(self, shard: int, state: checkpoints.ShardState, held: service.PingBuffer) -> None:
        """The positions held back and the checkpoint that covers them, in one transaction: a replay from an
        older checkpoint never finds them stored already."""
        with unit_of_work(self.writers[shard]) as session:
            if len(held):
                trips.record_positions(session, self.vault, *held.drain())
            checkpoints.save_in(session, vault=self.vault, stream=self.stream, shard=shard, state=state)
        self.feed.flush_positions()
        CHECKPOINT_SEQ.labels(str(shard)).set(state.seq)
        logger.info("checkpoint saved", extra={"event": f"shard {shard} seq {state.seq} trips "
                                               f"{len(state.monitor.slot_of)} events {self.events} "
                                               f"alerts {self.alerts}"})

    async def _point_consumer(self, shard: int, durable: str, seq: int) -> None:
        jetstream = self.link.jetstream
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await jetstream.delete_consumer(self.stream, durable)
        info = await jetstream.stream_info(self.stream)
        if seq and info.state.first_seq > seq + 1:
            logger.error("events expired before a worker took them (raise TRIPGUARD_BUS_RETENTION_MINUTES)",
                         extra={"event": f"shard {shard} from {seq + 1} to {info.state.first_seq - 1}"})
        start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": seq + 1} if seq else {
            "deliver_policy": DeliverPolicy.ALL}
        await jetstream.add_consumer(self.stream, ConsumerConfig(
            durable_name=durable, filter_subject=events_subject(self.settings.bus_name, shard),
            ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT_SECONDS, max_ack_pending=self.batch * 4,
            **start))

    def _apply(self, shard: int, live: LiveMonitor, held: service.PingBuffer, data: bytes) -> None:
        with unit_of_work(self.writers[shard]) as session:
            columns, _, rejected = read_ndjson_numbered(data, live.gcj_trips)
            if rejected:  # the API checked every line; only a change of rules between versions gets here
                logger.warning("lines refused by the worker", extra={"event": f"{len(rejected)} lines"})
            result = service.apply(session, live=live, vault=self.vault, columns=columns, rejected=[],
                                   options=self.options, held=held)
        self.events += result.accepted
        self.alerts += len(result.alerts)
        EVENTS.labels(str(shard)).inc(result.accepted)
        ALERTS.labels(str(shard)).inc(len(result.alerts))


def _seq(message: Msg) -> int:
    return int(message.metadata.sequence.stream)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
