"""The workforce's blockers at the dispatch gate: required training, the confidentiality agreement, and
a suspension or dismissal in force. Read on the event loop (`core.fastread`), a few keyed SELECTs."""

from __future__ import annotations

from datetime import datetime

from tripguard.core.blockers import Blocker, WorkerRef
from tripguard.core.fastread import FastReader, as_utc
from tripguard.workforce import clearance, training

SANCTION_SQL = ("SELECT kind, starts_at, ends_at FROM workforce_sanctions WHERE offender_id = :worker_id "
                "AND status = 'active' AND kind IN ('suspension', 'dismissal') ORDER BY starts_at")
AGREEMENT_SQL = ("SELECT sha256 FROM workforce_agreements WHERE audience = 'worker' "
                 "ORDER BY published_at DESC LIMIT 1")
SIGNED_SQL = "SELECT 1 FROM workforce_signatures WHERE signer_id = :worker_id AND sha256 = :sha256"


async def training_blockers(reader: FastReader, worker: WorkerRef, now: datetime) -> list[Blocker]:
    blockers = []
    for course_id, lasting, latest in await reader.all(training.REQUIRED_SQL, worker_id=worker.id, role=worker.role,
                                                       yes=True):
        expires = as_utc(latest)
        if not lasting and (expires is None or expires <= now):
            blockers.append(Blocker("training.refresher" if expires else "training.missing", expires, course_id))
    for course_id, assigned_at in await reader.all(training.RETRAINING_SQL, worker_id=worker.id):
        blockers.append(Blocker("training.retraining", as_utc(assigned_at), course_id))
    return blockers


async def agreement_blockers(reader: FastReader, worker: WorkerRef, now: datetime) -> list[Blocker]:
    published = await reader.first(AGREEMENT_SQL)
    sha256 = published[0] if published else clearance.built_in("worker").sha256
    if await reader.first(SIGNED_SQL, worker_id=worker.id, sha256=sha256) is None:
        return [Blocker("agreement.unsigned")]
    return []


async def discipline_blockers(reader: FastReader, worker: WorkerRef, now: datetime) -> list[Blocker]:
    for kind, starts_at, ends_at in await reader.all(SANCTION_SQL, worker_id=worker.id):
        start, end = as_utc(starts_at), as_utc(ends_at)
        if start is not None and start <= now and (end is None or end > now):
            return [Blocker(f"discipline.{kind}", start)]
    return []
