"""Resident ID numbers (GB 11643-1999): shape, check character (ISO 7064 MOD 11-2), region, date of
birth; read for region, birth date and sex; and any input is an answer, never an exception."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tripguard.screening.identity import read_id_number

pytestmark = pytest.mark.no_database
TODAY = date(2026, 11, 30)


def with_check(seventeen: str) -> str:
    """The check character by ISO 7064 MOD 11-2 written out (an oracle independent of the code's table)."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(seventeen))
    check = (12 - total % 11) % 11
    return seventeen + ("X" if check == 10 else str(check))


@pytest.mark.parametrize(("number", "problem"), [
    ("11010519491231002X", None),  # the standard's own example
    ("11010519491231002x", None),  # a lower-case x is read as X
    (" 11010519491231002X ", None),
    (with_check("44030619900101123"), None),
    ("110105194912310021", "check_digit"),
    ("11010519491231002", "format"), ("1101051949123100211", "format"), ("11010519491231002Y", "format"),
    ("１１０１０５１９４９１２３１００２Ｘ", "format"),  # noqa: RUF001 - full-width digits on purpose
    ("", "format"), (None, "format"), (11010519491231002, "format"),
    (with_check("99010519900101123"), "region"),
    (with_check("11010519900231123"), "birth_date"),  # 31 February
    (with_check("11010520991231123"), "birth_date"),  # born in the future
    (with_check("11010518991231123"), "birth_date"),
])
def test_valid_and_invalid_numbers(number: object, problem: str | None) -> None:
    assert read_id_number(number, today=TODAY).problem == problem


def test_what_a_number_says() -> None:
    reading = read_id_number("11010519491231002X", today=TODAY)
    assert (reading.region, reading.birth_date, reading.sex) == ("110105", date(1949, 12, 31), "female")
    assert reading.age_on(date(2026, 12, 30)) == 76 and reading.age_on(date(2026, 12, 31)) == 77
    assert read_id_number(with_check("44030619900101123"), today=TODAY).sex == "male"


@given(st.text(max_size=25))
def test_any_text_is_an_answer(value: str) -> None:
    reading = read_id_number(value, today=TODAY)
    assert reading.valid == (reading.problem is None)


@given(st.from_regex(r"\d{17}", fullmatch=True))
def test_only_the_right_check_character_passes(seventeen: str) -> None:
    right = with_check(seventeen)
    for check in "0123456789X":
        problem = read_id_number(seventeen + check, today=TODAY).problem
        assert (problem == "check_digit") == (seventeen + check != right)
