"""The feed's queue: numbered per type without gaps or repeats, once per key, sealed, claimed in sequence,
acknowledged only on the answer, retried with backoff, never overtaken."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import BACKEND
from tests.regulator.fakes import T0
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.regulator import contract, service
from tripguard.regulator.models import ACKNOWLEDGED, FAILED, QUEUED, SENT
from tripguard.regulator.models import Upload as Row
from tripguard.vault.service import Vault

CLAIM = timedelta(minutes=2)
MOST = timedelta(minutes=10)


def upload(kind: str, n: int, *, key: str | None = None) -> contract.Upload:
    return contract.Upload(kind=kind, key=key or f"k{n}", occurred_at=T0 + timedelta(seconds=n),
                           body=f"body {n} 京A12345".encode())


def test_enqueue_numbers_per_type_once_per_key_and_seals(db: Session, vault: Vault) -> None:
    assert service.enqueue(db, vault=vault, uploads=[upload("positionVehicle", n) for n in (3, 1, 2)]) == 3
    assert service.enqueue(db, vault=vault, uploads=[upload("positionVehicle", 2), upload("positionVehicle", 4),
                                       upload("positionVehicle", 4), upload("ratedDriverPunish", 1)]) == 2
    assert service.sequences(db, kind="positionVehicle") == [1, 2, 3, 4]
    assert service.sequences(db, kind="ratedDriverPunish") == [1]
    rows = db.scalars(select(Row).where(Row.kind == "positionVehicle").order_by(Row.sequence)).all()
    assert [r.key for r in rows] == ["k1", "k2", "k3", "k4"]  # each type's uploads numbered in time order
    assert all("京A12345".encode() not in r.body and b"body" not in r.body for r in rows)
    assert service.open_body(db, vault=vault, kind="positionVehicle", key="k3",
                             blob=rows[2].body) == "body 3 京A12345".encode()


def test_claim_in_sequence_ack_only_on_answer_and_retry_blocks_later(db: Session, vault: Vault) -> None:
    service.enqueue(db, vault=vault, uploads=[upload("orderMatch", n) for n in range(1, 8)])
    first = service.claim_batch(db, vault=vault, kind="orderMatch", limit=3, claim_for=CLAIM)
    assert first is not None and [i.sequence for i in first.items] == [1, 2, 3]
    assert first.items[0].upload.body == "body 1 京A12345".encode()
    # Claimed and unanswered: nothing else of the type goes, not even the uploads after the batch.
    assert service.claim_batch(db, vault=vault, kind="orderMatch", limit=3, claim_for=CLAIM) is None
    assert service.sequences(db, kind="orderMatch", states=[SENT]) == [1, 2, 3]
    service.record_outcome(db, claim=first, error="HTTP 503", max_backoff=MOST)
    assert service.sequences(db, kind="orderMatch", states=[FAILED]) == [1, 2, 3]
    # Failed: retried after its backoff, and until then nothing after it overtakes it.
    assert service.claim_batch(db, vault=vault, kind="orderMatch", limit=3, claim_for=CLAIM) is None
    row = db.scalars(select(Row).where(Row.kind == "orderMatch", Row.sequence == 1)).one()
    assert timedelta(seconds=1) < row.next_attempt_at - utcnow() <= timedelta(seconds=2)
    db.execute(update(Row).where(Row.state == FAILED).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    again = service.claim_batch(db, vault=vault, kind="orderMatch", limit=5, claim_for=CLAIM)
    assert again is not None and [i.sequence for i in again.items] == [1, 2, 3, 4, 5]
    service.record_outcome(db, claim=again, error=None, max_backoff=MOST)
    assert service.sequences(db, kind="orderMatch", states=[ACKNOWLEDGED]) == [1, 2, 3, 4, 5]
    assert service.sequences(db, kind="orderMatch", states=[QUEUED]) == [6, 7]
    rest = service.claim_batch(db, vault=vault, kind="orderMatch", limit=5, claim_for=CLAIM)
    assert rest is not None and [i.sequence for i in rest.items] == [6, 7]


def test_a_lapsed_claim_is_sent_again(db: Session, vault: Vault) -> None:
    service.enqueue(db, vault=vault, uploads=[upload("operateDepart", 1)])
    assert service.claim_batch(db, vault=vault, kind="operateDepart", limit=10, claim_for=timedelta(seconds=-1))
    again = service.claim_batch(db, vault=vault, kind="operateDepart", limit=10, claim_for=CLAIM)
    assert again is not None and again.items[0].sequence == 1
    assert db.scalars(select(Row.attempts).where(Row.kind == "operateDepart")).one() == 2


def test_backoff_grows_and_is_capped() -> None:
    assert [service.backoff(n, MOST).total_seconds() for n in (1, 2, 3, 9, 10, 40)] == [2, 4, 8, 512, 600, 600]


def test_parallel_producers_number_without_gaps_or_repeats(committed: sessionmaker[Session],
                                                           committed_vault: Vault) -> None:
    """Eight producers at once, overlapping keys (on PostgreSQL in its pass, each on its own connection)."""
    threads, per_thread, errors = 8, 40, []
    barrier = threading.Barrier(threads)

    def produce(t: int) -> None:
        try:
            barrier.wait()
            for chunk in range(4):
                with unit_of_work(committed) as session:
                    # keys overlap between neighbours: thread t and t+1 both queue half of the same keys
                    keys = [f"k{(t * per_thread // 2) + chunk * 10 + n}" for n in range(10)]
                    service.enqueue(session, vault=committed_vault,
                                    uploads=[upload("positionDriver", 0, key=k) for k in keys])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    with unit_of_work(committed) as session:
        numbers = service.sequences(session, kind="positionDriver")
        keys = session.scalars(select(Row.key).where(Row.kind == "positionDriver")).all()
    expected = {f"k{(t * per_thread // 2) + c * 10 + n}" for t in range(threads) for c in range(4) for n in range(10)}
    assert sorted(keys) == sorted(expected)
    assert numbers == list(range(1, len(expected) + 1)), BACKEND
