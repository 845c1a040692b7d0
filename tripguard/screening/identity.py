"""The resident identity number (居民身份证号码, GB 11643-1999) of an applicant, read for what it
says: its region (GB/T 2260: the province-level code of the first two digits), date of birth and sex;
and checked: 18 characters, the check character (ISO 7064 MOD 11-2, the one implementation in
`vault.masking`), a real date of birth in the past. Name-ID match and liveness are a provider's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from tripguard.vault.masking import id_number_valid

# GB/T 2260 province-level codes (the first two digits), with Taiwan, Hong Kong and Macao.
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    "71", "81", "82"})
SHAPE = re.compile(r"\d{17}[\dX]")


@dataclass(frozen=True)
class IdReading:
    """What an ID number says, or why it cannot be read (`problem` is a reason code)."""

    problem: str | None  # format | check_digit | region | birth_date | None when valid
    region: str | None = None  # the six-digit administrative code
    birth_date: date | None = None
    sex: str | None = None  # male | female (the 17th digit: odd, even)

    @property
    def valid(self) -> bool:
        return self.problem is None

    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def read_id_number(value: object, *, today: date) -> IdReading:
    """Read a resident ID number; never raises on any input."""
    if not isinstance(value, str):
        return IdReading("format")
    number = value.strip().upper()
    if not SHAPE.fullmatch(number):
        return IdReading("format")
    if not id_number_valid(number):
        return IdReading("check_digit")
    if number[:2] not in PROVINCES:
        return IdReading("region")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return IdReading("birth_date")
    if born > today or born.year < 1900:
        return IdReading("birth_date")
    return IdReading(None, region=number[:6], birth_date=born, sex="male" if int(number[16]) % 2 else "female")
