"""The one grammar for every id (paths, bodies, ingest lines, token claims), without Pydantic: the
replay command and the event parser import it and start faster."""

from __future__ import annotations

import re

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_ID = re.compile(ID_PATTERN)


def is_identifier(value: object) -> bool:
    return type(value) is str and _ID.fullmatch(value) is not None
