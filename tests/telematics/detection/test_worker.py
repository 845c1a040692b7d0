"""A shard's loop on its own: every delivery is acknowledged, and one redelivered after it was applied is
acknowledged again but never applied again (the fault test on real NATS sees a stall; this sees a repeat)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

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
        worker.batch, worker.poll, worker.stream = 4, 0.01, "s"
        worker.writers, worker.vault, worker.feed, worker.config = {0: None}, None, None, None  # type: ignore[assignment, dict-item]

        async def point(*args: object) -> None:
            return None

        monkeypatch.setattr(worker, "_point_consumer", point)
        monkeypatch.setattr(worker, "_apply", lambda shard, live, held, data: applied.append(data))
        monkeypatch.setattr(worker, "_save", lambda *args: None)
        monkeypatch.setattr(worker_module.checkpoints, "load", lambda *a, **k: ShardState(monitor=None))  # type: ignore[arg-type]
        monkeypatch.setattr(worker_module, "LiveMonitor", lambda **kwargs: None)
        await worker._serve(0, SimpleNamespace(keep=lambda: True), stop)  # type: ignore[arg-type]
        return subscription.acked

    acked = asyncio.run(serve())
    assert applied == [b"line 1\nline 2", b"line 3"]  # each message applied once, in order
    assert sorted(acked) == [1, 1, 2, 2, 2, 3, 3]  # every delivery acknowledged, the repeats too
