"""The one definition of "may this worker work now?": the dispatch gate, asked alike by the operator's
dispatch (`GET /workers/{id}/eligibility`), by assignment (an order given to a courier), by the access
gate (a worker opening an order's or a trip's data) and by the safety net (a trip that starts).

Every blocker is listed, not the first: screening (one row by primary key), and the other domains'
through `BLOCKERS` (training, the confidentiality agreement, discipline: workforce, above screening,
registers them at start-up from `tripguard.wiring`) and `VEHICLE_BLOCKERS` (the vehicle's monitoring
device). On the event loop it reads through `core.fastread`; a caller inside a transaction asks
`refusal`, the same reads through its session. Kept free of the services that open data, so that
the platform's access gate can ask it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tripguard.core import blockers as core_blockers
from tripguard.core import readcache
from tripguard.core.blockers import Blocker, WorkerRef
from tripguard.core.clock import utcnow
from tripguard.core.fastread import BoundReader, FastReader, Row, as_utc, run_now
from tripguard.core.readcache import CachedReader
from tripguard.core.readfeed import ReadCacheFeed
from tripguard.telematics import service as telematics

RESCREEN_GRACE = timedelta(days=30)  # a re-screening still under way does not block at once


@dataclass(frozen=True)
class Eligibility:
    worker_id: str
    eligible: bool
    blockers: tuple[Blocker, ...]

    @property
    def codes(self) -> list[str]:
        return [b.code for b in self.blockers]


_STATUS_BLOCKERS = {"screening": "screening.pending", "review": "screening.review", "pre_adverse": "screening.adverse",
                    "disputed": "screening.adverse", "rejected": "screening.rejected",
                    "suspended": "worker.suspended", "offboarded": "worker.offboarded"}


GATE_ROW = ("SELECT role, status, updated_at, rescreen_due_at, identity_blocked_at FROM screening_applicants "
            "WHERE id = :worker_id")


def screening_blockers(row: Row, now: datetime) -> list[Blocker]:
    _, status, updated_at, rescreen_due_at, identity_blocked_at = row
    blockers = []
    if status in _STATUS_BLOCKERS:
        blockers.append(Blocker(_STATUS_BLOCKERS[status], as_utc(updated_at)))
    due = as_utc(rescreen_due_at)
    if status == "active" and due is not None and due + RESCREEN_GRACE <= now:
        blockers.append(Blocker("screening.expired", due))
    if identity_blocked_at is not None:
        blockers.append(Blocker("identity.mismatch", as_utc(identity_blocked_at)))
    return blockers


Source = Callable[[FastReader, WorkerRef, datetime], Awaitable[list[Blocker]]]
# Every other source of blockers, each owned by its domain; all are asked, so the worker is told
# everything to fix at once. The person's own, asked of every worker at work and of every worker read
# (registered: workforce's training, agreement and discipline):
BLOCKERS: list[Source] = []


# What a source reads, as (table, column naming the worker) pairs; column None: any change concerns every
# worker. The read cache (`core.readcache`) drops a worker's kept reads on any change to these rows.
Reads = tuple[tuple[str, str | None], ...]


def register_blockers(source: Source, *, reads: Reads) -> None:
    """A domain's blockers of the person (`tripguard.wiring`), with the tables it reads; registering one
    again changes nothing."""
    for table, column in reads:
        readcache.watch(table, scope=WORKER, column=column)
    if source not in BLOCKERS:
        BLOCKERS.append(source)


# What a driver is dispatched in (not asked when a worker only reads their orders and trips):
async def _vehicle_blockers(reader: FastReader, worker: WorkerRef, now: datetime) -> list[Blocker]:
    # Looked up when asked, not at import: telematics.service imports privacy, whose access gate imports this.
    return await telematics.vehicle_blockers(reader, worker=worker, now=now)


VEHICLE_BLOCKERS: list[Source] = [_vehicle_blockers]
# The read cache keeps a vehicle source's reads per vehicle: a vehicle source reads by the vehicle only.
WORKER, VEHICLE = "worker", "vehicle"
readcache.watch("screening_applicants", scope=WORKER, column="id")
for _table, _column in telematics.VEHICLE_READS:
    readcache.watch(_table, scope=VEHICLE, column=_column)


async def eligibility(reader: FastReader, *, worker_id: str, vehicle_id: str | None = None,
                      role: str | None = None, with_vehicle: bool = True) -> Eligibility:
    """May this worker be dispatched now (a driver: in this vehicle)? Screening first: someone never
    screened is told only that. `role`: the work asked of them (a courier's order, a driver's trip):
    a worker screened for the other is refused (`screening.role`). `with_vehicle=False`: the person only
    (the access gate: a driver reading a trip is not being dispatched in a vehicle)."""
    if not BLOCKERS:  # refuse rather than clear a worker no other domain was asked about
        raise RuntimeError("no domain registered its blockers with the dispatch gate (tripguard.wiring.wire)")
    return await _eligibility(reader, reader, worker_id=worker_id, vehicle_id=vehicle_id, role=role,
                              with_vehicle=with_vehicle)


async def cached_eligibility(reader: FastReader, *, cache: ReadCacheFeed | None, worker_id: str,
                             vehicle_id: str | None = None) -> Eligibility:
    """`eligibility` on the event loop, its reads kept per worker and per vehicle (`core.readcache`): the
    answer is made again from the kept rows at every call, at that call's time. Without a cache, or while
    its feed of changes is down, the database is read."""
    live = await cache.ready(reader) if cache is not None else None
    if live is None:
        return await eligibility(reader, worker_id=worker_id, vehicle_id=vehicle_id)
    if not BLOCKERS:
        raise RuntimeError("no domain registered its blockers with the dispatch gate (tripguard.wiring.wire)")
    person = CachedReader(live, reader, (WORKER, worker_id))
    vehicle = CachedReader(live, reader, (VEHICLE, vehicle_id or ""))
    result = await _eligibility(person, vehicle, worker_id=worker_id, vehicle_id=vehicle_id)
    person.keep()
    vehicle.keep()
    return result


async def _eligibility(reader: FastReader, vehicle_reader: FastReader, *, worker_id: str, vehicle_id: str | None,
                       role: str | None = None, with_vehicle: bool = True) -> Eligibility:
    now = utcnow()
    row = await reader.first(GATE_ROW, worker_id=worker_id)
    if row is None:
        return Eligibility(worker_id, False, (Blocker("screening.none"),))
    blockers = screening_blockers(row, now)
    if role is not None and row[0] != role:
        blockers.append(Blocker("screening.role", ref=row[0]))
    worker = WorkerRef(worker_id, row[0], vehicle_id)
    for source in BLOCKERS:
        blockers.extend(await source(reader, worker, now))
    for source in VEHICLE_BLOCKERS if with_vehicle else []:
        blockers.extend(await source(vehicle_reader, worker, now))
    return Eligibility(worker_id, not blockers, tuple(blockers))


def refusal(session: Session, *, worker_id: str, vehicle_id: str | None = None,
            role: str | None = None, with_vehicle: bool = True) -> Eligibility:
    """The gate asked inside the session's transaction (it sees what the transaction wrote): the same
    queries, through the session's connection."""
    session.flush()
    return run_now(eligibility(BoundReader(session), worker_id=worker_id, vehicle_id=vehicle_id, role=role,
                               with_vehicle=with_vehicle))


def blockers_json(result: Eligibility) -> list[dict[str, str | None]]:
    """The blockers as the gate's answer lists them (code, since, ref)."""
    return core_blockers.blockers_json(result.blockers)


def at_trip_start(session: Session, *, driver_id: str | None, vehicle_id: str | None) -> list[Blocker]:
    """What the gate refuses of a trip that has started (the safety net, asked once per trip start): the
    driver it names, as a driver (screening, training, the agreement, discipline), and the vehicle it
    names (its monitoring device). What the trip does not name is not asked."""
    session.flush()
    reader = BoundReader(session)
    blockers: list[Blocker] = []
    if driver_id is not None:
        blockers.extend(run_now(eligibility(reader, worker_id=driver_id, role="driver", with_vehicle=False)).blockers)
    if vehicle_id is not None:
        worker, now = WorkerRef(driver_id or "", "driver", vehicle_id), utcnow()
        for source in VEHICLE_BLOCKERS:
            blockers.extend(run_now(source(reader, worker, now)))
    return blockers


def person_blockers(session: Session, worker_id: str) -> tuple[Blocker, ...]:
    """What the gate refuses this worker as a person (no vehicle): the access gate's worker clearance."""
    return refusal(session, worker_id=worker_id, with_vehicle=False).blockers
