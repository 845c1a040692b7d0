"""Consent to screening binds (PIPL Art. 29-30): it is valid only under a published notice that declares
the screening purpose and every sensitive kind of data the screening processes, and with a separate
consent to each of those kinds, recorded one by one. What a role's screening processes follows from its
checks (a criminal record and driving points are what a background check finds; a credit evaluation),
and a face when a selfie is sent for the liveness check and the shift-start match."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit.actor import Actor
from tripguard.core.errors import FieldProblem, InvalidInput
from tripguard.core.i18n import N_
from tripguard.core.ids import new_id
from tripguard.privacy.catalogue import SENSITIVE, Category
from tripguard.privacy.models import PrivacyNotice
from tripguard.screening.models import Consent
from tripguard.security.permissions import Purpose

# The sensitive kind of data each check processes.
CHECK_CATEGORIES = {"criminal_record": Category.BACKGROUND, "driving_points": Category.BACKGROUND,
                    "credit": Category.CREDIT}
NOT_BINDING = N_("Screening needs a notice that declares it and the sensitive data it processes, and a separate "
                 "consent to each kind of that data.")


def needed(checks: Iterable[str], *, selfie: bool) -> frozenset[Category]:
    """The sensitive kinds of data a screening of these checks processes: each needs its own consent."""
    kinds = {CHECK_CATEGORIES[check] for check in checks if check in CHECK_CATEGORIES}
    if selfie:
        kinds.add(Category.FACE)
    return frozenset(kinds)


def notice_problems(notice: PrivacyNotice, kinds: frozenset[Category]) -> list[str]:
    """What the notice lacks for a screening processing `kinds`: the purpose, and each kind it does not name."""
    problems = []
    if Purpose.SCREENING.value not in notice.purposes:
        problems.append("the notice does not declare the screening purpose")
    missing = sorted(kind.value for kind in kinds if kind.value not in notice.categories)
    if missing:
        problems.append(f"the notice does not declare {', '.join(missing)}")
    return problems


def check_notice(notice: PrivacyNotice, kinds: frozenset[Category]) -> None:
    """A notice a screening may be consented under, or 422 on `notice_version`."""
    problems = notice_problems(notice, kinds)
    if problems:
        raise InvalidInput(NOT_BINDING, errors=[FieldProblem(field="notice_version", message=p) for p in problems])


def check(notice: PrivacyNotice, kinds: frozenset[Category], given: Iterable[str]) -> frozenset[Category]:
    """The consents to record: every kind in `kinds` separately consented to under a notice that names it
    and the purpose; anything else is 422 naming what is missing. A consent to a kind the notice does not
    name, or to data that is not sensitive, is refused: a person consents only to what they were told."""
    check_notice(notice, kinds)
    given_set = set(given)
    problems = [FieldProblem(field="consents", message=f"no separate consent to {kind.value}")
                for kind in sorted(kinds - {Category(g) for g in given_set if g in Category._value2member_map_})]
    for value in sorted(given_set):
        if value not in Category._value2member_map_ or Category(value) not in SENSITIVE:
            problems.append(FieldProblem(field="consents", message=f"{value} is not sensitive data needing consent"))
        elif value not in notice.categories:
            problems.append(FieldProblem(field="consents", message=f"{value} is not in the notice"))
    if problems:
        raise InvalidInput(NOT_BINDING, errors=problems)
    return frozenset(Category(value) for value in given_set)


def record(session: Session, *, applicant_id: str, notice_version: str, kinds: frozenset[Category], actor: Actor,
           at: datetime) -> None:
    for kind in sorted(kinds):
        session.add(Consent(id=new_id("cns"), applicant_id=applicant_id, category=kind.value,
                            notice_version=notice_version, given_at=at, given_by=f"{actor.type}:{actor.id}"))


def given(session: Session, *, applicant_id: str, notice_version: str) -> list[str]:
    """The kinds this applicant separately consented to under this notice."""
    return sorted(set(session.scalars(select(Consent.category).where(Consent.applicant_id == applicant_id,
                                                                       Consent.notice_version == notice_version))))
