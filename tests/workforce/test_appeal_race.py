"""One open appeal per sanction, and one decision on it, under parallel requests on their own connections
(PostgreSQL in its pass): twenty appeals at once file one (the others find it pending), and two HR officers
deciding it at once give one decision (the other is told it is decided)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from tests.builders import all_at_once
from tests.conftest import BACKEND, fresh_database, make_settings
from tripguard.app import create_app
from tripguard.audit.actor import Actor
from tripguard.audit.models import AuditEntry
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.errors import Conflict
from tripguard.privacy import access
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.workforce import discipline
from tripguard.workforce.models import Sanction


def test_parallel_appeals_file_one_and_parallel_decisions_decide_once(tmp_path: Path) -> None:
    url = fresh_database("tg_appeal_race", tmp_path)
    site = create_app(make_settings(url, tmp_path / "keys"))
    vault = site.state.vault
    engine = make_engine(url, pool_size=20, max_overflow=0) if BACKEND == "postgres" else site.state.engine
    factory = make_sessionmaker(engine)
    hr = Actor("staff", "stf_HR")
    with unit_of_work(factory) as session:
        violation = discipline.raise_violation(session, vault=vault, actor=Actor("staff", "stf_SUP"),
                                               offender_type="worker", offender_id="rdr_1", kind="conduct",
                                               summary="辱骂顾客",
                                               evidence={"complaints": ["cmp_1"]})
        sanction_id = discipline.decide(session, actor=hr, violation_id=violation.id, kind="fine",
                                        amount_fen=5000).id
    worker = Principal.for_roles("subject", "rdr_1", frozenset({Role.COURIER}))

    def appeal(n: int) -> Callable[[], None]:
        def job() -> None:
            with unit_of_work(factory) as session:
                discipline.appeal(session, vault=vault, principal=worker, sanction_id=sanction_id, text=f"申诉 {n}")
        return job

    assert all_at_once([appeal(n) for n in range(20)]) == []
    with unit_of_work(factory) as session:
        filed = session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "sanction.appeal", AuditEntry.target_id == violation.id))
        sanction = session.get(Sanction, sanction_id)
        assert sanction is not None and sanction.appeal_status == "pending"
        text = access.open_field(vault, session, sanction, "appeal")
    assert filed == 1, filed  # one appeal filed; the others found it pending
    assert text is not None and text.startswith("申诉")

    def decide(by: str, outcome: str) -> Callable[[], None]:
        def job() -> None:
            with unit_of_work(factory) as session:
                discipline.decide_appeal(session, actor=Actor("staff", by), sanction_id=sanction_id, outcome=outcome)
        return job

    failures = all_at_once([decide("stf_HR1", "upheld"), decide("stf_HR2", "overturned")])
    assert len(failures) == 1 and isinstance(failures[0], Conflict), failures
    with unit_of_work(factory) as session:
        decided = session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "sanction.appeal_decide", AuditEntry.target_id == violation.id))
        sanction = session.get(Sanction, sanction_id)
        assert sanction is not None
        assert (sanction.appeal_status == "overturned") == (sanction.status == "overturned")
    assert decided == 1
    if engine is not site.state.engine:
        engine.dispose()
    site.state.engine.dispose()
