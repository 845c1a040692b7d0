"""What workforce gives the platform at start-up (`tripguard.wiring`): the access gate's clearance of a person
(the confidentiality agreement signed, no suspension in force)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tripguard.privacy import access
from tripguard.workforce import clearance


def _person_problem(session: Session, person_id: str, audience: str) -> str | None:
    return clearance.problem_of(session, person_id=person_id, audience=audience)


def register() -> None:
    access.register_person_check(_person_problem)
