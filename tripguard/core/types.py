"""Shared field types for request bodies and parameters."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$")


def _rfc3339_only(value: Any) -> Any:
    # Pydantic would read "0.5" as a Unix time; the API promises RFC 3339 with a zone.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with a time zone, e.g. 2026-03-01T08:00:00Z")
    if isinstance(value, (int, float)):
        # Pydantic turns ValueError (not TypeError) into a 422 naming the field.
        raise ValueError("must be an RFC 3339 date-time string")  # noqa: TRY004
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    # PostgreSQL cannot store NUL, and no name or label of ours needs control characters.
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


# Free text a person typed (names, labels): any script, no control characters.
CleanStr = Annotated[str, AfterValidator(_no_control_characters)]
# Identifiers TripGuard or the operator issued (staff ids, key ids, actor ids).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
# Dotted action names and type names (audit filters).
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]{1,64}$")]
