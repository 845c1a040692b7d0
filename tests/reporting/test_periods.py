"""Reporting periods: quarters, months and ISO weeks in the operator's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tripguard.core.errors import InvalidInput
from tripguard.reporting import periods

pytestmark = pytest.mark.no_database


def test_a_quarter_is_its_local_days() -> None:
    q3 = periods.parse("2026Q3", "Asia/Shanghai")
    assert (q3.start, q3.end) == (datetime(2026, 6, 30, 16, tzinfo=UTC), datetime(2026, 9, 30, 16, tzinfo=UTC))
    q4 = periods.parse("2026Q4", "UTC")
    assert (q4.start, q4.end) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert q4.previous("UTC").label == "2026Q3"
    assert periods.parse("2027Q1", "UTC").previous("UTC").label == "2026Q4"
    assert [p.label for p in periods.trailing(q3, 4, "UTC")] == ["2025Q4", "2026Q1", "2026Q2", "2026Q3"]


def test_months_and_weeks() -> None:
    december = periods.parse("2026-12", "UTC")
    assert (december.start, december.end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert periods.parse("2027-01", "UTC").previous("UTC").label == "2026-12"
    week = periods.parse("2026W53", "UTC")  # 2026 has 53 ISO weeks
    assert week.start == datetime(2026, 12, 28, tzinfo=UTC) and week.previous("UTC").label == "2026W52"
    assert periods.parse("2027W01", "UTC").previous("UTC").label == "2026W53"
    assert periods.current_quarter(datetime(2026, 12, 31, 17, tzinfo=UTC), "Asia/Shanghai") == "2027Q1"


@pytest.mark.parametrize("label", ["2026Q5", "2026-13", "2026W54", "2026", "26Q1", "2026q1", "2027W53", "",
                                   "0001Q1", "9999-12", "1969W01",  # years outside 1970-2199: year 1 was a 500
                                   "0001-01", "9999W52", "0000Q1", "2200-01", "2199W53", "1970-00", "2026W00"])
def test_a_bad_period_is_refused(label: str) -> None:
    with pytest.raises(InvalidInput):
        periods.parse(label, "UTC")


def test_the_first_and_last_periods_parse_and_trend_without_leaving_the_range() -> None:
    """Every form at both ends of 1970-2199 is a period; the trend of 1970Q1 starts there (it once asked
    for 1969's quarters and refused the report)."""
    for label in ("1970Q1", "1970-01", "1970W01", "2199Q4", "2199-12", "2199W52"):
        assert periods.parse(label, "Asia/Shanghai").label == label
    first = periods.parse("1970Q2", "UTC")
    assert [p.label for p in periods.trailing(first, 4, "UTC")] == ["1970Q1", "1970Q2"]
    assert [p.label for p in periods.trailing(periods.parse("1970W01", "UTC"), 3, "UTC")] == ["1970W01"]
