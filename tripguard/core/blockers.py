"""What keeps a worker from working: each domain names its own (`screening.gate.BLOCKERS`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Blocker:
    code: str  # e.g. screening.pending, training.missing, agreement.unsigned, device.offline
    since: datetime | None = None
    ref: str | None = None  # what it is about, where there can be several (a course, a device)


@dataclass(frozen=True)
class WorkerRef:
    id: str
    role: str  # driver | courier
    vehicle_id: str | None  # the vehicle a driver is about to drive, as dispatch names it


def blockers_json(blockers: tuple[Blocker, ...] | list[Blocker]) -> list[dict[str, str | None]]:
    """The blockers as the gate's answer lists them (code, since, ref)."""
    return [{"code": b.code, "since": b.since.isoformat().replace("+00:00", "Z") if b.since else None,
             "ref": b.ref} for b in blockers]
