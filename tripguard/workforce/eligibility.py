"""The workforce's blockers at the dispatch gate: required training, the confidentiality agreement, and
a suspension or dismissal in force. One query on the event loop (`core.fastread`): the gate is asked
before every dispatch, and on PostgreSQL each query is a round trip."""

from __future__ import annotations

from datetime import datetime

from tripguard.core.blockers import Blocker, WorkerRef
from tripguard.core.fastread import FastReader, as_utc
from tripguard.workforce import clearance

# (what, ref, count, first time, second time) rows:
# - `required`: a required course of the worker's audience, its passes that never run out, the latest expiry;
# - `retraining`: a course a violation sent the worker back to, not yet passed, since when;
# - `signed`: whether the worker signed the newest version published for workers (or the built-in text);
# - `sanction`: a suspension or dismissal not lifted or overturned, its start and end.
# Times are compared in Python: SQLite stores them as text. (PostgreSQL types a bare NULL in a UNION as text.)
BLOCKERS_SQL = (
    "SELECT 'required', c.id, SUM(CASE WHEN a.id IS NOT NULL AND a.expires_at IS NULL THEN 1 ELSE 0 END), "
    "MAX(a.expires_at), CAST(NULL AS TIMESTAMP WITH TIME ZONE) FROM workforce_courses c LEFT JOIN workforce_attempts a "
    "ON a.worker_id = :worker_id AND a.course_id = c.id AND a.passed = :yes "
    "WHERE c.required = :yes AND c.audience IN (:role, 'worker') GROUP BY c.id "
    "UNION ALL SELECT 'retraining', course_id, 0, MIN(assigned_at), CAST(NULL AS TIMESTAMP WITH TIME ZONE) "
    "FROM workforce_retraining "
    "WHERE worker_id = :worker_id AND done_at IS NULL GROUP BY course_id "
    "UNION ALL SELECT 'signed', NULL, COUNT(*), CAST(NULL AS TIMESTAMP WITH TIME ZONE), "
    "CAST(NULL AS TIMESTAMP WITH TIME ZONE) FROM workforce_signatures WHERE signer_id = :worker_id "
    "AND sha256 = COALESCE((SELECT sha256 FROM workforce_agreements WHERE audience = 'worker' "
    "ORDER BY published_at DESC LIMIT 1), :built_in) "
    "UNION ALL SELECT 'sanction', kind, 0, starts_at, ends_at FROM workforce_sanctions "
    "WHERE offender_id = :worker_id AND status = 'active' AND kind IN ('suspension', 'dismissal') "
    "ORDER BY 1, 2")


# The rows BLOCKERS_SQL reads, with the column naming the worker (None: every worker's answer).
READS: tuple[tuple[str, str | None], ...] = (
    ("workforce_attempts", "worker_id"), ("workforce_retraining", "worker_id"), ("workforce_signatures", "signer_id"),
    ("workforce_sanctions", "offender_id"), ("workforce_courses", None), ("workforce_agreements", None))


async def workforce_blockers(reader: FastReader, worker: WorkerRef, now: datetime) -> list[Blocker]:
    training: list[Blocker] = []
    signed = False
    sanctions: list[Blocker] = []
    for what, ref, count, first, second in await reader.all(
            BLOCKERS_SQL, worker_id=worker.id, role=worker.role, yes=True,
            built_in=clearance.built_in("worker").sha256):
        at, until = as_utc(first), as_utc(second)
        if what == "required" and not count and (at is None or at <= now):
            training.append(Blocker("training.refresher" if at else "training.missing", at, ref))
        elif what == "retraining":
            training.append(Blocker("training.retraining", at, ref))
        elif what == "signed":
            signed = bool(count)
        elif what == "sanction" and at is not None and at <= now and (until is None or until > now) and not sanctions:
            sanctions.append(Blocker(f"discipline.{ref}", at))
    return [*training, *([] if signed else [Blocker("agreement.unsigned")]), *sanctions]
