"""The feedback desk's answer templates: ready answers in Chinese and English that an agent picks to start a
reply, then makes particular to the complaint. Written, changed and retired by staff holding
`complaint.templates` (the supervisors); each change audited. They hold no personal data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, FieldProblem, NotFound
from tripguard.core.i18n import N_
from tripguard.core.ids import new_id
from tripguard.feedback.models import AnswerTemplate

TITLE_TAKEN = N_("Another template has this title: give each a title of its own.")


@dataclass(frozen=True)
class TemplateText:
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str

    def differs_from(self, row: AnswerTemplate) -> list[str]:
        return [name for name in ("title_zh", "title_en", "body_zh", "body_en")
                if getattr(self, name) != getattr(row, name)]


def get(session: Session, *, template_id: str) -> AnswerTemplate:
    row = session.get(AnswerTemplate, template_id)
    if row is None:
        raise NotFound("no such answer template")
    return row


def in_use(session: Session, *, template_id: str) -> AnswerTemplate | None:
    """The template an answer may start from: none when there is no such template or it is retired."""
    row = session.get(AnswerTemplate, template_id)
    return None if row is None or row.retired_at is not None else row


def listed(session: Session) -> list[AnswerTemplate]:
    """Every template, those in use first, each group by its English title."""
    return list(session.scalars(select(AnswerTemplate).order_by(AnswerTemplate.retired_at.is_not(None),
                                                                AnswerTemplate.title_en)))


def offered(session: Session) -> list[AnswerTemplate]:
    """The templates an agent may pick from (not retired)."""
    return list(session.scalars(select(AnswerTemplate).where(AnswerTemplate.retired_at.is_(None))
                                .order_by(AnswerTemplate.title_en)))


def _clash(session: Session, text: TemplateText, *, other_than: str | None) -> None:
    """Two templates with one title would be one choice in the picker: refused, by the field."""
    statement = select(AnswerTemplate).where(or_(AnswerTemplate.title_zh == text.title_zh,
                                                 AnswerTemplate.title_en == text.title_en))
    for row in session.scalars(statement):
        if row.id == other_than:
            continue
        field = "title_zh" if row.title_zh == text.title_zh else "title_en"
        raise Conflict(TITLE_TAKEN, errors=[FieldProblem(field=field, message="taken")])


def _stored(session: Session, row: AnswerTemplate) -> None:
    """Written now, so that a title taken meanwhile by someone else is a refusal, not a failed commit."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(TITLE_TAKEN, errors=[FieldProblem(field="title_zh", message="taken")]) from exc


def create(session: Session, *, actor: Actor, text: TemplateText) -> AnswerTemplate:
    """A new template. The same form sent again (the same titles and texts) is the one already written."""
    same = session.scalar(select(AnswerTemplate).where(AnswerTemplate.title_zh == text.title_zh,
                                                       AnswerTemplate.title_en == text.title_en))
    if same is not None and not text.differs_from(same):
        return same
    _clash(session, text, other_than=None)
    now, by = utcnow(), f"{actor.type}:{actor.id}"
    row = AnswerTemplate(id=new_id("atp"), title_zh=text.title_zh, title_en=text.title_en, body_zh=text.body_zh,
                         body_en=text.body_en, created_at=now, created_by=by, updated_at=now, updated_by=by)
    _stored(session, row)
    audit.record(session, actor=actor, action="answer_template.create", target_type="answer_template",
                 target_id=row.id, details={"title_en": text.title_en})
    return row


def update(session: Session, *, actor: Actor, template_id: str, text: TemplateText) -> AnswerTemplate:
    row = get(session, template_id=template_id)
    changed = text.differs_from(row)
    if not changed:
        return row
    _clash(session, text, other_than=row.id)
    for name in changed:
        setattr(row, name, getattr(text, name))
    row.updated_at, row.updated_by = utcnow(), f"{actor.type}:{actor.id}"
    _stored(session, row)
    audit.record(session, actor=actor, action="answer_template.update", target_type="answer_template",
                 target_id=row.id, details={"changed": ",".join(changed)})
    return row


def retire(session: Session, *, actor: Actor, template_id: str, retired: bool) -> AnswerTemplate:
    """Take a template out of the picker (`retired`), or offer it again."""
    row = get(session, template_id=template_id)
    if (row.retired_at is not None) != retired:
        row.retired_at = utcnow() if retired else None
        row.updated_at, row.updated_by = utcnow(), f"{actor.type}:{actor.id}"
        audit.record(session, actor=actor, action="answer_template.retire" if retired else "answer_template.restore",
                     target_type="answer_template", target_id=row.id)
    return row
