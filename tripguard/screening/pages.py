"""The public page behind an invitation link: a prospective driver or courier reads the screening
notice in their language, gives their name, ID number and phone, and consents. No account, no cookie:
the link's token is the credential, and it works once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from tripguard.console.rendering import render, request_locale
from tripguard.console.shell import problem_text
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings, SecretKey
from tripguard.core.errors import DomainError
from tripguard.core.i18n import N_
from tripguard.core.types import CleanStr
from tripguard.privacy.catalogue import RULES, Category
from tripguard.privacy.service import get_notice
from tripguard.screening import invitations
from tripguard.screening.deps import Agency, ScreeningWake
from tripguard.security.auth import Public
from tripguard.vault.deps import AppVault

router = APIRouter(prefix="/apply", include_in_schema=False)
Token = Annotated[str, Path(min_length=1, max_length=100)]
CONSENT_NEEDED = N_("Tick the box to consent to the screening: without it nothing is sent.")


def _form(request: Request, session: DbSession, secret: str, token: str, *, status_code: int = 200,
          error: str | None = None, values: dict[str, str] | None = None) -> HTMLResponse:
    try:
        invitation = invitations.open_invitation(session, secret_key=secret, token=token)
    except DomainError as exc:
        title, message, _ = problem_text(request, exc)
        return render(request, "screening/apply_gone.html", status_code=exc.status, title=title, message=message)
    notice = get_notice(session, version=invitation.notice_version)
    english = request_locale(request) == "en"
    sensitive = [(kind, RULES[Category(kind)].description) for kind in invitations.needed_kinds(invitation.role)]
    return render(request, "screening/apply.html", status_code=status_code, invitation=invitation, token=token,
                  notice_text=notice.text_en if english else notice.text_zh, error=error, values=values or {},
                  sensitive=sensitive, ticked=set((values or {}).get("sensitive", "").split(",")))


@router.get("/{token}", dependencies=[Public])
def apply_page(token: Token, request: Request, session: DbSession, secret: SecretKey
               ) -> HTMLResponse:
    return _form(request, session, secret, token)


@router.post("/{token}", dependencies=[Public])
def apply_submit(token: Token, request: Request, session: DbSession, vault: AppVault, secret: SecretKey,
                 screening_agency: Agency, settings: AppSettings, screening_wake: ScreeningWake,
                 name: Annotated[CleanStr, Form(min_length=1, max_length=64)],
                 id_number: Annotated[CleanStr, Form(min_length=1, max_length=32)],
                 phone: Annotated[str, Form(max_length=24, pattern=r"^(\+?[0-9][0-9 -]{4,19})?$")] = "",
                 consent: Annotated[str, Form(max_length=3)] = "",
                 sensitive: Annotated[list[Annotated[str, Field(max_length=40)]], Form(max_length=10)] = []  # noqa: B006
                 ) -> HTMLResponse:
    values = {"name": name, "id_number": id_number, "phone": phone, "sensitive": ",".join(sensitive)}
    if consent != "yes":
        return _form(request, session, secret, token, status_code=422, values=values,
                     error=problem_text(request, invitations.ConsentMissing(CONSENT_NEEDED))[1])
    try:
        invitations.accept(session, vault=vault, secret_key=secret,
                           token=token, name=name, id_number=id_number, phone=phone or None, sensitive=tuple(sensitive),
                           agency=screening_agency.name,
                           policy_dir=settings.screening_policy_dir)
    except DomainError as exc:
        session.rollback()
        _, message, fields = problem_text(request, exc)
        return _form(request, session, secret, token, status_code=exc.status, values=values,
                     error="; ".join([message, *(f"{field}: {problem}" for field, problem in fields)]))
    screening_wake.set()
    return render(request, "screening/applied.html")
