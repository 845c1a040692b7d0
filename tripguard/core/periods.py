"""The grammar of a period label, one for every domain: a quarter (2026Q3), a month (2026-11) or an ISO week
(2026W48), of a year from 1970 to 2199 (as every timestamp TripGuard takes). Reporting turns a label into
its interval (reporting/periods.py); workforce inspections name the period they cover with the same labels.

The pattern states the bounds in the OpenAPI schema; `check` adds what a pattern cannot say (week 53 of a
year that has 52)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

FIRST_YEAR, LAST_YEAR = 1970, 2199
YEAR = r"(19[7-9][0-9]|2[01][0-9]{2})"
QUARTER = rf"^{YEAR}Q[1-4]$"
PATTERN = rf"^{YEAR}(Q[1-4]|-(0[1-9]|1[0-2])|W(0[1-9]|[1-4][0-9]|5[0-3]))$"
DESCRIPTION = "a quarter (2026Q3), a month (2026-11) or an ISO week (2026W48), of a year from 1970 to 2199"


def check(label: str) -> str:
    """The label if it names a period that exists; ValueError (a 422 naming the field) otherwise."""
    if not re.match(PATTERN, label):
        raise ValueError(DESCRIPTION)
    if "W" in label:
        try:
            date.fromisocalendar(int(label[:4]), int(label[5:]), 1)
        except ValueError as exc:
            raise ValueError(f"{label[:4]} has no ISO week {label[5:]}") from exc
    return label


def is_period(label: str) -> bool:
    try:
        check(label)
    except ValueError:
        return False
    return True


# A period label as a field or a query parameter: bounded in the schema, checked to exist.
PeriodLabel = Annotated[str, StringConstraints(pattern=PATTERN), AfterValidator(check),
                        Field(description=DESCRIPTION, examples=["2026Q3", "2026-11", "2026W48"])]
QuarterLabel = Annotated[str, StringConstraints(pattern=QUARTER),
                         Field(description="a quarter (2026Q3) of a year from 1970 to 2199", examples=["2026Q3"])]
