"""What screening gives the platform at start-up (`tripguard.wiring`): the access gate asks a driver or courier
what the dispatch gate asks (screening, training, the agreement, discipline); an erasure voids their
invitation links."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tripguard.privacy import access, service
from tripguard.screening import gate, invitations


def _erase(session: Session, erasing: service.Erasing) -> dict[str, int]:
    """Invitation links not yet used stop working."""
    return {"invitations": invitations.void_for_person(session, worker_id=erasing.subject_id, at=erasing.at)}


def register() -> None:
    access.register_worker_check(gate.person_blockers)
    service.register_erasure("screening", order=30, step=_erase)
