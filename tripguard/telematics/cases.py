"""The safety centre's cases, where telematics' routes meet them. Safety sits above telematics (its cases
read trips), so it registers at start-up (`tripguard.wiring`) what telematics asks of it, and telematics
never imports it:
- a check-in answered "help" opens a case (`open_for_help`), shown at once on the live queue;
- evidence about a trip opened from a case goes on the case's timeline (`note_evidence`).
With nothing registered both refuse, rather than leave a call for help or a case's evidence unrecorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from tripguard.security.principal import Principal
from tripguard.telematics.service import CheckInView


class OpensForHelp(Protocol):
    def __call__(self, session: Session, *, check_in: CheckInView, ack_seconds: int) -> dict[str, object] | None:
        """The case the check-in opens, as the live queue shows it (None: it opens none)."""
        ...


class NotesEvidence(Protocol):
    def __call__(self, session: Session, *, principal: Principal, incident_id: str, trip_id: str,
                 **what: object) -> str | None:
        """The evidence on the case's timeline (NotFound: no open case about the trip); the case's id when
        the reader handles it now (the evidence is opened for the case), None otherwise."""
        ...


@dataclass
class _Safety:
    open_for_help: OpensForHelp | None = None
    note_evidence: NotesEvidence | None = None


_safety = _Safety()


def register(*, open_for_help: OpensForHelp, note_evidence: NotesEvidence) -> None:
    _safety.open_for_help, _safety.note_evidence = open_for_help, note_evidence


def open_for_help(session: Session, *, check_in: CheckInView, ack_seconds: int) -> dict[str, object] | None:
    if _safety.open_for_help is None:
        raise RuntimeError("no case for a call for help is registered (tripguard.wiring.wire)")
    return _safety.open_for_help(session, check_in=check_in, ack_seconds=ack_seconds)


def note_evidence(session: Session, *, principal: Principal, incident_id: str, trip_id: str,
                  **what: object) -> str | None:
    if _safety.note_evidence is None:
        raise RuntimeError("no case timeline for evidence is registered (tripguard.wiring.wire)")
    return _safety.note_evidence(session, principal=principal, incident_id=incident_id, trip_id=trip_id, **what)
