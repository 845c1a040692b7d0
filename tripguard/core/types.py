"""Shared field types for request bodies and parameters."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints

from tripguard.core.identifiers import ID_PATTERN

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$")


def _rfc3339_only(value: Any) -> Any:
    # Pydantic would read "0.5" as a Unix time; the API promises RFC 3339 with a zone.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with a time zone, e.g. 2026-03-01T08:00:00Z")
    if isinstance(value, (int, float)):
        # Pydantic turns ValueError (not TypeError) into a 422 naming the field.
        raise ValueError("must be an RFC 3339 date-time string")  # noqa: TRY004
    return value


# Real zones lie within -12:00 and +14:00; a date-time is taken from 1970 to 2200 once in UTC.
MAX_OFFSET = timedelta(hours=14)
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
EARLIEST_TEXT, LATEST_TEXT = "1970-01-01T00:00:00Z", "2200-01-01T00:00:00Z"
# The window in the published schema (the date-time bounds of JSON Schema's format-assertion drafts, as
# ajv-formats reads them): a client and the fuzz see it, not only the validator.
TIME_WINDOW = {"formatMinimum": EARLIEST_TEXT, "formatExclusiveMaximum": LATEST_TEXT}


def _plausible(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is None or abs(offset) > MAX_OFFSET:
        raise ValueError("the time-zone offset must lie within -14:00 and +14:00")
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("out of range") from exc
    if not EARLIEST <= utc < LATEST:
        raise ValueError("must lie between 1970 and 2200")
    return utc


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only), AfterValidator(_plausible),
                      Field(json_schema_extra=TIME_WINDOW)]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    # PostgreSQL cannot store NUL, and no name or label of ours needs control characters.
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


# Free text a person typed (names, labels): any script, no control characters.
CleanStr = Annotated[str, AfterValidator(_no_control_characters)]
REASON_MIN, REASON_MAX = 5, 200
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")  # Hangul fillers: letters to Unicode, nothing on screen


def visible_reason(value: str, *, max_length: int = REASON_MAX) -> str:
    """A reason that lets someone past a check (an override of the dispatch gate, a field revealed, figures
    restated, a lost journal accepted): stripped, it holds 5 to `max_length` characters, at least 5 of them
    letters or digits of any script (CJK included), so blanks, full-width spaces, zero-width spaces or
    dots are no reason. Returns it stripped; raises ValueError (a 422 naming the field) otherwise."""
    text = _no_control_characters(value).strip()
    if any(unicodedata.category(ch) == "Cf" for ch in text):  # bidi overrides, zero-width: read otherwise than typed
        raise ValueError("must not contain invisible formatting characters")
    if len(text) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    if sum(1 for ch in text if ch.isalnum() and ch not in _BLANK_LETTERS) < REASON_MIN:
        raise ValueError(f"must give a reason of at least {REASON_MIN} letters or digits")
    return text


def _long_reason(value: str) -> str:
    return visible_reason(value, max_length=500)


# A required reason that gates something (see `visible_reason`); the bounds are in the published schema too.
Reason = Annotated[str, StringConstraints(min_length=REASON_MIN, max_length=REASON_MAX),
                   AfterValidator(visible_reason)]
# The same, where the reason is an account of some length (why a closed quarter's figures are restated).
LongReason = Annotated[str, StringConstraints(min_length=REASON_MIN, max_length=500), AfterValidator(_long_reason)]
# Identifiers TripGuard or the operator issued (staff ids, key ids, actor ids).
# One grammar for every id, wherever it comes in (paths, bodies, ingest lines, token claims).
Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
# Dotted action names and type names (audit filters).
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]{1,64}$")]
