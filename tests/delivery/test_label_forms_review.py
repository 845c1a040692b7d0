"""Found by the outside review of #26: address forms outside tests/delivery/data/label_addresses.json that still
print a unit, a floor, or the person's full name on the label (through `GET /api/v1/orders/{id}/label` too: the
PDF's text).

docs/operations.md "Delivery": no unit, floor or room is printed in any form; the name is printed with all but the
surname hidden."""

from __future__ import annotations

import pytest

from tripguard.vault.addresses import street_level


@pytest.mark.parametrize(("address", "secret"), [
    ("1201-88 Queen St W, Toronto ON", "1201"),  # unit-house, the Canadian/Australian form: prints "1201-88 Queen St"
    ("5-12 Baker St, Sydney NSW 2000", "5-"),  # unit 5 of number 12
    ("北京市朝阳区金地花园ⅫA", "XII"),  # a Roman-numeral floor and flat (NFKC: XIIA), printed whole
    ("北京市朝阳区金地花园XIIF", "XII"),
])
def test_no_unit_or_floor_is_printed(address: str, secret: str) -> None:
    assert secret not in street_level(address), street_level(address)


@pytest.mark.parametrize(("address", "name"), [
    ("Maria Silva, Rua de Santa Catarina 100, Porto", "Silva"),  # printed whole while the recipient is "M**** S****"
    ("Mr Smith, 12 Baker St, London", "Smith"),
])
def test_a_name_written_into_the_address_is_not_printed(address: str, name: str) -> None:
    assert name not in street_level(address), street_level(address)
