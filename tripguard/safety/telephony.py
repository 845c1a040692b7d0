"""Calls placed from the console (click-to-call): the agent's phone is rung and bridged to the number.

One interface, chosen by `TRIPGUARD_TELEPHONY`. The only adapter today is the built-in
`RecordOnlyTelephony`: it places no call. It records the request (on the case's timeline, with a
reference) and the console says so, next to the number the agent dials by hand. A carrier's
click-to-call adapter (and the delivery issue's virtual numbers) plug in behind the same `call`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id


@dataclass(frozen=True)
class CallResult:
    status: str  # recorded (nobody dialled) | ringing | failed
    reference: str


class Telephony(Protocol):
    name: str
    places_calls: bool  # False: the console tells the agent to dial the number themselves

    def call(self, *, incident_id: str, agent: str, to: str) -> CallResult: ...


@dataclass
class RecordOnlyTelephony:
    """The built-in adapter: records each call request in memory (and the caller puts it on the case's
    timeline); dials nobody. Named so, and shown so in the console."""

    name: str = "record-only"
    places_calls: bool = False
    requests: list[tuple[str, str, str, str]] = field(default_factory=list)  # (at, incident, agent, reference)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, *, incident_id: str, agent: str, to: str) -> CallResult:
        reference = new_id("call")
        with self._lock:  # the number itself is not kept: the gate's audit entry says it was opened
            self.requests = [*self.requests[-999:], (utcnow().isoformat(), incident_id, agent, reference)]
        return CallResult("recorded", reference)


def build_telephony(kind: str) -> Telephony:
    if kind == "record-only":
        return RecordOnlyTelephony()
    raise ValueError(f"unknown telephony adapter {kind!r} (known: record-only)")
