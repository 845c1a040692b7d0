"""Reporting periods in the operator's time zone: a quarter (2026Q3), a month (2026-11) or an ISO week
(2026W48), each a half-open interval [start, end) in UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tripguard.core import periods as grammar
from tripguard.core.errors import InvalidInput

# Years 1970-2199, as every timestamp TripGuard takes: year 1 shifted to UTC (and its trend, the quarters
# before it) falls out of Python's dates (a 500 the fuzz found). The grammar is core's, shared with the
# workforce inspections.
PATTERN = grammar.PATTERN


@dataclass(frozen=True)
class Period:
    label: str
    start: datetime
    end: datetime

    def previous(self, timezone: str) -> Period:
        return parse(_shift(self.label, -1), timezone)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _first_days(label: str) -> tuple[date, date]:
    year = int(label[:4])
    if "Q" in label:
        quarter = int(label[5])
        first = date(year, 3 * quarter - 2, 1)
        following = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
        return first, following
    if "W" in label:
        first = date.fromisocalendar(year, int(label[5:]), 1)
        return first, first + timedelta(days=7)
    month = int(label[5:])
    return date(year, month, 1), date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)


def parse(label: str, timezone: str) -> Period:
    if not re.match(PATTERN, label):
        raise InvalidInput("a period is a quarter (2026Q3), a month (2026-11) or an ISO week (2026W48)")
    try:
        first, following = _first_days(label)
    except ValueError as exc:  # week 53 of a year that has 52
        raise InvalidInput(f"no such period: {label}") from exc
    zone = ZoneInfo(timezone)
    return Period(label, _local_midnight(first, zone), _local_midnight(following, zone))


def _shift(label: str, steps: int) -> str:
    year = int(label[:4])
    if "Q" in label:
        index = year * 4 + int(label[5]) - 1 + steps
        return f"{index // 4}Q{index % 4 + 1}"
    if "W" in label:
        monday = date.fromisocalendar(year, int(label[5:]), 1) + timedelta(weeks=steps)
        iso = monday.isocalendar()
        return f"{iso.year}W{iso.week:02d}"
    index = year * 12 + int(label[5:]) - 1 + steps
    return f"{index // 12}-{index % 12 + 1:02d}"


def trailing(period: Period, count: int, timezone: str) -> list[Period]:
    """This period and the `count - 1` before it, oldest first (for trends); none before 1970 (the trend of
    1970Q1 is that quarter alone, not a refusal of a quarter the caller never asked for)."""
    labels = [_shift(period.label, -back) for back in range(count - 1, -1, -1)]
    return [parse(label, timezone) for label in labels if int(label[:4]) >= grammar.FIRST_YEAR]


def current_quarter(now: datetime, timezone: str) -> str:
    local = now.astimezone(ZoneInfo(timezone))
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"
