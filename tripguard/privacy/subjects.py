"""Who is a data subject: everyone whose data TripGuard stores, from the first write.

A domain that stores something about a person registers them through `privacy.service.register`, in the
same transaction as that write: a customer and a merchant with an order, a courier bound to one, an
applicant with their application, a driver and a passenger with their trip, whoever files a complaint.
As a net, `access.write_field` registers the person a sealed value is about (`Key.PERSON` columns), so no
sealed write leaves its person unknown. A person registered so can ask for their data or its erasure
(PIPL Art. 45, 47) without the operator recording them separately; the record holds no personal field of
its own (their data stays where the domain keeps it and goes with that domain's retention), only who they
are, what kind of person, under which notice, and where they were first seen (`source`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.privacy.models import DataSubject

_IN_CHUNK = 500


@dataclass(frozen=True)
class Seen:
    """A person a domain is about to store something about."""

    subject_id: str
    kind: str | None  # passenger | customer | driver | courier | merchant | staff; None when the domain cannot say
    notice_version: str | None = None  # the notice they were shown, when the domain knows it


def register(session: Session, *, subject_id: str, kind: str | None, source: str,
             notice_version: str | None = None) -> None:
    """Make the person a data subject if they are not one yet. A kind or notice not known before is filled
    in; one recorded already is never changed here (the operator's own record wins). An erased person stays
    erased: the domain's write that follows is refused by the vault."""
    subject = session.get(DataSubject, subject_id)  # from the session's identity map after the first time
    if subject is not None:
        _fill(subject, Seen(subject_id, kind, notice_version))
        return
    register_many(session, people=[Seen(subject_id, kind, notice_version)], source=source)


def _fill(subject: DataSubject, seen: Seen) -> None:
    if subject.kind is None and seen.kind:
        subject.kind = seen.kind
    if subject.notice_version is None and seen.notice_version:
        subject.notice_version = seen.notice_version


def register_many(session: Session, *, people: Iterable[Seen], source: str) -> None:
    """`register` for many at once (a batch of trip events): one read and one insert per chunk. Race-safe:
    two transactions registering the same new person both succeed (insert, or nothing on conflict)."""
    wanted: dict[str, Seen] = {}
    for seen in people:
        if seen.subject_id and seen.subject_id not in wanted:
            wanted[seen.subject_id] = seen
    if not wanted:
        return
    ids = sorted(wanted)
    known: dict[str, DataSubject] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        for subject in session.scalars(select(DataSubject).where(DataSubject.id.in_(ids[start:start + _IN_CHUNK]))):
            known[subject.id] = subject
    for subject_id, subject in known.items():
        _fill(subject, wanted[subject_id])
    now = utcnow()
    rows = [{"id": s.subject_id, "kind": s.kind, "notice_version": s.notice_version, "source": source[:40],
             "created_at": now, "updated_at": now} for s in wanted.values() if s.subject_id not in known]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for start in range(0, len(rows), _IN_CHUNK):
        session.execute(insert(DataSubject).values(rows[start:start + _IN_CHUNK])
                        .on_conflict_do_nothing(index_elements=["id"]))
