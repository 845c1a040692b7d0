"""`tripguard scheduler`: the background jobs of a scaled-out deployment, run by one process at a time.

The API processes then run none (`TRIPGUARD_RUN_JOBS=false`). Each job runs on a thread of its own,
on its own timer, so a slow job (retention, digests, the outbox) never delays another (escalation);
a job never overlaps itself. The main loop keeps the leader's lease (`core.leader.Lease`): it renews
it every third of its length while leading, and a standby tries to take it every `poll` seconds. A
job starts only while the lease is held; a job whose transaction is fenced (the lease changed hands
while this process was stopped) makes the process stand by at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tripguard.core.leader import Fenced

logger = logging.getLogger("tripguard.scheduler")


@dataclass(frozen=True)
class Job:
    """A background job: the app runs it on the event loop's timer (embedded), `run_jobs` on a thread
    of its own while this process leads (scale-out)."""

    every: float  # seconds between runs
    run: Callable[[], object]  # blocking: runs on a thread of its own
    name: str
    wake: asyncio.Event | None = None  # set it to run sooner than `every`,
    soonest: float = 0.0  # but not sooner than this many seconds after the last run started


class Leader(Protocol):
    def lead(self) -> bool: ...  # renew or take (a round trip); True while this process leads

    def holds(self) -> bool: ...  # no round trip: held and not yet expired by this process's clock

    def lose(self) -> None: ...

    def release(self) -> None: ...


class _Leading:
    """What the main loop tells the job threads: whether to start runs, and which term of leadership it is
    (a new term runs every job at once)."""

    def __init__(self) -> None:
        self.now = threading.Event()
        self.term = 0


def run_jobs(jobs: Sequence[Job], lease: Leader, *, poll: float = 1.0, renew_every: float = 3.0,
             stop: threading.Event | None = None) -> None:
    """Run each job every `job.every` seconds, on a thread of its own, while this process leads; until `stop`."""
    stop = stop or threading.Event()
    leading = _Leading()

    def fenced(job: Job) -> None:
        lease.lose()
        leading.now.clear()
        logger.warning("lost the lease: a job's transaction was fenced; standing by", extra={"event": job.name})

    threads = [threading.Thread(target=_job_loop, args=(job, lease, leading, stop, fenced), daemon=True,
                                name=f"job {job.name}") for job in jobs]
    for thread in threads:
        thread.start()
    was_leading: bool | None = None  # the first round says which it is
    while not stop.is_set():
        is_leading = lease.lead()
        if is_leading and not leading.now.is_set():
            leading.term += 1
            leading.now.set()
        elif not is_leading:
            leading.now.clear()
        if is_leading != was_leading:
            if was_leading:
                logger.warning("lost the lease; standing by", extra={"event": "scheduler"})
            logger.info("leading" if is_leading else "standing by", extra={"event": "scheduler"})
            was_leading = is_leading
        stop.wait(renew_every if is_leading else poll)
    leading.now.clear()
    for thread in threads:  # a run under way finishes (or is fenced) before the lease is given up
        thread.join(renew_every * 3)
    lease.release()


def _job_loop(job: Job, lease: Leader, leading: _Leading, stop: threading.Event,
              fenced: Callable[[Job], None]) -> None:
    term, due = 0, 0.0
    while not stop.is_set():
        if not leading.now.wait(0.2):
            continue
        if leading.term != term:  # a new leader runs every job at once
            term, due = leading.term, 0.0
        wait = due - time.monotonic()
        if wait > 0:
            stop.wait(min(wait, 0.2))  # short, so a lost lead or a stop is seen soon
            continue
        if not lease.holds():  # just woken from a stop, say: the main loop has not yet found out
            stop.wait(0.05)
            continue
        started = time.monotonic()
        _run(job, fenced)
        due = started + job.every


def _run(job: Job, fenced: Callable[[Job], None]) -> None:
    started = time.monotonic()
    try:
        job.run()
        # The duration says when the run started: a run that ended before a stop may be logged after it.
        logger.debug("job ran", extra={"event": job.name, "duration_ms": round((time.monotonic() - started) * 1000)})
    except Fenced:
        fenced(job)
    except Exception:
        logger.exception("background job failed", extra={"event": job.name})
