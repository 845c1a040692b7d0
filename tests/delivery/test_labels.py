"""The label's phone line: the last four digits and nothing more, whatever way the number was written."""

from __future__ import annotations

import pytest

from tripguard.delivery.labels import last_four

pytestmark = pytest.mark.no_database


@pytest.mark.parametrize(("phone", "shown"), [
    ("13800001234", "1234"),
    ("+86 138-0000-5678", "5678"),
    ("(010) 6552 9988", "9988"),
    ("1234", "1234"),
    ("123", ""),  # too short to mask: nothing rather than the whole number
    ("", ""),
    ("分机 ext.", ""),
])
def test_only_the_last_four_digits_are_shown(phone: str, shown: str) -> None:
    assert last_four(phone) == shown
