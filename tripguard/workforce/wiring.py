"""What workforce gives the platform at start-up (`tripguard.wiring`): the access gate's clearance of a person
(the confidentiality agreement signed, no suspension in force)."""

from __future__ import annotations

from tripguard.privacy import access
from tripguard.workforce import clearance


def register() -> None:
    access.register_person_check(clearance.problem_of)
