"""The one gate for personal data: seal on write; on read, plaintext only for a permitted purpose.

A reader must be cleared first: staff and workers sign the confidentiality agreement and must not be
suspended (`check_clearance`). A read names its purpose. A principal sees a field in plaintext only when
one of its roles holds that purpose and the field's category allows it; otherwise it gets the mask.
Every read, plain or masked, leaves one audit entry naming the record, the fields and the purpose.
Plaintext the system opens for a machine that asked (the telephony provider routing a call) is audited
as that machine's use, with its purpose (`record_use`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.blockers import Blocker, blockers_json
from tripguard.core.db import Base
from tripguard.core.errors import AccessSuspended, AgreementUnsigned, NotClearedToWork
from tripguard.core.i18n import N_
from tripguard.privacy import subjects
from tripguard.privacy.catalogue import Key, PersonalField, catalogue
from tripguard.privacy.models import DataSubject
from tripguard.security.permissions import WORKER_ROLES, Purpose, purposes_for
from tripguard.security.principal import Principal
from tripguard.vault.crypto import DecryptionFailed
from tripguard.vault.service import SubjectErased, Vault

ERASED = "[erased]"
UNREADABLE = "[unreadable]"
logger = logging.getLogger("tripguard.privacy")


def fields_of(model: type[Base]) -> dict[str, PersonalField]:
    return _fields_of_table(model.__table__.name)  # type: ignore[attr-defined]


@lru_cache
def _fields_of_table(table: str) -> dict[str, PersonalField]:
    # Every seal and open asks; the declarations are fixed once the models are imported.
    return {f.column: f for f in catalogue(Base.metadata) if f.table == table}


def _row_id(row: Base) -> str:
    return str(row.id)  # type: ignore[attr-defined]


def write_field(vault: Vault, session: Session, row: Base, column: str, value: str | None) -> None:
    """Seal `value` into `row.column`. A value sealed under a person's own key makes that person a data subject
    in the same transaction (`privacy.subjects`), if they are not one yet."""
    spec = fields_of(type(row))[column]
    subject_id = str(getattr(row, spec.subject_column))
    if value is not None and spec.key is Key.PERSON and spec.table != DataSubject.__tablename__:
        subjects.register(session, subject_id=subject_id, kind=spec.person, source=spec.table)
    sealed = None if value is None else vault.seal(
        session, subject_id=subject_id, table=spec.table, column=column, row_id=_row_id(row), value=value)
    setattr(row, column, sealed)


def subjects_of(row: Base, values: dict[str, str | None]) -> dict[str, str]:
    """Whom each of the values would be sealed under (`write_fields`): column → subject id (none for no value)."""
    fields = fields_of(type(row))
    return {column: str(getattr(row, fields[column].subject_column)) for column, value in values.items()
            if value is not None}


def write_fields(vault: Vault, session: Session, writes: list[tuple[Base, dict[str, str | None]]]) -> None:
    """`write_field` for many rows at once (a group of orders): the people the values are about registered
    with one read and one insert, their data keys opened or created with one more, then each value sealed."""
    people: dict[tuple[str | None, str], list[subjects.Seen]] = {}
    for row, values in writes:
        fields = fields_of(type(row))
        for column, value in values.items():
            spec = fields[column]
            if value is not None and spec.key is Key.PERSON and spec.table != DataSubject.__tablename__:
                people.setdefault((spec.person, spec.table), []).append(
                    subjects.Seen(str(getattr(row, spec.subject_column)), spec.person))
    for (_, table), seen in people.items():
        subjects.register_many(session, people=seen, source=table)
    keyed = {subject for row, values in writes for subject in subjects_of(row, values).values()}
    vault.prefetch(session, sorted(keyed), create_missing=True)
    for row, values in writes:
        fields = fields_of(type(row))
        for column, value in values.items():
            spec = fields[column]
            sealed = None if value is None else vault.seal(
                session, subject_id=str(getattr(row, spec.subject_column)), table=spec.table, column=column,
                row_id=_row_id(row), value=value)
            setattr(row, column, sealed)


def open_field(vault: Vault, session: Session, row: Base, column: str) -> str | None:
    """Plaintext for internal use that is not a person looking (sending a code, an export)."""
    spec = fields_of(type(row))[column]
    blob = getattr(row, column)
    if blob is None:
        return None
    return vault.open(session, subject_id=str(getattr(row, spec.subject_column)), table=spec.table,
                      column=column, row_id=_row_id(row), blob=blob)


def open_for_export(vault: Vault, session: Session, row: Base, column: str) -> str | None:
    """`open_field` for an export: the value, or what says it no longer opens (`ERASED`: its person's key is
    shredded; `UNREADABLE`: a case's key shredded by retention, or a damaged value)."""
    try:
        return open_field(vault, session, row, column)
    except SubjectErased:
        return ERASED
    except DecryptionFailed:
        return UNREADABLE


def record_use(session: Session, *, actor: Actor, row: Base, columns: list[str], purpose: Purpose, use: str,
               disclosed: list[str]) -> None:
    """A machine's use of plaintext the system resolved itself (`open_field`) for `actor` (an API key):
    one audit entry naming the record, the fields opened, those whose plaintext left the server
    (`disclosed`), the purpose and the use. Breach investigations count it as a read."""
    audit.record(session, actor=actor, action="personal.use", target_type=type(row).__tablename__,
                 target_id=_row_id(row), purpose=purpose.value,
                 details={"fields": ",".join(columns), "plaintext": ",".join(sorted(disclosed)), "use": use})


@dataclass(frozen=True)
class FieldView:
    value: str | None
    plaintext: bool  # the value is shown whole (read in plaintext, or a mask that hid nothing of it)


def may_read_plain(principal: Principal, spec: PersonalField, purpose: Purpose) -> bool:
    return purpose in purposes_for(principal.roles) and purpose in spec.rule.purposes


PersonCheck = Callable[[Session, str, str], str | None]
# (session, person id, audience) -> None when cleared, else `access.suspended` or `agreement.unsigned`
WorkerCheck = Callable[[Session, str], tuple[Blocker, ...]]
# (session, worker id) -> what the dispatch gate refuses this worker as a person (none: cleared)


@dataclass
class _Checks:
    person: PersonCheck | None = None
    worker: WorkerCheck | None = None


_checks = _Checks()
# The clearance checks, registered at start-up by the domains that own them (`tripguard.wiring`: workforce's
# agreement and sanctions, screening's dispatch gate): the gate, below them, never imports them.


def register_person_check(check: PersonCheck) -> None:
    _checks.person = check


def register_worker_check(check: WorkerCheck) -> None:
    _checks.worker = check


def _person_problem(session: Session, person_id: str, audience: str) -> str | None:
    if _checks.person is None:  # refuse every read rather than open one unchecked
        raise RuntimeError("the access gate has no clearance check registered (tripguard.wiring.wire)")
    return _checks.person(session, person_id, audience)


def _worker_blockers(session: Session, worker_id: str) -> tuple[Blocker, ...]:
    if _checks.worker is None:
        raise RuntimeError("the access gate has no dispatch-gate check registered (tripguard.wiring.wire)")
    return _checks.worker(session, worker_id)


def audience_of(principal: Principal) -> str | None:
    """Who signs a confidentiality agreement: staff, and drivers and couriers (`worker`)."""
    if principal.kind == "staff":
        return "staff"
    if principal.kind == "subject" and principal.roles & WORKER_ROLES:
        return "worker"
    return None  # the operator's backend, passengers and customers sign nothing


def check_clearance(session: Session, *, principal: Principal) -> None:
    """Staff and workers open nothing personal, not even masked, before signing the confidentiality
    agreement in force, nor while suspended (`workforce.clearance`). A driver or courier is asked what
    the dispatch gate asks (`screening.gate`: screening, training, the agreement, discipline): someone
    who may not work opens no one's order or trip."""
    audience = audience_of(principal)
    if audience == "worker":
        _check_worker(session, principal.id)
        return
    if audience is not None:
        _raise_for_clearance(_person_problem(session, principal.id, audience))


def _raise_for_clearance(refused: str | None) -> None:
    if refused == "access.suspended":
        raise AccessSuspended(N_("Your access to personal data is suspended by a disciplinary decision."))
    if refused == "agreement.unsigned":
        raise AgreementUnsigned(N_("Sign the confidentiality agreement in force first."))


ALWAYS_ASKED = ("agreement.", "discipline.")  # no override lifts these: prefixes of the gate's codes


def overridden_codes(override_at: object, blockers: list[str] | None) -> frozenset[str] | None:
    """What an order's gate override lifts for its worker: None when there is no override; else the codes
    the operator overrode (stored with it), an empty set when they are unknown (the whole gate asked)."""
    return None if override_at is None else frozenset(blockers or ())


def check_worker(session: Session, *, worker_id: str, overridden: frozenset[str] | None = None) -> None:
    """What the access gate asks of a driver or courier, named by id: the same answer for their reads, for
    what they do on an order (pickup, hand-over) and for the calls the telephony provider would bridge
    for them. `overridden`: the blocker codes the operator overrode to give the record to this worker
    (`delivery.service.ask_gate`): only those are let past; any other blocker, and always the agreement
    and a suspension, refuses as without an override. Raises `NotClearedToWork`, `AgreementUnsigned` or
    `AccessSuspended` (with the blockers still in force)."""
    if overridden is not None:  # what an override never lifts, asked as the staff's clearance asks it
        _raise_for_clearance(_person_problem(session, worker_id, "worker"))
    _check_worker(session, worker_id, overridden or frozenset())


def _check_worker(session: Session, worker_id: str, overridden: frozenset[str] = frozenset()) -> None:
    cache: dict[str, object] = session.info.setdefault("tripguard.clearance", {})  # forgotten with `clearance`'s
    key = f"gate:{worker_id}"
    if key not in cache:
        cache[key] = _worker_blockers(session, worker_id)
    blockers = cache[key]
    assert isinstance(blockers, tuple)
    in_force = tuple(b for b in blockers if b.code not in overridden or b.code.startswith(ALWAYS_ASKED))
    if not in_force:
        return
    codes = [b.code for b in in_force]
    extensions = {"blockers": blockers_json(in_force)}
    if any(code.startswith("discipline.") for code in codes):
        raise AccessSuspended(N_("Your access to personal data is suspended by a disciplinary decision."),
                              extensions=extensions)
    if codes == ["agreement.unsigned"]:
        raise AgreementUnsigned(N_("Sign the confidentiality agreement in force first."), extensions=extensions)
    raise NotClearedToWork(N_("You may not open customers' or passengers' data until you are cleared to work: "
                              "see the blockers."), extensions=extensions)


def read_fields(vault: Vault, session: Session, principal: Principal, row: Base, columns: list[str],
                *, purpose: Purpose, masked: frozenset[str] = frozenset(),
                overridden: frozenset[str] | None = None) -> dict[str, FieldView]:
    """`masked`: columns this reader gets masked even where its purpose would open them (a courier sees
    the customer's name and phone masked, though delivery is a purpose they hold). `overridden`:
    the blocker codes the operator overrode to give this record to this worker, with a reason (audited
    and reported): those are let past (`check_worker`), nothing else, and the read says so in the log."""
    specs = fields_of(type(row))
    own = principal.kind == "subject" and all(
        str(getattr(row, specs[column].subject_column)) == principal.id for column in columns)
    gate_overridden = overridden is not None and audience_of(principal) == "worker"
    if gate_overridden:
        check_worker(session, worker_id=principal.id, overridden=overridden)  # lifts the codes overridden, no others
    elif not own:  # a driver reading their own emergency contacts owes no one confidentiality
        check_clearance(session, principal=principal)
    views: dict[str, FieldView] = {}
    for column in columns:
        spec = specs[column]
        try:
            value = open_field(vault, session, row, column)
        except SubjectErased:
            views[column] = FieldView(ERASED, False)
            continue
        except DecryptionFailed:
            # Moved or altered below the application: say so, never guess.
            logger.warning("a sealed field did not open", extra={"event": f"{spec.table}.{column}"})
            views[column] = FieldView(UNREADABLE, False)
            continue
        plain = column not in masked and may_read_plain(principal, spec, purpose)
        shown = value if plain or value is None else spec.rule.mask(value)
        # A mask that left the text as it was (a note with nothing it hides) showed it whole: it is
        # labelled and audited as plaintext, never as masked.
        views[column] = FieldView(shown, value is not None and (plain or shown == value))
    plain_fields = sorted(c for c, v in views.items() if v.plaintext)
    audit.record(
        session, actor=principal.actor, action="personal.read", target_type=type(row).__tablename__,
        target_id=_row_id(row), purpose=purpose.value,
        outcome="success" if plain_fields else "denied",
        details={"fields": ",".join(columns), "plaintext": ",".join(plain_fields),
                 **({"override": "gate"} if gate_overridden else {})},
    )
    return views
