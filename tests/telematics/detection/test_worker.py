"""A shard's loop on its own: every delivery is acknowledged, and one redelivered after it was applied is
acknowledged again but never applied again (the fault test on real NATS sees a stall; this sees a repeat)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from tripguard.core.leader import Roll
from tripguard.telematics.detection import worker as worker_module
from tripguard.telematics.detection.checkpoints import ShardState
from tripguard.telematics.detection.worker import MonitorWorker

pytestmark = pytest.mark.no_database


@dataclass
class FakeMessage:
    seq: int
    acked: list[int]

    @property
    def data(self) -> bytes:
        return f"line {self.seq}".encode()

    @property
    def metadata(self) -> Any:
        return SimpleNamespace(sequence=SimpleNamespace(stream=self.seq))

    async def ack(self) -> None:
        self.acked.append(self.seq)


@dataclass
class FakeSubscription:
    rounds: list[list[int]]
    stop: asyncio.Event
    acked: list[int] = field(default_factory=list)

    async def fetch(self, batch: int, timeout: float) -> list[FakeMessage]:
        if not self.rounds:
            self.stop.set()
            raise TimeoutError
        return [FakeMessage(seq, self.acked) for seq in self.rounds.pop(0)]

    async def unsubscribe(self) -> None:
        return None


def test_a_redelivered_message_is_acknowledged_and_not_applied_again(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[bytes] = []

    async def serve() -> list[int]:
        stop = asyncio.Event()
        subscription = FakeSubscription([[1, 2], [2, 3], [1, 2, 3]], stop)  # 2 comes again, then all three
        worker = object.__new__(MonitorWorker)
        worker.settings = SimpleNamespace(bus_name="t", monitor_checkpoint_seconds=3600.0)  # type: ignore[assignment]
        worker.link = SimpleNamespace(jetstream=SimpleNamespace(  # type: ignore[assignment]
            pull_subscribe_bind=lambda *a, **k: asyncio.sleep(0, subscription)))
        worker.batch, worker.poll, worker.stream, worker.leaving = 4, 0.01, "s", {0: asyncio.Event()}
        worker.writers, worker.vault, worker.feed, worker.config = {0: None}, None, None, None  # type: ignore[assignment, dict-item]

        async def point(*args: object) -> None:
            return None

        monkeypatch.setattr(worker, "_point_consumer", point)
        monkeypatch.setattr(worker, "_apply", lambda shard, live, held, data: applied.append(data))
        monkeypatch.setattr(worker, "_save", lambda *args: None)
        monkeypatch.setattr(worker_module.checkpoints, "load", lambda *a, **k: ShardState(monitor=None))  # type: ignore[arg-type]
        monkeypatch.setattr(worker_module.checkpoints, "ensure_key", lambda *a, **k: None)
        monkeypatch.setattr(worker_module, "LiveMonitor", lambda **kwargs: None)
        await worker._serve(0, SimpleNamespace(keep=lambda: True), stop)  # type: ignore[arg-type]
        return subscription.acked

    acked = asyncio.run(serve())
    assert applied == [b"line 1\nline 2", b"line 3"]  # each message applied once, in order
    assert sorted(acked) == [1, 1, 2, 2, 2, 3, 3]  # every delivery acknowledged, the repeats too


def _balancing_worker(held: list[int], free: list[int], *, own: list[int], share_of: int,
                      others: dict[str, int]) -> MonitorWorker:
    """A worker holding `held` of `share_of` shards, the others live and holding as `others` says."""
    worker = object.__new__(MonitorWorker)
    worker.settings = SimpleNamespace(bus_shards=share_of, monitor_rebalance_seconds=20.0)  # type: ignore[assignment]
    worker.holder, worker.shards, worker.share, worker.unheld_since = "me", own, share_of, None
    worker.leases = {**{s: SimpleNamespace(exclusive=True, holds=lambda: True) for s in held},  # type: ignore[dict-item]
                     **{s: SimpleNamespace(exclusive=True, holds=lambda: False) for s in free}}
    worker.leaving = {s: asyncio.Event() for s in worker.leases}
    roll = Roll(frozenset({"me", *others}), {"me": len(held), **others})
    worker.membership = SimpleNamespace(beat=lambda: roll)  # type: ignore[assignment]
    return worker


def test_a_worker_gives_up_its_surplus_standby_first_and_only_to_a_worker_with_room() -> None:
    worker = _balancing_worker([0, 1, 2, 3, 4, 5, 6, 7], [], own=[0, 1, 2, 3, 4, 5], share_of=8, others={"joined": 0})
    asyncio.run(worker._rebalance())
    assert worker.share == 4
    assert sorted(s for s, e in worker.leaving.items() if e.is_set()) == [4, 5, 6, 7]  # standby 6-7, then 5, 4
    assert not worker._may_take()  # at its share: the shards it gave up are the joining worker's to take

    # The others full (one of them cannot take more): nothing given up, nothing passed back and forth.
    worker = _balancing_worker([0, 1, 2], [3], own=[0, 1, 2, 3], share_of=4, others={"a": 2, "b": 0})
    asyncio.run(worker._rebalance())
    assert worker.share == 2 and [s for s, e in worker.leaving.items() if e.is_set()] == [2]  # room for one only
    worker = _balancing_worker([0, 1], [2, 3], own=[0, 1, 2, 3], share_of=4, others={"a": 1})
    asyncio.run(worker._rebalance())
    assert not any(e.is_set() for e in worker.leaving.values())
    assert not worker._may_take()  # at its share (2 of 4, two workers)


def test_a_worker_at_its_share_takes_a_shard_only_once_nobody_has_run_it_for_the_bound() -> None:
    worker = _balancing_worker([0, 1], [2, 3], own=[0, 1, 2, 3], share_of=4, others={"a": 0})
    worker.share = 2
    assert not worker._may_take()
    worker.share = 3
    assert worker._may_take()
    worker.share, worker.unheld_since = 2, time.monotonic() - 5
    assert not worker._may_take()
    worker.unheld_since = time.monotonic() - 21
    assert worker._may_take()
