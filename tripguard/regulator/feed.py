"""Producing and sending the regulator feed.

Producing: every registered exporter runs over [its type's watermark, now - lateness), a window of at
most `step` per transaction, and what it gives is queued in the transaction that moves the watermark on;
a crash loses nothing and queues nothing twice. Back-fill runs exporters over a past range again: what
is queued already (by key) is left, what was missed is queued, and goes out in sequence.

Sending: `Sender` claims one batch per type at a time (service.claim_batch), packs it with the envelope's
`pack`, hands it to the transport with no transaction open, and records the answer. It pauses during a
planned outage. `tripguard serve` runs it on a thread of its own, as the outbox's senders, unless
TRIPGUARD_RUN_JOBS=false; then `tripguard worker regulator` does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.regulator import contract, service
from tripguard.regulator.transports import Batch, Transport, TransportError
from tripguard.vault.service import Vault

logger = logging.getLogger("tripguard.regulator")

# The envelope: uploads of one type, in sequence, to the bytes of one OTIpcList (company and source bound).
Pack = Callable[[Sequence[contract.Upload]], bytes]
DEFAULT_STEP = timedelta(minutes=10)


class UnknownType(ValueError):
    pass


def _run_window(factory: sessionmaker[Session], vault: Vault, kind: str, run: contract.Exporter, start: datetime,
                end: datetime, *, advance: bool) -> int:
    """One transaction: the exporter over [start, end), its uploads queued; the watermark moved to `end` if
    `advance` (and only forward)."""
    with unit_of_work(factory) as session:
        queued = service.enqueue(session, vault=vault, uploads=run(session, vault, start, end))
        if advance:
            feed = service.lock_feed(session, kind=kind)
            if feed.watermark is None or feed.watermark < end:
                feed.watermark = end
    return queued


def _windows(start: datetime, end: datetime, step: timedelta) -> list[tuple[datetime, datetime]]:
    windows = []
    while start < end:
        windows.append((start, min(end, start + step)))
        start = windows[-1][1]
    return windows


def produce(factory: sessionmaker[Session], *, vault: Vault, since: datetime, lateness: timedelta = timedelta(0),
            step: timedelta = DEFAULT_STEP, exporters: Mapping[str, contract.Exporter] | None = None,
            now: datetime | None = None) -> dict[str, int]:
    """Run every exporter from its watermark (`since` the first time: the feed's start) to `now - lateness`;
    the uploads queued per type."""
    exporters = contract.EXPORTERS if exporters is None else exporters
    until = (now or utcnow()) - lateness
    queued: dict[str, int] = {}
    for kind, run in sorted(exporters.items()):
        with unit_of_work(factory) as session:
            mark = service.lock_feed(session, kind=kind).watermark or since
        queued[kind] = sum(_run_window(factory, vault, kind, run, start, end, advance=True)
                           for start, end in _windows(mark, until, step))
    return queued


def backfill(factory: sessionmaker[Session], *, vault: Vault, kinds: Collection[str] | None, start: datetime,
             end: datetime, step: timedelta = DEFAULT_STEP,
             exporters: Mapping[str, contract.Exporter] | None = None) -> dict[str, int]:
    """Run the exporters of `kinds` (None: all) over [start, end) again: the uploads missing from the queue are
    queued (those queued already, by key, are left); the number per type. Watermarks do not move."""
    exporters = contract.EXPORTERS if exporters is None else exporters
    wanted = sorted(exporters) if kinds is None else sorted(kinds)
    unknown = [kind for kind in wanted if kind not in exporters]
    if unknown:
        raise UnknownType(f"no exporter for {', '.join(unknown)}; known: {', '.join(sorted(exporters))}")
    if end <= start:
        raise ValueError("the range ends before it starts")
    return {kind: sum(_run_window(factory, vault, kind, exporters[kind], a, b, advance=False)
                      for a, b in _windows(start, end, step)) for kind in wanted}


@dataclass
class SendResult:
    acknowledged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Sender:
    """Sends every type's due batches, one batch of a type at a time, until `stop` is set."""

    factory: sessionmaker[Session]
    vault: Vault
    transport: Transport
    pack: Pack
    batch: int = 500
    claim_for: timedelta = timedelta(minutes=2)
    max_backoff: timedelta = timedelta(minutes=10)
    poll: float = 1.0
    wake: threading.Event = field(default_factory=threading.Event)

    def round(self) -> SendResult:
        """One batch of every type that has one due, sent and its answer recorded."""
        result = SendResult()
        with unit_of_work(self.factory) as session:
            if service.in_planned_outage(session, at=utcnow()) is not None:
                return result
            kinds = service.kinds(session)
        for kind in kinds:
            with unit_of_work(self.factory) as session:
                claim = service.claim_batch(session, vault=self.vault, kind=kind, limit=self.batch,
                                            claim_for=self.claim_for)
            if claim is None:
                continue
            error = self._send(claim)
            with unit_of_work(self.factory) as session:
                service.record_outcome(session, claim=claim, error=error, max_backoff=self.max_backoff)
            if error is None:
                result.acknowledged += len(claim.items)
            else:
                result.failed += len(claim.items)
                result.errors.append(f"{kind}: {error}")
        return result

    def _send(self, claim: service.Claim) -> str | None:
        try:
            payload = self.pack([item.upload for item in claim.items])
            self.transport.send(Batch(claim.kind, claim.first, claim.last, len(claim.items), payload))
        except TransportError as exc:
            return str(exc) or type(exc).__name__
        except Exception as exc:  # a packing or transport bug: the batch waits, like a refused one
            logger.exception("regulator batch failed", extra={"event": f"regulator {claim.kind}"})
            return f"{type(exc).__name__}: {exc}"[:300]
        return None

    def drain(self, *, rounds: int = 1000) -> SendResult:
        """Rounds until one sends nothing (the CLI's --once, tests)."""
        total = SendResult()
        for _ in range(rounds):
            result = self.round()
            total.acknowledged += result.acknowledged
            total.failed += result.failed
            total.errors += result.errors
            if result.acknowledged == 0:
                break
        return total

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.wake.clear()
            try:
                busy = self.round().acknowledged > 0
            except Exception:  # the database is away: try again at the next poll
                logger.exception("regulator round failed", extra={"event": "regulator.sender"})
                busy = False
            if not busy:
                self.wake.wait(self.poll)


class SenderThread:
    """The sender on a thread of its own (`tripguard serve`, `tripguard worker regulator`)."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self._stop = threading.Event()
        self._thread = threading.Thread(target=sender.run, args=(self._stop,), name="regulator-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self.sender.wake.set()
        self._thread.join(timeout)
