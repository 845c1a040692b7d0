"""What the exporters produce and the feed sends: the seam between the two halves of the regulator domain.

An exporter turns one kind of TripGuard record into uploads of one upload type (`positionVehicle`, …), each
the serialized protobuf message of that type (not yet the envelope). The feed queues them durably, numbers
them per type, packs batches into the `OTIpcList` envelope (`envelope.pack`) and sends them through a
transport. Exporters register themselves in `EXPORTERS` by upload type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tripguard.vault.service import Vault


@dataclass(frozen=True)
class Upload:
    """One message for the platform."""

    kind: str  # the upload type's name as the reference writes it: "positionVehicle", "baseInfoDriver", …
    key: str  # the source record and its version: the same key twice is the same upload (queued once)
    occurred_at: datetime  # UTC; what a back-fill range and the reconciliation's day select on
    body: bytes  # the serialized protobuf message of that type


# (session, vault, start, end) -> the uploads of what happened in [start, end), in order
Exporter = Callable[["Session", "Vault", datetime, datetime], Iterable[Upload]]
EXPORTERS: dict[str, Exporter] = {}


def exporter(kind: str) -> Callable[[Exporter], Exporter]:
    """Register `fn` as the exporter of upload type `kind` (one per type)."""

    def register(fn: Exporter) -> Exporter:
        if kind in EXPORTERS:
            raise ValueError(f"two exporters for {kind}")
        EXPORTERS[kind] = fn
        return fn

    return register
