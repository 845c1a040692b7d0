"""Inspection checklists: the supervision team's regular checks (D 六(一)), item by item, with results.
A checklist changes by version; an inspection keeps the version it was made against."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from tripguard.core.ids import new_id
from tripguard.privacy import access
from tripguard.vault.service import Vault
from tripguard.workforce.models import Checklist, Inspection

RESULTS = ("pass", "fail", "n/a")


def put_checklist(session: Session, *, actor: Actor, checklist_id: str, title_zh: str, title_en: str,
                  items: list[dict[str, str]]) -> tuple[Checklist, bool]:
    keys = [item["key"] for item in items]
    if len(set(keys)) != len(keys):
        raise InvalidInput("each item has its own key", errors=[FieldProblem(field="items", message="repeated key")])
    checklist = session.get(Checklist, checklist_id)
    now = utcnow()
    if checklist is None:
        checklist = Checklist(id=checklist_id, title_zh=title_zh, title_en=title_en, items=items, version=1,
                              updated_at=now)
        session.add(checklist)
        created = True
    else:
        if (checklist.title_zh, checklist.title_en, checklist.items) == (title_zh, title_en, items):
            return checklist, False
        checklist.title_zh, checklist.title_en, checklist.items = title_zh, title_en, items
        checklist.version += 1
        checklist.updated_at = now
        created = False
    audit.record(session, actor=actor, action="inspection.checklist_put", target_type="workforce_checklists",
                 target_id=checklist_id, details={"version": str(checklist.version)})
    return checklist, created


def checklists(session: Session) -> list[Checklist]:
    return list(session.scalars(select(Checklist).order_by(Checklist.id)))


def record(session: Session, *, vault: Vault, actor: Actor, inspector: str, checklist_id: str, period: str,
           results: dict[str, str], notes: str | None, idempotency_key: str | None) -> Inspection:
    """Every item of the checklist gets a result: pass, fail or n/a (none left out, none unknown)."""
    key = f"{inspector}:{idempotency_key}" if idempotency_key else None
    if key is not None:
        existing = session.scalar(select(Inspection).where(Inspection.idempotency_key == key))
        if existing is not None:
            return existing
    checklist = session.get(Checklist, checklist_id)
    if checklist is None:
        raise NotFound("no such checklist")
    keys = [item["key"] for item in checklist.items]
    problems = [FieldProblem(field=f"results.{k}", message="a result for every item") for k in keys if k not in results]
    problems += [FieldProblem(field=f"results.{k}", message="not an item of this checklist")
                 for k in results if k not in keys]
    if problems:
        raise InvalidInput("the results do not match the checklist", errors=problems)
    inspection = Inspection(id=new_id("ins"), checklist_id=checklist.id, checklist_version=checklist.version,
                            inspector=inspector, period=period,
                            results=[{"key": k, "result": results[k]} for k in keys],
                            failed=sum(1 for k in keys if results[k] == "fail"), at=utcnow(), idempotency_key=key)
    try:
        with session.begin_nested():
            session.add(inspection)
            if notes:
                access.write_field(vault, session, inspection, "notes", notes)
    except IntegrityError as exc:
        raise Conflict("this inspection is being recorded; retry") from exc
    audit.record(session, actor=actor, action="inspection.record", target_type="workforce_checklists",
                 target_id=checklist.id, details={"inspection": inspection.id, "failed": str(inspection.failed)})
    return inspection


def recent(session: Session, *, limit: int = 50) -> list[Inspection]:
    return list(session.scalars(select(Inspection).order_by(Inspection.at.desc()).limit(limit)))
