"""The feedback desk's answer templates in the console: the list, a new one, one changed, retired or offered
again (staff holding `complaint.templates`). A support agent picks one on a complaint's page to start the
answer (feedback/console.py). A mistake comes back on the form, by field, with what was typed kept."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tripguard.console.forms import field_problems
from tripguard.console.rendering import request_locale
from tripguard.console.shell import i18n_text, page, problem_text
from tripguard.core.db import DbSession
from tripguard.core.errors import DomainError
from tripguard.core.types import CleanStr, Identifier
from tripguard.feedback import answer_templates
from tripguard.feedback.answer_templates import TemplateText
from tripguard.feedback.models import AnswerTemplate
from tripguard.security.auth import AnswerTemplateManager
from tripguard.security.principal import Principal

router = APIRouter(include_in_schema=False)
PAGE = "/console/complaints/templates"
MAX_ANSWER = 2000  # as long as an answer may be


class TemplateForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    title_zh: CleanStr = Field(min_length=1, max_length=100)
    title_en: CleanStr = Field(min_length=1, max_length=100)
    body_zh: CleanStr = Field(min_length=2, max_length=MAX_ANSWER)
    body_en: CleanStr = Field(min_length=2, max_length=MAX_ANSWER)

    @field_validator("title_zh", "title_en")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise ValueError("one line")
        return value


Text = Annotated[str, Form(max_length=20_000)]  # as typed; TemplateForm says what is allowed


def _list_page(request: Request, principal: Principal, session: DbSession, *, status_code: int = 200,
               values: dict[str, Any] | None = None, errors: dict[str, str] | None = None) -> HTMLResponse:
    return page(request, "feedback/answer_templates.html", principal, PAGE, status_code=status_code,
                templates=answer_templates.listed(session), zh=request_locale(request).startswith("zh"),
                values=values or {}, errors=errors or {})


def _edit_page(request: Request, principal: Principal, row: AnswerTemplate, *, status_code: int = 200,
               values: dict[str, Any] | None = None, errors: dict[str, str] | None = None) -> HTMLResponse:
    shown = values or {name: getattr(row, name) for name in ("title_zh", "title_en", "body_zh", "body_en")}
    return page(request, "feedback/answer_template.html", principal, PAGE, status_code=status_code, t=row,
                values=shown, errors=errors or {})


def _checked(request: Request, values: dict[str, str]) -> TemplateText | dict[str, str]:
    """The form's text, or what is wrong with it by field."""
    try:
        form = TemplateForm.model_validate(values)
    except ValidationError as exc:
        return field_problems(request, exc)
    return TemplateText(title_zh=form.title_zh, title_en=form.title_en, body_zh=form.body_zh, body_en=form.body_en)


def _problems(request: Request, exc: DomainError) -> dict[str, str]:
    """A refusal by the service, on the field it names (else above the form)."""
    message = i18n_text(request, exc.detail) if exc.detail else problem_text(request, exc)[1]
    return {problem.field: message for problem in exc.errors or []} or {"form": message}


@router.get("/templates")
def templates_page(request: Request, principal: AnswerTemplateManager, session: DbSession) -> HTMLResponse:
    """The answer templates (those offered first) and the form for a new one."""
    return _list_page(request, principal, session)


@router.post("/templates")
def template_create(request: Request, principal: AnswerTemplateManager, session: DbSession, title_zh: Text = "",
                    title_en: Text = "", body_zh: Text = "", body_en: Text = "") -> Response:
    values = {"title_zh": title_zh, "title_en": title_en, "body_zh": body_zh, "body_en": body_en}
    checked = _checked(request, values)
    if isinstance(checked, dict):
        return _list_page(request, principal, session, status_code=422, values=values, errors=checked)
    try:
        row = answer_templates.create(session, actor=principal.actor, text=checked)
    except DomainError as exc:
        session.rollback()
        return _list_page(request, principal, session, status_code=exc.status, values=values,
                          errors=_problems(request, exc))
    return RedirectResponse(f"{PAGE}#t-{row.id}", status_code=303)


@router.get("/templates/{template_id}")
def template_page(request: Request, template_id: Identifier, principal: AnswerTemplateManager,
                  session: DbSession) -> HTMLResponse:
    return _edit_page(request, principal, answer_templates.get(session, template_id=template_id))


@router.post("/templates/{template_id}")
def template_update(request: Request, template_id: Identifier, principal: AnswerTemplateManager, session: DbSession,
                    title_zh: Text = "", title_en: Text = "", body_zh: Text = "", body_en: Text = "") -> Response:
    row = answer_templates.get(session, template_id=template_id)
    values = {"title_zh": title_zh, "title_en": title_en, "body_zh": body_zh, "body_en": body_en}
    checked = _checked(request, values)
    if isinstance(checked, dict):
        return _edit_page(request, principal, row, status_code=422, values=values, errors=checked)
    try:
        answer_templates.update(session, actor=principal.actor, template_id=row.id, text=checked)
    except DomainError as exc:
        session.rollback()
        return _edit_page(request, principal, answer_templates.get(session, template_id=template_id),
                          status_code=exc.status,
                          values=values, errors=_problems(request, exc))
    return RedirectResponse(f"{PAGE}#t-{row.id}", status_code=303)


@router.post("/templates/{template_id}/offer")
def template_offer(template_id: Identifier, principal: AnswerTemplateManager, session: DbSession,
                   offered: Annotated[str, Form(pattern="^(yes|no)$")]) -> Response:
    """Retire a template (no longer offered to agents; kept, and offered again at a click) or offer it again."""
    answer_templates.retire(session, actor=principal.actor, template_id=template_id, retired=offered == "no")
    return RedirectResponse(f"{PAGE}#t-{template_id}", status_code=303)
