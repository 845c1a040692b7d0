"""The privacy office's notices page: every published version of the privacy notice, and a form to publish
the next one (the same as `POST /api/v1/privacy/notices`). A version never changes once published, so
publishing asks first; a mistake comes back on the form, by field, with what was typed kept."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from tripguard.console.confirmations import ask
from tripguard.console.forms import field_problems, form_values
from tripguard.console.rendering import request_locale
from tripguard.console.shell import ask_first, i18n_text, page
from tripguard.core.db import DbSession
from tripguard.core.i18n import N_
from tripguard.privacy import service as privacy_service
from tripguard.privacy.catalogue import RULES, Category
from tripguard.privacy.models import PrivacyNotice
from tripguard.privacy.schemas import NoticeCreate
from tripguard.security.auth import NoticePublisher
from tripguard.security.permissions import Purpose
from tripguard.security.principal import Principal

router = APIRouter(include_in_schema=False)
PAGE = "/console/privacy/notices"
FIELDS = ("version", "purposes", "categories", "retention_zh", "retention_en", "text_zh", "text_en")
PUBLISH_NOTICE = ask("privacy.notice_publish", N_("Publish this notice version?"),
                     N_("It can be shown to people from now on and never changes: a correction is a new version. "
                        "The people who were shown an earlier version keep it on record."), N_("Publish"))
PURPOSE_LABELS = {
    Purpose.DELIVERY: N_("Delivering an order"), Purpose.EMERGENCY: N_("Emergency help"),
    Purpose.INVESTIGATION: N_("Investigating an incident"), Purpose.SCREENING: N_("Background screening"),
    Purpose.SUPPORT: N_("Answering the person"), Purpose.SUBJECT_REQUEST: N_("The person's own requests"),
    Purpose.BREACH_RESPONSE: N_("Telling people of a breach"), Purpose.LEGAL_CLAIMS: N_("Legal claims"),
    Purpose.DISCIPLINE: N_("Discipline"), Purpose.LEGAL_OBLIGATION: N_("A legal obligation (the regulator's feed)"),
}
VERSION_FIELD = r"[A-Za-z0-9._\-]{1,32}"  # schemas.VERSION_PATTERN as the browser reads it (a `v`-flag RegExp)
ALREADY_PUBLISHED = N_("This version is published already and never changes: give the new text a new version.")


def _page(request: Request, principal: Principal, session: DbSession, *, status_code: int = 200,
          values: dict[str, Any] | None = None, errors: dict[str, str] | None = None) -> HTMLResponse:
    notices = privacy_service.notices(session)
    return page(request, "privacy/notices.html", principal, PAGE, status_code=status_code, notices=notices,
                purposes=[(p.value, PURPOSE_LABELS[p]) for p in Purpose],
                categories=[(c.value, RULES[c].description) for c in Category],
                purpose_labels={p.value: label for p, label in PURPOSE_LABELS.items()},
                category_labels={c.value: RULES[c].description for c in Category},
                zh=request_locale(request).startswith("zh"), values=values or {}, errors=errors or {},
                version_pattern=VERSION_FIELD)


@router.get("/notices")
def notices_page(request: Request, principal: NoticePublisher, session: DbSession) -> HTMLResponse:
    """The versions published (newest first) and the form for the next one."""
    return _page(request, principal, session)


@router.post("/notices")
async def notice_publish(request: Request, principal: NoticePublisher, session: DbSession) -> Response:
    form = await request.form()
    values = form_values(form, lists=("purposes", "categories"))
    try:
        checked = NoticeCreate.model_validate({name: values[name].strip() if isinstance(values.get(name), str)
                                               else values.get(name, "") for name in FIELDS})
    except ValidationError as exc:
        return await run_in_threadpool(_page, request, principal, session, status_code=422, values=values,
                                       errors=field_problems(request, exc))
    existing = await run_in_threadpool(lambda: privacy_service.published_notice(session, version=checked.version))
    if existing is not None:
        if _same(existing, checked):  # the same form sent again: it is published, nothing to do
            return RedirectResponse(f"{PAGE}#v-{checked.version}", status_code=303)
        return await run_in_threadpool(_page, request, principal, session, status_code=409, values=values,
                                       errors={"version": i18n_text(request, ALREADY_PUBLISHED)})
    asked = await run_in_threadpool(lambda: ask_first(
        request, principal, PAGE, question=PUBLISH_NOTICE, action=PAGE, confirm=str(values.get("confirm", "")),
        fields={name: values[name] for name in FIELDS}))
    if asked is not None:
        return asked

    def publish() -> None:
        privacy_service.publish_notice(session, actor=principal.actor, version=checked.version,
                                       purposes=[p.value for p in checked.purposes],
                                       categories=[c.value for c in checked.categories],
                                       retention_zh=checked.retention_zh, retention_en=checked.retention_en,
                                       text_zh=checked.text_zh, text_en=checked.text_en)

    await run_in_threadpool(publish)
    return RedirectResponse(f"{PAGE}#v-{checked.version}", status_code=303)


def _same(notice: PrivacyNotice, checked: NoticeCreate) -> bool:
    return (notice.purposes == [p.value for p in checked.purposes]
            and notice.categories == [c.value for c in checked.categories]
            and (notice.retention_zh, notice.retention_en, notice.text_zh, notice.text_en)
            == (checked.retention_zh, checked.retention_en, checked.text_zh, checked.text_en))
