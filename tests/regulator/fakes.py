"""Test doubles of the regulator domain's other half, used only by tests: an envelope and exporters.

`pack_for_test` stands in for `tripguard.regulator.envelope.pack` (the OTIpcList) until it is merged: the
feed's tests need to read back which uploads a batch held, in which order, not the protobuf envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tripguard.regulator import contract
from tripguard.vault.service import Vault


def pack_for_test(uploads: Sequence[contract.Upload]) -> bytes:
    return json.dumps([{"kind": u.kind, "key": u.key, "at": u.occurred_at.isoformat(), "body": u.body.hex()}
                       for u in uploads]).encode()


def unpack_for_test(data: bytes) -> list[dict[str, str]]:
    items: list[dict[str, str]] = json.loads(data)
    return items


T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def ticking_exporter(kind: str, every: timedelta = timedelta(seconds=10)) -> contract.Exporter:
    """One upload per `every` of the range, keyed by its time: a stand-in for positions."""

    def run(session: Session, vault: Vault, start: datetime, end: datetime) -> Iterable[contract.Upload]:
        first = T0 + every * -(-(start - T0) // every)  # the first tick at or after start
        at = first
        while at < end:
            yield contract.Upload(kind=kind, key=f"{kind}:{at:%Y%m%d%H%M%S}", occurred_at=at,
                                  body=f"{kind}|VEHICLE-京A12345|{at:%Y%m%d%H%M%S}".encode())
            at += every

    return run
