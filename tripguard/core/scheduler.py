"""`tripguard scheduler`: the background jobs of a scaled-out deployment, run by one process at a time.

The API processes then run none (`TRIPGUARD_RUN_JOBS=false`). Each job keeps its own interval from
settings; before each run the scheduler makes sure it still leads (`core.leader`). A standby
scheduler tries to take over every `poll` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tripguard.core.leader import Leadership

if TYPE_CHECKING:
    from tripguard.app import Job

logger = logging.getLogger("tripguard.scheduler")


def run_jobs(jobs: Sequence[Job], leadership: Leadership, *, poll: float = 1.0,
             stop: threading.Event | None = None) -> None:
    """Run each job every `job.every` seconds while this process leads; until `stop` is set."""
    stop = stop or threading.Event()
    due = {job.name: 0.0 for job in jobs}
    leading: bool | None = None  # the first round says which it is
    while not stop.is_set():
        now = time.monotonic()
        if (now_leading := leadership.lead()) != leading:
            leading = now_leading
            logger.info("leading" if leading else "standing by", extra={"event": "scheduler"})
            due = dict.fromkeys(due, now)  # a new leader runs every job at once
        if leading:
            for job in jobs:
                if due[job.name] <= now and leadership.lead():
                    _run(job)
                    due[job.name] = time.monotonic() + job.every
        wake = min(due.values(), default=now + poll) if leading else now + poll
        stop.wait(max(0.0, min(wake, time.monotonic() + poll) - time.monotonic()))
    leadership.release()


def _run(job: Job) -> None:
    try:
        job.run()
        logger.debug("job ran", extra={"event": job.name})
    except Exception:
        logger.exception("background job failed", extra={"event": job.name})
