"""The console's forms: a form is checked by a Pydantic model, and what is wrong comes back by field, in
the page's language, with what was typed kept. The fields are drawn by the macros of
console/templates/form.html. Bad input is a page with its problems, never a 500."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from tripguard.console.rendering import request_locale
from tripguard.core import i18n
from tripguard.core.i18n import N_

MAX_TEXT = 20_000  # what is kept of one field as typed (the models say what is allowed)
MAX_CHOICES = 50  # values kept of one multiple choice

REQUIRED, NOT_VALID = N_("Required."), N_("Not valid.")
PROBLEMS = {
    "missing": REQUIRED,
    "string_too_short": REQUIRED,
    "string_pattern_mismatch": N_("Not in the expected form."),
    "too_short": N_("Choose at least one."),
    "too_long": N_("Too many chosen."),
    "enum": N_("Not one of the choices."),
    "literal_error": N_("Not one of the choices."),
    "list_type": N_("Not one of the choices."),
}


def form_values(form: FormData, *, lists: Iterable[str] = ()) -> dict[str, Any]:
    """What was typed, to check and to show again: one string a field, a list for each of `lists`."""
    many = set(lists)
    values: dict[str, Any] = {name: str(form.get(name, ""))[:MAX_TEXT] for name in form if name not in many}
    for name in many:
        values[name] = [str(value)[:200] for value in form.getlist(name)][:MAX_CHOICES]
    return values


def field_problems(request: Request, exc: ValidationError) -> dict[str, str]:
    """The first problem of each field, said for the person in front of the page."""
    token = i18n.current_locale.set(request_locale(request))
    try:
        problems: dict[str, str] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "form"
            if field in problems:
                continue
            kind, context = error["type"], error.get("ctx") or {}
            if error.get("input") == "" or kind == "missing":
                problems[field] = i18n.gettext(REQUIRED)
            elif kind == "string_too_long":
                problems[field] = i18n.gettext("At most %(max)s characters.") % {"max": context.get("max_length")}
            elif kind == "string_too_short" and int(context.get("min_length", 1)) > 1:
                problems[field] = i18n.gettext("At least %(min)s characters.") % {"min": context.get("min_length")}
            else:
                problems[field] = i18n.gettext(PROBLEMS.get(kind, NOT_VALID))
        return problems
    finally:
        i18n.current_locale.reset(token)

